"""The tabular model: an MLP over a subject's numeric profile features → binary risks.

Input is one row of numeric features per subject (the edge's ``client.features``
``FEATURE_NAMES`` order, 18 values by default), output one logit per binary target (by
default churn and escalation risk). Features live on very different scales (counts, money,
rates), so the first thing the network does is a fixed, parameter-free ``sign(x)·log1p(|x|)``
squashing: no statistics are learnt from the data, so it costs no privacy. Only
``nn.Linear`` layers hold parameters, so every DP mode of ``privacy.DPTrainer`` computes
exact per-example gradient norms for it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from .weights import get_weights, set_weights, weights_from_bytes, weights_to_bytes

logger = logging.getLogger(__name__)

#: Default binary targets, in output order.
TABULAR_TARGETS: tuple[str, ...] = ("churn", "escalation")
#: Default number of input features (``client.features.FEATURE_NAMES``).
DEFAULT_NUM_FEATURES = 18
#: Target value ignored by the loss (no label for that target).
IGNORE_TARGET = -1.0
#: How per-example losses are reduced over a batch.
Reduction = Literal["mean", "sum", "none"]


class TabularModelConfig(BaseModel):
    """Architecture of the tabular MLP.

    Parameters
    ----------
    num_features : int
        Numeric inputs per subject.
    hidden_sizes : tuple[int, ...]
        Widths of the hidden layers (ReLU after each); empty for a linear model.
    num_targets : int
        Binary targets, one logit each.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    num_features: int = Field(default=DEFAULT_NUM_FEATURES, ge=1)
    hidden_sizes: tuple[int, ...] = (32, 16)
    num_targets: int = Field(default=len(TABULAR_TARGETS), ge=1)

    @classmethod
    def from_weights(cls, weights: Mapping[str, np.ndarray]) -> TabularModelConfig:
        """Infer the architecture from weights produced by ``get_weights``.

        Raises
        ------
        ValueError
            If the weights do not look like a tabular model's.
        """
        shapes = [
            np.shape(weights[name])
            for name in sorted(
                (n for n in weights if n.startswith("layers.") and n.endswith(".weight")),
                key=lambda n: int(n.split(".")[1]),
            )
        ]
        if not shapes or any(len(s) != 2 for s in shapes):
            raise ValueError("weights are not those of a TabularMLP")
        return cls(
            num_features=int(shapes[0][1]),
            hidden_sizes=tuple(int(s[0]) for s in shapes[:-1]),
            num_targets=int(shapes[-1][0]),
        )


def squash(features: torch.Tensor) -> torch.Tensor:
    """Return ``sign(x) · log1p(|x|)``: monotone, parameter-free, tames heavy tails."""
    return torch.sign(features) * torch.log1p(features.abs())


def encode_features(
    rows: Sequence[Mapping[str, float]], *, feature_names: Sequence[str]
) -> torch.Tensor:
    """Stack feature mappings into a ``(len(rows), len(feature_names))`` float tensor.

    Parameters
    ----------
    rows : Sequence[Mapping[str, float]]
        One mapping per subject (e.g. ``SubjectFeatures.values``).
    feature_names : Sequence[str]
        Column order (e.g. ``client.features.FEATURE_NAMES``).

    Returns
    -------
    torch.Tensor
        float32 matrix.

    Raises
    ------
    ValueError
        If a row lacks a feature or holds a non-finite value (names the feature only).
    """
    out = torch.zeros((len(rows), len(feature_names)), dtype=torch.float32)
    for i, row in enumerate(rows):
        for j, name in enumerate(feature_names):
            if name not in row:
                raise ValueError(f"row {i} lacks feature {name!r}")
            value = float(row[name])
            if not math.isfinite(value):
                raise ValueError(f"row {i} has a non-finite value for feature {name!r}")
            out[i, j] = value
    return out


class TabularMLP(nn.Module):
    """``squash`` → (Linear → ReLU)* → Linear: one logit per binary target.

    Parameters
    ----------
    config : TabularModelConfig or None
        Architecture; the defaults when ``None``.
    """

    def __init__(self, config: TabularModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or TabularModelConfig()
        cfg = self.config
        widths = (cfg.num_features, *cfg.hidden_sizes, cfg.num_targets)
        pairs = zip(widths[:-1], widths[1:], strict=True)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in pairs)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Score a batch.

        Parameters
        ----------
        features : torch.Tensor
            ``(batch, num_features)`` raw feature values.

        Returns
        -------
        torch.Tensor
            ``(batch, num_targets)`` logits.
        """
        hidden = squash(features)
        *inner, last = self.layers
        for layer in inner:
            hidden = F.relu(layer(hidden))
        out: torch.Tensor = last(hidden)
        return out

    # ------------------------------------------------------------------ helpers (root API)
    @classmethod
    def from_seed(cls, seed: int, config: TabularModelConfig | None = None) -> TabularMLP:
        """Build a model whose initial weights depend only on ``seed`` (global RNG untouched)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return cls(config)

    @classmethod
    def from_weights(cls, weights: Mapping[str, np.ndarray]) -> TabularMLP:
        """Build a model with the architecture and values of ``get_weights`` output.

        Raises
        ------
        ValueError
            If the weights are not a tabular model's.
        """
        model = cls(TabularModelConfig.from_weights(weights))
        set_weights(model, weights)
        return model

    @classmethod
    def from_bytes(cls, data: bytes) -> TabularMLP:
        """Build a model from ``to_bytes`` output (an ``.npz`` archive, no pickle)."""
        return cls.from_weights(weights_from_bytes(data))

    def to_bytes(self) -> bytes:
        """Serialise the model's named parameters as an ``.npz`` archive."""
        return weights_to_bytes(get_weights(self))

    @staticmethod
    def loss(
        logits: torch.Tensor, *, targets: torch.Tensor, reduction: Reduction = "mean"
    ) -> torch.Tensor:
        """Loss of all targets (see ``tabular_loss``)."""
        return tabular_loss(logits, targets=targets, reduction=reduction)

    def score(self, features: torch.Tensor) -> np.ndarray:
        """Return each target's probability for a feature matrix (eval mode, no grad).

        Parameters
        ----------
        features : torch.Tensor
            ``(n, num_features)`` raw values (see ``encode_features``).

        Returns
        -------
        np.ndarray
            ``(n, num_targets)`` probabilities in [0, 1].
        """
        if features.shape[0] == 0:
            return np.zeros((0, self.config.num_targets))
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                out = self(features)
        finally:
            self.train(was_training)
        return torch.sigmoid(out).numpy().astype(float)


def tabular_loss(
    logits: torch.Tensor, *, targets: torch.Tensor, reduction: Reduction = "mean"
) -> torch.Tensor:
    """Each example's summed binary cross-entropy over its targets, reduced over the batch.

    Targets equal to ``IGNORE_TARGET`` contribute 0.

    Parameters
    ----------
    logits : torch.Tensor
        ``(batch, num_targets)`` logits.
    targets : torch.Tensor
        ``(batch, num_targets)`` float targets in {0, 1} or ``IGNORE_TARGET``.
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
    known = targets != IGNORE_TARGET
    terms = F.binary_cross_entropy_with_logits(
        logits, torch.where(known, targets, torch.zeros_like(targets)), reduction="none"
    )
    per_example = (terms * known).sum(dim=1)
    if reduction == "none":
        return per_example
    if reduction == "sum":
        return per_example.sum()
    if reduction == "mean":
        return per_example.sum() / max(per_example.shape[0], 1)
    raise ValueError("reduction must be 'mean', 'sum' or 'none'")
