"""Overlap resolution and placeholder masking of detected spans.

Works on any span-like object (``type``, ``start``, ``end``, ``score``), so it does not
depend on the detector's record types.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Protocol, TypeVar

logger = logging.getLogger(__name__)

#: Tie-break between equally scored spans of equal length: lower wins. An 18-digit number
#: that is both a valid ID and a Luhn-valid card is an ID.
TYPE_PRIORITY: Mapping[str, int] = {
    "CN_ID_CARD": 0,
    "CN_USCC": 1,
    "CN_BANK_CARD": 2,
    "CREDIT_CARD": 2,
    "CN_MOBILE": 3,
    "PHONE_NUMBER": 3,
    "CN_LANDLINE": 4,
    "EMAIL_ADDRESS": 5,
    "IP_ADDRESS": 6,
    "CN_PASSPORT": 7,
    "CN_LICENSE_PLATE": 8,
    "PERSON": 9,
    "CN_ADDRESS": 10,
}
_DEFAULT_PRIORITY = 100


class SpanLike(Protocol):
    """What masking needs from a detected span."""

    @property
    def type(self) -> str:
        """Entity type, e.g. ``CN_MOBILE``."""
        ...

    @property
    def start(self) -> int:
        """Offset of the first character."""
        ...

    @property
    def end(self) -> int:
        """Offset after the last character."""
        ...

    @property
    def score(self) -> float:
        """Confidence in [0, 1]."""
        ...


S = TypeVar("S", bound=SpanLike)


def resolve_overlaps(spans: Iterable[S]) -> list[S]:
    """Keep a set of non-overlapping spans, best first, returned in text order.

    A span wins over the spans it overlaps when it has the higher score, then when it is
    longer, then by ``TYPE_PRIORITY`` (so ``CN_ID_CARD`` beats ``CN_BANK_CARD``).

    Parameters
    ----------
    spans : iterable of span-like
        Candidate spans, possibly overlapping.

    Returns
    -------
    list of span-like
        Non-overlapping spans sorted by start offset.
    """
    ranked = sorted(
        spans,
        key=lambda s: (
            -s.score,
            -(s.end - s.start),
            TYPE_PRIORITY.get(s.type, _DEFAULT_PRIORITY),
            s.start,
        ),
    )
    kept: list[S] = []
    for span in ranked:
        if span.end <= span.start:
            continue
        if all(span.end <= other.start or span.start >= other.end for other in kept):
            kept.append(span)
    kept.sort(key=lambda s: s.start)
    return kept


def placeholder(entity_type: str) -> str:
    """Return the mask written in place of an entity, e.g. ``<CN_MOBILE>``."""
    return f"<{entity_type}>"


def mask_text(text: str, spans: Iterable[SpanLike]) -> str:
    """Replace each span of ``text`` by its type placeholder.

    Parameters
    ----------
    text : str
        Original text.
    spans : iterable of span-like
        Non-overlapping spans with offsets into ``text``.

    Returns
    -------
    str
        The masked text.

    Raises
    ------
    ValueError
        If spans overlap or fall outside the text.
    """
    pieces: list[str] = []
    cursor = 0
    for span in sorted(spans, key=lambda s: s.start):
        if span.start < cursor or span.end > len(text) or span.start > span.end:
            raise ValueError("spans must be non-overlapping and inside the text")
        pieces.append(text[cursor : span.start])
        pieces.append(placeholder(span.type))
        cursor = span.end
    pieces.append(text[cursor:])
    return "".join(pieces)
