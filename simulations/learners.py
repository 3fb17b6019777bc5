"""What a simulation trains: a model family, its tensors, losses and predictions per task.

A ``Learner`` turns a task's examples into one ``TensorDataset`` and knows how to build the
model, compute per-example losses (what DP-SGD clips) and predict class probabilities.
``TextLearner`` trains ``models.TextClassifier`` (hashed character n-grams; its intent head
sized to the dataset's classes, the emotion head unused); ``BehaviourLearner`` trains
``models.BehaviourGRU`` on edge-built sequence examples and scores its purchase head.

``train_epochs`` is the one local-training loop every setting shares (federated edges,
centralized and local-only baselines): DP-SGD through ``privacy.DPTrainer`` (Poisson
sampling, exact per-example clipping, Gaussian noise), or plain minibatch SGD when DP is
off. Simulations seed the noise generator so a run is reproducible; such noise is for
experiments only (``privacy.DPTrainer`` warns; the warning is silenced here because every
simulation is an experiment).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from models import (
    BehaviourGRU,
    SequenceExample,
    TextClassifier,
    TextModelConfig,
    get_weights,
    set_weights,
)
from privacy import DPConfig, DPTrainer

logger = logging.getLogger(__name__)

#: Target the text loss ignores (``models.text.IGNORE_LABEL``): the emotion head is unused.
IGNORE_LABEL = -100

History = tuple[tuple[float, float, int], ...]


class Learner(Protocol):
    """A task's model family: build, per-example losses, class probabilities."""

    @property
    def num_classes(self) -> int:
        """Number of classes the model predicts."""
        ...

    def new_model(self, seed: int) -> nn.Module:
        """Return a fresh model whose weights depend only on ``seed``."""
        ...

    def losses(self, model: nn.Module, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        """Return the ``(batch,)`` per-example losses."""
        ...

    def probabilities(self, model: nn.Module, data: TensorDataset) -> np.ndarray:
        """Return ``(n, num_classes)`` class probabilities (eval mode, no gradients)."""
        ...


def labels_of(data: TensorDataset) -> np.ndarray:
    """Return the class labels of a learner's dataset (its last tensor)."""
    return data.tensors[-1].numpy().astype(np.int64)


def subset(data: TensorDataset, indices: np.ndarray) -> TensorDataset:
    """Return the rows ``indices`` of ``data`` as a new dataset."""
    index = torch.as_tensor(np.asarray(indices, dtype=np.int64))
    return TensorDataset(*(t[index] for t in data.tensors))


@dataclass(frozen=True)
class TextLearner:
    """The text model over a labelled text dataset.

    Parameters
    ----------
    num_classes : int
        Classes of the dataset (the intent head's size).
    config : TextModelConfig
        Model and n-gram encoding; ``num_intents`` is replaced by ``num_classes``.
    """

    num_classes: int
    config: TextModelConfig = TextModelConfig()

    @property
    def model_config(self) -> TextModelConfig:
        """The model configuration with the intent head sized to the classes."""
        return self.config.model_copy(update={"num_intents": self.num_classes})

    def encode(self, texts: Sequence[str], labels: np.ndarray) -> TensorDataset:
        """Encode (masked) texts once: ``(ids, weights, labels)`` tensors."""
        model = TextClassifier(self.model_config)
        batch = model.encode(list(texts))
        return TensorDataset(batch.ids, batch.weights, torch.as_tensor(labels, dtype=torch.int64))

    def new_model(self, seed: int) -> nn.Module:
        """Return a fresh text model initialised from ``seed``."""
        model: nn.Module = TextClassifier.from_seed(seed, self.model_config)
        return model

    def losses(self, model: nn.Module, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        """Per-example cross-entropy of the intent head (the emotion head is ignored)."""
        ids, weights, labels = batch
        if ids.shape[0] == 0:
            return torch.zeros(0)
        output = model(ids, weights)
        ignored = torch.full_like(labels, IGNORE_LABEL)
        losses: torch.Tensor = TextClassifier.loss(
            output, intent=labels, emotion=ignored, reduction="none"
        )
        return losses

    def probabilities(self, model: nn.Module, data: TensorDataset) -> np.ndarray:
        """Softmax of the intent head."""
        ids, weights, _ = data.tensors
        with _eval(model):
            out = model(ids, weights)
        return torch.softmax(out.intent, dim=-1).numpy().astype(np.float64)


@dataclass(frozen=True)
class BehaviourLearner:
    """The behaviour model on sequence examples; the class is the purchase label (0/1).

    Parameters
    ----------
    max_len : int
        Padded history length (``models.SequenceSpec.max_len``).
    """

    max_len: int = 64
    num_classes: int = 2

    def encode(self, examples: Sequence[SequenceExample]) -> TensorDataset:
        """Tensors of the examples; the purchase label is appended as int64 class."""
        batch = BehaviourGRU.batch(examples, max_len=self.max_len)
        return TensorDataset(*batch, batch.purchase.to(torch.int64))

    def new_model(self, seed: int) -> nn.Module:
        """Return a fresh behaviour model initialised from ``seed``."""
        model: nn.Module = BehaviourGRU.from_seed(seed)
        return model

    def losses(self, model: nn.Module, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        """Per-example loss of the three heads (as the edge trains it)."""
        tokens, lengths, purchase, escalation, category, _ = batch
        if tokens.shape[0] == 0:
            return torch.zeros(0)
        losses: torch.Tensor = BehaviourGRU.loss(
            model(tokens, lengths),
            purchase=purchase,
            escalation=escalation,
            category=category,
            reduction="none",
        )
        return losses

    def probabilities(self, model: nn.Module, data: TensorDataset) -> np.ndarray:
        """``[1 - p, p]`` of the purchase head."""
        tokens, lengths = data.tensors[0], data.tensors[1]
        with _eval(model):
            p = torch.sigmoid(model(tokens, lengths).purchase).numpy().astype(np.float64)
        return np.stack([1.0 - p, p], axis=1)


class _eval:
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


def weights_of(model: nn.Module) -> dict[str, np.ndarray]:
    """Return the model's named parameters as arrays (what crosses the learning plane)."""
    weights: dict[str, np.ndarray] = get_weights(model)
    return weights


def load_weights(model: nn.Module, weights: Mapping[str, np.ndarray]) -> nn.Module:
    """Set the model's parameters from ``weights``; return the model."""
    set_weights(model, weights)
    return model


def train_epochs(
    model: nn.Module,
    data: TensorDataset,
    *,
    learner: Learner,
    dp: DPConfig,
    seed: int,
) -> tuple[float, History]:
    """Train ``model`` in place for ``dp.local_epochs`` epochs; return loss and step history.

    Parameters
    ----------
    model : nn.Module
        The model (global weights loaded).
    data : TensorDataset
        Training examples (one per privacy unit for DP-SGD to be unit-level).
    learner : Learner
        Gives the per-example losses.
    dp : DPConfig
        Batch size, epochs, learning rate, and DP-SGD (σ, C) when ``enabled``.
    seed : int
        Seeds data order, Poisson sampling and (DP) the noise generator.

    Returns
    -------
    tuple[float, History]
        Mean per-example loss and the ``(σ, q, steps)`` history (σ = 0 when not private).

    Raises
    ------
    ValueError
        If ``data`` is empty.
    """
    n = len(data)
    if n == 0:
        raise ValueError("data must not be empty")
    loader = DataLoader(
        data,
        batch_size=dp.batch_size,
        shuffle=not dp.enabled,
        generator=torch.Generator().manual_seed(seed),
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=dp.learning_rate)
    model.train()
    total, seen = 0.0, 0
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*explicit generator.*")
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            if dp.enabled:
                noise = torch.Generator().manual_seed(seed ^ 0x5EED)
                with DPTrainer(dp).make_private(
                    module=model, optimizer=optimizer, data_loader=loader, generator=noise
                ) as private:
                    for _ in range(dp.local_epochs):
                        for batch in private.data_loader:
                            losses = learner.losses(private.module, batch)
                            private.step(losses)
                            total += float(losses.detach().sum())
                            seen += int(batch[0].shape[0])
                    history: History = tuple(private.history)
            else:
                steps = 0
                for _ in range(dp.local_epochs):
                    for batch in loader:
                        losses = learner.losses(model, batch)
                        optimizer.zero_grad()
                        torch.autograd.backward(losses.mean())
                        optimizer.step()
                        total += float(losses.detach().sum())
                        seen += int(batch[0].shape[0])
                        steps += 1
                history = ((0.0, min(1.0, dp.batch_size / n), steps),)
    finally:
        torch.set_num_threads(previous)
    return total / max(seen, 1), history
