"""``GET /health``: database reachability and the audit log's length and head (no auth)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from models import Health

from ...crud.health import check_health
from ..deps import SessionDep

router = APIRouter(tags=["health"])


@router.get("/health")
def get_health(session: SessionDep, response: Response) -> Health:
    """Return the health summary; status 503 when the database is unusable."""
    health = check_health(session=session)
    if health.status != "ok":
        response.status_code = 503
    return health
