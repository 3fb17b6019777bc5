from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch

from client.store import EdgeStore
from client.training import (
    consented_subjects,
    evaluate_local,
    load_examples,
    planned_schedule,
    roc_auc,
    train_local,
)
from consent import ConsentStatus, Purpose
from models import BehaviourGRU, SequenceSpec, get_weights
from privacy import DPConfig

from .training_factories import NOW, consent, make_edge

SPEC = SequenceSpec()


def _changed(before: dict[str, np.ndarray], model: BehaviourGRU) -> bool:
    after = get_weights(model)
    return any(not np.array_equal(before[k], after[k]) for k in before)


def test_consented_subjects_only_model_training_grants_count(tmp_path: Path) -> None:
    ids = make_edge(tmp_path, subjects=8, consenting=[0, 1, 2], other_purpose=[3, 4])

    with EdgeStore.for_edge_dir(tmp_path) as store:
        included, excluded = consented_subjects(store, at=NOW)

    assert sorted(included) == sorted(ids[:3])
    assert excluded == 5


def test_consented_subjects_withdrawal_excludes_from_that_moment(tmp_path: Path) -> None:
    ids = make_edge(tmp_path, subjects=3)
    withdrawn_at = NOW - timedelta(days=1)
    with EdgeStore.for_edge_dir(tmp_path) as store:
        store.add_consents([consent(ids[0], status=ConsentStatus.WITHDRAWN, at=withdrawn_at)])

        before, _ = consented_subjects(store, at=withdrawn_at - timedelta(seconds=1))
        after, excluded = consented_subjects(store, at=NOW)

    assert ids[0] in before
    assert ids[0] not in after and excluded == 1


def test_load_examples_uses_only_consented_subjects(tmp_path: Path) -> None:
    mixed, everyone = tmp_path / "mixed", tmp_path / "everyone"
    ids = make_edge(mixed, subjects=30, consenting=range(0, 30, 2), seed=4)
    make_edge(everyone, subjects=30, seed=4)  # same subjects and events, all consenting
    consenting = set(ids[0::2])
    with EdgeStore.for_edge_dir(mixed) as store:
        data = load_examples(store, at=NOW, spec=SPEC)
    with EdgeStore.for_edge_dir(everyone) as store:
        full = load_examples(store, at=NOW, spec=SPEC)

    assert (data.subjects_included, data.subjects_excluded) == (15, 15)
    assert {e.subject for e in data.train + data.holdout} <= consenting
    assert data.train == [e for e in full.train if e.subject in consenting]
    assert data.holdout == [e for e in full.holdout if e.subject in consenting]


def test_load_examples_ignores_events_after_round_time(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=10)
    early = NOW - timedelta(days=30)
    with EdgeStore.for_edge_dir(tmp_path) as store:
        late_data = load_examples(store, at=NOW, spec=SPEC)
        early_data = load_examples(store, at=early, spec=SPEC)
        horizon = early.timestamp()
        early_events = {
            s: [e for e in store.iter_events(subject=s) if e.ts <= horizon]
            for s in store.subjects()
        }

    assert sum(len(e.tokens) for e in early_data.train) < sum(
        len(e.tokens) for e in late_data.train
    )
    for example in early_data.train:
        assert len(example.tokens) <= len(early_events[example.subject])


@pytest.mark.parametrize(
    ("n", "batch", "epochs", "expected"),
    [(113, 32, 1, (0.25, 4)), (10, 32, 2, (1.0, 2)), (64, 32, 3, (0.5, 6))],
)
def test_planned_schedule_matches_opacus_poisson_rate(
    n: int, batch: int, epochs: int, expected: tuple[float, int]
) -> None:
    assert planned_schedule(n, dp=DPConfig(batch_size=batch, local_epochs=epochs)) == expected


def test_train_local_dp_history_matches_plan_and_updates_model(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=40)
    with EdgeStore.for_edge_dir(tmp_path) as store:
        data = load_examples(store, at=NOW, spec=SPEC)
    dp = DPConfig(noise_multiplier=1.1, batch_size=8, local_epochs=2)
    model = BehaviourGRU.from_seed(0)
    before = get_weights(model)

    result = train_local(model, data.train, dp=dp, spec=SPEC, seed=1)

    q, steps = planned_schedule(len(data.train), dp=dp)
    assert result.history == ((1.1, q, steps),)
    assert result.num_examples == len(data.train)
    assert math.isfinite(result.loss) and result.loss > 0
    assert _changed(before, model)


def test_train_local_without_dp_reports_zero_noise(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=12)
    with EdgeStore.for_edge_dir(tmp_path) as store:
        data = load_examples(store, at=NOW, spec=SPEC)
    model = BehaviourGRU.from_seed(0)

    result = train_local(
        model, data.train, dp=DPConfig(enabled=False, batch_size=4), spec=SPEC, seed=0
    )

    assert result.history[0][0] == 0.0
    assert result.history[0][2] == math.ceil(len(data.train) / 4)


def test_train_local_empty_poisson_batches_still_step_and_count(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=6)
    with EdgeStore.for_edge_dir(tmp_path) as store:
        examples = load_examples(store, at=NOW, spec=SPEC).train[:3]
    dp = DPConfig(batch_size=1, local_epochs=10)  # q = 1/3: P(empty batch) = 8/27 per step

    result = train_local(BehaviourGRU.from_seed(0), examples, dp=dp, spec=SPEC, seed=0)

    assert result.history == ((1.0, 1 / 3, 30),)


def test_train_local_same_seed_and_noise_generator_is_reproducible(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=20)
    with EdgeStore.for_edge_dir(tmp_path) as store:
        data = load_examples(store, at=NOW, spec=SPEC)
    runs = []
    for _ in range(2):
        model = BehaviourGRU.from_seed(0)
        with pytest.warns(UserWarning, match="experiments only"):
            train_local(
                model,
                data.train,
                dp=DPConfig(batch_size=4),
                spec=SPEC,
                seed=3,
                noise_generator=torch.Generator().manual_seed(5),
            )
        runs.append(get_weights(model))

    assert all(np.array_equal(runs[0][k], runs[1][k]) for k in runs[0])


def test_train_local_no_examples_raises() -> None:
    with pytest.raises(ValueError, match="empty"):
        train_local(BehaviourGRU(), [], dp=DPConfig(), spec=SPEC, seed=0)


def test_evaluate_local_metrics_in_range_and_model_unchanged(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=40)
    with EdgeStore.for_edge_dir(tmp_path) as store:
        data = load_examples(store, at=NOW, spec=SPEC)
    model = BehaviourGRU.from_seed(0)
    before = get_weights(model)

    result = evaluate_local(model, data.holdout, spec=SPEC)

    assert result.num_examples == len(data.holdout) > 0
    assert result.loss > 0 and 0.0 <= result.auc <= 1.0 and 0.0 <= result.accuracy <= 1.0
    assert not _changed(before, model)


def test_evaluate_local_no_examples_gives_neutral_metrics() -> None:
    result = evaluate_local(BehaviourGRU(), [], spec=SPEC)

    assert (result.num_examples, result.auc, result.loss) == (0, 0.5, 0.0)


@pytest.mark.parametrize(
    ("labels", "scores", "expected"),
    [
        ([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1], 1.0),
        ([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9], 0.0),
        ([1, 0], [0.5, 0.5], 0.5),
        ([1, 0, 1, 0], [0.9, 0.8, 0.3, 0.1], 0.75),
        ([1, 1, 1], [0.2, 0.3, 0.4], 0.5),  # one class only
    ],
)
def test_roc_auc_table(labels: list[float], scores: list[float], expected: float) -> None:
    assert roc_auc(labels, scores) == pytest.approx(expected)


def test_consent_for_other_purpose_never_enables_training(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=5, consenting=[], other_purpose=range(5))

    with EdgeStore.for_edge_dir(tmp_path) as store:
        data = load_examples(store, at=NOW, spec=SPEC)

    assert data.train == [] and data.holdout == []
    assert (data.subjects_included, data.subjects_excluded) == (0, 5)
    assert Purpose.MODEL_TRAINING.value == "model_training"
