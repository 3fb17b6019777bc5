from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from server.crud.training import finish_run, record_round, start_run

from ...factories import AGENT_TOKEN, T0, bearer


def test_get_training_runs_lists_runs_with_rounds(api: TestClient, memory_engine: Engine) -> None:
    with Session(memory_engine) as session:
        run_id = start_run(session=session, model="behaviour", config={}, num_rounds=1,
                           started_at=T0)
        record_round(session=session, run_id=run_id, server_round=1, phase="train",
                     metrics={"epsilon": 0.3}, edges=[{"channel": "web"}])
        finish_run(session=session, run_id=run_id, status="completed", finished_at=T0)
    response = api.get("/api/v1/training-runs", headers=bearer(AGENT_TOKEN))
    (run,) = response.json()
    assert run["id"] == run_id and run["status"] == "completed"
    assert run["rounds"] == [
        {"server_round": 1, "phase": "train", "metrics": {"epsilon": 0.3},
         "edges": [{"channel": "web"}]}
    ]


def test_get_training_runs_needs_a_reader(api: TestClient) -> None:
    assert api.get("/api/v1/training-runs").status_code == 401
