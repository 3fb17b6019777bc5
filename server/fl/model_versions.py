"""A run's model versions: where it starts (warm or cold) and what each round publishes.

The server keeps every aggregated global model in its registry (``server.crud.model_registry``,
through a :class:`ModelStore`: the database run recorder). A run whose ``warm-start`` is on
starts from the newest version whose architecture equals its own (:func:`architecture_of`);
otherwise, or when none fits, from the seeded initial model. Every train and evaluate message
names the model it carries (ConfigRecord key ``models.CONFIG_MODEL_VERSION``):

- ``<model>:v<N>``: version N of the registry (``models.model_version_label``);
- ``seed:<seed>``: the seeded initial model of a cold start;
- ``<base>+r<round>``: the aggregate of that round when no registry keeps it.

A published version is post-processing of DP releases that edges (and, in central mode, the
server accountant) already accounted: publishing and warm starting cost no privacy, and the
edges' ledgers keep composing across runs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from flwr.app import Array, ArrayRecord

from models import (
    METRIC_CENTRAL_DELTA,
    METRIC_CENTRAL_EPSILON,
    METRIC_DELTA,
    METRIC_EPSILON,
    RunConfig,
    initial_weights,
)

from ..tables.model_version import ArchitectureSpec, ArraySpec

logger = logging.getLogger(__name__)

#: Run-config fields that shape each task's model (besides the arrays' shapes).
ARCHITECTURE_FIELDS: dict[str, tuple[str, ...]] = {
    "behaviour": ("behaviour_hidden", "behaviour_sequence"),
    "text": ("text_vocabulary", "text_buckets"),
}


def seed_label(seed: int) -> str:
    """Return the label of a cold start's seeded initial model (``seed:<seed>``)."""
    return f"seed:{seed}"


def round_label(base: str, server_round: int) -> str:
    """Return the label of an unpublished aggregate (``<base>+r<round>``)."""
    return f"{base}+r{server_round}"


def architecture_of(config: RunConfig, weights: Mapping[str, np.ndarray]) -> ArchitectureSpec:
    """Return what must match for ``weights`` to be reused by a run of ``config``.

    Parameters
    ----------
    config : RunConfig
        The run configuration (its task and that task's architecture keys).
    weights : Mapping[str, np.ndarray]
        The model's named arrays, in order.

    Returns
    -------
    ArchitectureSpec
        Task, architecture keys (hyphenated run-config names) and each array's name and shape.
    """
    fields = ARCHITECTURE_FIELDS[config.task]
    return ArchitectureSpec(
        task=config.task,
        config={f.replace("_", "-"): int(getattr(config, f)) for f in fields},
        arrays=[ArraySpec(name=k, shape=[int(n) for n in np.shape(v)]) for k, v in weights.items()],
    )


def release_privacy(metrics: Mapping[str, float]) -> tuple[float | None, float | None]:
    """Return the (ε, δ) a round's global model carries, from its aggregated train metrics.

    The run's client-level central ε (``central-epsilon``, central and both modes) when
    present, else the largest cumulative ε any edge reported (``epsilon``, aggregated as the
    maximum); ``(None, None)`` when neither is reported or ε is not finite (``dp-mode`` off).
    """
    central = METRIC_CENTRAL_EPSILON in metrics
    epsilon = metrics.get(METRIC_CENTRAL_EPSILON if central else METRIC_EPSILON)
    delta = metrics.get(METRIC_CENTRAL_DELTA if central else METRIC_DELTA)
    if epsilon is None or not math.isfinite(epsilon):
        return None, None
    return float(epsilon), None if delta is None else float(delta)


@dataclass(frozen=True, slots=True)
class StoredModel:
    """A registry version loaded for a warm start: its label and named arrays."""

    label: str
    weights: dict[str, np.ndarray]


@dataclass(frozen=True, slots=True)
class ModelRelease:
    """One round's aggregated global model with the privacy guarantee it carries.

    ``epsilon`` is cumulative (see :func:`release_privacy`), at ``delta``; both ``None``
    when no finite guarantee was reported.
    """

    server_round: int
    arrays: ArrayRecord
    epsilon: float | None
    delta: float | None


@runtime_checkable
class ModelStore(Protocol):
    """Where versions are kept and found (the database run recorder, or a fake in tests)."""

    def latest_compatible(self, architecture: ArchitectureSpec) -> StoredModel | None:
        """Return the newest version whose weights fit ``architecture``, if any."""

    def publish(
        self, *, architecture: ArchitectureSpec, weights: Mapping[str, np.ndarray],
        release: ModelRelease,
    ) -> str:  # fmt: skip
        """Publish a round's global model; return its label (``text:v3``)."""

    def record_evaluation(self, *, label: str, metrics: Mapping[str, float]) -> None:
        """Attach a published version's aggregated evaluation metrics."""


class ModelPublisher(Protocol):
    """What ``ProfileStrategy`` calls after each aggregation (``RunModels``)."""

    def publish(self, release: ModelRelease) -> str:
        """Keep a round's global model; return the label edges will receive for it."""

    def record_evaluation(self, *, label: str, metrics: Mapping[str, float]) -> None:
        """Attach the aggregated evaluation of the model labelled ``label``."""


def _arrays(weights: Mapping[str, np.ndarray]) -> ArrayRecord:
    return ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in weights.items()})


class RunModels:
    """The models of one run: its starting model and the versions its rounds publish.

    Parameters
    ----------
    config : RunConfig
        The run configuration (task, architecture keys, seed, ``warm-start``).
    store : ModelStore or None
        The registry; without one nothing is published and every run starts cold.
    """

    def __init__(self, *, config: RunConfig, store: ModelStore | None) -> None:
        self.config = config
        self.store = store
        self.start_label = seed_label(config.seed)
        self._published: set[str] = set()

    def starting_model(self, initial: ArrayRecord | None = None) -> ArrayRecord:
        """Return the run's initial global model and set ``start_label`` to its label.

        ``initial`` (simulations' models sized to their data) wins and is labelled as the
        seeded start; else the newest compatible registry version when ``warm-start`` is
        on; else the seeded initial model. The choice and its reason are logged.
        """
        if initial is not None:
            logger.info("initial model given by the caller (labelled %s)", self.start_label)
            return initial
        seeded = initial_weights(self.config)
        warm = self._warm_start(seeded)
        if warm is None:
            return _arrays(seeded)
        self.start_label = warm.label
        return _arrays(warm.weights)

    def _warm_start(self, seeded: Mapping[str, np.ndarray]) -> StoredModel | None:
        """Return the registry version to start from, or ``None`` (reason logged)."""
        cold = "cold start from %s: %s"
        if not self.config.warm_start:
            logger.info(cold, self.start_label, "warm-start is off")
            return None
        if self.store is None:
            logger.info(cold, self.start_label, "no model registry (database-url is empty)")
            return None
        architecture = architecture_of(self.config, seeded)
        found = self.store.latest_compatible(architecture)
        if found is None:
            reason = f"no {self.config.task} version in the registry has this architecture"
            logger.info(cold, self.start_label, reason)
            return None
        if architecture_of(self.config, found.weights) != architecture:
            logger.warning(cold, self.start_label, f"{found.label} does not fit; not used")
            return None
        logger.info("warm start from registry version %s", found.label)
        return found

    def publish(self, release: ModelRelease) -> str:
        """Publish the round's model when a registry is kept; return its label."""
        if self.store is None:
            return round_label(self.start_label, release.server_round)
        weights = {k: v.numpy() for k, v in release.arrays.items()}
        label = self.store.publish(
            architecture=architecture_of(self.config, weights), weights=weights, release=release
        )
        self._published.add(label)
        return label

    def record_evaluation(self, *, label: str, metrics: Mapping[str, float]) -> None:
        """Attach evaluation metrics to a version this run published (others are skipped)."""
        if self.store is not None and label in self._published and metrics:
            self.store.record_evaluation(label=label, metrics=metrics)
