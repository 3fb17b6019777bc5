"""Behaviour sequences: event tokens, and the deterministic held-out split of subjects.

An event becomes one token naming its type and category (the behaviour model's optional
sequence part reads them). Which subjects an edge keeps out of training for evaluation is
decided by a hash of the pseudonym, never by a random source, so it is the same in every
round and run.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
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


def split_key(subject: str, *, salt: str) -> float:
    """Return a deterministic number in ``[0, 1)`` derived from a pseudonym and a salt."""
    digest = hashlib.sha256(f"{salt}:{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def is_holdout(subject: str, *, fraction: float) -> bool:
    """Whether a subject is kept out of training for evaluation (by pseudonym hash).

    Parameters
    ----------
    subject : str
        The subject's pseudonym.
    fraction : float
        Expected held-out share in ``[0, 1)``.

    Returns
    -------
    bool
        The same answer for the same pseudonym on every edge and in every run.
    """
    return split_key(subject, salt="holdout") < fraction


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


def encode_events(events: Sequence[EventLike], *, max_len: int) -> list[int]:
    """Encode events as tokens, oldest first, keeping the most recent ``max_len``.

    Parameters
    ----------
    events : Sequence[EventLike]
        One subject's events in any order; they are sorted by time (stable).
    max_len : int
        Tokens kept (0 keeps none).

    Returns
    -------
    list[int]
        Tokens, possibly empty.
    """
    if max_len <= 0:
        return []
    ordered = sorted(events, key=lambda e: e.ts)[-max_len:]
    return [event_token(e.type, e.category) for e in ordered]
