"""The report: stable metrics.json, timings apart, gaps to centralized, plots, md and html."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from simulations.report import gaps, setting_label, write_report


def _setting(name: str, acc: float, auc: float, eps: float | None = None) -> dict[str, Any]:
    return {
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
        "plan": {"delta": 1e-5, "rounds": 1},
        "partition": "iid",
        "data": {
            "examples": 10,
            "train_examples": [4, 4],
            "test_examples": 2,
            "classes": ["a", "b"],
        },
        "settings": [_setting("central", 0.95, 0.99), _setting("federated-dp", 0.93, 0.97, 8.0)],
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
