"""Features of a masked message: character n-grams over a public vocabulary, sublinear TF.

A message (already masked at the edge: PII spans are placeholders such as ``<CN_MOBILE>``)
becomes the bag of its character 1- to 3-grams. Characters are the units, so Chinese needs
no word segmenter at scoring time, and a placeholder counts as one character.

**Which n-grams get a weight** is decided by a *public prior*, never by the customers' data:
the n-grams of the words in jieba's dictionary (``jieba/dict.txt``, 349,046 words with
their frequency in a large general corpus, shipped inside the ``jieba`` wheel), ranked by
how often they occur in that corpus. The first ``vocabulary`` of them get their own weight.
Counting document frequencies over customers' messages would itself be a release to
account for; a public ranking costs no privacy budget. N-grams outside the vocabulary are
hashed (CRC-32, stable across processes) into ``buckets`` shared slots, or ignored when
``buckets`` is 0. ASCII characters and mask placeholders always have slots of their own.

Weights per message are TF-IDF's sublinear term frequency ``1 + log(count)``, L2-normalised
over the message's features, so every message has unit norm (this bounds each example's
gradient, which DP-SGD clips). Id ``BIAS_ID`` is present in every message with weight 1: it
carries the heads' intercepts.

Id layout: 0 pads; 1 is the bias; then ``PLACEHOLDER_SLOTS`` slots for placeholder types,
the 95 printable ASCII characters, the public vocabulary, and the hashed buckets.
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import NamedTuple

import torch

logger = logging.getLogger(__name__)

#: Id 0 pads rows; no feature maps to it.
PAD_ID = 0
#: Id present in every message with weight 1 (the intercept).
BIAS_ID = 1
#: Slots for mask placeholders (``<CN_MOBILE>``...), by a hash of the entity type.
PLACEHOLDER_SLOTS = 64
_PLACEHOLDER_BASE = 2
_ASCII_BASE = _PLACEHOLDER_BASE + PLACEHOLDER_SLOTS
_ASCII = tuple(chr(c) for c in range(0x20, 0x7F))
#: First id of the public vocabulary.
VOCABULARY_BASE = _ASCII_BASE + len(_ASCII)
#: Longest n-gram used.
MAX_N = 3

_PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*)>")
_SPACES = re.compile(r"\s+")
#: Placeholders become one character of Unicode's private-use area (U+E000-U+E03F).
_PRIVATE_USE_BASE = 0xE000


class TextBatch(NamedTuple):
    """Encoded messages: distinct feature ids and their weights, right-padded.

    ``ids`` is ``(batch, width)`` int64 and ``weights`` ``(batch, width)`` float32; in a
    row the ids are distinct, ``BIAS_ID`` comes first with weight 1, padding is ``PAD_ID``
    with weight 0, and the other weights have unit L2 norm.
    """

    ids: torch.Tensor
    weights: torch.Tensor


def normalize_text(text: str) -> str:
    """Return the form n-grams are taken from.

    NFKC (full-width to half-width), lower case, runs of white space collapsed to one
    space, each mask placeholder (``<CN_MOBILE>``) replaced by one private-use character
    that depends only on the entity type.
    """
    text = _PLACEHOLDER.sub(_placeholder_char, unicodedata.normalize("NFKC", text))
    return _SPACES.sub(" ", text).strip().lower()


def _placeholder_char(match: re.Match[str]) -> str:
    slot = zlib.crc32(match.group(1).encode("ascii")) % PLACEHOLDER_SLOTS
    return chr(_PRIVATE_USE_BASE + slot)


@lru_cache(maxsize=1)
def public_ranking() -> tuple[str, ...]:
    """Return jieba's dictionary n-grams (n = 1..3), most frequent in its corpus first.

    A word of frequency f adds f to each of its character n-grams; ties are broken by the
    n-gram's text, so the ranking is the same everywhere. ASCII-only n-grams are left out
    (they have slots of their own or are hashed). Built once per process (about 2 s).
    """
    counts: Counter[str] = Counter()
    text = resources.files("jieba").joinpath("dict.txt").read_text(encoding="utf-8")
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        word = normalize_text(parts[0])
        freq = int(parts[1])
        for n in range(1, MAX_N + 1):
            for start in range(len(word) - n + 1):
                gram = word[start : start + n]
                if " " not in gram and not gram.isascii():
                    counts[gram] += freq
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    logger.debug("public n-gram ranking: %d n-grams", len(ranked))
    return tuple(gram for gram, _ in ranked)


@lru_cache(maxsize=8)
def _vocabulary_index(size: int) -> dict[str, int]:
    return {gram: VOCABULARY_BASE + i for i, gram in enumerate(public_ranking()[:size])}


@dataclass(frozen=True, slots=True)
class TextFeaturizer:
    """Turns masked messages into feature ids and weights (see the module docstring).

    Parameters
    ----------
    vocabulary : int
        N-grams of the public ranking with an id of their own (at most the ranking's
        length; more is an error).
    buckets : int
        Hashed slots for other non-ASCII n-grams; 0 ignores them.
    max_chars : int
        Messages are cut to their first ``max_chars`` characters after normalisation.
    """

    vocabulary: int
    buckets: int = 0
    max_chars: int = 512

    def __post_init__(self) -> None:
        if self.vocabulary < 0 or self.buckets < 0:
            raise ValueError("vocabulary and buckets must be >= 0")
        if self.max_chars < 1:
            raise ValueError("max_chars must be at least 1")

    @property
    def num_features(self) -> int:
        """Rows a model's weight tables need (padding, bias and every slot)."""
        return VOCABULARY_BASE + self.vocabulary + self.buckets

    def feature_counts(self, text: str) -> Counter[int]:
        """Return ``{feature id: count}`` of one message (the bias excluded)."""
        chars = normalize_text(text)[: self.max_chars]
        index: dict[str, int] = {}
        if self.vocabulary:
            if self.vocabulary > len(public_ranking()):
                raise ValueError(
                    f"vocabulary {self.vocabulary} exceeds the {len(public_ranking())} "
                    "public n-grams"
                )
            index = _vocabulary_index(self.vocabulary)
        hashed_base = VOCABULARY_BASE + self.vocabulary
        counts: Counter[int] = Counter()
        for n in range(1, MAX_N + 1):
            for start in range(len(chars) - n + 1):
                gram = chars[start : start + n]
                feature = index.get(gram)
                if feature is None:
                    feature = self._slot(gram, hashed_base)
                if feature is not None:
                    counts[feature] += 1
        return counts

    def _slot(self, gram: str, hashed_base: int) -> int | None:
        """Id of an n-gram outside the vocabulary: its own slot, a hashed bucket or none."""
        if len(gram) == 1:
            code = ord(gram)
            if 0x20 <= code < 0x7F:
                return _ASCII_BASE + code - 0x20
            if _PRIVATE_USE_BASE <= code < _PRIVATE_USE_BASE + PLACEHOLDER_SLOTS:
                return _PLACEHOLDER_BASE + code - _PRIVATE_USE_BASE
        if self.buckets == 0:
            return None
        return hashed_base + zlib.crc32(gram.encode("utf-8")) % self.buckets

    def encode(self, texts: Sequence[str], *, width: int | None = None) -> TextBatch:
        """Encode messages as ``(ids, weights)`` rows.

        Parameters
        ----------
        texts : Sequence[str]
            Masked messages (raw text never reaches this function on an edge).
        width : int or None
            Row width; ``None`` uses the largest number of distinct features (plus the
            bias) among ``texts``.

        Returns
        -------
        TextBatch
            Ids and weights; an empty message holds only the bias.

        Raises
        ------
        ValueError
            If ``width`` is smaller than a message needs.
        """
        rows = [self.feature_counts(text) for text in texts]
        needed = 1 + max((len(r) for r in rows), default=0)
        cols = needed if width is None else width
        if cols < needed:
            raise ValueError(f"width {cols} is below the {needed} features needed")
        ids = torch.zeros((len(rows), cols), dtype=torch.long)
        weights = torch.zeros((len(rows), cols), dtype=torch.float32)
        ids[:, 0] = BIAS_ID
        weights[:, 0] = 1.0
        for row, counts in enumerate(rows):
            if not counts:
                continue
            features = sorted(counts)
            tf = [1.0 + math.log(counts[f]) for f in features]
            norm = math.sqrt(sum(v * v for v in tf))
            ids[row, 1 : 1 + len(features)] = torch.tensor(features, dtype=torch.long)
            weights[row, 1 : 1 + len(features)] = torch.tensor(
                [v / norm for v in tf], dtype=torch.float32
            )
        return TextBatch(ids=ids, weights=weights)
