from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from models import EdgeCredential
from server.config import ServerSettings
from server.main import create_app
from server.tables.token import ApiToken

from ...factories import ADMIN_TOKEN, AGENT_TOKEN, ENROLLMENT_TOKEN, bearer

URL = "/api/v1/edges"
BODY = {"name": "desk-1", "channel": "desk"}


@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [
        ({"X-Enrollment-Token": ENROLLMENT_TOKEN}, 201, None),
        (bearer(ADMIN_TOKEN), 201, None),
        ({"X-Enrollment-Token": "wrong-enrollment-token-x"}, 401, "unauthorized"),
        (bearer(AGENT_TOKEN), 403, "forbidden"),
        ({}, 401, "unauthorized"),
    ],
    ids=["enrollment", "admin", "wrong-enrollment", "agent", "none"],
)
def test_post_edges_authorisation(
    api: TestClient, headers: dict[str, str], status: int, error: str | None
) -> None:
    response = api.post(URL, json=BODY, headers=headers)
    assert response.status_code == status
    if error:
        assert response.json()["error"] == error


def test_post_edges_token_is_shown_once_and_stored_hashed(
    api: TestClient, edge: EdgeCredential, memory_engine: Engine
) -> None:
    with Session(memory_engine) as session:
        (row,) = session.exec(select(ApiToken)).all()
    assert len(edge.token) >= 40 and row.token_hash != edge.token
    assert row.edge_id == edge.edge_id and row.role == "edge"


def test_post_edges_duplicate_name_is_409(api: TestClient, edge: EdgeCredential) -> None:
    body = {"name": edge.name, "channel": "app"}
    response = api.post(URL, json=body, headers=bearer(ADMIN_TOKEN))
    assert response.status_code == 409 and response.json()["error"] == "edge_name_taken"


def test_post_edges_invalid_channel_is_422(api: TestClient) -> None:
    response = api.post(URL, json={"name": "x", "channel": "fax"}, headers=bearer(ADMIN_TOKEN))
    assert response.status_code == 422


def test_post_edges_enrollment_disabled_is_403(memory_engine: Engine) -> None:
    app = create_app(ServerSettings(database_url="sqlite://"), engine=memory_engine)
    with TestClient(app) as client:
        response = client.post(URL, json=BODY, headers={"X-Enrollment-Token": ENROLLMENT_TOKEN})
    assert response.status_code == 403 and response.json()["error"] == "enrollment_disabled"
