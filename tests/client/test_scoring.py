from __future__ import annotations

from pathlib import Path

import pytest

from client.scoring import (
    ESCALATION_RISK,
    PURCHASE_PROPENSITY,
    ModelQuality,
    model_quality,
    record_model_quality,
    score_subjects,
)
from client.store import EdgeStore
from models import BehaviourGRU

from .training_factories import make_edge


def test_score_subjects_without_global_model_is_empty(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=3)

    with EdgeStore.for_edge_dir(tmp_path) as store:
        assert score_subjects(store) == {}


def test_score_subjects_scores_every_subject_with_events_in_unit_interval(tmp_path: Path) -> None:
    ids = make_edge(tmp_path, subjects=6)
    with EdgeStore.for_edge_dir(tmp_path) as store:
        store.save_global_model(
            "behaviour", server_round=2, weights=BehaviourGRU.from_seed(0).to_bytes()
        )

        scores = score_subjects(store, min_auc=None)

    assert sorted(scores) == sorted(ids)
    for values in scores.values():
        assert set(values) == {PURCHASE_PROPENSITY, ESCALATION_RISK}
        assert all(0.0 < v < 1.0 for v in values.values())


def test_score_subjects_depend_on_the_stored_model(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=4)
    with EdgeStore.for_edge_dir(tmp_path) as store:
        store.save_global_model(
            "behaviour", server_round=1, weights=BehaviourGRU.from_seed(0).to_bytes()
        )
        first = score_subjects(store, min_auc=None)
        store.save_global_model(
            "behaviour", server_round=2, weights=BehaviourGRU.from_seed(1).to_bytes()
        )
        second = score_subjects(store, min_auc=None)

    assert first != second


@pytest.mark.parametrize("blob", [b"garbage", BehaviourGRU.from_seed(0).to_bytes()[:40]])
def test_score_subjects_unreadable_model_gives_no_scores(tmp_path: Path, blob: bytes) -> None:
    make_edge(tmp_path, subjects=2)
    with EdgeStore.for_edge_dir(tmp_path) as store:
        store.save_global_model("behaviour", server_round=1, weights=blob)

        assert score_subjects(store) == {}


def test_score_subjects_other_model_name_is_separate(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=2)
    with EdgeStore.for_edge_dir(tmp_path) as store:
        store.save_global_model("behaviour", server_round=1, weights=BehaviourGRU().to_bytes())

        assert score_subjects(store, model="text") == {}


def _with_model(store: EdgeStore) -> None:
    store.save_global_model(
        "behaviour", server_round=3, weights=BehaviourGRU.from_seed(0).to_bytes()
    )


def test_score_subjects_never_evaluated_model_publishes_nothing(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=4)
    with EdgeStore.for_edge_dir(tmp_path) as store:
        _with_model(store)

        assert score_subjects(store) == {}


@pytest.mark.parametrize(
    ("purchase_auc", "escalation_auc", "examples", "expected"),
    [
        (0.72, 0.65, 80, {PURCHASE_PROPENSITY, ESCALATION_RISK}),
        (0.72, 0.41, 80, {PURCHASE_PROPENSITY}),
        (0.45, 0.66, 80, {ESCALATION_RISK}),
        (0.59, 0.59, 80, set()),
        (0.90, 0.90, 10, set()),  # too few held-out subjects to trust the AUC
    ],
)
def test_score_subjects_quality_gate_per_head(
    tmp_path: Path, purchase_auc: float, escalation_auc: float, examples: int, expected: set[str]
) -> None:
    make_edge(tmp_path, subjects=4)
    with EdgeStore.for_edge_dir(tmp_path) as store:
        _with_model(store)
        record_model_quality(
            store, "behaviour", ModelQuality(3, purchase_auc, escalation_auc, examples)
        )

        scores = score_subjects(store)

    names = {name for values in scores.values() for name in values}
    assert names == expected
    assert (scores == {}) is (not expected)


def test_model_quality_round_trips(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=1)
    quality = ModelQuality(server_round=2, purchase_auc=0.7, escalation_auc=0.6, num_examples=50)
    with EdgeStore.for_edge_dir(tmp_path) as store:
        assert model_quality(store) is None
        record_model_quality(store, "behaviour", quality)

        assert model_quality(store) == quality
