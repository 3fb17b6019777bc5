"""Local training of the behaviour model on one edge, scoped to model-training consent.

Only subjects whose consent for ``Purpose.MODEL_TRAINING`` is granted at the round time
contribute, and only with events that happened before that time. Each subject gives at
most one example, so DP-SGD here is user-level DP on this edge. Training runs DP-SGD
through ``privacy.DPTrainer`` (or plain SGD when DP is disabled, which the ledger then
accounts as a release with no noise, i.e. ε = ∞).
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

from consent import Purpose
from models import BehaviourGRU, SequenceExample, SequenceSpec, make_examples
from privacy import DPConfig, DPTrainer, PrivateTraining

from .store import EdgeStore, StoredEvent, to_epoch

logger = logging.getLogger(__name__)

#: Name of the behaviour model in the edge store and the privacy ledger.
BEHAVIOUR_MODEL = "behaviour"

History = tuple[tuple[float, float, int], ...]


@dataclass(frozen=True, slots=True)
class ConsentedExamples:
    """Examples of the subjects who consented to model training, split for evaluation."""

    train: list[SequenceExample]
    holdout: list[SequenceExample]
    subjects_included: int
    subjects_excluded: int


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


@contextmanager
def torch_single_thread() -> Iterator[None]:
    """Run torch single-threaded (restored afterwards).

    The behaviour model is tiny: intra-op threads only contend with other processes on
    a shared machine (measured here: 0.35 s vs 4-13 s per local round with 2 threads
    on a loaded 2-core box). Also silences the benign "full backward hook" warning that
    Opacus's hooks raise because token inputs carry no gradient.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            yield
    finally:
        torch.set_num_threads(previous)


def consented_subjects(store: EdgeStore, *, at: datetime) -> tuple[list[str], int]:
    """Return the subjects whose model-training consent holds at ``at``, and how many do not.

    Parameters
    ----------
    store : EdgeStore
        The edge's store.
    at : datetime
        Moment of use (the round time); timezone-aware.

    Returns
    -------
    tuple[list[str], int]
        Included pseudonyms (sorted) and the number of excluded subjects.
    """
    states = store.consent_states()
    subjects = store.subjects()
    included = [
        s for s in subjects if s in states and states[s].is_granted(Purpose.MODEL_TRAINING, at)
    ]
    return included, len(subjects) - len(included)


def load_examples(store: EdgeStore, *, at: datetime, spec: SequenceSpec) -> ConsentedExamples:
    """Build training and held-out examples from consented subjects' events before ``at``.

    Events of subjects without model-training consent are never read.
    """
    included, excluded = consented_subjects(store, at=at)
    horizon = to_epoch(at)
    events: dict[str, list[StoredEvent]] = {}
    for subject in included:
        events[subject] = [e for e in store.iter_events(subject=subject) if e.ts <= horizon]
    train, holdout = spec.split(make_examples(events, spec=spec))
    logger.info(
        "training data: %d subjects included, %d excluded, %d train / %d held-out examples",
        len(included),
        excluded,
        len(train),
        len(holdout),
    )
    return ConsentedExamples(train, holdout, len(included), excluded)


def planned_schedule(num_examples: int, *, dp: DPConfig) -> tuple[float, int]:
    """Return the (sample rate q, steps) a round will use for ``num_examples`` examples.

    Matches Opacus: q = 1 / ceil(n / batch_size), ``local_epochs / q`` steps.
    """
    if num_examples < 1:
        raise ValueError("num_examples must be at least 1")
    batches = math.ceil(num_examples / dp.batch_size)
    return 1.0 / batches, batches * dp.local_epochs


def _dataset(examples: Sequence[SequenceExample], *, spec: SequenceSpec) -> TensorDataset:
    return TensorDataset(*BehaviourGRU.batch(examples, max_len=spec.max_len))


def _losses(model: BehaviourGRU, batch: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-example losses of a batch; ``torch.zeros(0)`` for an empty Poisson batch."""
    tokens, lengths, purchase, escalation, category = batch
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


def _private_step(private: PrivateTraining, batch: Sequence[torch.Tensor]) -> float:
    """One DP-SGD step (an empty Poisson batch still steps: noise only, accounted)."""
    losses = _losses(private.module, batch)
    private.step(losses)
    return float(losses.detach().sum())


def _plain_step(model: BehaviourGRU, batch: Sequence[torch.Tensor], optimizer: Any) -> float:
    """One non-private optimizer step on the batch mean loss."""
    losses = _losses(model, batch)
    if losses.shape[0] == 0:
        return 0.0
    optimizer.zero_grad()
    torch.autograd.backward(losses.mean())
    optimizer.step()
    return float(losses.detach().sum())


def train_local(
    model: BehaviourGRU,
    examples: Sequence[SequenceExample],
    *,
    dp: DPConfig,
    spec: SequenceSpec,
    seed: int,
    noise_generator: torch.Generator | None = None,
) -> TrainResult:
    """Train ``model`` in place for one round on the given examples.

    Parameters
    ----------
    model : BehaviourGRU
        Model holding the global weights; updated in place.
    examples : Sequence[SequenceExample]
        One example per consented subject (at least one).
    dp : DPConfig
        DP-SGD and optimisation settings.
    spec : SequenceSpec
        Gives the padded length.
    seed : int
        Seeds data order and Poisson sampling (not the DP noise).
    noise_generator : torch.Generator or None
        Explicit DP noise source (experiments only); OS-seeded when ``None``.

    Returns
    -------
    TrainResult
        Mean per-example loss over the round, example count, step history, duration.
    """
    if not examples:
        raise ValueError("examples must not be empty")
    started = time.perf_counter()
    loader = DataLoader(
        _dataset(examples, spec=spec),
        batch_size=dp.batch_size,
        shuffle=not dp.enabled,
        generator=torch.Generator().manual_seed(seed),
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=dp.learning_rate)
    model.train()
    with torch_single_thread():
        loss, history = _run_epochs(
            model, loader, optimizer, dp=dp, n=len(examples), noise_generator=noise_generator
        )
    seconds = time.perf_counter() - started
    logger.info("local round: %d examples, %.2f s", len(examples), seconds)
    return TrainResult(loss=loss, num_examples=len(examples), history=history, seconds=seconds)


def _run_epochs(
    model: BehaviourGRU,
    loader: DataLoader[Any],
    optimizer: torch.optim.Optimizer,
    *,
    dp: DPConfig,
    n: int,
    noise_generator: torch.Generator | None,
) -> tuple[float, History]:
    """Run the round's epochs; return the mean per-example loss and the step history."""
    total, seen = 0.0, 0
    if dp.enabled:
        with DPTrainer(dp).make_private(
            module=model, optimizer=optimizer, data_loader=loader, generator=noise_generator
        ) as private:
            for _ in range(dp.local_epochs):
                for batch in private.data_loader:
                    total += _private_step(private, batch)
                    seen += int(batch[0].shape[0])
            history: History = tuple(private.history)
    else:
        steps = 0
        for _ in range(dp.local_epochs):
            for batch in loader:
                total += _plain_step(model, batch, optimizer)
                seen += int(batch[0].shape[0])
                steps += 1
        history = ((0.0, min(1.0, dp.batch_size / n), steps),)
    return total / max(seen, 1), history


@dataclass(frozen=True, slots=True)
class EvalResult:
    """Held-out evaluation of the global model on one edge.

    ``auc`` and ``accuracy`` are those of the purchase-propensity head (accuracy at a 0.5
    threshold; AUC is 0.5 when the held-out labels are all one class); ``escalation_auc``
    is the escalation head's AUC.
    """

    loss: float
    auc: float
    accuracy: float
    num_examples: int
    escalation_auc: float = 0.5


def roc_auc(labels: Sequence[float], scores: Sequence[float]) -> float:
    """Return the ROC AUC (Mann-Whitney, ties count half); 0.5 if a class is missing."""
    pos = [s for y, s in zip(labels, scores, strict=True) if y >= 0.5]
    neg = [s for y, s in zip(labels, scores, strict=True) if y < 0.5]
    if not pos or not neg:
        return 0.5
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return float(wins) / (len(pos) * len(neg))


def evaluate_local(
    model: BehaviourGRU, examples: Sequence[SequenceExample], *, spec: SequenceSpec
) -> EvalResult:
    """Evaluate ``model`` on held-out examples (no gradients, model left unchanged).

    Returns
    -------
    EvalResult
        Mean loss and purchase-head AUC / accuracy; zeros and 0.5 AUC with no examples.
    """
    if not examples:
        return EvalResult(loss=0.0, auc=0.5, accuracy=0.0, num_examples=0)
    batch = BehaviourGRU.batch(examples, max_len=spec.max_len)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), torch_single_thread():
            output = model(batch.tokens, batch.lengths)
            loss = BehaviourGRU.loss(
                output,
                purchase=batch.purchase,
                escalation=batch.escalation,
                category=batch.category,
            )
    finally:
        model.train(was_training)
    probs = torch.sigmoid(output.purchase).tolist()
    labels = batch.purchase.tolist()
    correct = sum((p >= 0.5) == (y >= 0.5) for p, y in zip(probs, labels, strict=True))
    return EvalResult(
        loss=float(loss),
        auc=roc_auc(labels, probs),
        accuracy=correct / len(examples),
        num_examples=len(examples),
        escalation_auc=roc_auc(
            batch.escalation.tolist(), torch.sigmoid(output.escalation).tolist()
        ),
    )
