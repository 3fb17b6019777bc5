from __future__ import annotations

import math
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from client.ledger import ledger_report, load_ledger, read_ledger, save_ledger
from client.store import EdgeStore
from models import LedgerReport
from privacy import DPConfig, LedgerStateError, Release

AT = datetime(2026, 11, 1, tzinfo=UTC)


def _release(round_: int, sigma: float = 1.0) -> Release:
    return Release(
        model="behaviour",
        run_id="7",
        round=round_,
        accountant="rdp",
        noise_multiplier=sigma,
        sample_rate=0.25,
        steps=4,
        delta=1e-5,
        recorded_at=AT,
    )


def test_load_ledger_new_edge_is_empty_with_current_config(tmp_path: Path) -> None:
    with EdgeStore.for_edge_dir(tmp_path) as store:
        ledger = load_ledger(
            store, model="behaviour", dp=DPConfig(max_epsilon=3.0, accountant="rdp")
        )

    assert ledger.releases == () and ledger.budget == 3.0 and ledger.accountant == "rdp"


def test_save_then_load_keeps_releases_and_applies_new_budget(tmp_path: Path) -> None:
    with EdgeStore.for_edge_dir(tmp_path) as store:
        ledger = load_ledger(store, model="behaviour", dp=DPConfig(max_epsilon=5.0))
        ledger.charge(_release(1))
        save_ledger(store, ledger)

        again = load_ledger(store, model="behaviour", dp=DPConfig(max_epsilon=9.0))
        stored = read_ledger(store, "behaviour")

    assert again.releases == ledger.releases and again.budget == 9.0
    assert stored is not None and stored.budget == 5.0  # as saved


def test_load_ledger_foreign_state_raises(tmp_path: Path) -> None:
    with EdgeStore.for_edge_dir(tmp_path) as store:
        store.save_ledger_state("behaviour", {"mechanism": "rdp", "history": []})

        with pytest.raises(LedgerStateError):
            load_ledger(store, model="behaviour", dp=DPConfig())


def test_ledger_report_none_without_ledger(tmp_path: Path) -> None:
    with EdgeStore.for_edge_dir(tmp_path) as store:
        assert ledger_report(store, "behaviour") is None


def test_ledger_report_lists_every_release_and_validates_as_wire_record(tmp_path: Path) -> None:
    with EdgeStore.for_edge_dir(tmp_path) as store:
        ledger = load_ledger(
            store, model="behaviour", dp=DPConfig(max_epsilon=50.0, accountant="rdp")
        )
        eps = [ledger.charge(_release(1)), ledger.charge(_release(2))]
        save_ledger(store, ledger)

        report = ledger_report(store, "behaviour")

    assert report is not None
    parsed = LedgerReport.model_validate_json(report.model_dump_json())
    assert parsed.epsilon == pytest.approx(eps[-1])
    assert [e.epsilon_after for e in parsed.entries] == pytest.approx(eps)
    assert [e.round for e in parsed.entries] == [1, 2]
    assert (parsed.budget, parsed.exhausted, parsed.accountant) == (50.0, False, "rdp")
    assert {e.neighbouring for e in parsed.entries} == {"add_remove_one"}


def test_ledger_report_infinite_epsilon_stays_a_valid_wire_record(tmp_path: Path) -> None:
    with EdgeStore.for_edge_dir(tmp_path) as store:
        ledger = load_ledger(store, model="behaviour", dp=DPConfig())
        ledger.charge(_release(1, sigma=0.0))
        save_ledger(store, ledger)

        report = ledger_report(store, "behaviour")

    assert report is not None and math.isinf(ledger.epsilon())
    parsed = LedgerReport.model_validate_json(report.model_dump_json())
    assert parsed.epsilon == sys.float_info.max
