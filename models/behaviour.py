"""The behaviour model: per-subject features (+ optionally the event sequence) → three heads.

A subject's example is a vector of aggregate features computed on the edge at a cutoff
(recency, frequency, monetary, tenure, inter-purchase gaps, weekday / hour rhythm, category
and channel mix, complaint and contact history; the names live with the code that computes
them, ``client.learning.behaviour``) and, optionally, its most recent event tokens
(``models.sequences``). The model predicts three things about the label window after the
cutoff: purchase (binary), need-for-human escalation (binary) and the next category.

Architecture (``BehaviourModelConfig``; chosen by measurement, ``docs/learning.md``):

* **feature part**: each input centred and scaled by its typical size (``FEATURE_SCALING``,
  fixed from domain knowledge, never estimated from data: no privacy cost), then the
  parameter-free ``sign(x)·log1p(|x|)`` squashing, then either nothing (``hidden = 0``: the
  heads are a logistic / softmax regression on the squashed features) or one
  ``Linear → ReLU`` layer;
* **sequence part** (``sequence > 0``): token ``Embedding`` → Opacus ``DPGRU``; its last state
  is concatenated to the feature part;
* **heads**: ``Linear`` layers for purchase, escalation and next category.

Every parameter sits in ``Linear`` / ``Embedding`` layers (the GRU's cells are Opacus
``RNNLinear``), so ``privacy.DPTrainer`` clips per-example gradients exactly in its
book-keeping mode. Few parameters on features that carry the signal is what works under
DP-SGD; the sequence part is an option, off by default. Exchange weights with
``models.weights.get_weights`` (named parameters), never ``state_dict()``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple, Self

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from .sequences import PAD_TOKEN, VOCAB_SIZE
from .tags import FEATURE_INFO
from .vocabulary import CATEGORIES
from .weights import get_weights, set_weights, weights_from_bytes, weights_to_bytes

logger = logging.getLogger(__name__)

#: Target value of ``next_category`` ignored by the loss (no categorised event in window).
IGNORE_CATEGORY = -100
#: History features computed at the cutoff beside the profile features (all in days, counts
#: or CNY; ``client.learning.behaviour`` computes them). Long-horizon purchase history is
#: what repeat-purchase models such as BG/NBD use: purchase days, first purchase, gaps.
HISTORY_FEATURES: tuple[str, ...] = (
    "events_7d",
    "active_days_7d",
    "events_total",
    "active_days_total",
    "last_event_days",
    "purchases_total",
    "purchase_days_total",
    "monetary_total",
    "first_purchase_days",
    "last_purchase_days",
    "purchase_gap_mean_days",
    "purchases_365d",
    "contacts_total",
    "category_top_share",
)
#: Inputs of the behaviour model, in order: the profile features (``FEATURE_INFO``, the
#: edge's ``client.features.FEATURE_NAMES``) then ``HISTORY_FEATURES``.
BEHAVIOUR_FEATURES: tuple[str, ...] = (*FEATURE_INFO, *HISTORY_FEATURES)
#: Typical size of each history feature (its unit of scale; all are centred at 0).
_HISTORY_SCALES: dict[str, float] = {
    "events_7d": 10.0,
    "active_days_7d": 3.0,
    "events_total": 50.0,
    "active_days_total": 10.0,
    "last_event_days": 14.0,
    "purchases_total": 5.0,
    "purchase_days_total": 5.0,
    "monetary_total": 1000.0,
    "first_purchase_days": 90.0,
    "last_purchase_days": 30.0,
    "purchase_gap_mean_days": 14.0,
    "purchases_365d": 5.0,
    "contacts_total": 5.0,
    "category_top_share": 0.5,
}
#: ``(center, scale)`` of each input, fixed from domain knowledge (the tags' ``FEATURE_INFO``
#: and ``_HISTORY_SCALES``), never estimated from customers' data: no privacy cost.
FEATURE_SCALING: tuple[tuple[float, float], ...] = (
    *((info.center, info.scale) for info in FEATURE_INFO.values()),
    *((0.0, _HISTORY_SCALES[name]) for name in HISTORY_FEATURES),
)


class BehaviourModelConfig(BaseModel):
    """Architecture of the behaviour model.

    Parameters
    ----------
    num_features : int
        Length of the feature vector of one example.
    hidden : int
        Units of the feature part's hidden layer; 0 feeds the squashed features straight
        into the heads.
    sequence : int
        Units of the recurrent part over event tokens; 0 leaves it out.
    embed_dim : int
        Size of a token embedding (recurrent part only).
    vocab_size : int
        Number of event tokens (``models.sequences.VOCAB_SIZE``).
    num_categories : int
        Outputs of the next-category head (``len(CATEGORIES)``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    num_features: int = Field(default=len(BEHAVIOUR_FEATURES), ge=1)
    hidden: int = Field(default=0, ge=0)
    sequence: int = Field(default=0, ge=0)
    embed_dim: int = Field(default=8, ge=1)
    vocab_size: int = Field(default=VOCAB_SIZE, ge=2)
    num_categories: int = Field(default=len(CATEGORIES), ge=1)

    @classmethod
    def from_weights(cls, weights: Mapping[str, np.ndarray]) -> Self:
        """Infer the architecture from weights produced by ``get_weights``.

        Raises
        ------
        ValueError
            If the weights do not look like a behaviour model's.
        """
        try:
            outputs, width = np.shape(weights["heads.weight"])
            num_categories = outputs - 2
            sequence = 0
            vocab_size, embed_dim = VOCAB_SIZE, 8
            if "gru.weight_hh_l0" in weights:
                sequence = int(np.shape(weights["gru.weight_hh_l0"])[1])
                vocab_size, embed_dim = np.shape(weights["embedding.weight"])
            if "hidden.weight" in weights:
                hidden, num_features = np.shape(weights["hidden.weight"])
            else:
                hidden, num_features = 0, width - sequence
        except (KeyError, ValueError, IndexError) as exc:
            raise ValueError("weights are not those of a BehaviourModel") from exc
        if num_categories < 1 or num_features < 1 or width != (hidden or num_features) + sequence:
            raise ValueError("weights are not those of a BehaviourModel (head width)")
        return cls(
            num_features=int(num_features),
            hidden=int(hidden),
            sequence=int(sequence),
            embed_dim=int(embed_dim),
            vocab_size=int(vocab_size),
            num_categories=int(num_categories),
        )


class BehaviourOutput(NamedTuple):
    """Raw outputs (logits) of the behaviour model for a batch."""

    purchase: torch.Tensor
    escalation: torch.Tensor
    category: torch.Tensor


class BehaviourBatch(NamedTuple):
    """Tensors of a batch: features, right-padded tokens, lengths and three targets."""

    features: torch.Tensor
    tokens: torch.Tensor
    lengths: torch.Tensor
    purchase: torch.Tensor
    escalation: torch.Tensor
    category: torch.Tensor


@dataclass(frozen=True, slots=True)
class BehaviourExample:
    """One subject's example at a cutoff.

    Parameters
    ----------
    subject : str
        The subject's pseudonym (stays on the edge).
    features : tuple[float, ...]
        Aggregate features at the cutoff (finite numbers, raw scale).
    tokens : tuple[int, ...]
        Most recent event tokens before the cutoff, oldest first (may be empty).
    purchase : float
        1.0 if the subject purchased in the label window, else 0.0.
    escalation : float
        1.0 if the subject complained in the label window, else 0.0.
    next_category : int or None
        Index in ``CATEGORIES`` of the first categorised event in the window, if any.
    """

    subject: str
    features: tuple[float, ...]
    tokens: tuple[int, ...]
    purchase: float
    escalation: float
    next_category: int | None


def squash(features: torch.Tensor) -> torch.Tensor:
    """Return ``sign(x) · log1p(|x|)``: monotone, parameter-free, tames heavy tails."""
    return torch.sign(features) * torch.log1p(features.abs())


def _scaling(num_features: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Centres and scales of the inputs: ``FEATURE_SCALING`` for ``BEHAVIOUR_FEATURES``.

    A model built for another number of inputs (other feature sets, tests) takes them
    as they are (centre 0, scale 1).
    """
    if num_features == len(BEHAVIOUR_FEATURES):
        center, scale = zip(*FEATURE_SCALING, strict=True)
        return torch.tensor(center), torch.tensor(scale)
    return torch.zeros(num_features), torch.ones(num_features)


class BehaviourModel(nn.Module):
    """Squashed features (+ optional GRU summary) → purchase, escalation, category heads.

    Parameters
    ----------
    config : BehaviourModelConfig or None
        Architecture; the defaults (``BEHAVIOUR_FEATURES``, linear) when ``None``.
    """

    center: torch.Tensor
    scale: torch.Tensor

    def __init__(self, config: BehaviourModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or BehaviourModelConfig()
        cfg = self.config
        center, scale = _scaling(cfg.num_features)
        # Constants, not parameters: never trained, never noised, not exchanged.
        self.register_buffer("center", center, persistent=False)
        self.register_buffer("scale", scale, persistent=False)
        width = cfg.num_features
        self.hidden: nn.Linear | None = None
        if cfg.hidden:
            self.hidden = nn.Linear(cfg.num_features, cfg.hidden)
            width = cfg.hidden
        self.embedding: nn.Embedding | None = None
        self.gru: nn.Module | None = None
        if cfg.sequence:
            from opacus.layers import DPGRU

            self.embedding = nn.Embedding(cfg.vocab_size, cfg.embed_dim, padding_idx=PAD_TOKEN)
            self.gru = DPGRU(cfg.embed_dim, cfg.sequence, batch_first=True)
            width += cfg.sequence
        # One output layer for the three heads (rows: purchase, escalation, categories):
        # one matrix product instead of three, which keeps the DP-SGD step within 1.3x of a
        # plain step for this small model (benchmarks/dp_overhead.py).
        self.heads = nn.Linear(width, 2 + cfg.num_categories)

    def forward(
        self, features: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor
    ) -> BehaviourOutput:
        """Score a batch.

        Parameters
        ----------
        features : torch.Tensor
            ``(batch, num_features)`` raw feature values.
        tokens : torch.Tensor
            ``(batch, time)`` int64 tokens, right-padded with ``PAD_TOKEN`` (ignored
            without a sequence part).
        lengths : torch.Tensor
            ``(batch,)`` true lengths (0 for an empty history).

        Returns
        -------
        BehaviourOutput
            Purchase and escalation logits ``(batch,)``, category logits
            ``(batch, num_categories)``.
        """
        summary = squash((features - self.center) / self.scale)
        if self.hidden is not None:
            summary = F.relu(self.hidden(summary))
        if self.gru is not None and self.embedding is not None:
            states, _ = self.gru(self.embedding(tokens))
            last = (lengths.clamp(min=1) - 1).to(torch.long)
            seq = states[torch.arange(states.shape[0]), last]
            seq = seq * (lengths > 0).to(seq.dtype).unsqueeze(-1)
            summary = torch.cat([summary, seq], dim=-1)
        logits = self.heads(summary)
        return BehaviourOutput(
            purchase=logits[:, 0], escalation=logits[:, 1], category=logits[:, 2:]
        )

    # ------------------------------------------------------------------ helpers (root API)
    @classmethod
    def from_seed(cls, seed: int, config: BehaviourModelConfig | None = None) -> Self:
        """Build a model whose initial weights depend only on ``seed`` (global RNG untouched)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return cls(config)

    @classmethod
    def from_weights(cls, weights: Mapping[str, np.ndarray]) -> Self:
        """Build a model with the architecture and values of ``get_weights`` output.

        Raises
        ------
        ValueError
            If the weights are not a behaviour model's.
        """
        model = cls(BehaviourModelConfig.from_weights(weights))
        set_weights(model, weights)
        return model

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Build a model from ``to_bytes`` output (an ``.npz`` archive, no pickle)."""
        return cls.from_weights(weights_from_bytes(data))

    def to_bytes(self) -> bytes:
        """Serialise the model's named parameters as an ``.npz`` archive."""
        return weights_to_bytes(get_weights(self))

    @staticmethod
    def loss(
        output: BehaviourOutput,
        *,
        purchase: torch.Tensor,
        escalation: torch.Tensor,
        category: torch.Tensor,
        reduction: Literal["mean", "none"] = "mean",
    ) -> torch.Tensor:
        """Loss of the three heads, per example or averaged (see ``behaviour_loss``)."""
        return behaviour_loss(
            output,
            purchase=purchase,
            escalation=escalation,
            category=category,
            reduction=reduction,
        )

    def score(self, batch: BehaviourBatch) -> tuple[np.ndarray, np.ndarray]:
        """Return purchase and escalation probabilities (eval mode, no gradients).

        Parameters
        ----------
        batch : BehaviourBatch
            From ``batch_examples`` (targets are ignored).

        Returns
        -------
        tuple[np.ndarray, np.ndarray]
            Purchase propensity and escalation risk in [0, 1], one per example.
        """
        if batch.features.shape[0] == 0:
            return np.zeros(0), np.zeros(0)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                out = self(batch.features, batch.tokens, batch.lengths)
        finally:
            self.train(was_training)
        return (
            torch.sigmoid(out.purchase).numpy().astype(float),
            torch.sigmoid(out.escalation).numpy().astype(float),
        )


def pad_tokens(token_lists: Sequence[Sequence[int]], *, max_len: int) -> torch.Tensor:
    """Right-pad token lists to ``(len(token_lists), max_len)``; longer lists keep their tail."""
    out = torch.full((len(token_lists), max_len), PAD_TOKEN, dtype=torch.long)
    for row, tokens in enumerate(token_lists):
        tail = list(tokens)[-max_len:]
        if tail:
            out[row, : len(tail)] = torch.tensor(tail, dtype=torch.long)
    return out


def lengths_of(token_lists: Sequence[Sequence[int]], *, max_len: int) -> torch.Tensor:
    """Return the clipped lengths of token lists as an int64 tensor."""
    return torch.tensor([min(len(t), max_len) for t in token_lists], dtype=torch.long)


def batch_examples(
    examples: Sequence[BehaviourExample], *, num_features: int, max_len: int
) -> BehaviourBatch:
    """Turn examples into fixed-shape tensors (one row per example).

    Parameters
    ----------
    examples : Sequence[BehaviourExample]
        Examples with ``num_features`` features each.
    num_features : int
        Feature count (the width of an empty batch).
    max_len : int
        Padded token length (at least 1).

    Returns
    -------
    BehaviourBatch
        Features, tokens, lengths and targets; a missing next category becomes
        ``IGNORE_CATEGORY``.

    Raises
    ------
    ValueError
        If an example has another number of features, or a non-finite one.
    """
    rows = [e.features for e in examples]
    if any(len(r) != num_features for r in rows):
        raise ValueError(f"every example must have {num_features} features")
    features = torch.tensor(rows, dtype=torch.float32).reshape(len(rows), num_features)
    if not torch.isfinite(features).all():
        raise ValueError("features must be finite numbers within float32 range")
    tokens = [e.tokens for e in examples]
    return BehaviourBatch(
        features=features,
        tokens=pad_tokens(tokens, max_len=max(max_len, 1)),
        lengths=lengths_of(tokens, max_len=max(max_len, 1)),
        purchase=torch.tensor([e.purchase for e in examples], dtype=torch.float32),
        escalation=torch.tensor([e.escalation for e in examples], dtype=torch.float32),
        category=torch.tensor(
            [IGNORE_CATEGORY if e.next_category is None else e.next_category for e in examples],
            dtype=torch.long,
        ),
    )


def behaviour_loss(
    output: BehaviourOutput,
    *,
    purchase: torch.Tensor,
    escalation: torch.Tensor,
    category: torch.Tensor,
    reduction: Literal["mean", "none"] = "mean",
) -> torch.Tensor:
    """Each example's summed loss of the three heads, per example or averaged.

    An example without a next-category target contributes 0 for that head.

    Parameters
    ----------
    output : BehaviourOutput
        Model outputs for the batch.
    purchase, escalation : torch.Tensor
        ``(batch,)`` binary targets.
    category : torch.Tensor
        ``(batch,)`` category index, ``IGNORE_CATEGORY`` where unknown.
    reduction : {"mean", "none"}
        ``"none"`` returns the ``(batch,)`` per-example losses (what DP training needs);
        ``"mean"`` their mean over the realised batch (0 for an empty batch).

    Returns
    -------
    torch.Tensor
        Scalar or ``(batch,)`` loss.
    """
    per_example = (
        F.binary_cross_entropy_with_logits(output.purchase, purchase, reduction="none")
        + F.binary_cross_entropy_with_logits(output.escalation, escalation, reduction="none")
        + F.cross_entropy(output.category, category, ignore_index=IGNORE_CATEGORY, reduction="none")
    )
    if reduction == "none":
        return per_example
    if per_example.shape[0] == 0:
        return output.purchase.sum() * 0.0
    return per_example.mean()
