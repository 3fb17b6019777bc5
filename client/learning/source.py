"""The ClientApp's data-source seam: where one edge's examples and privacy ledger live.

The edge ``ClientApp`` (``client.app``) handles every train / evaluate message the same
way; only *where the data comes from* differs between deployment and simulation:

* ``StoreSource`` (deployment, ``fedprofile demo``, ``flwr run``): the node's edge directory
  (``edge.sqlite``): consented subjects' events, examples with a fixed time split, the
  ledger persisted in the store, the received global model kept for scoring;
* ``PartitionSource`` (``fedprofile simulate``): in-memory, already encoded partitions, one
  per simulated edge; the ledger kept in the node's ``context.state`` across rounds.

Both produce a ``LearningData`` and a ``PrivacyLedger``; the handler calibrates σ, checks
the budget, trains with ``client.learning.loop``, charges the ledger and replies in one code
path.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

import torch
from flwr.app import Context
from torch.utils.data import TensorDataset

from models import RunConfig
from models.learners import Learner
from privacy import DPConfig, PrivacyLedger

logger = logging.getLogger(__name__)

#: What one DP-SGD example protects: a whole subject, or a single record.
PrivacyLevel = Literal["user", "example"]


@dataclass(frozen=True)
class LearningData:
    """What one edge trains and evaluates on in this round.

    Parameters
    ----------
    learner : Learner
        The model family (builds models from the received weights, gives the losses).
    train : TensorDataset
        Training examples of consented subjects (one per privacy unit).
    holdout : TensorDataset
        Held-out examples the global model is evaluated on (may be empty).
    subjects_included, subjects_excluded : int
        Subjects whose model-training consent holds at the round time, and the others.
    level : {"user", "example"}
        What one training example is (recorded with each ledger release).
    """

    learner: Learner
    train: TensorDataset
    holdout: TensorDataset
    subjects_included: int
    subjects_excluded: int
    level: PrivacyLevel = "user"


@dataclass(frozen=True, slots=True)
class ModelQuality:
    """How the latest global model did on this edge's held-out, consented subjects.

    ``head_aucs`` maps each binary head (``purchase``, ``escalation``...) to its AUC.
    """

    server_round: int
    head_aucs: dict[str, float]
    num_examples: int


class EdgeSession(Protocol):
    """One edge's data for the duration of one message."""

    @property
    def edge(self) -> str:
        """The edge's name (reported to the server, never a subject)."""
        ...

    @property
    def channel(self) -> str:
        """The edge's channel, or ``""``."""
        ...

    def data(self, *, config: RunConfig, at: datetime) -> LearningData:
        """Return this round's consented examples (``LearningDataError`` if there are none)."""
        ...

    def load_ledger(self, *, model: str, dp: DPConfig) -> PrivacyLedger:
        """Return the model's ledger with the current δ, accountant and budget applied."""
        ...

    def save_ledger(self, ledger: PrivacyLedger) -> None:
        """Persist the ledger."""
        ...

    def keep_global_model(
        self,
        *,
        model: str,
        server_round: int,
        weights: bytes,
        version: str = "",
        architecture: Mapping[str, Any] | None = None,
    ) -> None:
        """Keep the received global model and its registry version (scoring uses the latest)."""
        ...

    def record_quality(self, *, model: str, quality: ModelQuality) -> None:
        """Keep the global model's held-out evaluation (the quality gate reads it)."""
        ...

    def noise_generator(self, seed: int) -> torch.Generator | None:
        """Return the DP noise source: ``None`` (OS-seeded) except in seeded experiments."""
        ...

    def load_quality_reference(self, *, model: str) -> dict[str, Any] | None:
        """Return the model's data-quality reference window (JSON), or ``None`` before one."""
        ...

    def save_quality_reference(self, *, model: str, reference: dict[str, Any]) -> None:
        """Keep ``reference`` as the model's data-quality reference window (on the edge)."""
        ...


class LearningSource(Protocol):
    """Opens the session of the edge a Flower node serves."""

    def open(self, context: Context, config: RunConfig) -> AbstractContextManager[EdgeSession]:
        """Return a context manager yielding the node's ``EdgeSession``.

        Raises
        ------
        client.errors.LearningDataError
            If the node has no data (the message says what to configure).
        """
        ...
