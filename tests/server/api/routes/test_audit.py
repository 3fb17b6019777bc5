from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from models import EdgeCredential
from privacy import VerifyKey
from server.audit.append import append_entries
from server.audit.export import verify_export
from server.crud.token import issue_token
from server.tables.token import Role

from ...audit.conftest import make_records
from ...factories import ADMIN_TOKEN, AGENT_TOKEN, T0, bearer

URL = "/api/v1/audit"


@pytest.fixture()
def officer(memory_engine: Engine) -> dict[str, str]:
    with Session(memory_engine) as session:
        raw, _ = issue_token(session=session, role=Role.COMPLIANCE_OFFICER, at=T0, name="o1")
        session.commit()
    return bearer(raw)


def _server_key(api: TestClient) -> VerifyKey:
    return VerifyKey.from_text(api.get("/api/v1/signing-key").json()["public_key"])


def test_get_audit_verify_intact_then_tampered(
    api: TestClient, edge: EdgeCredential, memory_engine: Engine
) -> None:
    intact = api.get(f"{URL}/verify", headers=bearer(ADMIN_TOKEN)).json()
    with memory_engine.begin() as conn:
        conn.execute(text("UPDATE audit_entry SET actor = 'admin' WHERE seq = 1"))
    broken = api.get(f"{URL}/verify", headers=bearer(ADMIN_TOKEN)).json()
    assert intact["ok"] is True and intact["entries"] == 1 and intact["pinned"] is True
    assert broken["ok"] is False and broken["first_bad_seq"] == 1
    assert broken["reason"] == "entry_hash_mismatch"


@pytest.mark.parametrize("path", ["verify", "entries", "checkpoints", "export?from=1&to=1"])
def test_audit_routes_admit_officers_and_admins_only(
    api: TestClient, edge: EdgeCredential, officer: dict[str, str], path: str
) -> None:
    assert api.get(f"{URL}/{path}", headers=officer).status_code == 200
    assert api.get(f"{URL}/{path}", headers=bearer(ADMIN_TOKEN)).status_code == 200
    assert api.get(f"{URL}/{path}", headers=bearer(AGENT_TOKEN)).status_code == 403
    assert api.get(f"{URL}/{path}", headers=bearer(edge.token)).status_code == 403
    assert api.get(f"{URL}/{path}").status_code == 401


def test_api_appends_sign_checkpoints_with_the_server_key(
    api: TestClient, officer: dict[str, str], memory_engine: Engine
) -> None:
    # Prepare: 999 entries written directly, then one through the API reaches 1,000.
    with Session(memory_engine) as session:
        append_entries(session=session, records=make_records(999))
        session.commit()
    # Execute
    registered = api.post("/api/v1/edges", json={"name": "web-9", "channel": "web"},
                          headers=bearer(ADMIN_TOKEN))  # fmt: skip
    listed = api.get(f"{URL}/checkpoints", headers=officer).json()
    verified = api.get(f"{URL}/verify", headers=officer).json()
    # Assert
    assert registered.status_code == 201
    (item,) = listed["items"]
    assert item["checkpoint"]["size"] == 1000
    assert item["envelope"]["public_key"] == _server_key(api).to_text()
    assert verified["ok"] is True and verified["checkpoints"] == 1


def test_get_audit_entries_filters_and_pages(
    api: TestClient, officer: dict[str, str], memory_engine: Engine
) -> None:
    with Session(memory_engine) as session:
        append_entries(session=session, records=make_records(40))
        session.commit()
    first = api.get(f"{URL}/entries", params={"action": "consent.record", "limit": 4},
                    headers=officer).json()  # fmt: skip
    second = api.get(f"{URL}/entries", headers=officer,
                     params={"action": "consent.record", "limit": 4,
                             "cursor": first["next_cursor"]}).json()  # fmt: skip
    seqs = [e["seq"] for e in first["items"] + second["items"]]
    assert seqs == [39, 35, 31, 27, 23, 19, 15, 11]
    assert all(e["action"] == "consent.record" for e in first["items"])
    assert "subject_ref" not in first["items"][0] and "subject_salt" not in first["items"][0]
    bad = api.get(f"{URL}/entries", params={"limit": 0}, headers=officer)
    assert bad.status_code == 422


def test_get_audit_export_verifies_offline_with_the_published_key(
    api: TestClient, officer: dict[str, str], memory_engine: Engine
) -> None:
    with Session(memory_engine) as session:
        append_entries(session=session, records=make_records(30))
        session.commit()
    response = api.get(f"{URL}/export", params={"from": 3, "to": 17}, headers=officer)
    assert response.status_code == 200
    check = verify_export(response.json(), public_key=_server_key(api))
    assert check.ok and (check.first, check.last, check.checkpoint_size) == (3, 17, 30)
    # The on-demand checkpoint was stored and is listed.
    listed = api.get(f"{URL}/checkpoints", headers=officer).json()
    assert [i["checkpoint"]["size"] for i in listed["items"]] == [30]
    # The export itself is audited, after the range was cut (entry 31).
    page = api.get(f"{URL}/entries", params={"action": "audit.export"}, headers=officer).json()
    assert [(e["seq"], e["outcome"]) for e in page["items"]] == [(31, "accepted")]
    missing = api.get(f"{URL}/export", params={"from": 3, "to": 32}, headers=officer)
    assert missing.status_code == 404
