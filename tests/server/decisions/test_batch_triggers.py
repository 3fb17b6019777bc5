"""Batch triggers (``decide run``): consent-scoped, once per person and period, delivered once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from consent import Purpose, load_default_catalogue, load_default_purposes
from fedprofile.cli import build_app
from server.config import ServerSettings
from server.decisions.batch import run_batch
from server.decisions.source import decision_setup
from server.principal import Principal
from server.tables.decision import DecisionTrigger
from server.tables.token import Role

from ..factories import make_pseudonym
from .harness import DecisionApi, decision_api

CHURNING = make_pseudonym("churning")
SILENT = make_pseudonym("no-consent")
RISKY = make_pseudonym("risky")


@pytest.fixture()
def dapi(tmp_path: Path) -> Iterator[DecisionApi]:
    yield from decision_api(f"sqlite:///{tmp_path / 'server.db'}")


def _seed(dapi: DecisionApi) -> None:
    dapi.consent(CHURNING, Purpose.PROACTIVE_SERVICE)
    dapi.upload(CHURNING, "proactive_service", feature__complaints_90d=3)
    dapi.consent(SILENT, Purpose.SERVICE_ROUTING)
    dapi.upload(SILENT, "service_routing", feature__complaints_90d=4)


def _run(dapi: DecisionApi, sink: list[dict[str, Any]], period: str = "2026-12-07") -> Any:
    catalogue, purposes = load_default_catalogue(), load_default_purposes()
    setup = decision_setup(ServerSettings(database_url="sqlite://"), catalogue, purposes)
    return run_batch(
        session_factory=lambda: Session(dapi.engine, expire_on_commit=False), setup=setup,
        catalogue=catalogue, purposes=purposes, purpose="proactive_service", period=period,
        sink=sink.extend, principal=Principal(role=Role.ADMIN, name="test"), at=dapi.clock.now,
    )  # fmt: skip


def test_triggers_only_consented_people_once_per_period(dapi: DecisionApi) -> None:
    _seed(dapi)
    delivered: list[dict[str, Any]] = []
    report = _run(dapi, delivered)
    assert report.evaluated == 1 and report.created == 1
    assert [t["rule"] for t in delivered] == ["complaint_follow_up"]
    assert delivered[0]["person"] == CHURNING and "主动回访" in delivered[0]["reason_zh"]
    again = _run(dapi, delivered)
    assert again.created == 0 and again.existing == 1 and len(delivered) == 1
    _run(dapi, delivered, period="2026-12-08")
    assert len(delivered) == 2


def test_a_failed_delivery_is_kept_for_the_next_run(dapi: DecisionApi) -> None:
    _seed(dapi)

    def broken(_: Any) -> None:
        raise RuntimeError("queue down")

    catalogue, purposes = load_default_catalogue(), load_default_purposes()
    setup = decision_setup(ServerSettings(database_url="sqlite://"), catalogue, purposes)
    with pytest.raises(RuntimeError):
        run_batch(
            session_factory=lambda: Session(dapi.engine, expire_on_commit=False), setup=setup,
            catalogue=catalogue, purposes=purposes, purpose="proactive_service",
            period="p1", sink=broken, principal=Principal(role=Role.ADMIN, name="t"),
            at=dapi.clock.now,
        )  # fmt: skip
    with Session(dapi.engine) as session:
        pending = session.exec(select(DecisionTrigger)).all()
        assert len(pending) == 1 and pending[0].delivered_at is None
    delivered: list[dict[str, Any]] = []
    report = _run(dapi, delivered, period="p1")
    assert report.created == 0 and report.delivered == 1 and len(delivered) == 1


def test_decide_run_command_writes_a_jsonl_queue(
    dapi: DecisionApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(dapi)
    url = str(dapi.engine.url)
    monkeypatch.setenv("FEDPROFILE_DATABASE_URL", url)
    from server.config import get_settings

    get_settings.cache_clear()
    queue = tmp_path / "queue.jsonl"
    runner = CliRunner()
    args = ["decide", "run", "--purpose", "proactive_service", "--out", str(queue), "--json"]
    result = runner.invoke(build_app("decide"), args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["created"] == 1
    lines = [json.loads(line) for line in queue.read_text().splitlines()]
    assert [line["rule"] for line in lines] == ["complaint_follow_up"]
    bad = runner.invoke(build_app("decide"), ["decide", "run", "--purpose", "proactive_service"])
    assert bad.exit_code != 0
    get_settings.cache_clear()
