"""``GET /training-runs``: federated training runs with their rounds (admin, agent)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ...crud.training import list_runs
from ...tables.training import TrainingRunPublic
from ..deps import SessionDep, readers_only

router = APIRouter(tags=["training"])


@router.get("/training-runs", dependencies=[readers_only])
def get_training_runs(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[TrainingRunPublic]:
    """Return the newest runs, newest first, each with its recorded rounds."""
    return list_runs(session=session, limit=limit)
