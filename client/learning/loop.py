"""The one local training loop: every edge, simulated edge and centralized baseline runs it.

``train_round`` trains a model in place for ``dp.local_epochs`` epochs on one
``TensorDataset`` (one example per privacy unit): DP-SGD through ``privacy.DPTrainer``
(Poisson sampling, exact per-example clipping, Gaussian noise) when ``dp.enabled``, plain
minibatch training otherwise; the optimizer is SGD or Adam (``dp.optimizer``), applied to
the noised gradient under DP (post-processing). A fresh optimizer per round: its state
does not leave the edge. It returns the ``(σ, q, steps)`` history the ledger charges (a
non-private round reports σ = 0, which the ledger accounts as ε = ∞). ``evaluate``
scores a model on held-out examples: loss, main-head accuracy and AUC, and every binary
head's AUC.

DP noise comes from an OS-seeded generator unless the caller passes one (simulations do,
so experiments repeat; ``privacy.DPTrainer`` warns that such noise is for experiments
only). ``seed`` fixes data order and Poisson sampling only.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from models.learners import Learner, class_auc
from privacy import DPConfig, DPTrainer

logger = logging.getLogger(__name__)

#: ``(σ, q, steps)`` entries of the steps a round took.
History = tuple[tuple[float, float, int], ...]


@dataclass(frozen=True, slots=True)
class TrainResult:
    """Outcome of one round of local training.

    ``history`` holds the ``(σ, q, steps)`` entries of the steps taken, for the ledger;
    a non-private round reports σ = 0.
    """

    loss: float
    num_examples: int
    history: History
    seconds: float


@dataclass(frozen=True, slots=True)
class EvalResult:
    """A model scored on held-out examples.

    ``accuracy`` and ``auc`` are the main head's (AUC one-vs-rest averaged for more than
    two classes; 0.5 when a class is missing); ``head_aucs`` holds every binary head's AUC.
    """

    loss: float
    accuracy: float
    auc: float
    num_examples: int
    head_aucs: dict[str, float] = field(default_factory=dict)


@contextmanager
def torch_single_thread() -> Iterator[None]:
    """Run torch single-threaded (restored afterwards).

    The edge models are small: intra-op threads only contend with other processes on a
    shared machine. Also silences the benign "full backward hook" warning of Opacus.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            yield
    finally:
        torch.set_num_threads(previous)


def train_round(
    model: nn.Module,
    data: TensorDataset,
    *,
    learner: Learner,
    dp: DPConfig,
    seed: int,
    noise_generator: torch.Generator | None = None,
) -> TrainResult:
    """Train ``model`` in place for ``dp.local_epochs`` epochs on ``data``.

    Parameters
    ----------
    model : nn.Module
        The model (global weights loaded); updated in place.
    data : TensorDataset
        Training examples, one per privacy unit (at least one).
    learner : Learner
        Gives the per-example losses.
    dp : DPConfig
        Batch size, epochs, learning rate, and DP-SGD (σ, C) when ``enabled``.
    seed : int
        Seeds data order and Poisson sampling (not the DP noise).
    noise_generator : torch.Generator or None
        Explicit DP noise source (experiments only); OS-seeded when ``None``.

    Returns
    -------
    TrainResult
        Mean per-example loss, example count, step history and duration.

    Raises
    ------
    ValueError
        If ``data`` is empty.
    """
    n = len(data)
    if n == 0:
        raise ValueError("data must not be empty")
    started = time.perf_counter()
    loader = DataLoader(
        data,
        batch_size=dp.batch_size,
        shuffle=not dp.enabled,
        generator=torch.Generator().manual_seed(seed),
    )
    optimizer: torch.optim.Optimizer = (
        torch.optim.AdamW(model.parameters(), lr=dp.learning_rate, weight_decay=dp.weight_decay)
        if dp.optimizer == "adam"
        else torch.optim.SGD(model.parameters(), lr=dp.learning_rate, weight_decay=dp.weight_decay)
    )
    model.train()
    total, seen = 0.0, 0
    with torch_single_thread():
        if dp.enabled:
            with DPTrainer(dp).make_private(
                module=model, optimizer=optimizer, data_loader=loader, generator=noise_generator
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
    seconds = time.perf_counter() - started
    logger.info("local round: %d examples, %.2f s", n, seconds)
    return TrainResult(loss=total / max(seen, 1), num_examples=n, history=history, seconds=seconds)


def evaluate(model: nn.Module, data: TensorDataset, *, learner: Learner) -> EvalResult:
    """Score ``model`` on held-out examples (no gradients, model left unchanged).

    Returns
    -------
    EvalResult
        Zeros and AUC 0.5 when ``data`` is empty.
    """
    n = len(data)
    if n == 0:
        return EvalResult(loss=0.0, accuracy=0.0, auc=0.5, num_examples=0)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), torch_single_thread():
            loss = float(learner.losses(model, data.tensors).mean())
            probabilities = learner.probabilities(model, data)
            heads = learner.head_aucs(model, data)
    finally:
        model.train(was_training)
    labels = data.tensors[-1].numpy().astype(np.int64)
    known = labels >= 0
    accuracy = float(np.mean(probabilities[known].argmax(axis=1) == labels[known]))
    return EvalResult(
        loss=loss,
        accuracy=accuracy,
        auc=main_auc(labels[known], probabilities[known]),
        num_examples=n,
        head_aucs=heads,
    )


def main_auc(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """AUC of class probabilities: binary, or the mean one-vs-rest AUC of present classes."""
    return class_auc(labels, probabilities)
