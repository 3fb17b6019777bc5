"""Where a training run is recorded: the run, its rounds, and the model versions it publishes.

``DatabaseRunRecorder`` writes through ``server.crud.training`` (run and rounds) and
``server.crud.model_registry`` (versions); it is both the ServerApp's ``RunRecorder`` and its
``ModelStore``, so a run recorded in the database also keeps its models there and can warm
start from earlier runs' versions.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import numpy as np

from models import RunConfig, model_version_label, weights_from_bytes, weights_to_bytes

from ..tables.model_version import ArchitectureSpec
from .model_versions import ModelRelease, StoredModel
from .strategy import RoundSummary

logger = logging.getLogger(__name__)

#: Model name a run is recorded under when its config names no task (the edges' ledger
#: uses the task name: ``behaviour`` or ``text``).
MODEL_NAME = "behaviour"

RunStatus = Literal["completed", "failed", "budget_exhausted"]


class RunRecorder(Protocol):
    """Where a training run is recorded (the database, or a fake in tests)."""

    def start(self, *, config: dict[str, Any], num_rounds: int) -> None:
        """Record the start of the run."""

    def record_round(self, summary: RoundSummary) -> None:
        """Record one aggregated round."""

    def finish(self, *, status: RunStatus) -> None:
        """Record how the run ended."""


class DatabaseRunRecorder:
    """Records a run, its rounds and its model versions in the server database.

    Parameters
    ----------
    url : str
        SQLAlchemy URL of the server database; its schema is upgraded first.
    clock : Callable[[], datetime] or None
        Source of start / finish / publication times; UTC now when ``None``.
    """

    def __init__(self, url: str, *, clock: Callable[[], datetime] | None = None) -> None:
        from ..db import create_db_engine, upgrade_database

        upgrade_database(url)
        self._engine = create_db_engine(url)
        self._clock = clock or (lambda: datetime.now(UTC))
        self.run_id: str | None = None
        self._versions: dict[str, tuple[str, int]] = {}

    def start(self, *, config: dict[str, Any], num_rounds: int) -> None:
        """Insert the run row."""
        from sqlmodel import Session

        from ..crud.training import start_run

        with Session(self._engine) as session:
            self.run_id = start_run(
                session=session,
                model=str(config.get("task") or MODEL_NAME),
                config=config,
                num_rounds=num_rounds,
                started_at=self._clock(),
            )

    def _run_id(self) -> str:
        if self.run_id is None:
            raise RuntimeError("start() must be called before recording rounds or models")
        return self.run_id

    def record_round(self, summary: RoundSummary) -> None:
        """Insert one round's aggregated metrics and per-edge rows."""
        from sqlmodel import Session

        from ..crud.training import record_round

        with Session(self._engine) as session:
            record_round(
                session=session,
                run_id=self._run_id(),
                server_round=summary.server_round,
                phase=summary.phase,
                metrics=summary.metrics,
                edges=summary.edges,
            )

    def finish(self, *, status: RunStatus) -> None:
        """Mark the run finished and release the engine."""
        from sqlmodel import Session

        from ..crud.training import finish_run

        if self.run_id is not None:
            with Session(self._engine) as session:
                finish_run(
                    session=session, run_id=self.run_id, status=status, finished_at=self._clock()
                )
        self._engine.dispose()

    # ------------------------------------------------------------------ model registry
    def latest_compatible(self, architecture: ArchitectureSpec) -> StoredModel | None:
        """Return the newest version fitting ``architecture`` whose archive checks out.

        A version whose bytes no longer match their recorded SHA-256, or do not load as
        plain arrays, is skipped with a warning (the run then starts cold).
        """
        from sqlmodel import Session

        from ..crud.model_registry import get_version_weights, latest_compatible

        with Session(self._engine) as session:
            found = latest_compatible(session=session, architecture=architecture)
            if found is None:
                return None
            stored = get_version_weights(session=session, model=found.model, version=found.version)
        if hashlib.sha256(stored.data).hexdigest() != stored.sha256:
            logger.warning("registry version %s fails its SHA-256 check; not used", stored.label)
            return None
        try:
            weights = weights_from_bytes(stored.data)
        except ValueError:
            logger.warning("registry version %s is not a weights archive; not used", stored.label)
            return None
        return StoredModel(label=stored.label, weights=weights)

    def publish(
        self, *, architecture: ArchitectureSpec, weights: Mapping[str, np.ndarray],
        release: ModelRelease,
    ) -> str:  # fmt: skip
        """Publish a round's global model as the next version of the run's task model.

        Raises
        ------
        RuntimeError
            If the run was not started.
        """
        from sqlmodel import Session

        from ..crud.model_registry import publish_version

        with Session(self._engine) as session:
            version = publish_version(
                session=session,
                model=architecture.task,
                run_id=self._run_id(),
                server_round=release.server_round,
                weights=weights_to_bytes(weights),
                architecture=architecture,
                epsilon=release.epsilon,
                delta=release.delta,
                created_at=self._clock(),
            )
        label = model_version_label(version.model, version.version)
        self._versions[label] = (version.model, version.version)
        return label

    def record_evaluation(self, *, label: str, metrics: Mapping[str, float]) -> None:
        """Attach evaluation metrics to a version this recorder published."""
        from sqlmodel import Session

        from ..crud.model_registry import record_version_metrics

        model, version = self._versions[label]
        with Session(self._engine) as session:
            record_version_metrics(session=session, model=model, version=version, metrics=metrics)


def database_recorder(config: RunConfig) -> RunRecorder | None:
    """Return a database recorder when ``database-url`` is set, else ``None``."""
    return DatabaseRunRecorder(config.database_url) if config.database_url else None
