"""Real edges against the real API in-process (SQLite file or PostgreSQL, migrated).

Shared by the scenario tests of merged profiles and persons: an ``Api`` bound to an httpx
transport, edges that ingest lines and build profiles, and their syncs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

import server.tables as _tables  # noqa: F401  (registers the tables)
from client.config import ClientSettings
from client.credentials import load_credentials
from client.ingest import IngestReport, ingest_file
from client.outbox import SyncReport
from client.profile import build_profiles
from client.store import EdgeStore
from client.uploader import EdgeUploader
from privacy import Pseudonymizer
from server.config import ServerSettings
from server.db import create_db_engine, upgrade_database

from ..client.edge_factories import (
    ENROLLMENT_TOKEN,
    KEY,
    NOW,
    FakeScrubber,
    consent_line,
    write_jsonl,
)
from .factories import ADMIN_TOKEN, AGENT_TOKEN, bearer

#: Purposes every harness edge uploads for and every harness customer grants.
PURPOSES = ("personalized_service", "service_routing", "proactive_service")


@dataclass
class Api:
    """The real API in-process and an httpx transport bound to it."""

    client: TestClient
    engine: Engine

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            answer = self.client.request(
                request.method,
                str(request.url.copy_with(scheme="http", host="testserver", port=None)),
                headers=dict(request.headers),
                content=request.content,
            )
            return httpx.Response(
                answer.status_code, headers=answer.headers, content=answer.content
            )

        return httpx.MockTransport(handle)

    def read(self, subject: str, purpose: str = "personalized_service") -> dict[str, Any]:
        """Read ``subject``'s profile with the per-channel breakdown (agent token)."""
        response = self.client.get(
            f"/api/v1/subjects/{subject}/profile",
            params={"purpose": purpose, "breakdown": "channel"},
            headers=bearer(AGENT_TOKEN),
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def fields(self, subject: str, purpose: str = "personalized_service") -> dict[str, Any]:
        """The fields of :meth:`read`, by name."""
        return {f["name"]: f for f in self.read(subject, purpose)["fields"]}

    def admin(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """Call ``/api/v1`` + ``path`` with the admin token."""
        return self.client.request(method, f"/api/v1{path}", headers=bearer(ADMIN_TOKEN), **kw)  # type: ignore[return-value]


def make_api(url: str) -> Iterator[Api]:
    """Migrate ``url``, start the app on it, yield the harness, dispose of the engine."""
    upgrade_database(url)  # the migrations, not create_all: constraints must exist
    engine = create_db_engine(url)
    settings = ServerSettings(
        database_url=url,
        enrollment_token=ENROLLMENT_TOKEN,
        agent_token=AGENT_TOKEN,
        admin_token=ADMIN_TOKEN,
    )
    from server.main import create_app

    with TestClient(create_app(settings, engine=engine, clock=lambda: NOW)) as client:
        yield Api(client, engine)
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    """The harness on a migrated SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'server.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    yield from make_api(url)


def edge_settings(tmp_path: Path, channel: str) -> ClientSettings:
    """Settings of the harness edge of ``channel`` under ``tmp_path``."""
    return ClientSettings(
        edge_dir=tmp_path / channel, server_url="http://testserver", upload_purposes=PURPOSES
    )


def make_edge(
    tmp_path: Path,
    api: Api,
    channel: str,
    rows: list[dict[str, Any]],
    *,
    consent_for: list[dict[str, str]] | None = None,
) -> tuple[EdgeStore, IngestReport]:
    """An edge of ``channel`` that ingested ``rows`` plus consents and built its profiles.

    ``consent_for`` lists the customer references that grant every harness purpose
    (default: the factories' phone).
    """
    settings = edge_settings(tmp_path, channel)
    refs = consent_for if consent_for is not None else [{"phone": "13812345678"}]
    consents = []
    for i, ref in enumerate(refs):
        for purpose in PURPOSES:
            line = consent_line(f"{channel}-{i}-{purpose}", purpose=purpose, channel=channel)
            line["customer"] = dict(ref)
            consents.append(line)
    path = write_jsonl(tmp_path / f"{channel}.jsonl", rows + consents)
    store = EdgeStore.for_edge_dir(settings.edge_dir)
    report = ingest_file(store=store, path=path, pseudonymizer=Pseudonymizer(KEY),
                         detector=FakeScrubber(), now=NOW)  # fmt: skip
    build_profiles(store=store, now=NOW)
    with EdgeUploader(store=store, settings=settings, transport=api.transport()) as up:
        up.register(f"{channel}-1", channel, ENROLLMENT_TOKEN)
    return store, report


def sync(
    tmp_path: Path, api: Api, store: EdgeStore, channel: str, *, full: bool = False
) -> SyncReport:
    """One sync of the harness edge of ``channel``."""
    settings = edge_settings(tmp_path, channel)
    with EdgeUploader(store=store, settings=settings, transport=api.transport()) as up:
        return up.sync(now=NOW, full=full)


def edge_token(tmp_path: Path, channel: str) -> str:
    """The bearer token the harness edge of ``channel`` was issued."""
    credential = load_credentials(edge_settings(tmp_path, channel).credentials_path)
    assert credential is not None
    return credential.token
