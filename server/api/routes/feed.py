"""``GET /edges/me/subject-events``: what an edge must apply at its next sync.

The feed holds erasures (by salted hash), restrictions and their lifting, fields suppressed
after rectification, and consent events recorded elsewhere (other edges, self-service),
withdrawals and personalisation-off included. Erasures and restrictions concern a subject on
every channel, so every edge receives them; an edge's own consent events are left out.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from consent import SubjectEventPage

from ...crud.subject_events import MAX_PAGE, read_feed
from ..deps import EdgePrincipal, SessionDep

router = APIRouter(tags=["edges"])


@router.get("/edges/me/subject-events")
def get_subject_events(
    session: SessionDep,
    principal: EdgePrincipal,
    after: Annotated[
        str | None, Query(max_length=64, description="cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="most events returned")] = 500,
) -> SubjectEventPage:
    """Return the next page of subject events after ``after``, and the cursor to pass next."""
    return read_feed(
        session=session, edge_id=principal.require_edge_id(), after=after, limit=limit
    )
