"""``POST /consents``: an edge uploads consent events (append-only; re-sends are duplicates)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from consent import ConsentEvent
from models import ConsentBatchResult

from ...crud.consent import record_consents
from ..deps import AuditDep, CatalogueDep, ClockDep, EdgePrincipal, SessionDep

router = APIRouter(tags=["consents"])

#: Most events accepted in one request.
MAX_BATCH = 1000


@router.post("/consents")
def post_consents(
    events: Annotated[list[ConsentEvent], Body(min_length=1, max_length=MAX_BATCH)],
    session: SessionDep,
    principal: EdgePrincipal,
    catalogue: CatalogueDep,
    audit: AuditDep,
    clock: ClockDep,
) -> ConsentBatchResult:
    """Record consent events; withdrawals purge fields no granted purpose allows any more.

    Audited as ``consent.record``: one entry per subject in the batch, with counts.
    """
    return record_consents(
        session=session,
        events=events,
        principal=principal,
        catalogue=catalogue,
        audit=audit,
        at=clock(),
    )
