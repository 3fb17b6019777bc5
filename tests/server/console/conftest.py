"""Fixtures of the console tests: an app on in-memory SQLite, two officers, an agent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from models import EdgeCredential
from server.config import ServerSettings
from server.main import create_app
from server.tables.token import Role
from tests.server.factories import ENROLLMENT_TOKEN, FakeClock

from .factories import issue_named


@pytest.fixture()
def console(
    server_settings: ServerSettings, memory_engine: Engine, fake_clock: FakeClock
) -> Iterator[TestClient]:
    """A client of the whole app (API and console) sharing the in-memory engine."""
    app = create_app(server_settings, engine=memory_engine, clock=fake_clock)
    with TestClient(app, base_url="http://testserver") as client:
        yield client


@pytest.fixture()
def officer_a(memory_engine: Engine) -> str:
    return issue_named(memory_engine, "li.wei")


@pytest.fixture()
def officer_b(memory_engine: Engine) -> str:
    return issue_named(memory_engine, "zhang.min")


@pytest.fixture()
def agent_token(memory_engine: Engine) -> str:
    return issue_named(memory_engine, "desk-7", Role.AGENT)


@pytest.fixture()
def edge(console: TestClient) -> EdgeCredential:
    """A web edge registered through the console's own app (one app per test, not two)."""
    response = console.post(
        "/api/v1/edges",
        json={"name": "web-1", "channel": "web"},
        headers={"X-Enrollment-Token": ENROLLMENT_TOKEN},
    )
    assert response.status_code == 201, response.text
    return EdgeCredential.model_validate(response.json())
