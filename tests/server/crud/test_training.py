from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session

from server.crud.training import finish_run, list_runs, record_round, start_run
from server.errors import NotFoundError

from ..factories import T0


def test_training_run_lifecycle_is_listed_with_rounds(db_session: Session) -> None:
    run_id = start_run(session=db_session, model="behaviour", config={"lr": 0.5, "raw": b"x"},
                       num_rounds=2, started_at=T0)
    for rnd in (1, 2):
        record_round(session=db_session, run_id=run_id, server_round=rnd, phase="train",
                     metrics={"train-loss": 1.0 / rnd}, edges=[{"channel": "web"}])
    record_round(session=db_session, run_id=run_id, server_round=1, phase="train",
                 metrics={"train-loss": 0.9}, edges=[])  # replaces round 1
    record_round(session=db_session, run_id=run_id, server_round=1, phase="evaluate",
                 metrics={"eval-auc": 0.7}, edges=[])
    finish_run(session=db_session, run_id=run_id, status="budget_exhausted",
               finished_at=T0 + timedelta(minutes=3))
    (run,) = list_runs(session=db_session)
    assert run.status == "budget_exhausted" and run.finished_at is not None
    assert run.config == {"lr": 0.5, "raw": "b'x'"}
    assert [(r.server_round, r.phase, r.metrics) for r in run.rounds] == [
        (1, "evaluate", {"eval-auc": 0.7}),
        (1, "train", {"train-loss": 0.9}),
        (2, "train", {"train-loss": 0.5}),
    ]


def test_record_round_unknown_run_raises_not_found(db_session: Session) -> None:
    with pytest.raises(NotFoundError):
        record_round(session=db_session, run_id="nope", server_round=1, phase="train",
                     metrics={}, edges=[])


@pytest.mark.parametrize("status", ["running", "paused"])
def test_finish_run_invalid_status_raises_value_error(db_session: Session, status: str) -> None:
    run_id = start_run(session=db_session, model="m", config={}, num_rounds=1, started_at=T0)
    with pytest.raises(ValueError):
        finish_run(session=db_session, run_id=run_id, status=status,  # type: ignore[arg-type]
                   finished_at=T0)
