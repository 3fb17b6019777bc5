from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from models import EdgeCredential

from ...factories import ADMIN_TOKEN, AGENT_TOKEN, bearer

URL = "/api/v1/audit/verify"


def test_get_audit_verify_intact_then_tampered(
    api: TestClient, edge: EdgeCredential, memory_engine: Engine
) -> None:
    intact = api.get(URL, headers=bearer(ADMIN_TOKEN)).json()
    with memory_engine.begin() as conn:
        conn.execute(text("UPDATE audit_entry SET actor = 'admin' WHERE seq = 1"))
    broken = api.get(URL, headers=bearer(ADMIN_TOKEN)).json()
    assert intact["ok"] is True and intact["entries"] == 1
    assert broken["ok"] is False and broken["first_bad_seq"] == 1
    assert broken["reason"] == "entry_hash_mismatch"


def test_get_audit_verify_is_admin_only(api: TestClient) -> None:
    assert api.get(URL, headers=bearer(AGENT_TOKEN)).status_code == 403
