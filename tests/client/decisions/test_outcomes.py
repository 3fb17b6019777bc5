"""Edge contact outcomes: per-arm daily totals, small cells held back, KPIs on the server."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from client.config import ClientSettings
from client.credentials import save_credentials
from client.decisions.outcomes import read_outcomes, summarize, upload_outcomes

from ...server.decisions.harness import DecisionApi, decision_api
from ...server.factories import ADMIN_TOKEN, bearer


def _line(arm: str, *, resolved: bool, day: int = 7, **extra: Any) -> dict[str, Any]:
    return {"experiment": "routing_arms", "arm": arm, "at": f"2026-12-{day:02d}T10:00:00+08:00",
            "first_response_s": 30.0, "resolved": resolved, "transferred": not resolved,
            **extra}  # fmt: skip


def _write(path: Path, lines: list[Any]) -> Path:
    path.write_text(
        "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n",
        encoding="utf-8",
    )
    return path


def test_totals_per_arm_and_day_with_small_cells_held_back(tmp_path: Path) -> None:
    lines = [_line("rules", resolved=i % 4 != 0, order_value=100.0) for i in range(12)]
    lines += [_line("fifo", resolved=True) for _ in range(3)]  # below the minimum
    lines += ["{not json", _line("rules", resolved=True) | {"at": "2026-12-07T10:00:00"}]
    summary = summarize(read_outcomes(_write(tmp_path / "o.jsonl", lines)), min_cell=10)
    (cell,) = summary.totals
    assert (cell.arm, cell.day, cell.contacts, cell.resolved) == ("rules", "2026-12-07", 12, 9)
    assert cell.order_value_sum == pytest.approx(1200.0)
    assert summary.held_back_cells == 1 and summary.held_back_contacts == 3
    assert [n for n, _ in summary.rejected] == [16, 17]
    assert "timezone" in summary.rejected[1][1]


@pytest.fixture()
def dapi(tmp_path: Path) -> Iterator[DecisionApi]:
    yield from decision_api(f"sqlite:///{tmp_path / 'server.db'}")


def test_uploaded_totals_become_per_arm_kpis_with_intervals(
    dapi: DecisionApi, tmp_path: Path
) -> None:
    rng = random.Random(3)
    lines = [_line("fifo", resolved=rng.random() < 0.6) for _ in range(200)]
    lines += [_line("rules_models", resolved=rng.random() < 0.8) for _ in range(200)]
    lines += [_line("rules", resolved=True) for _ in range(12)]  # sent, but below min_cell 30
    settings = ClientSettings(edge_dir=tmp_path / "edge", server_url="http://testserver")
    save_credentials(settings.credentials_path, dapi.edge, server_url="http://testserver")

    def handle(request: httpx.Request) -> httpx.Response:
        answer = dapi.client.request(
            request.method, str(request.url.copy_with(scheme="http", host="testserver", port=None)),
            headers=dict(request.headers), content=request.content,
        )  # fmt: skip
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    summary = summarize(read_outcomes(_write(tmp_path / "o.jsonl", lines)), min_cell=10)
    transport = httpx.MockTransport(handle)
    assert upload_outcomes(summary, settings=settings, transport=transport) == 3
    assert upload_outcomes(summary, settings=settings, transport=transport) == 3  # replaces
    report = dapi.client.get("/api/v1/experiments/routing_arms", headers=bearer(ADMIN_TOKEN))
    assert report.status_code == 200, report.text
    arms = {a["arm"]: a for a in report.json()["arms"]}
    assert arms["fifo"]["contacts"] == 200 and arms["rules_models"]["contacts"] == 200
    low, high = arms["fifo"]["resolution_rate_ci"]
    assert low < arms["fifo"]["resolution_rate"] < high
    assert arms["fifo"]["resolution_rate_ci"][1] < arms["rules_models"]["resolution_rate_ci"][0]
    assert arms["rules"]["suppressed"] is True and arms["rules"]["resolution_rate"] is None
