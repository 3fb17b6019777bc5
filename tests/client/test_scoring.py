from __future__ import annotations

from datetime import timedelta
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
from models import BehaviourModel, BehaviourModelConfig

from .training_factories import NOW, make_edge


def test_score_subjects_without_global_model_is_empty(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=3)

    with EdgeStore.for_edge_dir(tmp_path) as store:
        assert score_subjects(store, now=NOW) == {}


def test_score_subjects_scores_every_subject_with_events_in_unit_interval(tmp_path: Path) -> None:
    ids = make_edge(tmp_path, subjects=6)
    with EdgeStore.for_edge_dir(tmp_path) as store:
        store.save_global_model(
            "behaviour", server_round=2, weights=BehaviourModel.from_seed(0).to_bytes()
        )

        scores = score_subjects(store, now=NOW, min_auc=None)

    assert sorted(scores) == sorted(ids)
    for values in scores.values():
        assert set(values) == {PURCHASE_PROPENSITY, ESCALATION_RISK}
        assert all(0.0 < v < 1.0 for v in values.values())


def test_score_subjects_depend_on_the_stored_model(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=4)
    with EdgeStore.for_edge_dir(tmp_path) as store:
        store.save_global_model(
            "behaviour", server_round=1, weights=BehaviourModel.from_seed(0).to_bytes()
        )
        first = score_subjects(store, now=NOW, min_auc=None)
        store.save_global_model(
            "behaviour", server_round=2, weights=BehaviourModel.from_seed(1).to_bytes()
        )
        second = score_subjects(store, now=NOW, min_auc=None)

    assert first != second


@pytest.mark.parametrize("blob", [b"garbage", BehaviourModel.from_seed(0).to_bytes()[:40]])
def test_score_subjects_unreadable_model_gives_no_scores(tmp_path: Path, blob: bytes) -> None:
    make_edge(tmp_path, subjects=2)
    with EdgeStore.for_edge_dir(tmp_path) as store:
        store.save_global_model("behaviour", server_round=1, weights=blob)

        assert score_subjects(store, now=NOW) == {}


def test_score_subjects_other_model_name_is_separate(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=2)
    with EdgeStore.for_edge_dir(tmp_path) as store:
        store.save_global_model("behaviour", server_round=1, weights=BehaviourModel().to_bytes())

        assert score_subjects(store, now=NOW, model="text") == {}


def _with_model(store: EdgeStore) -> None:
    store.save_global_model(
        "behaviour", server_round=3, weights=BehaviourModel.from_seed(0).to_bytes()
    )


def test_score_subjects_never_evaluated_model_publishes_nothing(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=4)
    with EdgeStore.for_edge_dir(tmp_path) as store:
        _with_model(store)

        assert score_subjects(store, now=NOW) == {}


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
            store,
            "behaviour",
            ModelQuality(3, {"purchase": purchase_auc, "escalation": escalation_auc}, examples),
        )

        scores = score_subjects(store, now=NOW)

    names = {name for values in scores.values() for name in values}
    assert names == expected
    assert (scores == {}) is (not expected)


def test_model_quality_round_trips(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=1)
    quality = ModelQuality(
        server_round=2, head_aucs={"purchase": 0.7, "escalation": 0.6}, num_examples=50
    )
    with EdgeStore.for_edge_dir(tmp_path) as store:
        assert model_quality(store) is None
        record_model_quality(store, "behaviour", quality)

        assert model_quality(store) == quality


def test_score_subjects_use_features_as_of_now(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=6)
    with EdgeStore.for_edge_dir(tmp_path) as store:
        _with_model(store)
        now = score_subjects(store, now=NOW, min_auc=None)
        earlier = score_subjects(store, now=NOW - timedelta(days=30), min_auc=None)

    assert set(earlier) <= set(now)
    assert any(earlier[s] != now[s] for s in earlier)


def test_score_subjects_model_with_another_feature_layout_gives_no_scores(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=2)
    other = BehaviourModel(BehaviourModelConfig(num_features=3, hidden=4))
    with EdgeStore.for_edge_dir(tmp_path) as store:
        store.save_global_model("behaviour", server_round=1, weights=other.to_bytes())

        assert score_subjects(store, now=NOW, min_auc=None) == {}


def test_model_quality_of_an_older_layout_reads_as_never_evaluated(tmp_path: Path) -> None:
    make_edge(tmp_path, subjects=1)
    with EdgeStore.for_edge_dir(tmp_path) as store:
        store.set_meta(
            "model_quality.behaviour",
            '{"server_round": 1, "purchase_auc": 0.7, "escalation_auc": 0.6, "num_examples": 5}',
        )

        assert model_quality(store) is None
