from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord
from sqlalchemy import update
from sqlmodel import Session

from models import RunConfig, initial_weights
from server.db import create_db_engine
from server.fl.model_versions import ModelRelease, architecture_of
from server.fl.recorder import DatabaseRunRecorder
from server.tables.model_version import ModelVersion

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)


def _publish(recorder: DatabaseRunRecorder, value: float) -> str:
    weights = {k: np.full_like(v, value) for k, v in initial_weights(RunConfig()).items()}
    arrays = ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in weights.items()})
    return recorder.publish(
        architecture=architecture_of(RunConfig(), weights), weights=weights,
        release=ModelRelease(1, arrays, 2.0, 1e-5),
    )  # fmt: skip


def test_published_versions_are_found_and_evaluated(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'server.sqlite'}"
    recorder = DatabaseRunRecorder(url, clock=lambda: NOW)
    recorder.start(config={"task": "behaviour"}, num_rounds=2)

    labels = [_publish(recorder, 0.25), _publish(recorder, 0.5)]
    recorder.record_evaluation(label="behaviour:v2", metrics={"eval-auc": 0.6})
    found = recorder.latest_compatible(
        architecture_of(RunConfig(), initial_weights(RunConfig()))
    )
    recorder.finish(status="completed")

    assert labels == ["behaviour:v1", "behaviour:v2"]
    assert found is not None and found.label == "behaviour:v2"
    assert all(np.all(v == np.float32(0.5)) for v in found.weights.values())


def test_a_tampered_version_is_not_used_for_a_warm_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'server.sqlite'}"
    recorder = DatabaseRunRecorder(url, clock=lambda: NOW)
    recorder.start(config={"task": "behaviour"}, num_rounds=1)
    _publish(recorder, 0.25)
    engine = create_db_engine(url)
    with Session(engine) as session:
        session.execute(update(ModelVersion).values(weights=b"not the published bytes"))
        session.commit()
    engine.dispose()

    with caplog.at_level(logging.WARNING, logger="server.fl.recorder"):
        found = recorder.latest_compatible(
            architecture_of(RunConfig(), initial_weights(RunConfig()))
        )
    recorder.finish(status="completed")

    assert found is None
    assert "behaviour:v1 fails its SHA-256 check" in caplog.text


def test_publishing_before_start_is_refused(tmp_path: Path) -> None:
    recorder = DatabaseRunRecorder(f"sqlite:///{tmp_path / 'server.sqlite'}")
    with pytest.raises(RuntimeError, match="start"):
        _publish(recorder, 0.0)
    recorder.finish(status="failed")
