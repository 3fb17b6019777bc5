"""Behaviour sequences: event tokens and one labelled example per subject.

An event becomes one token naming its type and category. A subject's history up to a
per-subject cutoff becomes the input; the labels come from the window right after the
cutoff (purchase in the window, complaint in the window, first category in the window).
Exactly one example is made per subject, so DP-SGD over these examples protects whole
subjects on that edge (user-level DP). Everything here is deterministic: the cutoff is
derived from a hash of the pseudonym, never from a random source.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from .vocabulary import CATEGORIES, EventType

logger = logging.getLogger(__name__)

#: Token 0 pads sequences; it never stands for an event.
PAD_TOKEN = 0
_EVENT_TYPES: tuple[str, ...] = tuple(t.value for t in EventType)
#: Per event type: "no category" plus one slot per canonical category.
_SLOTS_PER_TYPE = len(CATEGORIES) + 1
#: Events of a type outside ``EventType`` share one token, the last of the vocabulary.
UNKNOWN_TOKEN = 1 + len(_EVENT_TYPES) * _SLOTS_PER_TYPE
#: Number of distinct tokens, padding and the unknown token included.
VOCAB_SIZE = UNKNOWN_TOKEN + 1
_DAY = 86_400.0
_PURCHASE = EventType.PURCHASE.value
_COMPLAINT = EventType.COMPLAINT.value


class EventLike(Protocol):
    """What the sequence builder reads from an event (``client.store.StoredEvent`` fits)."""

    @property
    def type(self) -> str:
        """Event type, a value of ``EventType`` (other values map to the unknown token)."""
        ...

    @property
    def category(self) -> str | None:
        """Canonical category (a member of ``CATEGORIES``) or ``None``."""
        ...

    @property
    def ts(self) -> float:
        """Time of the event, POSIX seconds (UTC)."""
        ...

    @property
    def amount(self) -> float | None:
        """Amount of money involved, if any."""
        ...


@dataclass(frozen=True, slots=True)
class SequenceSpec:
    """How event histories become examples.

    Parameters
    ----------
    max_len : int
        Tokens kept per history: the most recent ``max_len`` events before the cutoff.
    label_window_days : float
        Length of the label window after the cutoff, in days.
    cutoff_low, cutoff_high : float
        The cutoff of a subject lies at this fraction of its event time span (first to
        last event), chosen per subject between the two bounds from a hash of its
        pseudonym (deterministic, spread across subjects).
    min_history : int
        Subjects with fewer events before the cutoff give no example.
    holdout_fraction : float
        Share of subjects (by pseudonym hash) kept out of training for evaluation.
    """

    max_len: int = 64
    label_window_days: float = 14.0
    cutoff_low: float = 0.5
    cutoff_high: float = 0.9
    min_history: int = 1
    holdout_fraction: float = 0.2

    def __post_init__(self) -> None:
        if self.max_len < 1:
            raise ValueError("max_len must be at least 1")
        if self.label_window_days <= 0:
            raise ValueError("label_window_days must be positive")
        if not 0.0 <= self.cutoff_low <= self.cutoff_high <= 1.0:
            raise ValueError("cutoff bounds must satisfy 0 <= cutoff_low <= cutoff_high <= 1")
        if self.min_history < 1:
            raise ValueError("min_history must be at least 1")
        if not 0.0 <= self.holdout_fraction < 1.0:
            raise ValueError("holdout_fraction must be in [0, 1)")

    @property
    def vocab_size(self) -> int:
        """Number of distinct tokens (padding and the unknown token included)."""
        return VOCAB_SIZE

    def split(
        self, examples: Sequence[SequenceExample]
    ) -> tuple[list[SequenceExample], list[SequenceExample]]:
        """Split examples into (training, held-out) by pseudonym hash (``split_holdout``)."""
        return split_holdout(examples, spec=self)

    def encode(self, events: Sequence[EventLike]) -> list[int]:
        """Encode one subject's events (``encode_events`` with this spec)."""
        return encode_events(events, spec=self)


@dataclass(frozen=True, slots=True)
class SequenceExample:
    """One subject's training example.

    Parameters
    ----------
    subject : str
        The subject's pseudonym (stays on the edge).
    tokens : tuple[int, ...]
        History tokens, oldest first, at most ``SequenceSpec.max_len`` and at least one.
    purchase : float
        1.0 if the subject purchased in the label window, else 0.0.
    escalation : float
        1.0 if the subject complained in the label window, else 0.0.
    next_category : int or None
        Index in ``CATEGORIES`` of the first categorised event in the window, if any.
    """

    subject: str
    tokens: tuple[int, ...]
    purchase: float
    escalation: float
    next_category: int | None


def event_token(event_type: str, category: str | None) -> int:
    """Return the token of one event.

    Parameters
    ----------
    event_type : str
        An ``EventType`` value; anything else gives ``UNKNOWN_TOKEN``.
    category : str or None
        A member of ``CATEGORIES``; ``None`` or unknown names use the "no category" slot.

    Returns
    -------
    int
        A token in ``[1, VOCAB_SIZE)``.
    """
    try:
        type_index = _EVENT_TYPES.index(event_type)
    except ValueError:
        return UNKNOWN_TOKEN
    slot = CATEGORIES.index(category) + 1 if category in CATEGORIES else 0
    return 1 + type_index * _SLOTS_PER_TYPE + slot


def encode_events(events: Sequence[EventLike], *, spec: SequenceSpec) -> list[int]:
    """Encode events as tokens, oldest first, keeping the most recent ``spec.max_len``.

    Parameters
    ----------
    events : Sequence[EventLike]
        One subject's events in any order; they are sorted by time (stable).
    spec : SequenceSpec
        Gives the maximum length.

    Returns
    -------
    list[int]
        Tokens, possibly empty when ``events`` is.
    """
    ordered = sorted(events, key=lambda e: e.ts)[-spec.max_len :]
    return [event_token(e.type, e.category) for e in ordered]


def subject_fraction(subject: str, *, salt: str) -> float:
    """Return a deterministic number in ``[0, 1)`` derived from a pseudonym and a salt."""
    digest = hashlib.sha256(f"{salt}:{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def is_holdout(subject: str, *, spec: SequenceSpec) -> bool:
    """Whether a subject is kept out of training for evaluation (deterministic)."""
    return subject_fraction(subject, salt="holdout") < spec.holdout_fraction


def _cutoff(subject: str, events: Sequence[EventLike], *, spec: SequenceSpec) -> float:
    first, last = events[0].ts, events[-1].ts
    share = spec.cutoff_low + (spec.cutoff_high - spec.cutoff_low) * subject_fraction(
        subject, salt="cutoff"
    )
    return first + share * (last - first)


def make_example(
    subject: str, events: Sequence[EventLike], *, spec: SequenceSpec
) -> SequenceExample | None:
    """Build one subject's example, or ``None`` when the history is too short.

    Parameters
    ----------
    subject : str
        The subject's pseudonym.
    events : Sequence[EventLike]
        The subject's events in any order.
    spec : SequenceSpec
        Cutoff, window and length rules.

    Returns
    -------
    SequenceExample or None
        The example; ``None`` if fewer than ``spec.min_history`` events precede the cutoff.
    """
    ordered = sorted(events, key=lambda e: e.ts)
    if not ordered:
        return None
    cutoff = _cutoff(subject, ordered, spec=spec)
    history = [e for e in ordered if e.ts <= cutoff]
    if len(history) < spec.min_history:
        return None
    end = cutoff + spec.label_window_days * _DAY
    window = [e for e in ordered if cutoff < e.ts <= end]
    next_category = next(
        (CATEGORIES.index(e.category) for e in window if e.category in CATEGORIES), None
    )
    return SequenceExample(
        subject=subject,
        tokens=tuple(encode_events(history, spec=spec)),
        purchase=float(any(e.type == _PURCHASE for e in window)),
        escalation=float(any(e.type == _COMPLAINT for e in window)),
        next_category=next_category,
    )


def make_examples(
    events_by_subject: Mapping[str, Sequence[EventLike]], *, spec: SequenceSpec
) -> list[SequenceExample]:
    """Build at most one example per subject, ordered by pseudonym.

    Parameters
    ----------
    events_by_subject : Mapping[str, Sequence[EventLike]]
        Each subject's events; subjects with too short a history are skipped.
    spec : SequenceSpec
        Cutoff, window and length rules.

    Returns
    -------
    list[SequenceExample]
        One example per subject that has enough history, sorted by subject.
    """
    examples: list[SequenceExample] = []
    for subject in sorted(events_by_subject):
        example = make_example(subject, events_by_subject[subject], spec=spec)
        if example is not None:
            examples.append(example)
    logger.debug("built %d examples from %d subjects", len(examples), len(events_by_subject))
    return examples


def split_holdout(
    examples: Sequence[SequenceExample], *, spec: SequenceSpec
) -> tuple[list[SequenceExample], list[SequenceExample]]:
    """Split examples into (training, held-out) by a hash of the pseudonym.

    Parameters
    ----------
    examples : Sequence[SequenceExample]
        Examples to split.
    spec : SequenceSpec
        ``holdout_fraction`` gives the expected held-out share.

    Returns
    -------
    tuple[list[SequenceExample], list[SequenceExample]]
        Training examples and held-out examples, each in the input order.
    """
    train = [e for e in examples if not is_holdout(e.subject, spec=spec)]
    held = [e for e in examples if is_holdout(e.subject, spec=spec)]
    return train, held
