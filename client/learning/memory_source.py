"""``PartitionSource``: simulated edges holding in-memory, already encoded partitions.

Node-config ``partition-id`` = i serves partition i. The examples were built by the same
code an edge uses (``client.learning.behaviour`` for event logs; ``models.learners`` encodes
masked texts), so the handler sees exactly what a deployed edge would. The edge's privacy
ledger is a ``privacy.PrivacyLedger`` whose ``state_dict`` is kept in the node's
``context.state`` (one JSON string per model): it composes across the rounds of a run and
the budget (``max-epsilon``) stops training exactly as on a deployed edge.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import torch
from flwr.app import ConfigRecord, Context
from torch.utils.data import TensorDataset

from models import RunConfig
from models.learners import Learner
from privacy import DPConfig, PrivacyLedger

from ..errors import LearningDataError
from .source import EdgeSession, LearningData, ModelQuality, PrivacyLevel

logger = logging.getLogger(__name__)

#: ``context.state`` key of a simulated edge's ledgers.
LEDGER_STATE = "simulated-ledgers"
#: ``context.state`` key of a simulated edge's data-quality reference windows.
QUALITY_STATE = "simulated-quality-references"
#: Training examples an edge evaluates on when it has no held-out partition.
EVAL_SAMPLE = 256


@dataclass
class PartitionSession:
    """One simulated edge: its partition and its ledger in ``context.state``."""

    index: int
    context: Context
    learner: Learner
    train: TensorDataset
    holdout: TensorDataset
    level: PrivacyLevel
    seeded_noise: bool = False
    quality: dict[str, ModelQuality] = field(default_factory=dict)

    @property
    def edge(self) -> str:
        """``edge-0000``, ``edge-0001``...: the partition's index."""
        return f"edge-{self.index:04d}"

    @property
    def channel(self) -> str:
        """Simulated edges have no channel."""
        return ""

    def data(self, *, config: RunConfig, at: datetime) -> LearningData:
        """Return the partition (consent was applied when the partitions were built)."""
        del config, at
        return LearningData(
            learner=self.learner,
            train=self.train,
            holdout=self.holdout,
            subjects_included=len(self.train) + len(self.holdout),
            subjects_excluded=0,
            level=self.level,
        )

    def _states(self) -> dict[str, str]:
        record = self.context.state.config_records.get(LEDGER_STATE)
        return {} if record is None else {str(k): str(v) for k, v in record.items()}

    def load_ledger(self, *, model: str, dp: DPConfig) -> PrivacyLedger:
        """Return the ledger kept in ``context.state`` (empty on the first round)."""
        ledger = PrivacyLedger(
            model=model, delta=dp.delta, accountant=dp.accountant, budget=dp.max_epsilon
        )
        saved = self._states().get(model)
        if saved is not None:
            ledger.load_state_dict(json.loads(saved), keep_config=True)
        return ledger

    def save_ledger(self, ledger: PrivacyLedger) -> None:
        """Keep the ledger's state in ``context.state``."""
        states = self._states()
        states[ledger.model] = json.dumps(ledger.state_dict(), sort_keys=True, default=str)
        self.context.state[LEDGER_STATE] = ConfigRecord(dict(states))

    def keep_global_model(
        self,
        *,
        model: str,
        server_round: int,
        weights: bytes,
        version: str = "",
        architecture: Mapping[str, Any] | None = None,
    ) -> None:
        """Keep nothing: simulated edges do not score subjects."""
        del model, server_round, weights, version, architecture

    def record_quality(self, *, model: str, quality: ModelQuality) -> None:
        """Keep the latest evaluation in memory (tests read it)."""
        self.quality[model] = quality

    def noise_generator(self, seed: int) -> torch.Generator | None:
        """Seeded noise when the source was built for a repeatable experiment, else OS noise."""
        return torch.Generator().manual_seed(seed ^ 0x5EED) if self.seeded_noise else None

    def load_quality_reference(self, *, model: str) -> dict[str, Any] | None:
        """Return the reference window kept in ``context.state`` (``None`` before one)."""
        record = self.context.state.config_records.get(QUALITY_STATE)
        saved = None if record is None else record.get(model)
        return None if saved is None else dict(json.loads(str(saved)))

    def save_quality_reference(self, *, model: str, reference: dict[str, Any]) -> None:
        """Keep the reference window in ``context.state``."""
        record = self.context.state.config_records.get(QUALITY_STATE)
        kept: dict[str, Any] = {} if record is None else {str(k): str(v) for k, v in record.items()}
        kept[model] = json.dumps(reference, sort_keys=True)
        self.context.state[QUALITY_STATE] = ConfigRecord(dict(kept))


class PartitionSource:
    """In-memory partitions, one per simulated edge.

    Parameters
    ----------
    learner : Learner
        The model family the partitions were encoded for.
    partitions : Sequence[TensorDataset]
        Partition i is node ``partition-id`` i's training data (each non-empty).
    holdouts : Sequence[TensorDataset] or None
        Each edge's held-out examples; ``None`` evaluates on the first ``EVAL_SAMPLE``
        training examples (the simulation scores the shared held-out set on the server).
    level : {"user", "example"}
        What one example is.
    seeded_noise : bool
        Draw DP noise from a generator seeded by the round's seed, so the experiment
        repeats exactly (experiments only: ``privacy.DPTrainer`` warns).

    Raises
    ------
    ValueError
        If a partition is empty or the holdouts do not match the partitions.
    """

    def __init__(
        self,
        *,
        learner: Learner,
        partitions: Sequence[TensorDataset],
        holdouts: Sequence[TensorDataset] | None = None,
        level: PrivacyLevel = "example",
        seeded_noise: bool = False,
    ) -> None:
        if any(len(p) == 0 for p in partitions):
            raise ValueError("every partition must hold at least one example")
        if holdouts is not None and len(holdouts) != len(partitions):
            raise ValueError("holdouts must have one dataset per partition")
        self.learner = learner
        self.partitions = list(partitions)
        self.holdouts = None if holdouts is None else list(holdouts)
        self.level: PrivacyLevel = level
        self.seeded_noise = seeded_noise

    def _holdout(self, index: int) -> TensorDataset:
        if self.holdouts is not None:
            return self.holdouts[index]
        data = self.partitions[index]
        size = min(len(data), EVAL_SAMPLE)
        return TensorDataset(*(t[:size] for t in data.tensors))

    @contextmanager
    def open(self, context: Context, config: RunConfig) -> Iterator[EdgeSession]:
        """Yield the session of partition ``partition-id``.

        Raises
        ------
        LearningDataError
            If the node has no (valid) ``partition-id``.
        """
        del config
        raw = context.node_config.get("partition-id")
        if raw is None or not 0 <= int(raw) < len(self.partitions):
            raise LearningDataError(
                f"node config partition-id {raw!r} names none of the "
                f"{len(self.partitions)} simulated partitions"
            )
        index = int(raw)
        yield PartitionSession(
            index=index,
            context=context,
            learner=self.learner,
            train=self.partitions[index],
            holdout=self._holdout(index),
            level=self.level,
            seeded_noise=self.seeded_noise,
        )
