from __future__ import annotations

import pytest
from sqlmodel import Session

from models import LedgerEntryWire, LedgerReport
from server.crud.ledger import list_ledgers, store_ledger
from server.errors import NotFoundError
from server.principal import Principal
from server.tables.edge import Edge
from server.tables.token import Role

from ..factories import T0, RecordingAuditSink

EDGE = Principal(role=Role.EDGE, edge_id="e1", channel="app")


def _report(epsilon: float, *, exhausted: bool = False) -> LedgerReport:
    entry = LedgerEntryWire(
        run_id="r1", round=1, model="behaviour", accountant="prv", noise_multiplier=1.0,
        sample_rate=0.01, steps=100, delta=1e-5, epsilon_after=epsilon,
        neighbouring="add_remove", sampling="poisson", level="sample", recorded_at=T0,
    )
    return LedgerReport(model="behaviour", epsilon=epsilon, delta=1e-5, accountant="prv",
                        budget=2.0, exhausted=exhausted, entries=[entry])


def test_store_ledger_replaces_per_edge_and_model(db_session: Session) -> None:
    db_session.add(Edge(id="e1", name="e1", channel="app", created_at=T0))
    db_session.commit()
    sink = RecordingAuditSink()
    store_ledger(session=db_session, report=_report(0.5), principal=EDGE, audit=sink, at=T0)
    store_ledger(session=db_session, report=_report(2.0, exhausted=True), principal=EDGE,
                 audit=sink, at=T0)
    (ledger,) = list_ledgers(session=db_session, edge_id="e1")
    assert (ledger.epsilon, ledger.exhausted, len(ledger.entries)) == (2.0, True, 1)
    assert [e.detail["previous_epsilon"] for e in sink.entries] == [None, 0.5]


def test_list_ledgers_unknown_edge_raises_not_found(db_session: Session) -> None:
    with pytest.raises(NotFoundError):
        list_ledgers(session=db_session, edge_id="missing")
