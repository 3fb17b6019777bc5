"""Privacy ledgers: ``PUT /edges/me/ledger`` (edge), ``GET`` per edge or all (admin, agent)."""

from __future__ import annotations

from fastapi import APIRouter

from models import LedgerReport

from ...crud.ledger import list_ledgers, store_ledger
from ...tables.training import EdgeLedgerPublic
from ..deps import AuditDep, ClockDep, EdgePrincipal, SessionDep, readers_only

router = APIRouter(tags=["ledgers"])


@router.put("/edges/me/ledger")
def put_ledger(
    report: LedgerReport,
    session: SessionDep,
    principal: EdgePrincipal,
    audit: AuditDep,
    clock: ClockDep,
) -> EdgeLedgerPublic:
    """Store the calling edge's ledger for one model. Audited as ``ledger.report``."""
    return store_ledger(
        session=session, report=report, principal=principal, audit=audit, at=clock()
    )


@router.get("/edges/{edge_id}/ledger", dependencies=[readers_only])
def get_edge_ledgers(edge_id: str, session: SessionDep) -> list[EdgeLedgerPublic]:
    """Return the edge's ledgers, one per model (``exhausted`` shows a stopped budget)."""
    return list_ledgers(session=session, edge_id=edge_id)


@router.get("/ledgers", dependencies=[readers_only])
def get_ledgers(session: SessionDep) -> list[EdgeLedgerPublic]:
    """Return every edge's ledgers."""
    return list_ledgers(session=session)
