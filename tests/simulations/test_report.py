"""The report: stable metrics.json, timings apart, gaps to centralized, plots, md and html."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from simulations.report import best_baseline, gaps, gaps_to_best, setting_label, write_report


def _setting(
    name: str, acc: float, auc: float, eps: float | None = None, *, baseline: bool = False
) -> dict[str, Any]:
    return {
        "baseline": baseline,
        "setting": name,
        "target_epsilon": eps,
        "metrics": {"accuracy": acc, "macro_f1": acc - 0.1, "auc": auc},
        "curve": [
            {"round": 0.0, "accuracy": 0.2, "macro_f1": 0.1, "auc": 0.5},
            {"round": 1.0, "accuracy": acc, "macro_f1": acc - 0.1, "auc": auc},
        ],
        "epsilon_per_edge": {"edge-0000": eps} if eps else {},
        "noise_multiplier": 1.1 if eps else None,
        "seconds": 12.5,
        "extra": {},
    }


def _metrics() -> dict[str, Any]:
    return {
        "task": "text",
        "engine": "inprocess",
        "edges": 2,
        "rounds": 1,
        "seed": 0,
        "dp": "local",
        "plan": {"target_delta": 1e-5, "num_server_rounds": 1},
        "partition": "iid",
        "data": {
            "examples": 10,
            "train_examples": [4, 4],
            "test_examples": 2,
            "classes": ["a", "b"],
        },
        "settings": [
            _setting("tfidf-lr", 0.96, 0.98, baseline=True),
            _setting("central", 0.95, 0.99),
            _setting("federated-dp", 0.93, 0.97, 8.0),
        ],
        "seconds": 30.0,
    }


def test_gaps_are_central_minus_setting() -> None:
    result = gaps(_metrics()["settings"])
    assert result["federated-dp ε=8"]["accuracy"] == pytest.approx(0.02)
    assert result["federated-dp ε=8"]["auc"] == pytest.approx(0.02)
    assert gaps([_setting("federated", 0.9, 0.9)]) == {}


def test_label_names_epsilon() -> None:
    assert setting_label(_setting("central-dp", 0.9, 0.9, 3.0)) == "central-dp ε=3"
    assert setting_label(_setting("central", 0.9, 0.9)) == "central"


def test_write_report_keeps_times_out_of_metrics(tmp_path: Path) -> None:
    stable = write_report(_metrics(), tmp_path)
    written = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
    assert written == stable
    assert "seconds" not in written and all("seconds" not in s for s in written["settings"])
    timings = json.loads((tmp_path / "timings.json").read_text(encoding="utf-8"))
    assert timings["total_seconds"] == 30.0 and timings["federated-dp ε=8"] == 12.5
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "2.00 accuracy points and 0.0200 AUC below centralized" in report
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") and '<img src="rounds.png"' in html
    assert (tmp_path / "rounds.png").stat().st_size > 1000
    assert (tmp_path / "utility_vs_epsilon.png").stat().st_size > 1000


def test_best_baseline_is_chosen_per_metric_and_gaps_cover_our_settings_only() -> None:
    settings = [
        _setting("logreg", 0.80, 0.70, baseline=True),
        _setting("gbdt", 0.78, 0.75, baseline=True),
        _setting("federated-dp", 0.77, 0.74, 8.0),
    ]

    best = best_baseline(settings)
    gap = gaps_to_best(settings)

    assert best["accuracy"] == {"setting": "logreg", "value": 0.80}
    assert best["auc"] == {"setting": "gbdt", "value": 0.75}
    assert list(gap) == ["federated-dp ε=8"]
    assert gap["federated-dp ε=8"]["accuracy"] == pytest.approx(0.03)
    assert gap["federated-dp ε=8"]["auc"] == pytest.approx(0.01)
    assert best_baseline(settings[2:]) == {} and gaps_to_best(settings[2:]) == {}


def test_report_states_the_gap_to_the_best_baseline_and_the_oracle(tmp_path: Path) -> None:
    metrics = _metrics() | {"oracle": {"auc": 0.81, "held_out": 200, "note": "x"}}

    stable = write_report(metrics, tmp_path)

    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert stable["gaps_vs_best_baseline"]["federated-dp ε=8"]["accuracy"] == pytest.approx(0.03)
    assert "3.00 accuracy points" in report and "below the best simple baseline" in report
    assert "Oracle AUC" in report and "0.8100" in report
