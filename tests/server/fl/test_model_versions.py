from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord

from models import RunConfig, initial_weights
from server.fl.model_versions import (
    ModelRelease,
    ModelStore,
    RunModels,
    StoredModel,
    architecture_of,
    release_privacy,
)
from server.tables.model_version import ArchitectureSpec


class FakeStore:
    def __init__(self, found: StoredModel | None = None) -> None:
        self.found = found
        self.asked: list[ArchitectureSpec] = []
        self.published: list[tuple[ArchitectureSpec, ModelRelease]] = []
        self.evaluations: list[tuple[str, dict[str, float]]] = []

    def latest_compatible(self, architecture: ArchitectureSpec) -> StoredModel | None:
        self.asked.append(architecture)
        return self.found

    def publish(
        self, *, architecture: ArchitectureSpec, weights: Mapping[str, np.ndarray],
        release: ModelRelease,
    ) -> str:  # fmt: skip
        self.published.append((architecture, release))
        return f"{architecture.task}:v{len(self.published)}"

    def record_evaluation(self, *, label: str, metrics: Mapping[str, float]) -> None:
        self.evaluations.append((label, dict(metrics)))


def _record(weights: Mapping[str, np.ndarray]) -> ArrayRecord:
    return ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in weights.items()})


def test_architecture_of_names_the_tasks_keys_and_every_shape() -> None:
    text = RunConfig(task="text", text_vocabulary=50, text_buckets=8, behaviour_hidden=4)
    weights = {"a": np.zeros((2, 3)), "b": np.zeros(5)}

    spec = architecture_of(text, weights)
    behaviour = architecture_of(RunConfig(behaviour_sequence=6), weights)

    assert spec.task == "text" and spec.config == {"text-vocabulary": 50, "text-buckets": 8}
    assert [(a.name, a.shape) for a in spec.arrays] == [("a", [2, 3]), ("b", [5])]
    assert behaviour.config == {"behaviour-hidden": 0, "behaviour-sequence": 6}


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        ({"epsilon": 2.5, "delta": 1e-5}, (2.5, 1e-5)),
        ({"epsilon": 9.0, "delta": 1e-5, "central-epsilon": 1.5, "central-delta": 1e-6},
         (1.5, 1e-6)),
        ({"epsilon": float("inf"), "delta": 1e-5}, (None, None)),
        ({"train-loss": 0.3}, (None, None)),
    ],
)  # fmt: skip
def test_release_privacy_prefers_central_then_the_weakest_edge(
    metrics: dict[str, float], expected: tuple[float | None, float | None]
) -> None:
    assert release_privacy(metrics) == expected


def test_database_recorder_is_a_model_store_and_fakes_can_be() -> None:
    from server.fl.recorder import DatabaseRunRecorder

    assert isinstance(FakeStore(), ModelStore)
    assert {"latest_compatible", "publish", "record_evaluation"} <= set(dir(DatabaseRunRecorder))


def test_the_callers_initial_model_wins_over_a_warm_start() -> None:
    store = FakeStore(StoredModel("behaviour:v7", initial_weights(RunConfig(seed=5))))
    given = _record({"x": np.ones(2)})
    runs = RunModels(config=RunConfig(seed=2), store=store)

    assert runs.starting_model(given) is given
    assert runs.start_label == "seed:2" and store.asked == []


def test_warm_start_takes_a_fitting_registry_version(caplog: pytest.LogCaptureFixture) -> None:
    stored = initial_weights(RunConfig(seed=5))
    store = FakeStore(StoredModel("behaviour:v7", stored))
    runs = RunModels(config=RunConfig(seed=2), store=store)

    with caplog.at_level(logging.INFO, logger="server.fl.model_versions"):
        arrays = runs.starting_model()

    assert runs.start_label == "behaviour:v7"
    assert all(np.array_equal(arrays[k].numpy(), stored[k]) for k in stored)
    assert store.asked == [architecture_of(RunConfig(), stored)]
    assert "warm start from registry version behaviour:v7" in caplog.text


@pytest.mark.parametrize(
    ("config", "store", "reason"),
    [
        (RunConfig(warm_start=False), FakeStore(), "warm-start is off"),
        (RunConfig(), None, "no model registry"),
        (RunConfig(), FakeStore(), "no behaviour version in the registry has this architecture"),
        (RunConfig(), FakeStore(StoredModel("behaviour:v1", {"w": np.zeros(3)})),
         "behaviour:v1 does not fit"),
    ],
)  # fmt: skip
def test_cold_start_says_why(
    config: RunConfig, store: FakeStore | None, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    runs = RunModels(config=config, store=store)

    with caplog.at_level(logging.INFO, logger="server.fl.model_versions"):
        arrays = runs.starting_model()

    seeded = initial_weights(config)
    assert runs.start_label == "seed:0"
    assert all(np.array_equal(arrays[k].numpy(), seeded[k]) for k in seeded)
    assert f"cold start from seed:0: {reason}" in caplog.text


def test_publish_with_a_store_names_versions_and_attaches_their_evaluation() -> None:
    store = FakeStore()
    runs = RunModels(config=RunConfig(task="text", text_vocabulary=40), store=store)
    release = ModelRelease(1, _record({"w": np.zeros((2, 2))}), 1.5, 1e-5)

    label = runs.publish(release)
    runs.record_evaluation(label=label, metrics={"eval-auc": 0.7})
    runs.record_evaluation(label="text:v99", metrics={"eval-auc": 0.1})  # not this run's

    assert label == "text:v1"
    ((architecture, published),) = store.published
    assert architecture.config["text-vocabulary"] == 40 and published is release
    assert store.evaluations == [("text:v1", {"eval-auc": 0.7})]


def test_publish_without_a_store_labels_the_round_aggregate() -> None:
    runs = RunModels(config=RunConfig(seed=4), store=None)

    assert runs.publish(ModelRelease(2, _record({"w": np.zeros(1)}), None, None)) == "seed:4+r2"
