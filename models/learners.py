"""What a federated run trains: one ``Learner`` per model family (``RunConfig.task``).

A learner builds its model (fresh, from a seed, or from received weights), turns examples
into one ``TensorDataset``, gives the per-example losses DP-SGD clips, and scores a dataset
(class probabilities of its main head, plus every binary head's AUC for the edge's
quality record). The training loop (``client.learning.loop``) is the same for every
learner; server, edges and simulations all build learners with ``learner_for``.

Dataset layout: the last tensor is always the main head's class labels (int64), so
metrics code reads ``data.tensors[-1]`` whatever the learner.

* ``BehaviourLearner``: ``(features, tokens, lengths, purchase, escalation, category,
  label)``; the main head is purchase (``[1 - p, p]``).
* ``TextLearner``: ``(ids, weights, target of each head..., label)``; the main head is the
  first head (intent, or the dataset's label in a simulation).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn
from torch.utils.data import TensorDataset

from .behaviour import (
    BehaviourExample,
    BehaviourModel,
    BehaviourModelConfig,
    batch_examples,
    behaviour_loss,
)
from .run_config import RunConfig
from .text import IGNORE_LABEL, TextClassifier, TextModelConfig, text_loss
from .weights import set_weights

logger = logging.getLogger(__name__)


class Learner(Protocol):
    """A model family: build, encode, per-example losses, scores."""

    @property
    def name(self) -> str:
        """Model name in the edge store, the ledger and the server's records."""
        ...

    @property
    def num_classes(self) -> int:
        """Classes of the main head."""
        ...

    @property
    def architecture(self) -> dict[str, Any]:
        """The model's architecture as JSON values (what rebuilds it from its weights)."""
        ...

    @property
    def label_columns(self) -> tuple[int, ...]:
        """Columns of an encoded dataset that hold the main head's label (training, scoring)."""
        ...

    def quality_features(self, data: TensorDataset) -> np.ndarray:
        """Return an ``(n, k)`` numeric summary per example for data-quality checks (PSI)."""
        ...

    def new_model(self, seed: int) -> nn.Module:
        """Return a fresh model whose weights depend only on ``seed``."""
        ...

    def model_from_weights(self, weights: Mapping[str, np.ndarray]) -> nn.Module:
        """Return a model carrying ``weights`` (``ValueError`` if they do not fit)."""
        ...

    def losses(self, model: nn.Module, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        """Return the ``(batch,)`` per-example losses (``torch.zeros(0)`` for an empty batch)."""
        ...

    def probabilities(self, model: nn.Module, data: TensorDataset) -> np.ndarray:
        """Return ``(n, num_classes)`` main-head probabilities (eval mode, no gradients)."""
        ...

    def head_aucs(self, model: nn.Module, data: TensorDataset) -> dict[str, float]:
        """Return each head's AUC on its labelled examples (0.5 when a class is missing)."""
        ...


def binary_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Return scikit-learn's ROC AUC, or 0.5 when a class is missing."""
    labels = np.asarray(labels).astype(bool)
    if labels.all() or not labels.any():
        return 0.5
    return float(roc_auc_score(labels, scores))


def class_auc(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """AUC of class probabilities: binary, or the mean one-vs-rest AUC of present classes."""
    if probabilities.shape[1] == 2:
        return binary_auc(labels == 1, probabilities[:, 1])
    aucs = [
        binary_auc(labels == c, probabilities[:, c])
        for c in range(probabilities.shape[1])
        if (labels == c).any() and (labels != c).any()
    ]
    return float(np.mean(aucs)) if aucs else 0.5


class _Eval:
    """Eval mode and no gradients for the block; the previous mode is restored."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.was_training = model.training
        self._grad = torch.no_grad()

    def __enter__(self) -> None:
        self.model.eval()
        self._grad.__enter__()

    def __exit__(self, *exc: object) -> None:
        self._grad.__exit__(None, None, None)
        self.model.train(self.was_training)


@dataclass(frozen=True)
class BehaviourLearner:
    """The behaviour model on per-subject examples; the main head is purchase.

    Parameters
    ----------
    config : BehaviourModelConfig
        Architecture (``num_features`` must match the examples).
    max_len : int
        Event tokens kept per example (sequence part only).
    """

    config: BehaviourModelConfig
    max_len: int = 64
    name: str = "behaviour"
    num_classes: int = 2
    #: The purchase column the loss reads and the int64 copy appended for scoring.
    label_columns: tuple[int, ...] = (3, -1)

    @property
    def architecture(self) -> dict[str, Any]:
        """The architecture config as JSON values (kept with a received global model)."""
        return self.config.model_dump(mode="json")

    def encode(self, examples: Sequence[BehaviourExample]) -> TensorDataset:
        """Tensors of the examples; the purchase label is appended as the int64 class."""
        batch = batch_examples(
            examples,
            num_features=self.config.num_features,
            max_len=self.max_len if self.config.sequence else 1,
        )
        return TensorDataset(*batch, batch.purchase.to(torch.int64))

    def quality_features(self, data: TensorDataset) -> np.ndarray:
        """Return the behaviour features and the event-sequence length of each example."""
        features = data.tensors[0].numpy().astype(np.float64)
        lengths = data.tensors[2].numpy().astype(np.float64).reshape(len(features), -1)
        return np.concatenate([features.reshape(len(features), -1), lengths[:, :1]], axis=1)

    def new_model(self, seed: int) -> nn.Module:
        """Return a fresh behaviour model initialised from ``seed``."""
        return BehaviourModel.from_seed(seed, self.config)

    def model_from_weights(self, weights: Mapping[str, np.ndarray]) -> nn.Module:
        """Return a model of this learner's architecture carrying ``weights``."""
        model = BehaviourModel(self.config)
        set_weights(model, weights)
        return model

    def losses(self, model: nn.Module, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        """Per-example loss of the three heads."""
        features, tokens, lengths, purchase, escalation, category = batch[:6]
        if features.shape[0] == 0:
            return torch.zeros(0)
        losses: torch.Tensor = behaviour_loss(
            model(features, tokens, lengths),
            purchase=purchase,
            escalation=escalation,
            category=category,
            reduction="none",
        )
        return losses

    def _heads(self, model: nn.Module, data: TensorDataset) -> tuple[np.ndarray, np.ndarray]:
        features, tokens, lengths = data.tensors[:3]
        with _Eval(model):
            out = model(features, tokens, lengths)
        return (
            torch.sigmoid(out.purchase).numpy().astype(np.float64),
            torch.sigmoid(out.escalation).numpy().astype(np.float64),
        )

    def probabilities(self, model: nn.Module, data: TensorDataset) -> np.ndarray:
        """``[1 - p, p]`` of the purchase head."""
        purchase, _ = self._heads(model, data)
        return np.stack([1.0 - purchase, purchase], axis=1)

    def head_aucs(self, model: nn.Module, data: TensorDataset) -> dict[str, float]:
        """AUC of the purchase and escalation heads."""
        purchase, escalation = self._heads(model, data)
        return {
            "purchase": binary_auc(data.tensors[3].numpy(), purchase),
            "escalation": binary_auc(data.tensors[4].numpy(), escalation),
        }


@dataclass(frozen=True)
class TextLearner:
    """The text model on masked messages; the main head is the config's first head.

    Parameters
    ----------
    config : TextModelConfig
        Features and heads.
    """

    config: TextModelConfig = field(default_factory=TextModelConfig)
    name: str = "text"

    @property
    def main_head(self) -> str:
        """Name of the head scored by ``probabilities`` (the first one)."""
        return next(iter(self.config.heads))

    @property
    def num_classes(self) -> int:
        """Classes of the main head."""
        return self.config.heads[self.main_head]

    @property
    def label_columns(self) -> tuple[int, ...]:
        """The main head's target column (after ids and weights) and the label copy."""
        return (2, -1)

    @property
    def architecture(self) -> dict[str, Any]:
        """The architecture config as JSON values (kept with a received global model)."""
        return self.config.model_dump(mode="json")

    def encode(self, texts: Sequence[str], targets: Mapping[str, np.ndarray]) -> TensorDataset:
        """Encode masked texts once: ``(ids, weights, one target per head, label)``.

        Parameters
        ----------
        texts : Sequence[str]
            Masked messages.
        targets : Mapping[str, np.ndarray]
            Head name to class indices (``IGNORE_LABEL`` where unknown); heads without
            targets are ignored by the loss.

        Returns
        -------
        TensorDataset
            The encoded dataset.
        """
        batch = self.config.featurizer.encode(texts)
        n = len(texts)
        columns = [
            torch.as_tensor(np.asarray(targets.get(name, np.full(n, IGNORE_LABEL)), dtype=np.int64))
            for name in self.config.heads
        ]
        return TensorDataset(batch.ids, batch.weights, *columns, columns[0].clone())

    def quality_features(self, data: TensorDataset) -> np.ndarray:
        """Return, per message, the features present (non-padding ids) and their weight."""
        weights = data.tensors[1]
        present = (weights != 0).sum(dim=1).numpy().astype(np.float64)
        total = weights.abs().sum(dim=1).numpy().astype(np.float64)
        return np.stack([present, total], axis=1)

    def new_model(self, seed: int) -> nn.Module:
        """Return a fresh text model (zero tables)."""
        return TextClassifier.from_seed(seed, self.config)

    def model_from_weights(self, weights: Mapping[str, np.ndarray]) -> nn.Module:
        """Return a model of this learner's architecture carrying ``weights``."""
        model = TextClassifier(self.config)
        set_weights(model, weights)
        return model

    def losses(self, model: nn.Module, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        """Per-example cross-entropy summed over the heads."""
        ids, weights = batch[0], batch[1]
        if ids.shape[0] == 0:
            return torch.zeros(0)
        targets = dict(zip(self.config.heads, batch[2 : 2 + len(self.config.heads)], strict=True))
        losses: torch.Tensor = text_loss(model(ids, weights), targets, reduction="none")
        return losses

    def probabilities(self, model: nn.Module, data: TensorDataset) -> np.ndarray:
        """Softmax of the main head."""
        ids, weights = data.tensors[0], data.tensors[1]
        with _Eval(model):
            logits = model(ids, weights)[self.main_head]
        return torch.softmax(logits, dim=-1).numpy().astype(np.float64)

    def head_aucs(self, model: nn.Module, data: TensorDataset) -> dict[str, float]:
        """AUC of every head on its labelled examples (one-vs-rest mean for multi-class).

        Heads without a labelled example report none; the edge's quality gate reads these
        before it publishes a head's signals.
        """
        ids, weights = data.tensors[0], data.tensors[1]
        if ids.shape[0] == 0:
            return {}
        with _Eval(model):
            logits = model(ids, weights)
        out: dict[str, float] = {}
        for index, head in enumerate(self.config.heads):
            labels = data.tensors[2 + index].numpy()
            known = labels != IGNORE_LABEL
            if known.any():
                probabilities = torch.softmax(logits[head], dim=-1).numpy()
                out[head] = class_auc(labels[known], probabilities[known])
        return out


def behaviour_config(config: RunConfig, *, num_features: int) -> BehaviourModelConfig:
    """Return the behaviour architecture a run config names, for ``num_features`` inputs."""
    return BehaviourModelConfig(
        num_features=num_features,
        hidden=config.behaviour_hidden,
        sequence=config.behaviour_sequence,
    )


def text_config(config: RunConfig, *, heads: Mapping[str, int] | None = None) -> TextModelConfig:
    """Return the text architecture a run config names (default heads when ``None``)."""
    base = TextModelConfig(vocabulary=config.text_vocabulary, buckets=config.text_buckets)
    return base if heads is None else base.model_copy(update={"heads": dict(heads)})


def initial_weights(config: RunConfig) -> dict[str, np.ndarray]:
    """Return the initial global model of a run: the task's architecture from ``seed``.

    The behaviour model takes ``BEHAVIOUR_FEATURES`` as inputs; the text model has the
    default heads (intent, emotion, urgency). Simulations that size heads to a dataset pass
    their own initial weights.
    """
    from .behaviour import BEHAVIOUR_FEATURES
    from .weights import get_weights

    if config.task == "text":
        return get_weights(TextClassifier.from_seed(config.seed, text_config(config)))
    architecture = behaviour_config(config, num_features=len(BEHAVIOUR_FEATURES))
    return get_weights(BehaviourModel.from_seed(config.seed, architecture))
