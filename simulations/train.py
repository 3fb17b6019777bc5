"""``fedprofile train``: federated training over local edge directories, once or on a schedule.

One run is an ordinary Flower run on the Simulation Engine over every edge directory under
``--edges`` (the same ServerApp and ClientApp as a deployment): it records itself in the
server database, publishes each round's model to the registry and warm-starts from the newest
compatible version. Each edge composes the run into its persisted ledger and refuses a round
that would take it over ``--max-epsilon``; the schedule (``simulations.schedule``) stops when
a run ends on the budget. With ``--sync`` every registered edge syncs after a run, so the
server (and the console's privacy-budget page) sees its ledger grow run by run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models import RunConfig

from .errors import ScheduleError
from .federation import edge_dirs, federate
from .schedule import RunOutcome

logger = logging.getLogger(__name__)


def training_run_config(
    *,
    task: str,
    rounds: int,
    epsilon: float,
    max_epsilon: float,
    seed: int = 0,
    database_url: str = "",
) -> RunConfig:
    """Return a run config with the task's private training defaults (``docs/learning.md``).

    Parameters
    ----------
    task : {"behaviour", "text"}
        What to train.
    rounds : int
        Federated rounds of this run.
    epsilon : float
        Each edge's target ε for this run (σ calibrated to it; the ledger composes runs).
    max_epsilon : float
        Each edge's budget across runs (0: none).
    seed : int
        Seed of data order and initialisation.
    database_url : str
        Server database (runs, rounds, the model registry).
    """
    from .simulate import PRIVATE_DEFAULTS, TASK_DEFAULTS

    values: dict[str, Any] = {**TASK_DEFAULTS[task], **PRIVATE_DEFAULTS[task]}
    return RunConfig(
        task=task,
        num_server_rounds=rounds,
        target_epsilon=epsilon,
        max_epsilon=max_epsilon,
        accountant="rdp",
        seed=seed,
        database_url=database_url,
        **values,
    )


def latest_outcome(database_url: str, *, model: str) -> RunOutcome:
    """Return how the newest recorded run of ``model`` ended, with each edge's ε.

    Raises
    ------
    ScheduleError
        If the database holds no run of ``model`` (the run was not recorded).
    """
    from sqlmodel import Session

    from server.crud.training import list_runs
    from server.db import create_db_engine

    engine = create_db_engine(database_url)
    try:
        with Session(engine) as session:
            run = next((r for r in list_runs(session=session, limit=20) if r.model == model), None)
    finally:
        engine.dispose()
    if run is None:
        raise ScheduleError(f"the server database holds no {model} training run")
    trains = [r for r in run.rounds if r.phase == "train"]
    epsilon: dict[str, float] = {}
    for row in trains[-1].edges if trains else []:
        if isinstance(row.get("epsilon"), int | float):
            epsilon[str(row.get("edge") or row.get("channel"))] = float(row["epsilon"])
    return RunOutcome(run_id=run.id, status=str(run.status), rounds=len(trains),
                      edge_epsilon=epsilon)  # fmt: skip


def sync_edges(edges: Path, *, server_url: str | None) -> int:
    """Sync every registered edge under ``edges`` (ledgers reach the server); returns how many."""
    from datetime import UTC, datetime

    from client import ClientSettings, EdgeStore, EdgeUploader

    synced = 0
    for edge_dir in edge_dirs(edges):
        overrides: dict[str, Any] = {"edge_dir": edge_dir}
        if server_url:
            overrides["server_url"] = server_url
        settings = ClientSettings(**overrides)
        if not settings.credentials_path.exists():
            logger.info("edge %s is not registered: not synced", edge_dir.name)
            continue
        with (
            EdgeStore.for_edge_dir(edge_dir) as store,
            EdgeUploader(store=store, settings=settings) as uploader,
        ):
            uploader.sync(now=datetime.now(UTC))
        synced += 1
    return synced


@dataclass(frozen=True)
class TrainingPlan:
    """What each scheduled run does (``fedprofile train`` options)."""

    edges: Path
    config: RunConfig
    sync: bool = False
    server_url: str | None = None


def one_run(plan: TrainingPlan) -> Callable[[int], RunOutcome]:
    """Return the schedule's run function: train, optionally sync, read the outcome."""

    def run(number: int) -> RunOutcome:
        config = plan.config.model_copy(update={"seed": plan.config.seed + number})
        federate(plan.edges, config)
        if plan.sync:
            sync_edges(plan.edges, server_url=plan.server_url)
        return latest_outcome(config.database_url, model=config.task)

    return run
