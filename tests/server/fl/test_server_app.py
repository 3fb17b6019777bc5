"""The real ServerApp driving the real ClientApp through an in-process Grid (no Ray)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import Context, Message, RecordDict

from client.app import build_client_app
from client.ledger import read_ledger
from client.store import EdgeStore
from models import CONFIG_MODEL_VERSION, ERROR_BUDGET_EXHAUSTED, RunConfig, weights_from_bytes
from privacy import compute_epsilon
from server.fl.server_app import (
    DatabaseRunRecorder,
    build_server_app,
    initial_arrays,
    run_federated,
)
from server.fl.strategy import RoundSummary
from simulations.inprocess import InProcessGrid, task_identity

from ...client.training_factories import NOW, make_edge

FAST = {"batch-size": 8, "accountant": "rdp", "num-server-rounds": 2}


class FakeRecorder:
    def __init__(self) -> None:
        self.started: dict[str, Any] | None = None
        self.rounds: list[RoundSummary] = []
        self.status: str | None = None

    def start(self, *, config: dict[str, Any], num_rounds: int) -> None:
        self.started = {"config": config, "num_rounds": num_rounds}

    def record_round(self, summary: RoundSummary) -> None:
        self.rounds.append(summary)

    def finish(self, *, status: str) -> None:
        self.status = status


def _edges(root: Path) -> None:
    make_edge(
        root / "edge-a", subjects=24, consenting=range(20), name="web-1", channel="web", seed=1
    )
    make_edge(root / "edge-b", subjects=16, name="app-1", channel="app", seed=2)


def _grid(root: Path, overrides: dict[str, Any]) -> InProcessGrid:
    client = build_client_app(overrides | {"data-dir": str(root)}, clock=lambda: NOW)
    return InProcessGrid(client, node_configs=[{"partition-id": 0}, {"partition-id": 1}])


def _run(root: Path, overrides: dict[str, Any], recorder: Any = None) -> tuple[Any, InProcessGrid]:
    grid = _grid(root, overrides)
    with task_identity():
        result = run_federated(
            grid=grid,
            config=RunConfig.model_validate({k.replace("-", "_"): v for k, v in overrides.items()}),
            recorder=recorder,
            run_id=1,
        )
    return result, grid


def test_run_federated_two_edges_two_rounds_aggregates_and_records(tmp_path: Path) -> None:
    _edges(tmp_path)
    recorder = FakeRecorder()

    result, grid = _run(tmp_path, FAST, recorder)

    assert grid.delivered == ["train", "train", "evaluate", "evaluate"] * 2
    assert recorder.status == "completed"
    assert recorder.started is not None and recorder.started["num_rounds"] == 2
    assert "database_url" not in recorder.started["config"]
    assert [(r.server_round, r.phase) for r in recorder.rounds] == [
        (1, "train"),
        (1, "evaluate"),
        (2, "train"),
        (2, "evaluate"),
    ]
    train = recorder.rounds[2]
    assert sorted((e["edge"], e["channel"]) for e in train.edges) == [
        ("app-1", "app"),
        ("web-1", "web"),
    ]
    assert train.metrics["epsilon"] == max(e["epsilon"] for e in train.edges)
    assert train.metrics["subjects-included"] == 36 and train.metrics["subjects-excluded"] == 4
    assert train.metrics["num-examples"] == sum(e["num-examples"] for e in train.edges)
    initial = initial_arrays(RunConfig())
    assert list(result.arrays.keys()) == list(initial.keys())
    assert any(
        not np.array_equal(result.arrays[k].numpy(), initial[k].numpy()) for k in initial.keys()
    )


def test_run_federated_epsilon_per_edge_composes_across_rounds(tmp_path: Path) -> None:
    _edges(tmp_path)
    recorder = FakeRecorder()

    _run(tmp_path, FAST, recorder)

    for name in ("edge-a", "edge-b"):
        with EdgeStore.for_edge_dir(tmp_path / name) as store:
            ledger = read_ledger(store, "behaviour")
        assert ledger is not None and [r.round for r in ledger.releases] == [1, 2]
        assert ledger.epsilon() == compute_epsilon(ledger.history, delta=1e-5, accountant="rdp")
    first, second = (
        max(e["epsilon"] for e in r.edges) for r in recorder.rounds if r.phase == "train"
    )
    assert second > first


def test_run_federated_budget_exhausted_stops_edges_and_marks_run(tmp_path: Path) -> None:
    _edges(tmp_path)
    one = compute_epsilon([(1.0, 0.5, 2)], delta=1e-5, accountant="rdp")  # q = 1/2: 13-14
    two = compute_epsilon([(1.0, 0.5, 2)] * 2, delta=1e-5, accountant="rdp")  # examples/edge
    budget = (one + two) / 2  # room for round 1 on both edges, not for round 2
    recorder = FakeRecorder()

    _run(tmp_path, FAST | {"max-epsilon": budget}, recorder)

    assert recorder.status == "budget_exhausted"
    round2 = next(r for r in recorder.rounds if r.phase == "train" and r.server_round == 2)
    assert {e.get("error_code") for e in round2.edges} == {ERROR_BUDGET_EXHAUSTED}
    for name in ("edge-a", "edge-b"):
        with EdgeStore.for_edge_dir(tmp_path / name) as store:
            ledger = read_ledger(store, "behaviour")
        assert ledger is not None and len(ledger.releases) == 1 and ledger.exhausted
        assert ledger.epsilon() <= budget


def test_run_federated_budget_stop_skips_later_rounds_and_returns_the_trained_model(
    tmp_path: Path,
) -> None:
    _edges(tmp_path)
    one = compute_epsilon([(1.0, 0.5, 2)], delta=1e-5, accountant="rdp")
    two = compute_epsilon([(1.0, 0.5, 2)] * 2, delta=1e-5, accountant="rdp")
    recorder = FakeRecorder()

    result, grid = _run(
        tmp_path, FAST | {"max-epsilon": (one + two) / 2, "num-server-rounds": 4}, recorder
    )

    assert recorder.status == "budget_exhausted"
    assert grid.delivered == ["train", "train", "evaluate", "evaluate"] * 2  # no round 3
    assert sorted(result.train_metrics_clientapp) == [1]  # round 2: every edge refused
    assert sorted(result.evaluate_metrics_clientapp) == [1, 2]
    initial = initial_arrays(RunConfig())
    assert any(
        not np.array_equal(result.arrays[k].numpy(), initial[k].numpy()) for k in initial.keys()
    )


def test_run_federated_central_mode_clips_noises_and_accounts_per_round(tmp_path: Path) -> None:
    _edges(tmp_path)
    recorder = FakeRecorder()
    central = {"dp-mode": "central", "central-noise-multiplier": 2.0, "central-clipping-norm": 0.2}

    result, _ = _run(tmp_path, FAST | central, recorder)  # server momentum 0.5 (default) on top

    assert recorder.status == "completed"
    trained = [r for r in recorder.rounds if r.phase == "train"]
    expected = [compute_epsilon([(2.0, 1.0, 1)] * n, delta=1e-5, accountant="rdp") for n in (1, 2)]
    assert [r.metrics["central-epsilon"] for r in trained] == pytest.approx(expected)
    assert all(e["num-examples"] == 1.0 for r in trained for e in r.edges)
    assert result.train_metrics_clientapp[2]["central-epsilon"] == pytest.approx(expected[1])
    for name in ("edge-a", "edge-b"):
        with EdgeStore.for_edge_dir(tmp_path / name) as store:
            ledger = read_ledger(store, "behaviour")
        assert ledger is not None and [r.entry for r in ledger.releases] == [(2.0, 1.0, 1)] * 2
        assert ledger.epsilon() == pytest.approx(expected[1])


def test_server_app_main_parses_context_run_config(tmp_path: Path) -> None:
    _edges(tmp_path)
    recorder = FakeRecorder()
    server = build_server_app({"num-server-rounds": 1}, recorder_factory=lambda _config: recorder)
    grid = _grid(tmp_path, FAST)
    context = Context(
        run_id=9,
        node_id=0,
        node_config={},
        state=RecordDict(),
        run_config={"num-server-rounds": 3, "min-nodes": 2},
    )

    with task_identity(run_id=9):
        server(grid, context)

    assert recorder.status == "completed"
    assert recorder.started is not None and recorder.started["num_rounds"] == 1  # override wins
    assert recorder.started["config"]["flwr-run-id"] == 9


def test_run_federated_records_in_the_server_database(tmp_path: Path) -> None:
    from sqlmodel import Session

    from server.crud.training import list_runs
    from server.db import create_db_engine

    _edges(tmp_path / "edges")
    url = f"sqlite:///{tmp_path / 'server.sqlite'}"
    clock = (datetime(2026, 11, 1, 12, minute, tzinfo=UTC) for minute in range(60))

    _run(tmp_path / "edges", FAST, DatabaseRunRecorder(url, clock=lambda: next(clock)))

    engine = create_db_engine(url)
    with Session(engine) as session:
        runs = list_runs(session=session)
    engine.dispose()
    assert len(runs) == 1 and runs[0].status == "completed" and runs[0].num_rounds == 2
    assert [(r.server_round, r.phase) for r in runs[0].rounds] == [
        (1, "evaluate"),
        (1, "train"),
        (2, "evaluate"),
        (2, "train"),
    ]
    train = next(r for r in runs[0].rounds if r.phase == "train")
    assert {e["edge"] for e in train.edges} == {"web-1", "app-1"}


@pytest.mark.postgres
def test_run_federated_records_in_postgres(tmp_path: Path, postgres_url: str) -> None:
    from sqlmodel import Session

    from server.crud.training import list_runs
    from server.db import create_db_engine

    _edges(tmp_path)

    _run(tmp_path, FAST | {"num-server-rounds": 1}, DatabaseRunRecorder(postgres_url))

    engine = create_db_engine(postgres_url)
    with Session(engine) as session:
        runs = list_runs(session=session)
    engine.dispose()
    assert [r.status for r in runs] == ["completed"] and len(runs[0].rounds) == 2


def test_build_server_app_bad_overrides_raise() -> None:
    with pytest.raises(ValueError, match="unknown run-config keys"):
        build_server_app({"rounds": 3})


def test_initial_arrays_depend_only_on_seed() -> None:
    a, b, c = (initial_arrays(RunConfig(seed=s)) for s in (1, 1, 2))

    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a.keys())
    assert any(not np.array_equal(a[k].numpy(), c[k].numpy()) for k in a.keys())


@pytest.mark.slow
def test_run_simulation_two_edges_two_rounds_with_ray(tmp_path: Path) -> None:
    from flwr.simulation import run_simulation

    _edges(tmp_path)
    recorder = FakeRecorder()
    overrides = FAST | {"data-dir": str(tmp_path)}
    server = build_server_app(overrides, recorder_factory=lambda _config: recorder)
    client = build_client_app(overrides)

    run_simulation(
        server_app=server,
        client_app=client,
        num_supernodes=2,
        backend_config={
            "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
            "init_args": {"num_cpus": 2, "include_dashboard": False},
        },
    )

    for name in ("edge-a", "edge-b"):
        with EdgeStore.for_edge_dir(tmp_path / name) as store:
            ledger = read_ledger(store, "behaviour")
        assert ledger is not None and [r.round for r in ledger.releases] == [1, 2]


# ------------------------------------------------------------------ model registry


def _spied_run(
    root: Path, overrides: dict[str, Any], recorder: Any, seen: list[tuple[str, str, Any]]
) -> Any:
    """Run like ``_run``, recording each delivered message's type, model-version and arrays."""
    client = build_client_app(overrides | {"data-dir": str(root)}, clock=lambda: NOW)

    def spy(message: Message, context: Context) -> Message:
        config = message.content.config_records["config"]
        arrays = message.content.array_records["arrays"]
        seen.append((message.metadata.message_type, str(config[CONFIG_MODEL_VERSION]),
                     {k: v.numpy() for k, v in arrays.items()}))  # fmt: skip
        return client(message, context)

    grid = InProcessGrid(spy, node_configs=[{"partition-id": 0}, {"partition-id": 1}])
    config = RunConfig.model_validate({k.replace("-", "_"): v for k, v in overrides.items()})
    with task_identity():
        return run_federated(grid=grid, config=config, recorder=recorder, run_id=1)


def _labels(seen: list[tuple[str, str, Any]]) -> list[tuple[str, str]]:
    return [(kind, label) for kind, label, _ in seen]


def test_run_without_a_registry_names_seed_and_round_aggregates(tmp_path: Path) -> None:
    _edges(tmp_path)
    seen: list[tuple[str, str, Any]] = []
    recorder = FakeRecorder()

    _spied_run(tmp_path, FAST | {"seed": 3}, recorder, seen)

    assert _labels(seen) == (
        [("train", "seed:3")] * 2 + [("evaluate", "seed:3+r1")] * 2
        + [("train", "seed:3+r1")] * 2 + [("evaluate", "seed:3+r2")] * 2
    )  # fmt: skip
    assert recorder.started is not None
    assert recorder.started["config"]["initial-model-version"] == "seed:3"


def test_second_run_warm_starts_from_the_first_runs_published_version(tmp_path: Path) -> None:
    from sqlmodel import Session

    from server.crud.model_registry import get_version_weights, list_versions
    from server.crud.training import list_runs
    from server.db import create_db_engine

    _edges(tmp_path / "edges")
    url = f"sqlite:///{tmp_path / 'server.sqlite'}"
    first: list[tuple[str, str, Any]] = []
    second: list[tuple[str, str, Any]] = []

    _spied_run(tmp_path / "edges", FAST, DatabaseRunRecorder(url), first)
    _spied_run(tmp_path / "edges", FAST, DatabaseRunRecorder(url), second)

    engine = create_db_engine(url)
    with Session(engine) as session:
        versions = list_versions(session=session, model="behaviour")
        v2 = get_version_weights(session=session, model="behaviour", version=2)
        runs = list_runs(session=session)
    engine.dispose()
    # Run 1 starts cold and publishes v1, v2; each message names the model it carries.
    assert _labels(first) == (
        [("train", "seed:0")] * 2 + [("evaluate", "behaviour:v1")] * 2
        + [("train", "behaviour:v1")] * 2 + [("evaluate", "behaviour:v2")] * 2
    )  # fmt: skip
    # Run 2 starts from v2 (its exact weights) and publishes v3, v4.
    assert _labels(second)[:2] == [("train", "behaviour:v2")] * 2
    assert _labels(second)[-2:] == [("evaluate", "behaviour:v4")] * 2
    stored = weights_from_bytes(v2.data)
    sent = second[0][2]
    assert list(sent) == list(stored)
    assert all(np.array_equal(sent[k], stored[k]) for k in stored)
    assert any(not np.array_equal(sent[k], first[0][2][k]) for k in stored)  # not the seed
    # The registry: four versions, with round, ε of the round and its evaluation.
    newest_run, oldest_run = runs
    assert [v.version for v in versions] == [4, 3, 2, 1]
    assert [(v.run_id, v.server_round) for v in versions] == [
        (newest_run.id, 2), (newest_run.id, 1), (oldest_run.id, 2), (oldest_run.id, 1)]  # fmt: skip
    assert oldest_run.config["initial-model-version"] == "seed:0"
    assert newest_run.config["initial-model-version"] == "behaviour:v2"
    train_round_2 = next(
        r for r in oldest_run.rounds if (r.server_round, r.phase) == (2, "train"))  # fmt: skip
    assert versions[2].epsilon == max(e["epsilon"] for e in train_round_2.edges)
    assert versions[2].delta == 1e-5
    evaluate_round_2 = next(
        r for r in oldest_run.rounds if (r.server_round, r.phase) == (2, "evaluate"))  # fmt: skip
    assert versions[2].metrics == evaluate_round_2.metrics and "eval-auc" in versions[2].metrics
    assert versions[2].architecture.task == "behaviour"
    assert versions[2].architecture.config == {"behaviour-hidden": 0, "behaviour-sequence": 0}
    assert [a.name for a in versions[2].architecture.arrays] == list(stored)


def test_warm_start_off_starts_cold_even_with_a_registry(tmp_path: Path) -> None:
    _edges(tmp_path / "edges")
    url = f"sqlite:///{tmp_path / 'server.sqlite'}"
    once = FAST | {"num-server-rounds": 1}
    _spied_run(tmp_path / "edges", once, DatabaseRunRecorder(url), [])
    seen: list[tuple[str, str, Any]] = []

    _spied_run(tmp_path / "edges", once | {"warm-start": False}, DatabaseRunRecorder(url), seen)

    assert _labels(seen) == [("train", "seed:0")] * 2 + [("evaluate", "behaviour:v2")] * 2
