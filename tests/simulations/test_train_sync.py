"""``fedprofile train --sync``: after a run every registered edge reports its ledger."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlmodel import SQLModel

import server.tables as _tables  # noqa: F401  (registers the tables)
from client import build_client_app
from client.config import ClientSettings
from client.store import EdgeStore
from client.uploader import EdgeUploader
from models import RunConfig, initial_weights
from server import main
from server.config import ServerSettings
from server.db import create_db_engine
from simulations.train import sync_edges

from ..client.edge_factories import ENROLLMENT_TOKEN, NOW, free_port, uvicorn_server
from ..client.training_factories import flower_context, flower_message, make_edge, train_content

AGENT = "agent-" + "b" * 24


def _train_once(edge_dir: Path) -> None:
    app = build_client_app({"batch-size": 8, "accountant": "rdp"}, clock=lambda: NOW)
    reply = app(
        flower_message(train_content(initial_weights(RunConfig())), "train"),
        flower_context(node_config={"data-path": str(edge_dir)}),
    )
    assert not reply.has_error()


def test_sync_edges_reports_every_registered_edges_ledger(tmp_path: Path) -> None:
    edges = tmp_path / "edges"
    for name in ("desk", "web", "sms"):
        make_edge(edges / name, subjects=20, name=name, channel=name)
        _train_once(edges / name)
    url = f"sqlite:///{tmp_path / 'server.sqlite'}"
    engine = create_db_engine(url)
    SQLModel.metadata.create_all(engine)
    settings = ServerSettings(database_url=url, enrollment_token=ENROLLMENT_TOKEN,
                              admin_token="admin-" + "a" * 24, agent_token=AGENT)  # fmt: skip
    port = free_port()
    server_url = f"http://127.0.0.1:{port}"

    with uvicorn_server(main.create_app(settings, engine=engine, clock=lambda: NOW), port):
        for name in ("desk", "web"):  # sms is never registered
            edge = ClientSettings(edge_dir=edges / name, server_url=server_url)
            with (
                EdgeStore.for_edge_dir(edges / name) as store,
                EdgeUploader(store=store, settings=edge) as uploader,
            ):
                uploader.register(f"{name}-1", name, ENROLLMENT_TOKEN)
        synced = sync_edges(edges, server_url=server_url)
        ledgers = httpx.get(f"{server_url}/api/v1/ledgers",
                            headers={"Authorization": f"Bearer {AGENT}"}).json()  # fmt: skip
    engine.dispose()

    assert synced == 2
    assert sorted(row["channel"] for row in ledgers) == ["desk", "web"]
    assert all(row["model"] == "behaviour" and row["epsilon"] > 0 for row in ledgers)
