from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from models import EdgeCredential
from server.config import ServerSettings
from server.db import create_db_engine
from server.main import create_app


def test_get_health_reports_audit_count_and_head(api: TestClient, edge: EdgeCredential) -> None:
    body = api.get("/api/v1/health").json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["audit_entries"] == 1 and len(body["audit_head"]) == 64


def test_get_health_unmigrated_database_is_503(memory_engine: Engine) -> None:
    empty = create_db_engine("sqlite://")
    app = create_app(ServerSettings(database_url="sqlite://"), engine=empty)
    with TestClient(app) as client:
        response = client.get("/api/v1/health")
    empty.dispose()
    assert response.status_code == 503 and response.json()["database"] == "unreachable"
