"""Federated training runs and their rounds, recorded by the Flower ServerApp.

The ServerApp (``server.fl``) calls :func:`start_run`, :func:`record_round` per aggregated
round and :func:`finish_run`; the API lists runs with :func:`list_runs`. Round records hold
aggregated metrics and per-edge summaries only.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime
from typing import Any, Literal

from sqlmodel import Session, col, select

from ..errors import NotFoundError
from ..tables.training import (
    RunStatus,
    TrainingRound,
    TrainingRoundPublic,
    TrainingRun,
    TrainingRunPublic,
)

logger = logging.getLogger(__name__)


def _json(value: Any) -> str:
    """JSON text; values JSON cannot hold (bytes, numpy scalars) become strings."""
    return json.dumps(value, sort_keys=True, default=str)


def start_run(
    *,
    session: Session,
    model: str,
    config: dict[str, Any],
    num_rounds: int,
    started_at: datetime,
) -> str:
    """Record the start of a training run; commits.

    Parameters
    ----------
    session : Session
        A session.
    model : str
        Model name (e.g. ``behaviour``).
    config : dict[str, Any]
        The run configuration (JSON-serialisable; other values are stored as strings).
    num_rounds : int
        Rounds planned.
    started_at : datetime
        Start time (timezone-aware).

    Returns
    -------
    str
        The new run's id.
    """
    run = TrainingRun(
        id=str(uuid.uuid4()),
        model=model,
        started_at=started_at,
        num_rounds=num_rounds,
        config_json=_json(config),
        status=RunStatus.RUNNING,
    )
    session.add(run)
    session.commit()
    logger.info("training run %s started (%s, %d rounds)", run.id, model, num_rounds)
    return run.id


def _get_run(session: Session, run_id: str) -> TrainingRun:
    """Return the run or raise NotFoundError."""
    run = session.get(TrainingRun, run_id)
    if run is None:
        raise NotFoundError(kind="training run", ref=run_id)
    return run


def record_round(
    *,
    session: Session,
    run_id: str,
    server_round: int,
    phase: Literal["train", "evaluate"],
    metrics: dict[str, float],
    edges: list[dict[str, Any]],
) -> None:
    """Record (or replace) one round's aggregated metrics; commits.

    Parameters
    ----------
    session : Session
        A session.
    run_id : str
        The run, from :func:`start_run`.
    server_round : int
        Round number (1-based).
    phase : {"train", "evaluate"}
        Which aggregation the metrics come from.
    metrics : dict[str, float]
        Aggregated metrics.
    edges : list[dict[str, Any]]
        Per-edge summaries (edge name or channel, examples, epsilon...), never subject data.

    Raises
    ------
    NotFoundError
        If the run does not exist.
    ValueError
        If ``phase`` is not ``train`` or ``evaluate``.
    """
    if phase not in ("train", "evaluate"):
        raise ValueError("phase must be 'train' or 'evaluate'")
    _get_run(session, run_id)
    row = session.exec(
        select(TrainingRound).where(
            col(TrainingRound.run_id) == run_id,
            col(TrainingRound.server_round) == server_round,
            col(TrainingRound.phase) == phase,
        )
    ).first() or TrainingRound(run_id=run_id, server_round=server_round, phase=phase)
    row.metrics_json = _json({k: float(v) for k, v in metrics.items()})
    row.edges_json = _json(edges)
    session.add(row)
    session.commit()


def finish_run(
    *,
    session: Session,
    run_id: str,
    status: Literal["completed", "failed", "budget_exhausted"],
    finished_at: datetime,
) -> None:
    """Record the end of a run; commits.

    Parameters
    ----------
    session : Session
        A session.
    run_id : str
        The run.
    status : {"completed", "failed", "budget_exhausted"}
        How it ended.
    finished_at : datetime
        End time (timezone-aware).

    Raises
    ------
    NotFoundError
        If the run does not exist.
    ValueError
        If ``status`` is not one of the three.
    """
    final = RunStatus(status)
    if final is RunStatus.RUNNING:
        raise ValueError("status must be completed, failed or budget_exhausted")
    run = _get_run(session, run_id)
    run.status, run.finished_at = final, finished_at
    session.add(run)
    session.commit()
    logger.info("training run %s finished: %s", run_id, final.value)


def list_runs(*, session: Session, limit: int = 50) -> list[TrainingRunPublic]:
    """Return the newest runs with their rounds.

    Parameters
    ----------
    session : Session
        A session.
    limit : int
        Most runs returned.

    Returns
    -------
    list[TrainingRunPublic]
        Runs, newest first; rounds by number and phase.
    """
    runs = session.exec(
        select(TrainingRun).order_by(col(TrainingRun.started_at).desc()).limit(limit)
    ).all()
    out: list[TrainingRunPublic] = []
    for run in runs:
        rounds = session.exec(
            select(TrainingRound)
            .where(col(TrainingRound.run_id) == run.id)
            .order_by(col(TrainingRound.server_round), col(TrainingRound.phase))
        ).all()
        out.append(
            TrainingRunPublic(
                id=run.id,
                model=run.model,
                started_at=run.started_at,
                finished_at=run.finished_at,
                status=run.status,
                num_rounds=run.num_rounds,
                config=json.loads(run.config_json),
                rounds=[
                    TrainingRoundPublic(
                        server_round=r.server_round,
                        phase=r.phase,
                        metrics=json.loads(r.metrics_json),
                        edges=json.loads(r.edges_json),
                    )
                    for r in rounds
                ],
            )
        )
    return out


#: Name under which the room root exports ``list_runs``.
list_training_runs = list_runs
