"""The one local training loop and held-out evaluation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from client.learning.loop import evaluate, main_auc, train_round
from client.learning.store_source import behaviour_data
from client.store import EdgeStore
from models import RunConfig, get_weights
from models.learners import Learner
from privacy import DPConfig
from privacy.calibration import planned_schedule

from ..training_factories import NOW, make_edge


def _data(tmp_path: Path, subjects: int) -> tuple[Learner, TensorDataset, TensorDataset]:
    make_edge(tmp_path, subjects=subjects)
    with EdgeStore.for_edge_dir(tmp_path) as store:
        data = behaviour_data(store, config=RunConfig(), at=NOW)
    return data.learner, data.train, data.holdout


def _changed(before: dict[str, np.ndarray], model: torch.nn.Module) -> bool:
    after = get_weights(model)
    return any(not np.array_equal(before[k], after[k]) for k in before)


def test_train_round_dp_history_matches_plan_and_updates_model(tmp_path: Path) -> None:
    learner, train, _ = _data(tmp_path, 40)
    dp = DPConfig(noise_multiplier=1.1, batch_size=8, local_epochs=2)
    model = learner.new_model(0)
    before = get_weights(model)

    result = train_round(model, train, learner=learner, dp=dp, seed=1)

    q, steps = planned_schedule(len(train), dp=dp)
    assert result.history == ((1.1, q, steps),)
    assert result.num_examples == len(train)
    assert math.isfinite(result.loss) and result.loss > 0
    assert _changed(before, model)


def test_train_round_without_dp_reports_zero_noise(tmp_path: Path) -> None:
    learner, train, _ = _data(tmp_path, 12)

    result = train_round(
        learner.new_model(0),
        train,
        learner=learner,
        dp=DPConfig(enabled=False, batch_size=4),
        seed=0,
    )

    assert result.history[0][0] == 0.0
    assert result.history[0][2] == math.ceil(len(train) / 4)


def test_train_round_empty_poisson_batches_still_step_and_count(tmp_path: Path) -> None:
    learner, train, _ = _data(tmp_path, 6)
    three = TensorDataset(*(t[:3] for t in train.tensors))
    dp = DPConfig(batch_size=1, local_epochs=10)  # q = 1/3: P(empty batch) = 8/27 per step

    result = train_round(learner.new_model(0), three, learner=learner, dp=dp, seed=0)

    assert result.history == ((1.0, 1 / 3, 30),)


def test_train_round_same_seed_and_noise_generator_is_reproducible(tmp_path: Path) -> None:
    learner, train, _ = _data(tmp_path, 20)
    runs = []
    for _ in range(2):
        model = learner.new_model(0)
        with pytest.warns(UserWarning, match="experiments only"):
            train_round(
                model,
                train,
                learner=learner,
                dp=DPConfig(batch_size=4),
                seed=3,
                noise_generator=torch.Generator().manual_seed(5),
            )
        runs.append(get_weights(model))

    assert all(np.array_equal(runs[0][k], runs[1][k]) for k in runs[0])


def test_train_round_no_examples_raises(tmp_path: Path) -> None:
    learner, train, _ = _data(tmp_path, 4)
    empty = TensorDataset(*(t[:0] for t in train.tensors))

    with pytest.raises(ValueError, match="empty"):
        train_round(learner.new_model(0), empty, learner=learner, dp=DPConfig(), seed=0)


def test_evaluate_metrics_in_range_and_model_unchanged(tmp_path: Path) -> None:
    learner, _, holdout = _data(tmp_path, 60)
    model = learner.new_model(0)
    before = get_weights(model)

    result = evaluate(model, holdout, learner=learner)

    assert result.num_examples == len(holdout) > 0
    assert result.loss > 0 and 0.0 <= result.auc <= 1.0 and 0.0 <= result.accuracy <= 1.0
    assert set(result.head_aucs) == {"purchase", "escalation"}
    assert result.auc == result.head_aucs["purchase"]
    assert not _changed(before, model)


def test_evaluate_no_examples_gives_neutral_metrics(tmp_path: Path) -> None:
    learner, train, _ = _data(tmp_path, 4)
    empty = TensorDataset(*(t[:0] for t in train.tensors))

    result = evaluate(learner.new_model(0), empty, learner=learner)

    assert (result.num_examples, result.auc, result.loss) == (0, 0.5, 0.0)


@pytest.mark.parametrize(
    ("labels", "probabilities", "expected"),
    [
        ([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1], 1.0),
        ([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9], 0.0),
        ([1, 0], [0.5, 0.5], 0.5),
        ([1, 0, 1, 0], [0.9, 0.8, 0.3, 0.1], 0.75),
        ([1, 1, 1], [0.2, 0.3, 0.4], 0.5),  # one class only
    ],
)
def test_main_auc_binary_table(
    labels: list[int], probabilities: list[float], expected: float
) -> None:
    p = np.array(probabilities)
    assert main_auc(np.array(labels), np.stack([1 - p, p], axis=1)) == pytest.approx(expected)


def test_main_auc_multiclass_averages_present_classes_one_vs_rest() -> None:
    labels = np.array([0, 1, 2, 0, 1, 2])
    perfect = np.eye(3)[labels]

    assert main_auc(labels, perfect) == 1.0
    assert main_auc(np.array([0, 0, 1, 1]), np.eye(3)[[0, 0, 1, 1]]) == 1.0  # class 2 absent
