"""Edge privacy ledgers: the latest report per (edge, model), visible to admins and agents.

The ledger is what makes invariant 6 observable over the API: each edge reports its
cumulative (epsilon, delta) per model and whether its budget is exhausted.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime

from sqlmodel import Session, col, select

from models import LedgerEntryWire, LedgerReport

from ..audit.append import lock_chain
from ..audit.events import AuditAction, AuditOutcome
from ..audit.sink import AuditSink
from ..principal import Principal
from ..tables.training import EdgeLedger, EdgeLedgerPublic
from .edge import get_edge, touch_edge

logger = logging.getLogger(__name__)


def to_public(row: EdgeLedger) -> EdgeLedgerPublic:
    """Return the API form of a stored ledger.

    Parameters
    ----------
    row : EdgeLedger
        A stored ledger.

    Returns
    -------
    EdgeLedgerPublic
        The ledger with its entries decoded.
    """
    entries = [LedgerEntryWire.model_validate(e) for e in json.loads(row.entries_json)]
    return EdgeLedgerPublic(
        edge_id=row.edge_id,
        channel=row.channel,
        model=row.model,
        epsilon=row.epsilon,
        delta=row.delta,
        accountant=row.accountant,
        budget=row.budget,
        exhausted=row.exhausted,
        reported_at=row.reported_at,
        entries=entries,
    )


def store_ledger(
    *,
    session: Session,
    report: LedgerReport,
    principal: Principal,
    audit: AuditSink,
    at: datetime,
) -> EdgeLedgerPublic:
    """Replace the edge's ledger for ``report.model`` and audit it; commits.

    Parameters
    ----------
    session : Session
        A session.
    report : LedgerReport
        The edge's ledger (epsilon is cumulative over all accounted releases of the model;
        delta is the target failure probability of that guarantee).
    principal : Principal
        The reporting edge.
    audit : AuditSink
        Receives one entry.
    at : datetime
        Receipt time.

    Returns
    -------
    EdgeLedgerPublic
        The stored ledger.
    """
    edge_id = principal.require_edge_id()
    # Serialise with other audited writers before reading (see ``lock_chain``).
    lock_chain(session=session)
    row = session.exec(
        select(EdgeLedger).where(
            col(EdgeLedger.edge_id) == edge_id, col(EdgeLedger.model) == report.model
        )
    ).first()
    previous = None if row is None else row.epsilon
    if row is None:
        row = EdgeLedger(
            edge_id=edge_id,
            channel=principal.channel or "",
            model=report.model,
            epsilon=0.0,
            delta=report.delta,
            accountant=report.accountant,
            reported_at=at,
        )
    row.epsilon, row.delta, row.accountant = report.epsilon, report.delta, report.accountant
    row.budget, row.exhausted, row.reported_at = report.budget, report.exhausted, at
    row.entries_json = json.dumps([e.model_dump(mode="json") for e in report.entries])
    session.add(row)
    touch_edge(session=session, edge_id=edge_id, at=at)
    audit.record(
        actor=principal.actor,
        role=principal.role.value,
        action=AuditAction.LEDGER_REPORT,
        purpose=None,
        subject=None,
        outcome=AuditOutcome.ACCEPTED,
        detail={
            "edge_id": edge_id,
            "model": report.model,
            "epsilon": report.epsilon,
            "previous_epsilon": previous,
            "budget": report.budget,
            "exhausted": report.exhausted,
            "entries": len(report.entries),
        },
        at=at,
    )
    session.commit()
    if previous is not None and report.epsilon < previous:
        logger.warning("edge %s reported a lower epsilon for %s than before", edge_id, report.model)
    return to_public(row)


def list_ledgers(*, session: Session, edge_id: str | None = None) -> list[EdgeLedgerPublic]:
    """Return stored ledgers, for one edge or all, by edge and model.

    Parameters
    ----------
    session : Session
        A session.
    edge_id : str or None
        Restrict to this edge.

    Returns
    -------
    list[EdgeLedgerPublic]
        The ledgers.

    Raises
    ------
    NotFoundError
        If ``edge_id`` is given and no such edge is registered.
    """
    stmt = select(EdgeLedger).order_by(col(EdgeLedger.edge_id), col(EdgeLedger.model))
    if edge_id is not None:
        get_edge(session=session, edge_id=edge_id)
        stmt = stmt.where(col(EdgeLedger.edge_id) == edge_id)
    return [to_public(row) for row in session.exec(stmt).all()]
