"""The model registry's persistence: publish, list, find and fetch model versions.

The ServerApp (``server.fl``) publishes each aggregated round's global model with
:func:`publish_version` and attaches the round's evaluation with
:func:`record_version_metrics`; a new run asks :func:`latest_compatible` for the newest
version whose weights fit its architecture. The API lists versions
(:func:`list_versions`, :func:`latest_version`, metadata only) and serves the weights
(:func:`get_version_weights`). Lists never load the weights column.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import QueryableAttribute, defer
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from models import model_version_label

from ..errors import NotFoundError
from ..tables.model_version import ArchitectureSpec, ModelVersion, ModelVersionPublic
from ..tables.training import TrainingRun

logger = logging.getLogger(__name__)

#: Attempts at taking the next version number when concurrent publishers collide; between
#: attempts a publisher waits a random 0-50 ms so that colliding publishers fall out of step
#: (without it, publishers that collided once kept colliding on a loaded machine).
PUBLISH_ATTEMPTS = 20
_BACKOFF_S = 0.05


@dataclass(frozen=True, slots=True)
class VersionWeights:
    """One version's weights archive with what a download announces about it.

    Parameters
    ----------
    label : str
        ``<model>:v<version>`` (``models.model_version_label``).
    sha256 : str
        Hex SHA-256 of ``data`` as recorded when the version was published.
    data : bytes
        The ``.npz`` archive (``models.weights_from_bytes`` reads it).
    """

    label: str
    sha256: str
    data: bytes


def architecture_text(architecture: ArchitectureSpec) -> str:
    """Return the canonical JSON text of an architecture (equal specs, equal text)."""
    return json.dumps(architecture.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def _finite(metrics: Mapping[str, float]) -> dict[str, float]:
    """Keep the finite values (JSON has no NaN or infinity)."""
    return {str(k): float(v) for k, v in metrics.items() if math.isfinite(float(v))}


def _public(row: ModelVersion) -> ModelVersionPublic:
    """Return a row's metadata with its JSON columns decoded (never the weights)."""
    return ModelVersionPublic(
        id=row.id,
        model=row.model,
        version=row.version,
        run_id=row.run_id,
        server_round=row.server_round,
        epsilon=row.epsilon,
        delta=row.delta,
        sha256=row.sha256,
        created_at=row.created_at,
        metrics=json.loads(row.metrics_json),
        architecture=ArchitectureSpec.model_validate_json(row.architecture_json),
    )


def _metadata() -> SelectOfScalar[ModelVersion]:
    """Return a ``select`` of versions that leaves the weights column unloaded."""
    weights = cast(QueryableAttribute[Any], ModelVersion.weights)
    return select(ModelVersion).options(defer(weights))


def publish_version(
    *,
    session: Session,
    model: str,
    run_id: str,
    server_round: int,
    weights: bytes,
    architecture: ArchitectureSpec,
    epsilon: float | None,
    delta: float | None,
    created_at: datetime,
) -> ModelVersionPublic:
    """Publish a global model as the next version of ``model``; commits.

    The version number is taken and the row inserted in one transaction; when a concurrent
    publisher of the same model took the number first (the unique constraint refuses the
    second), the transaction is rolled back and retried with the next number.

    Parameters
    ----------
    session : Session
        A session (committed on success, rolled back on a collision).
    model : str
        Model name (the run's task).
    run_id : str
        The training run that produced it (``server.crud.training.start_run``).
    server_round : int
        The run's round whose aggregate this is.
    weights : bytes
        The weights archive (``models.weights_to_bytes``).
    architecture : ArchitectureSpec
        What the weights fit.
    epsilon : float or None
        Cumulative ε of the releases behind it; ``None`` (also for a non-finite value) when
        no finite guarantee was reported.
    delta : float or None
        δ of that guarantee.
    created_at : datetime
        Publication time (timezone-aware).

    Returns
    -------
    ModelVersionPublic
        The published version's metadata (empty metrics until
        :func:`record_version_metrics`).

    Raises
    ------
    NotFoundError
        If the run does not exist.
    sqlalchemy.exc.IntegrityError
        If ``PUBLISH_ATTEMPTS`` attempts all collided.
    """
    if session.get(TrainingRun, run_id) is None:
        raise NotFoundError(kind="training run", ref=run_id)
    finite_epsilon = epsilon if epsilon is not None and math.isfinite(epsilon) else None
    row = ModelVersion(
        id=str(uuid.uuid4()),
        model=model,
        version=0,
        run_id=run_id,
        server_round=server_round,
        epsilon=finite_epsilon,
        delta=delta if finite_epsilon is not None else None,
        sha256=hashlib.sha256(weights).hexdigest(),
        created_at=created_at,
        architecture_json=architecture_text(architecture),
        weights=weights,
    )
    for attempt in range(1, PUBLISH_ATTEMPTS + 1):
        newest = session.exec(
            select(func.max(ModelVersion.version)).where(col(ModelVersion.model) == model)
        ).one()
        row.version = int(newest or 0) + 1
        public = _public(row)  # before the commit expires the row
        session.add(row)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            if attempt == PUBLISH_ATTEMPTS:
                raise
            logger.info("version %d of %s was taken concurrently; retrying", row.version, model)
            time.sleep(random.uniform(0.0, _BACKOFF_S))  # noqa: S311 - jitter, not a secret
            continue
        break
    logger.info(
        "published %s (run %s, round %d, %d bytes)",
        model_version_label(model, public.version), run_id, server_round, len(weights),
    )  # fmt: skip
    return public


def _get_row(session: Session, model: str, version: int) -> ModelVersion:
    """Return the version's row (weights unloaded) or raise NotFoundError."""
    statement = _metadata().where(
        col(ModelVersion.model) == model, col(ModelVersion.version) == version
    )
    row = session.exec(statement).first()
    if row is None:
        raise NotFoundError(kind="model version", ref=f"{model}:{version}")
    return row


def record_version_metrics(
    *, session: Session, model: str, version: int, metrics: Mapping[str, float]
) -> None:
    """Store the aggregated evaluation metrics of a version (replacing earlier ones); commits.

    Parameters
    ----------
    session : Session
        A session.
    model : str
        Model name.
    version : int
        Version number.
    metrics : Mapping[str, float]
        Aggregated evaluation metrics; non-finite values are dropped.

    Raises
    ------
    NotFoundError
        If the version does not exist.
    """
    row = _get_row(session, model, version)
    row.metrics_json = json.dumps(_finite(metrics), sort_keys=True)
    session.add(row)
    session.commit()


def list_versions(
    *, session: Session, model: str | None = None, limit: int = 50
) -> list[ModelVersionPublic]:
    """Return the newest versions' metadata, newest first.

    Parameters
    ----------
    session : Session
        A session.
    model : str or None
        Only this model's versions; every model's when ``None``.
    limit : int
        Most versions returned.

    Returns
    -------
    list[ModelVersionPublic]
        Newest first (publication time, then version number).
    """
    statement = _metadata()
    if model is not None:
        statement = statement.where(col(ModelVersion.model) == model)
    statement = statement.order_by(
        col(ModelVersion.created_at).desc(), col(ModelVersion.version).desc()
    ).limit(limit)
    return [_public(row) for row in session.exec(statement).all()]


def latest_version(*, session: Session, model: str) -> ModelVersionPublic:
    """Return the newest (highest-numbered) version of ``model``.

    Raises
    ------
    NotFoundError
        If the model has no version.
    """
    statement = (
        _metadata()
        .where(col(ModelVersion.model) == model)
        .order_by(col(ModelVersion.version).desc())
        .limit(1)
    )
    row = session.exec(statement).first()
    if row is None:
        raise NotFoundError(kind="model", ref=model)
    return _public(row)


def latest_compatible(
    *, session: Session, architecture: ArchitectureSpec
) -> ModelVersionPublic | None:
    """Return the newest version whose weights fit ``architecture``, if any.

    Parameters
    ----------
    session : Session
        A session.
    architecture : ArchitectureSpec
        The architecture a run is about to train (task, its architecture keys and every
        array's name and shape must all be equal).

    Returns
    -------
    ModelVersionPublic or None
        The highest-numbered matching version of the task's model; ``None`` when none fits.
    """
    statement = (
        _metadata()
        .where(
            col(ModelVersion.model) == architecture.task,
            col(ModelVersion.architecture_json) == architecture_text(architecture),
        )
        .order_by(col(ModelVersion.version).desc())
        .limit(1)
    )
    row = session.exec(statement).first()
    return None if row is None else _public(row)


def get_version_weights(*, session: Session, model: str, version: int) -> VersionWeights:
    """Return one version's weights archive with its label and recorded SHA-256.

    Parameters
    ----------
    session : Session
        A session.
    model : str
        Model name.
    version : int
        Version number.

    Returns
    -------
    VersionWeights
        Label, SHA-256 and the archive bytes.

    Raises
    ------
    NotFoundError
        If the version does not exist.
    """
    found = session.exec(
        select(ModelVersion.sha256, ModelVersion.weights).where(
            col(ModelVersion.model) == model, col(ModelVersion.version) == version
        )
    ).first()
    if found is None:
        raise NotFoundError(kind="model version", ref=f"{model}:{version}")
    sha256, data = found
    return VersionWeights(label=model_version_label(model, version), sha256=sha256, data=data)
