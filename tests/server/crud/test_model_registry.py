"""The model registry: versions numbered per model, listed without weights, found by
architecture, served with their SHA-256, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from models import weights_from_bytes, weights_to_bytes
from server.crud.model_registry import (
    get_version_weights,
    latest_compatible,
    latest_version,
    list_versions,
    publish_version,
    record_version_metrics,
)
from server.crud.training import start_run
from server.db import create_db_engine, upgrade_database
from server.errors import NotFoundError
from server.tables.model_version import ArchitectureSpec, ArraySpec, ModelVersionPublic

from ..factories import T0


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated database: a SQLite file or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'server.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    upgrade_database(url)
    built = create_db_engine(url)
    yield built
    built.dispose()


def _weights(value: float, width: int = 3) -> dict[str, np.ndarray]:
    return {
        "linear.weight": np.full((2, width), value, dtype=np.float32),
        "linear.bias": np.full((2,), value, dtype=np.float32),
    }


def _architecture(task: str = "text", width: int = 3) -> ArchitectureSpec:
    keys = {"text-vocabulary": 8000, "text-buckets": 0} if task == "text" else {
        "behaviour-hidden": 0, "behaviour-sequence": 0}  # fmt: skip
    return ArchitectureSpec(
        task=task,
        config=keys,
        arrays=[ArraySpec(name="linear.weight", shape=[2, width]),
                ArraySpec(name="linear.bias", shape=[2])],
    )  # fmt: skip


def _run(session: Session) -> str:
    return start_run(session=session, model="text", config={}, num_rounds=3, started_at=T0)


def _publish(session: Session, run_id: str, *, task: str = "text", value: float = 0.0,
             minutes: int = 0, width: int = 3, epsilon: float | None = 1.5) -> ModelVersionPublic:
    return publish_version(
        session=session, model=task, run_id=run_id, server_round=minutes + 1,
        weights=weights_to_bytes(_weights(value, width)), architecture=_architecture(task, width),
        epsilon=epsilon, delta=1e-5, created_at=T0 + timedelta(minutes=minutes),
    )  # fmt: skip


def test_versions_are_numbered_per_model_and_listed_newest_first(engine: Engine) -> None:
    with Session(engine) as session:
        run_id = _run(session)
        first = _publish(session, run_id, value=1.0, minutes=0)
        _publish(session, run_id, task="behaviour", minutes=1)
        third = _publish(session, run_id, value=3.0, minutes=2)

        listed = list_versions(session=session)
        texts = list_versions(session=session, model="text")
        one = list_versions(session=session, limit=1)

    assert (first.version, third.version) == (1, 2)
    assert [(v.model, v.version) for v in listed] == [("text", 2), ("behaviour", 1), ("text", 1)]
    assert [v.version for v in texts] == [2, 1]
    assert [v.id for v in one] == [third.id]
    assert listed[0].run_id == run_id and listed[0].server_round == 3
    assert listed[0].architecture == _architecture()
    assert listed[0].sha256 == hashlib.sha256(weights_to_bytes(_weights(3.0))).hexdigest()
    assert listed[0].created_at == T0 + timedelta(minutes=2)
    assert "weights" not in listed[0].model_dump()


def test_latest_version_is_the_highest_number_and_unknown_models_are_not_found(
    engine: Engine,
) -> None:
    with Session(engine) as session:
        run_id = _run(session)
        _publish(session, run_id)
        _publish(session, run_id, value=2.0, minutes=1)

        latest = latest_version(session=session, model="text")
        with pytest.raises(NotFoundError) as raised:
            latest_version(session=session, model="behaviour")

    assert latest.version == 2
    assert str(raised.value) == "model not found" and raised.value.code == "not_found"


def test_latest_compatible_matches_task_keys_and_every_shape(engine: Engine) -> None:
    with Session(engine) as session:
        run_id = _run(session)
        _publish(session, run_id, width=3)
        wanted = _publish(session, run_id, width=3, minutes=1)
        _publish(session, run_id, width=4, minutes=2)  # newest, other shape

        found = latest_compatible(session=session, architecture=_architecture(width=3))
        wider = latest_compatible(session=session, architecture=_architecture(width=4))
        other_keys = _architecture().model_copy(update={"config": {"text-vocabulary": 100}})
        none_for_keys = latest_compatible(session=session, architecture=other_keys)
        none_for_task = latest_compatible(session=session, architecture=_architecture("behaviour"))

    assert found is not None and found.id == wanted.id
    assert wider is not None and wider.version == 3
    assert none_for_keys is None and none_for_task is None


def test_weights_round_trip_with_label_and_sha256(engine: Engine) -> None:
    with Session(engine) as session:
        run_id = _run(session)
        _publish(session, run_id, value=7.0)

        stored = get_version_weights(session=session, model="text", version=1)
        with pytest.raises(NotFoundError) as raised:
            get_version_weights(session=session, model="text", version=2)

    assert stored.label == "text:v1"
    assert stored.sha256 == hashlib.sha256(stored.data).hexdigest()
    loaded = weights_from_bytes(stored.data)
    assert list(loaded) == ["linear.weight", "linear.bias"]
    assert np.array_equal(loaded["linear.bias"], np.full((2,), 7.0, dtype=np.float32))
    assert str(raised.value) == "model version not found"


def test_record_version_metrics_keeps_finite_values(engine: Engine) -> None:
    with Session(engine) as session:
        run_id = _run(session)
        _publish(session, run_id)

        record_version_metrics(session=session, model="text", version=1,
                               metrics={"eval-auc": 0.75, "eval-loss": float("nan")})  # fmt: skip
        (version,) = list_versions(session=session)
        with pytest.raises(NotFoundError):
            record_version_metrics(session=session, model="text", version=9, metrics={})

    assert version.metrics == {"eval-auc": 0.75}


def test_publish_without_a_finite_epsilon_stores_no_guarantee(engine: Engine) -> None:
    with Session(engine) as session:
        run_id = _run(session)
        published = _publish(session, run_id, epsilon=float("inf"))
        (listed,) = list_versions(session=session)

    assert published.epsilon is None and published.delta is None
    assert listed.epsilon is None


def test_publish_for_an_unknown_run_is_not_found(engine: Engine) -> None:
    with Session(engine) as session, pytest.raises(NotFoundError, match="training run"):
        _publish(session, "no-such-run")


def test_concurrent_publishers_take_distinct_consecutive_versions(engine: Engine) -> None:
    with Session(engine) as session:
        run_id = _run(session)
    errors: list[BaseException] = []

    def publisher(n: int) -> None:
        try:
            for k in range(3):
                with Session(engine) as session:
                    _publish(session, run_id, value=float(n), minutes=k)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=publisher, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    with Session(engine) as session:
        versions = sorted(v.version for v in list_versions(session=session, model="text"))
    assert errors == []
    assert versions == list(range(1, 10))
