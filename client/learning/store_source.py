"""``StoreSource``: a deployed edge's data, from its edge directory (``edge.sqlite``).

Data resolution: node-config ``data-path`` (an edge directory; deployment) wins; else the
run-config ``data-dir`` holds edge directories and node-config ``partition-id`` picks the
i-th one sorted by name (``fedprofile demo`` on the Simulation Engine).

Text examples (``client.learning.text``, run-config ``task = "text"``): agents' labelled
messages of consented subjects, one per training subject per round.

Behaviour examples (``client.learning.behaviour``): only subjects whose
``model_training`` consent holds at the round time are read, and only their events up to
that time. The cutoff is run-config ``cutoff`` or, when unset, the round time minus the
label window (the most recent complete window); features come from before it, labels from
the window after it. ``holdout-fraction`` of the subjects (by pseudonym hash, the same in
every round) are kept out of training to evaluate the global model on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import torch
from flwr.app import Context

from consent import Purpose
from models import RunConfig
from models.behaviour import BEHAVIOUR_FEATURES, BehaviourExample
from models.learners import BehaviourLearner, behaviour_config
from models.sequences import is_holdout
from privacy import DPConfig, PrivacyLedger

from ..errors import EdgeNotInitialisedError, LearningDataError
from ..ledger import load_ledger, save_ledger
from ..store import STORE_FILENAME, EdgeStore, StoredEvent, StoredMessage, to_epoch
from .behaviour import examples_at
from .source import EdgeSession, LearningData, ModelQuality

logger = logging.getLogger(__name__)

#: Event tokens an example keeps for the behaviour model's sequence part.
MAX_TOKENS = 64
#: Edge-store meta key prefix of a model's data-quality reference window.
QUALITY_META_PREFIX = "quality-reference:"


def resolve_edge_dir(node_config: Mapping[str, Any], config: RunConfig) -> Path:
    """Return the edge directory a node serves.

    Raises
    ------
    LearningDataError
        When nothing usable is configured (the message says what to set).
    """
    data_path = str(node_config.get("data-path", "") or "")
    if data_path:
        edge_dir = Path(data_path)
    elif config.data_dir:
        root = Path(config.data_dir)
        edges = (
            sorted(d for d in root.iterdir() if (d / STORE_FILENAME).is_file())
            if root.is_dir()
            else []
        )
        if "partition-id" not in node_config:
            raise LearningDataError("node config has no partition-id to pick an edge in data-dir")
        index = int(node_config["partition-id"])
        if not 0 <= index < len(edges):
            raise LearningDataError(
                f"partition-id {index} has no edge directory: run-config data-dir holds "
                f"{len(edges)} edge directories with {STORE_FILENAME}"
            )
        edge_dir = edges[index]
    else:
        raise LearningDataError(
            "no edge data: set node-config data-path to an edge directory (deployment) or "
            "run-config data-dir to a directory of edge directories (simulation)"
        )
    if not (edge_dir / STORE_FILENAME).is_file():
        raise LearningDataError(str(EdgeNotInitialisedError(edge_dir)))
    return edge_dir


def consented_subjects(store: EdgeStore, *, at: datetime) -> tuple[list[str], int]:
    """Return the subjects whose model-training consent holds at ``at``, and how many do not.

    Parameters
    ----------
    store : EdgeStore
        The edge's store.
    at : datetime
        Moment of use (the round time); timezone-aware.

    Returns
    -------
    tuple[list[str], int]
        Included pseudonyms (sorted) and the number of excluded subjects.
    """
    states = store.consent_states()
    subjects = store.subjects()
    included = [
        s for s in subjects if s in states and states[s].is_granted(Purpose.MODEL_TRAINING, at)
    ]
    return included, len(subjects) - len(included)


def behaviour_cutoff(config: RunConfig, *, at: datetime) -> datetime:
    """Return the run's cutoff: run-config ``cutoff``, else ``at`` minus the label window."""
    cutoff: datetime = (
        config.cutoff
        if config.cutoff is not None
        else at - timedelta(days=config.label_window_days)
    )
    return cutoff


@dataclass(frozen=True)
class BehaviourSplit:
    """One edge's behaviour examples at a cutoff, split for evaluation.

    Parameters
    ----------
    train, holdout : list[BehaviourExample]
        Training and held-out examples (held out by pseudonym hash).
    subjects_included, subjects_excluded : int
        Subjects whose model-training consent holds, and the others.
    cutoff : datetime
        The split time used.
    """

    train: list[BehaviourExample]
    holdout: list[BehaviourExample]
    subjects_included: int
    subjects_excluded: int
    cutoff: datetime


def behaviour_examples(
    store: EdgeStore, *, config: RunConfig, at: datetime, assume_consent: bool = False
) -> BehaviourSplit:
    """Build the behaviour examples of consented subjects, split by pseudonym hash.

    Events and messages of subjects without model-training consent are never read;
    nothing after ``at`` is used.

    Parameters
    ----------
    store : EdgeStore
        The edge's store.
    config : RunConfig
        Gives the cutoff, label window, held-out share and whether tokens are needed.
    at : datetime
        The round time (consent is checked at it; later events are ignored).
    assume_consent : bool
        Research use of an event log that holds no consent records at all: treat every
        subject as having agreed to model training. Never used by a deployed edge.

    Returns
    -------
    BehaviourSplit
        The examples and the consent counts.
    """
    if assume_consent:
        included, excluded = store.subjects(), 0
    else:
        included, excluded = consented_subjects(store, at=at)
    horizon = to_epoch(at)
    events: dict[str, list[StoredEvent]] = {}
    messages: dict[str, list[StoredMessage]] = {}
    for subject in included:
        events[subject] = [e for e in store.iter_events(subject=subject) if e.ts <= horizon]
        messages[subject] = [m for m in store.iter_messages(subject=subject) if m.ts <= horizon]
    cutoff = behaviour_cutoff(config, at=at)
    examples = examples_at(
        events,
        cutoff=cutoff,
        window_days=config.label_window_days,
        messages_by_subject=messages,
        max_len=MAX_TOKENS if config.behaviour_sequence else 0,
    )
    train = [e for e in examples if not is_holdout(e.subject, fraction=config.holdout_fraction)]
    held = [e for e in examples if is_holdout(e.subject, fraction=config.holdout_fraction)]
    logger.info(
        "behaviour data: %d subjects included, %d excluded, %d train / %d held-out examples",
        len(included),
        excluded,
        len(train),
        len(held),
    )
    return BehaviourSplit(train, held, len(included), excluded, cutoff)


def behaviour_data(store: EdgeStore, *, config: RunConfig, at: datetime) -> LearningData:
    """Build this round's encoded behaviour data from the store (consented subjects only).

    Raises
    ------
    LearningDataError
        If no consented subject has history before the cutoff.
    """
    split = behaviour_examples(store, config=config, at=at)
    if not split.train:
        raise LearningDataError(
            f"no training examples: {split.subjects_included} subjects consented to "
            f"model_training ({split.subjects_excluded} did not) and none has history before "
            f"the cutoff {split.cutoff.isoformat()}"
        )
    learner = behaviour_learner(config)
    return LearningData(
        learner=learner,
        train=learner.encode(split.train),
        holdout=learner.encode(split.holdout),
        subjects_included=split.subjects_included,
        subjects_excluded=split.subjects_excluded,
        level="user",
    )


def behaviour_learner(config: RunConfig) -> BehaviourLearner:
    """Return the behaviour learner a run config names (``BEHAVIOUR_FEATURES`` as inputs)."""
    return BehaviourLearner(
        behaviour_config(config, num_features=len(BEHAVIOUR_FEATURES)), max_len=MAX_TOKENS
    )


@dataclass
class StoreSession:
    """An ``EdgeSession`` over one open ``EdgeStore``."""

    store: EdgeStore
    edge_dir: Path

    @property
    def edge(self) -> str:
        """The edge's name from its metadata (the directory name when unset)."""
        return self.store.get_meta("edge_name") or self.edge_dir.name

    @property
    def channel(self) -> str:
        """The edge's channel from its metadata."""
        return self.store.get_meta("edge_channel") or ""

    def data(self, *, config: RunConfig, at: datetime) -> LearningData:
        """Return this round's examples: behaviour histories, or agents' labelled messages."""
        if config.task == "text":
            from .text import text_data  # text.py reads consent through this module

            return text_data(self.store, config=config, at=at)
        return behaviour_data(self.store, config=config, at=at)

    def load_ledger(self, *, model: str, dp: DPConfig) -> PrivacyLedger:
        """Return the model's ledger from the store."""
        return load_ledger(self.store, model=model, dp=dp)

    def save_ledger(self, ledger: PrivacyLedger) -> None:
        """Persist the ledger in the store."""
        save_ledger(self.store, ledger)

    def load_quality_reference(self, *, model: str) -> dict[str, Any] | None:
        """Return the reference window kept in the edge store (``None`` before one)."""
        saved = self.store.get_meta(f"{QUALITY_META_PREFIX}{model}")
        return None if saved is None else dict(json.loads(saved))

    def save_quality_reference(self, *, model: str, reference: dict[str, Any]) -> None:
        """Keep the reference window in the edge store (it never leaves the edge)."""
        self.store.set_meta(f"{QUALITY_META_PREFIX}{model}", json.dumps(reference, sort_keys=True))

    def keep_global_model(
        self,
        *,
        model: str,
        server_round: int,
        weights: bytes,
        version: str = "",
        architecture: Mapping[str, Any] | None = None,
    ) -> None:
        """Keep the received global model (and its registry version) for scoring."""
        self.store.save_global_model(
            model,
            server_round=server_round,
            weights=weights,
            version=version,
            architecture=architecture,
        )

    def record_quality(self, *, model: str, quality: ModelQuality) -> None:
        """Keep the held-out evaluation for the scoring quality gate."""
        from ..scoring import record_model_quality

        record_model_quality(self.store, model, quality)

    def noise_generator(self, seed: int) -> torch.Generator | None:
        """Return ``None``: a deployed edge always draws DP noise from an OS-seeded source."""
        del seed
        return None


class StoreSource:
    """Opens the edge directory a node serves (see the module docstring)."""

    @contextmanager
    def open(self, context: Context, config: RunConfig) -> Iterator[EdgeSession]:
        """Yield a session over the node's edge store, closed afterwards.

        Raises
        ------
        LearningDataError
            If the node has no usable edge directory.
        """
        edge_dir = resolve_edge_dir(context.node_config, config)
        with EdgeStore.for_edge_dir(edge_dir) as store:
            yield StoreSession(store=store, edge_dir=edge_dir)
