"""The demo summary renders every edge's quality beside the oracle and the baseline."""

from __future__ import annotations

from rich.console import Console

from simulations.demo import DemoSummary
from simulations.demo_report import render_demo_summary


def _summary() -> DemoSummary:
    summary = DemoSummary(workdir="w", server_url="http://127.0.0.1:1")
    summary.models = {
        "desk": {
            "round": 5,
            "purchase_auc": 0.7004,
            "oracle_auc": 0.8021,
            "baseline_auc": 0.7312,
            "baseline": "gbdt",
            "escalation_auc": 0.767,
            "held_out": 298,
            "positives": 90,
            "scores_published": ["escalation_risk", "purchase_propensity"],
        },
        "web": {"round": 5, "purchase_auc": 0.55, "held_out": 20, "scores_published": []},
    }
    summary.uploads = {
        "desk": {
            "fields_uploaded": 10,
            "fields_withheld": {"no_consent_for_purpose": 3},
            "refused_by_server": {"no_consent_for_purpose": 2},
        }
    }
    return summary


def test_quality_table_fits_80_columns_with_oracle_baseline_and_heads() -> None:
    console = Console(width=80, record=True)

    render_demo_summary(_summary(), console)
    text = console.export_text()

    assert "…" not in text  # no truncated header or cell
    desk = next(line for line in text.splitlines() if line.startswith("│ desk"))
    assert "0.700" in desk and "0.802" in desk and "0.731" in desk and "298 (90)" in desk
    assert "gbdt" in text and "escalation" in text and "purchase" in text
    web = next(line for line in text.splitlines() if line.startswith("│ web"))
    assert "none" in web and "None" not in web  # under the gate: nothing published
    assert "next 30 days" in text
    assert "refused by reason: no_consent_for_purpose: 2" in text
