"""The text model: hashed character n-grams of masked messages → intent and emotion.

A message (already masked at the edge: PII spans are placeholders such as ``<CN_MOBILE>``)
becomes the bag of its character n-grams, n = 1 to 3, hashed into a fixed number of buckets.
Characters are the units, so Chinese needs no word segmenter, and a placeholder counts as a
single character. ``encode_texts`` keeps each bucket once per message with weight
count / total, so the model's masked mean pooling is a weighted sum of embedding rows whose
weights sum to one; padding is bucket 0 with weight 0.

The network is ``nn.Embedding`` → masked mean pooling → two ``nn.Linear`` heads (intent:
咨询 inquiry / 投诉 complaint / 购买 purchase / 退换 return; emotion: negative / neutral /
positive). Only ``Linear`` and ``Embedding`` layers hold parameters, so every DP mode of
``privacy.DPTrainer`` computes exact per-example gradient norms for it.
"""

from __future__ import annotations

import logging
import re
import unicodedata
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Literal, NamedTuple, Self

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from .weights import get_weights, set_weights, weights_from_bytes, weights_to_bytes

logger = logging.getLogger(__name__)

#: Intent labels, in head order (咨询 inquiry, 投诉 complaint, 购买 purchase, 退换 return).
INTENTS: tuple[str, ...] = ("inquiry", "complaint", "purchase", "return")
#: Emotion labels, in head order.
EMOTIONS: tuple[str, ...] = ("negative", "neutral", "positive")
#: Target value ignored by the loss (no label for that head).
IGNORE_LABEL = -100
#: Bucket 0 pads rows; no n-gram hashes to it.
PAD_BUCKET = 0
#: How per-example losses are reduced over a batch.
Reduction = Literal["mean", "sum", "none"]

_PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*)>")
_SPACES = re.compile(r"\s+")
#: Placeholders become one character of Unicode's private-use area (U+E000-U+EFFF).
_PRIVATE_USE_BASE = 0xE000
_PRIVATE_USE_SIZE = 0x1000


class TextModelConfig(BaseModel):
    """Architecture and n-gram encoding of the text model.

    Parameters
    ----------
    num_buckets : int
        Size of the hashed n-gram vocabulary, the padding bucket included. Fewer buckets
        mean fewer parameters (less DP noise, faster steps) and more collisions.
    embed_dim : int
        Size of an n-gram embedding (and of the pooled message vector).
    min_n, max_n : int
        Character n-gram lengths used (inclusive).
    max_chars : int
        Messages are cut to their first ``max_chars`` characters after normalisation,
        which bounds the n-grams per message.
    num_intents : int
        Outputs of the intent head (``len(INTENTS)``).
    num_emotions : int
        Outputs of the emotion head (``len(EMOTIONS)``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    num_buckets: int = Field(default=4096, ge=2)
    embed_dim: int = Field(default=32, ge=1)
    min_n: int = Field(default=1, ge=1)
    max_n: int = Field(default=3, ge=1)
    max_chars: int = Field(default=96, ge=1)
    num_intents: int = Field(default=len(INTENTS), ge=1)
    num_emotions: int = Field(default=len(EMOTIONS), ge=1)

    @model_validator(mode="after")
    def _check_n_range(self) -> Self:
        if self.max_n < self.min_n:
            raise ValueError("max_n must be at least min_n")
        return self

    @classmethod
    def from_weights(cls, weights: Mapping[str, np.ndarray]) -> TextModelConfig:
        """Infer the architecture from weights produced by ``get_weights``.

        The n-gram settings cannot be read from weights; they take their defaults.

        Raises
        ------
        ValueError
            If the weights do not look like a text model's.
        """
        try:
            num_buckets, embed_dim = weights["embedding.weight"].shape
            num_intents = weights["intent_head.weight"].shape[0]
            num_emotions = weights["emotion_head.weight"].shape[0]
        except (KeyError, ValueError, IndexError) as exc:
            raise ValueError("weights are not those of a TextClassifier") from exc
        return cls(
            num_buckets=int(num_buckets),
            embed_dim=int(embed_dim),
            num_intents=int(num_intents),
            num_emotions=int(num_emotions),
        )


class TextBatch(NamedTuple):
    """Encoded messages: distinct bucket ids and their pooling weights, right-padded.

    ``ids`` is ``(batch, width)`` int64 and ``weights`` ``(batch, width)`` float32; in a
    row the ids are distinct, padding is ``PAD_BUCKET`` with weight 0, and the weights of
    a non-empty message sum to 1.
    """

    ids: torch.Tensor
    weights: torch.Tensor


class TextOutput(NamedTuple):
    """Raw outputs (logits) of the text model for a batch."""

    intent: torch.Tensor
    emotion: torch.Tensor


def normalize_text(text: str) -> str:
    """Return the form n-grams are taken from.

    NFKC (full-width to half-width), lower case, runs of white space collapsed to one
    space, each mask placeholder (``<CN_MOBILE>``) replaced by one private-use character
    that depends only on the entity type.
    """
    text = _PLACEHOLDER.sub(_placeholder_char, unicodedata.normalize("NFKC", text))
    return _SPACES.sub(" ", text).strip().lower()


def _placeholder_char(match: re.Match[str]) -> str:
    code = zlib.crc32(match.group(1).encode("ascii")) % _PRIVATE_USE_SIZE
    return chr(_PRIVATE_USE_BASE + code)


def ngram_buckets(text: str, *, config: TextModelConfig) -> Counter[int]:
    """Return the bucket counts of one message's character n-grams.

    Hashing is CRC-32 of the UTF-8 n-gram (stable across processes and machines, unlike
    Python's ``hash``), mapped to ``1 .. num_buckets - 1``.

    Parameters
    ----------
    text : str
        A masked message.
    config : TextModelConfig
        n-gram range, bucket count and length cut.

    Returns
    -------
    Counter[int]
        Bucket to number of n-grams in it; empty for an empty message.
    """
    chars = normalize_text(text)[: config.max_chars]
    counts: Counter[int] = Counter()
    buckets = config.num_buckets - 1
    for n in range(config.min_n, config.max_n + 1):
        for start in range(len(chars) - n + 1):
            gram = chars[start : start + n].encode("utf-8")
            counts[1 + zlib.crc32(gram) % buckets] += 1
    return counts


def encode_texts(
    texts: Sequence[str], *, config: TextModelConfig, width: int | None = None
) -> TextBatch:
    """Encode messages as distinct hashed n-gram buckets with mean-pooling weights.

    Parameters
    ----------
    texts : Sequence[str]
        Masked messages (raw text never reaches this function on an edge).
    config : TextModelConfig
        n-gram and hashing settings.
    width : int or None
        Row width; ``None`` uses the largest number of distinct buckets among ``texts``.

    Returns
    -------
    TextBatch
        Ids and weights; a row is all padding for an empty message.

    Raises
    ------
    ValueError
        If ``width`` is smaller than a message's number of distinct buckets.
    """
    counts = [ngram_buckets(text, config=config) for text in texts]
    needed = max((len(c) for c in counts), default=0)
    cols = max(needed, 1) if width is None else width
    if cols < needed:
        raise ValueError(f"width {cols} is below the {needed} distinct n-gram buckets needed")
    ids = torch.zeros((len(texts), cols), dtype=torch.long)
    weights = torch.zeros((len(texts), cols), dtype=torch.float32)
    for row, bucket_counts in enumerate(counts):
        if not bucket_counts:
            continue
        total = sum(bucket_counts.values())
        buckets = sorted(bucket_counts)
        ids[row, : len(buckets)] = torch.tensor(buckets, dtype=torch.long)
        weights[row, : len(buckets)] = torch.tensor(
            [bucket_counts[b] / total for b in buckets], dtype=torch.float32
        )
    return TextBatch(ids=ids, weights=weights)


def label_indices(labels: Sequence[str | None], *, names: Sequence[str]) -> torch.Tensor:
    """Turn label names into head indices; ``None`` becomes ``IGNORE_LABEL``.

    Raises
    ------
    ValueError
        If a label is not one of ``names`` (the message lists the known names).
    """
    index = {name: i for i, name in enumerate(names)}
    out: list[int] = []
    for label in labels:
        if label is None:
            out.append(IGNORE_LABEL)
        elif label in index:
            out.append(index[label])
        else:
            raise ValueError(f"unknown label; known labels are {list(names)}")
    return torch.tensor(out, dtype=torch.long)


class TextClassifier(nn.Module):
    """Hashed n-gram ``nn.Embedding`` → masked mean pooling → intent and emotion heads.

    Parameters
    ----------
    config : TextModelConfig or None
        Architecture and encoding; the defaults when ``None``.
    """

    def __init__(self, config: TextModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or TextModelConfig()
        cfg = self.config
        self.embedding = nn.Embedding(cfg.num_buckets, cfg.embed_dim, padding_idx=PAD_BUCKET)
        self.intent_head = nn.Linear(cfg.embed_dim, cfg.num_intents)
        self.emotion_head = nn.Linear(cfg.embed_dim, cfg.num_emotions)

    def forward(self, ids: torch.Tensor, weights: torch.Tensor) -> TextOutput:
        """Score a batch.

        Parameters
        ----------
        ids : torch.Tensor
            ``(batch, width)`` int64 bucket ids from ``encode_texts``.
        weights : torch.Tensor
            ``(batch, width)`` float pooling weights (0 on padding).

        Returns
        -------
        TextOutput
            Intent logits ``(batch, num_intents)``, emotion logits ``(batch, num_emotions)``.
        """
        pooled = (self.embedding(ids) * weights.unsqueeze(-1)).sum(1)
        return TextOutput(intent=self.intent_head(pooled), emotion=self.emotion_head(pooled))

    # ------------------------------------------------------------------ helpers (root API)
    @classmethod
    def from_seed(cls, seed: int, config: TextModelConfig | None = None) -> TextClassifier:
        """Build a model whose initial weights depend only on ``seed`` (global RNG untouched)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return cls(config)

    @classmethod
    def from_weights(cls, weights: Mapping[str, np.ndarray]) -> TextClassifier:
        """Build a model with the architecture and values of ``get_weights`` output.

        Raises
        ------
        ValueError
            If the weights are not a text model's.
        """
        model = cls(TextModelConfig.from_weights(weights))
        set_weights(model, weights)
        return model

    @classmethod
    def from_bytes(cls, data: bytes) -> TextClassifier:
        """Build a model from ``to_bytes`` output (an ``.npz`` archive, no pickle)."""
        return cls.from_weights(weights_from_bytes(data))

    def to_bytes(self) -> bytes:
        """Serialise the model's named parameters as an ``.npz`` archive."""
        return weights_to_bytes(get_weights(self))

    def encode(self, texts: Sequence[str], *, width: int | None = None) -> TextBatch:
        """Encode messages with this model's config (see ``encode_texts``)."""
        return encode_texts(texts, config=self.config, width=width)

    @staticmethod
    def loss(
        output: TextOutput,
        *,
        intent: torch.Tensor,
        emotion: torch.Tensor,
        reduction: Reduction = "mean",
    ) -> torch.Tensor:
        """Loss of both heads (see ``text_loss``)."""
        return text_loss(output, intent=intent, emotion=emotion, reduction=reduction)

    def score(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Return intent and emotion probabilities for masked messages (eval mode, no grad).

        Parameters
        ----------
        texts : Sequence[str]
            Masked messages.

        Returns
        -------
        tuple[np.ndarray, np.ndarray]
            ``(len(texts), num_intents)`` and ``(len(texts), num_emotions)`` probabilities
            (columns in ``INTENTS`` / ``EMOTIONS`` order).
        """
        cfg = self.config
        if not texts:
            return np.zeros((0, cfg.num_intents)), np.zeros((0, cfg.num_emotions))
        batch = self.encode(texts)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                out = self(batch.ids, batch.weights)
        finally:
            self.train(was_training)
        return (
            torch.softmax(out.intent, dim=-1).numpy().astype(float),
            torch.softmax(out.emotion, dim=-1).numpy().astype(float),
        )


def text_loss(
    output: TextOutput,
    *,
    intent: torch.Tensor,
    emotion: torch.Tensor,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Each example's summed cross-entropy of the two heads, reduced over the batch.

    A head whose target is ``IGNORE_LABEL`` contributes 0 to that example.

    Parameters
    ----------
    output : TextOutput
        Logits of a batch.
    intent, emotion : torch.Tensor
        ``(batch,)`` int64 targets.
    reduction : {"mean", "sum", "none"}
        ``"none"`` returns the ``(batch,)`` per-example losses (what DP training takes);
        ``"mean"`` divides their sum by the batch size (0 for an empty batch).

    Returns
    -------
    torch.Tensor
        Per-example losses or a scalar.

    Raises
    ------
    ValueError
        For an unknown ``reduction``.
    """
    per_example = F.cross_entropy(
        output.intent, intent, ignore_index=IGNORE_LABEL, reduction="none"
    ) + F.cross_entropy(output.emotion, emotion, ignore_index=IGNORE_LABEL, reduction="none")
    if reduction == "none":
        return per_example
    if reduction == "sum":
        return per_example.sum()
    if reduction == "mean":
        return per_example.sum() / max(per_example.shape[0], 1)
    raise ValueError("reduction must be 'mean', 'sum' or 'none'")
