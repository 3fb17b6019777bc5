"""The behaviour model: event tokens → GRU → purchase, escalation and next-category heads.

The recurrent layer is ``opacus.layers.DPGRU`` so Opacus can compute per-example gradients
in hooks mode; its parameters carry the ``torch.nn.GRU`` names. Exchange weights with
``models.weights.get_weights`` (named parameters), never ``state_dict()``, which holds each
GRU weight twice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from opacus.layers import DPGRU
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from .sequences import PAD_TOKEN, VOCAB_SIZE, SequenceExample
from .vocabulary import CATEGORIES
from .weights import get_weights, set_weights, weights_from_bytes, weights_to_bytes

logger = logging.getLogger(__name__)

#: Target value of ``next_category`` ignored by the loss (no categorised event in window).
IGNORE_CATEGORY = -100


class BehaviourModelConfig(BaseModel):
    """Architecture of the behaviour model.

    Parameters
    ----------
    vocab_size : int
        Number of event tokens (``models.sequences.VOCAB_SIZE``).
    embed_dim : int
        Size of the token embedding.
    hidden_size : int
        Size of the GRU state.
    num_categories : int
        Outputs of the next-category head (``len(CATEGORIES)``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    vocab_size: int = Field(default=VOCAB_SIZE, ge=2)
    embed_dim: int = Field(default=8, ge=1)
    hidden_size: int = Field(default=16, ge=1)
    num_categories: int = Field(default=len(CATEGORIES), ge=1)

    @classmethod
    def from_weights(cls, weights: Mapping[str, np.ndarray]) -> BehaviourModelConfig:
        """Infer the architecture from weights produced by ``get_weights``.

        Raises
        ------
        ValueError
            If the weights do not look like a behaviour model's.
        """
        try:
            vocab_size, embed_dim = weights["embedding.weight"].shape
            num_categories, hidden_size = weights["category_head.weight"].shape
        except (KeyError, ValueError) as exc:
            raise ValueError("weights are not those of a BehaviourGRU") from exc
        return cls(
            vocab_size=int(vocab_size),
            embed_dim=int(embed_dim),
            hidden_size=int(hidden_size),
            num_categories=int(num_categories),
        )


class BehaviourOutput(NamedTuple):
    """Raw outputs (logits) of the behaviour model for a batch."""

    purchase: torch.Tensor
    escalation: torch.Tensor
    category: torch.Tensor


class BehaviourBatch(NamedTuple):
    """Tensors of a batch of examples (right-padded tokens, lengths, three targets)."""

    tokens: torch.Tensor
    lengths: torch.Tensor
    purchase: torch.Tensor
    escalation: torch.Tensor
    category: torch.Tensor


class BehaviourGRU(nn.Module):
    """Token embedding → ``DPGRU`` → purchase, escalation and next-category heads.

    Parameters
    ----------
    config : BehaviourModelConfig or None
        Architecture; the defaults when ``None``.
    """

    def __init__(self, config: BehaviourModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or BehaviourModelConfig()
        cfg = self.config
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.embed_dim, padding_idx=PAD_TOKEN)
        self.gru = DPGRU(cfg.embed_dim, cfg.hidden_size, batch_first=True)
        self.purchase_head = nn.Linear(cfg.hidden_size, 1)
        self.escalation_head = nn.Linear(cfg.hidden_size, 1)
        self.category_head = nn.Linear(cfg.hidden_size, cfg.num_categories)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> BehaviourOutput:
        """Score a batch.

        Parameters
        ----------
        tokens : torch.Tensor
            ``(batch, time)`` int64 tokens, right-padded with ``PAD_TOKEN``.
        lengths : torch.Tensor
            ``(batch,)`` int64 true lengths (at least 1).

        Returns
        -------
        BehaviourOutput
            Purchase and escalation logits ``(batch,)`` and category logits
            ``(batch, num_categories)``.
        """
        states, _ = self.gru(self.embedding(tokens))
        last = (lengths.clamp(min=1) - 1).to(torch.long)
        summary = states[torch.arange(states.shape[0]), last]
        return BehaviourOutput(
            purchase=self.purchase_head(summary).squeeze(-1),
            escalation=self.escalation_head(summary).squeeze(-1),
            category=self.category_head(summary),
        )

    # ------------------------------------------------------------------ helpers (root API)
    @classmethod
    def from_seed(cls, seed: int, config: BehaviourModelConfig | None = None) -> BehaviourGRU:
        """Build a model whose initial weights depend only on ``seed`` (see ``build_model``)."""
        return build_model(seed=seed, config=config)

    @classmethod
    def from_weights(cls, weights: Mapping[str, np.ndarray]) -> BehaviourGRU:
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
    def from_bytes(cls, data: bytes) -> BehaviourGRU:
        """Build a model from ``to_bytes`` output (an ``.npz`` archive, no pickle)."""
        return cls.from_weights(weights_from_bytes(data))

    def to_bytes(self) -> bytes:
        """Serialise the model's named parameters as an ``.npz`` archive."""
        return weights_to_bytes(get_weights(self))

    @staticmethod
    def batch(examples: Sequence[SequenceExample], *, max_len: int) -> BehaviourBatch:
        """Turn examples into tensors (see ``batch_examples``)."""
        return batch_examples(examples, max_len=max_len)

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

    def score(
        self, token_lists: Sequence[Sequence[int]], *, max_len: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return purchase and escalation probabilities for token lists (eval mode, no grad).

        Parameters
        ----------
        token_lists : Sequence[Sequence[int]]
            Histories, each with at least one token.
        max_len : int
            Length the histories are cut to (their most recent tokens).

        Returns
        -------
        tuple[np.ndarray, np.ndarray]
            Purchase propensity and escalation risk in [0, 1], one per history.
        """
        if not token_lists:
            return np.zeros(0), np.zeros(0)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                out = self(
                    pad_tokens(token_lists, max_len=max_len),
                    lengths_of(token_lists, max_len=max_len),
                )
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


def batch_examples(examples: Sequence[SequenceExample], *, max_len: int) -> BehaviourBatch:
    """Turn examples into fixed-shape tensors (one row per example).

    Parameters
    ----------
    examples : Sequence[SequenceExample]
        Examples, each with at least one token.
    max_len : int
        Padded length (``SequenceSpec.max_len``).

    Returns
    -------
    BehaviourBatch
        Tokens, lengths and targets; a missing next category becomes ``IGNORE_CATEGORY``.
    """
    tokens = [e.tokens for e in examples]
    return BehaviourBatch(
        tokens=pad_tokens(tokens, max_len=max_len),
        lengths=lengths_of(tokens, max_len=max_len),
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


def build_model(*, seed: int, config: BehaviourModelConfig | None = None) -> BehaviourGRU:
    """Build a freshly initialised model whose weights depend only on ``seed``.

    The global torch RNG is left untouched (the initialisation runs in a forked RNG).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return BehaviourGRU(config)
