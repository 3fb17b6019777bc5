"""Acceptance (issue 4): a run with a budget of ε = 3 stops before exceeding it, no ledger
shows more, and the server's API shows the stop.

Real ClientApp and ServerApp through the in-process grid; the server's FastAPI app via its
test client on the SQLite file the ServerApp's recorder writes; each edge pushes its ledger
with ``client.EdgeUploader``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from client import EdgeUploader
from client.app import build_client_app
from client.config import ClientSettings
from client.ledger import read_ledger
from client.store import EdgeStore
from models import ERROR_BUDGET_EXHAUSTED, parse_run_config
from privacy import compute_epsilon
from server.config import ServerSettings
from server.db import upgrade_database
from server.fl.server_app import DatabaseRunRecorder, run_federated
from server.main import create_app
from simulations.inprocess import InProcessGrid, task_identity

from ...client.training_factories import NOW, make_edge
from ..factories import ADMIN_TOKEN, AGENT_TOKEN, ENROLLMENT_TOKEN, bearer

BUDGET = 3.0
EDGES = {"edge-a": ("web-1", "web", 30), "edge-b": ("app-1", "app", 16)}


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    """The server app on a migrated SQLite file, and that file's URL for the recorder."""
    url = f"sqlite:///{tmp_path / 'server.sqlite'}"
    upgrade_database(url)
    settings = ServerSettings(
        database_url=url,
        enrollment_token=ENROLLMENT_TOKEN,
        admin_token=ADMIN_TOKEN,
        agent_token=AGENT_TOKEN,
    )
    with TestClient(create_app(settings, clock=lambda: NOW)) as api:
        yield api, url


def _transport(api: TestClient) -> httpx.MockTransport:
    """An httpx transport that hands each request to the app's test client."""

    def forward(request: httpx.Request) -> httpx.Response:
        response = api.request(
            request.method,
            request.url.raw_path.decode(),
            headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
            content=request.content,
        )
        return httpx.Response(
            response.status_code, headers=response.headers, content=response.content
        )

    return httpx.MockTransport(forward)


def _uploader(api: TestClient, edge_dir: Path, store: EdgeStore) -> EdgeUploader:
    settings = ClientSettings(edge_dir=edge_dir, server_url="http://testserver")
    return EdgeUploader(store=store, settings=settings, transport=_transport(api))


def _edges(root: Path, api: TestClient) -> None:
    for seed, (directory, (name, channel, subjects)) in enumerate(EDGES.items()):
        make_edge(root / directory, subjects=subjects, name=name, channel=channel, seed=seed)
        with EdgeStore.for_edge_dir(root / directory) as store:
            with _uploader(api, root / directory, store) as up:
                up.register(name, channel, ENROLLMENT_TOKEN)


def _sync_all(root: Path, api: TestClient) -> None:
    for directory in EDGES:
        with EdgeStore.for_edge_dir(root / directory) as store:
            with _uploader(api, root / directory, store) as up:
                report = up.sync(now=NOW)
        assert report.ledgers_sent == 1, report.notes


def _run(root: Path, url: str, overrides: dict[str, Any]) -> InProcessGrid:
    overrides = overrides | {"data-dir": str(root), "accountant": "rdp", "batch-size": 8}
    client = build_client_app(overrides, clock=lambda: NOW)
    grid = InProcessGrid(client, node_configs=[{"partition-id": 0}, {"partition-id": 1}])
    with task_identity():
        run_federated(
            grid=grid,
            config=parse_run_config({}, overrides),
            recorder=DatabaseRunRecorder(url, clock=lambda: NOW),
            run_id=1,
        )
    return grid


def _api_view(api: TestClient) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    runs = api.get("/api/v1/training-runs", headers=bearer(ADMIN_TOKEN))
    ledgers = api.get("/api/v1/ledgers", headers=bearer(ADMIN_TOKEN))
    assert runs.status_code == ledgers.status_code == 200
    (run,) = runs.json()
    return run, ledgers.json()


def _ledger_epsilons(root: Path) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for directory, (name, _, _) in EDGES.items():
        with EdgeStore.for_edge_dir(root / directory) as store:
            ledger = read_ledger(store, "behaviour")
        assert ledger is not None
        out[name] = [e.epsilon_after for e in ledger.entries]
    return out


def test_local_dp_budget_3_stops_the_run_and_the_api_shows_it(
    tmp_path: Path, server: tuple[TestClient, str]
) -> None:
    # Prepare: two edges of different sizes (their ε grows at different rates), σ = 2.
    api, url = server
    _edges(tmp_path / "edges", api)
    config = {"max-epsilon": BUDGET, "noise-multiplier": 2.0, "num-server-rounds": 8}

    # Execute: federated rounds until an edge's next release would exceed ε = 3, then sync.
    grid = _run(tmp_path / "edges", url, config)
    _sync_all(tmp_path / "edges", api)

    # Assert: the run stopped early, nothing over budget anywhere, the API shows the stop.
    run, ledgers = _api_view(api)
    trained = [r for r in run["rounds"] if r["phase"] == "train"]
    assert run["status"] == "budget_exhausted" and run["finished_at"] is not None
    assert 1 < len(trained) < config["num-server-rounds"]  # stopped early
    assert grid.delivered.count("train") == 2 * len(trained)
    last = trained[-1]
    refusals = [e for e in last["edges"] if e.get("error_code") == ERROR_BUDGET_EXHAUSTED]
    assert refusals and all("max-epsilon" in e["reason"] for e in refusals)
    assert all(r["metrics"].get("epsilon", 0.0) <= BUDGET for r in trained)
    history = _ledger_epsilons(tmp_path / "edges")
    assert all(0 < eps <= BUDGET for values in history.values() for eps in values)
    assert len(ledgers) == 2
    assert all(row["epsilon"] <= BUDGET and row["budget"] == BUDGET for row in ledgers)
    exhausted = [row for row in ledgers if row["exhausted"]]
    assert len(exhausted) == len(refusals) >= 1
    # The refusing edge's ledger is unchanged by the refused round: its last release is
    # from an earlier round, and the next one would have exceeded the budget.
    for row in exhausted:
        assert row["entries"][-1]["round"] < last["server_round"]
        sigma, q, steps = 2.0, row["entries"][-1]["sample_rate"], row["entries"][-1]["steps"]
        next_eps = compute_epsilon(
            [(sigma, q, steps)] * (len(row["entries"]) + 1), delta=1e-5, accountant="rdp"
        )
        assert next_eps > BUDGET >= row["epsilon"]


def test_central_dp_budget_3_stops_the_run_and_the_api_shows_it(
    tmp_path: Path, server: tuple[TestClient, str]
) -> None:
    # Prepare: client-level central DP, σ_c = 3 (ε after 4 releases 2.985, after 5 3.384).
    api, url = server
    _edges(tmp_path / "edges", api)
    config = {
        "dp-mode": "central",
        "central-noise-multiplier": 3.0,
        "central-clipping-norm": 0.5,
        "central-max-epsilon": BUDGET,
        "max-epsilon": BUDGET,
        "num-server-rounds": 8,
    }

    # Execute
    grid = _run(tmp_path / "edges", url, config)
    _sync_all(tmp_path / "edges", api)

    # Assert: the server's accountant stopped the run before round 5's release.
    run, ledgers = _api_view(api)
    trained = [r for r in run["rounds"] if r["phase"] == "train"]
    central = [r["metrics"]["central-epsilon"] for r in trained]
    expected = [
        compute_epsilon([(3.0, 1.0, 1)] * n, delta=1e-5, accountant="rdp") for n in (1, 2, 3, 4)
    ]
    assert run["status"] == "budget_exhausted"
    assert central == pytest.approx(expected) and max(central) <= BUDGET
    assert grid.delivered.count("train") == 2 * 4  # round 5 was never sent
    assert all(e["num-examples"] == 1 and e["examples-trained"] > 1 for e in trained[-1]["edges"])
    assert all(e["budget-exhausted"] == 1.0 for e in trained[-1]["edges"])
    # Each edge's ledger holds the same four central releases: the same ε, never above 3.
    assert all(
        values == pytest.approx(expected)
        for values in _ledger_epsilons(tmp_path / "edges").values()
    )
    assert len(ledgers) == 2
    assert all(row["epsilon"] == pytest.approx(central[-1]) for row in ledgers)
    assert all(row["epsilon"] <= BUDGET and not row["exhausted"] for row in ledgers)
    assert all(
        (e["noise_multiplier"], e["sample_rate"], e["steps"]) == (3.0, 1.0, 1)
        for row in ledgers
        for e in row["entries"]
    )
