"""Text-model examples from an edge store: agents' labelled messages of consented subjects.

Messages reach the store masked; some carry an agent's labels (intent, emotion, urgency,
e.g. from the ticket disposition). A round trains the text model (``models.text``, default
heads) on them with DP-SGD at **user level**: each consented training subject contributes
exactly one labelled message per round, drawn by a hash of the message id and the round
time, so one example is one person and the ledger's user-level guarantee holds however
many tickets a customer opened. Over rounds a subject's different messages take turns.

Held-out subjects (by pseudonym hash, as for the behaviour model) are never trained on;
every labelled message of theirs is scored to evaluate the global model. Only messages up
to the round time are read, and only of subjects whose ``model_training`` consent holds.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from models import RunConfig
from models.learners import TextLearner, text_config
from models.sequences import is_holdout, split_key
from models.text import DEFAULT_HEADS, IGNORE_LABEL

from ..errors import LearningDataError
from ..store import EdgeStore, StoredMessage, to_epoch
from .source import LearningData
from .store_source import consented_subjects

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TextSplit:
    """One round's labelled messages, split for training and evaluation.

    Parameters
    ----------
    train : list[StoredMessage]
        One labelled message per consented training subject.
    holdout : list[StoredMessage]
        Every labelled message of consented held-out subjects.
    subjects_included, subjects_excluded : int
        Subjects whose model-training consent holds, and the others.
    """

    train: list[StoredMessage]
    holdout: list[StoredMessage]
    subjects_included: int
    subjects_excluded: int


def _round_pick(messages: Sequence[StoredMessage], *, at: datetime) -> StoredMessage:
    """Return the subject's message for this round (keyed by round time: turns over rounds)."""
    salt = f"text-round|{at.isoformat()}"
    return min(messages, key=lambda m: split_key(m.message_id, salt=salt))


def text_split(store: EdgeStore, *, config: RunConfig, at: datetime) -> TextSplit:
    """Return this round's labelled messages of consented subjects (see the module docstring).

    Parameters
    ----------
    store : EdgeStore
        The edge's store.
    config : RunConfig
        Gives the held-out share.
    at : datetime
        The round time (consent is checked at it; later messages are ignored).

    Returns
    -------
    TextSplit
        Training and held-out messages and the consent counts.
    """
    included, excluded = consented_subjects(store, at=at)
    horizon = to_epoch(at)
    train: list[StoredMessage] = []
    holdout: list[StoredMessage] = []
    for subject in included:
        labelled = [
            m for m in store.iter_messages(subject=subject) if m.labels and m.ts <= horizon
        ]
        if not labelled:
            continue
        if is_holdout(subject, fraction=config.holdout_fraction):
            holdout.extend(labelled)
        else:
            train.append(_round_pick(labelled, at=at))
    logger.info(
        "text data: %d subjects included, %d excluded, %d train / %d held-out messages",
        len(included),
        excluded,
        len(train),
        len(holdout),
    )
    return TextSplit(train, holdout, len(included), excluded)


def label_targets(
    messages: Sequence[StoredMessage], heads: Mapping[str, Sequence[str]] = DEFAULT_HEADS
) -> dict[str, np.ndarray]:
    """Return class indices per head (``IGNORE_LABEL`` where a message has no such label)."""
    return {
        head: np.array(
            [names.index(m.labels[head]) if m.labels.get(head) in names else IGNORE_LABEL
             for m in messages],
            dtype=np.int64,
        )
        for head, names in heads.items()
    }  # fmt: skip


def text_learner(config: RunConfig) -> TextLearner:
    """Return the text learner a run config names (default heads: intent, emotion, urgency)."""
    return TextLearner(text_config(config))


def text_data(store: EdgeStore, *, config: RunConfig, at: datetime) -> LearningData:
    """Build this round's encoded text data (user level: one message per subject).

    Raises
    ------
    LearningDataError
        If no consented training subject has a labelled message.
    """
    split = text_split(store, config=config, at=at)
    if not split.train:
        raise LearningDataError(
            f"no labelled messages to train on: {split.subjects_included} subjects consented "
            f"to model_training ({split.subjects_excluded} did not) and none of the training "
            "subjects has a message with agent labels (intent / emotion / urgency) before "
            f"{at.isoformat()}"
        )
    learner = text_learner(config)
    return LearningData(
        learner=learner,
        train=learner.encode([m.masked_text for m in split.train], label_targets(split.train)),
        holdout=learner.encode(
            [m.masked_text for m in split.holdout], label_targets(split.holdout)
        ),
        subjects_included=split.subjects_included,
        subjects_excluded=split.subjects_excluded,
        level="user",
    )
