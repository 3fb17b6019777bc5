"""Fixtures of the server tests: settings, in-memory engine, app client, a registered edge."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

import server.tables  # noqa: F401  (registers the tables)
from models import EdgeCredential
from server.config import ServerSettings
from server.db import create_db_engine
from server.main import create_app

from .factories import ADMIN_TOKEN, AGENT_TOKEN, CONTROLLER, ENROLLMENT_TOKEN, FakeClock


@pytest.fixture()
def server_settings() -> ServerSettings:
    return ServerSettings(
        database_url="sqlite://",
        enrollment_token=ENROLLMENT_TOKEN,
        admin_token=ADMIN_TOKEN,
        agent_token=AGENT_TOKEN,
        **CONTROLLER,
    )


@pytest.fixture()
def memory_engine() -> Iterator[Engine]:
    """An in-memory SQLite engine (StaticPool) with every table created."""
    engine = create_db_engine("sqlite://")
    SQLModel.metadata.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture()
def db_session(memory_engine: Engine) -> Iterator[Session]:
    with Session(memory_engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture()
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def api(
    server_settings: ServerSettings, memory_engine: Engine, fake_clock: FakeClock
) -> Iterator[TestClient]:
    app = create_app(server_settings, engine=memory_engine, clock=fake_clock)
    with TestClient(app) as client:
        yield client


@pytest.fixture()
def edge(api: TestClient) -> EdgeCredential:
    """A web edge registered with the enrollment token."""
    response = api.post(
        "/api/v1/edges",
        json={"name": "web-1", "channel": "web"},
        headers={"X-Enrollment-Token": ENROLLMENT_TOKEN},
    )
    assert response.status_code == 201, response.text
    return EdgeCredential.model_validate(response.json())
