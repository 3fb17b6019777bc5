"""Named tokens: issue (shown once), list, use, revoke, expire; roles and bindings checked."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from server.tables.audit_entry import AuditEntry
from server.tables.token import ApiToken

from ..factories import ADMIN_TOKEN, FakeClock, as_json, bearer, make_consent_event, make_pseudonym

ADMIN = bearer(ADMIN_TOKEN)
SUBJECT = make_pseudonym("token-subject")


def _issue(api: TestClient, **body: object):  # noqa: ANN202
    return api.post("/api/v1/tokens", json=body, headers=ADMIN)


def test_officer_token_is_shown_once_listed_without_secret_and_names_the_actor(
    api: TestClient, memory_engine: Engine
) -> None:
    response = _issue(api, role="compliance_officer", name="li.wei")
    assert response.status_code == 201, response.text
    issued = response.json()
    token, info = issued["token"], issued["info"]
    assert info["role"] == "compliance_officer" and info["holder_name"] == "li.wei"
    listed = api.get("/api/v1/tokens", headers=ADMIN).json()
    assert [t["id"] for t in listed] == [info["id"]]
    assert token not in str(listed) and "token_hash" not in listed[0]
    with Session(memory_engine) as session:
        row = session.get(ApiToken, info["id"])
        assert row is not None and row.token_hash != token and token not in row.token_hash
    # The officer may publish a notice; the audit log names them.
    notice = {
        "version": "2026-12",
        "purposes": ["marketing"],
        "material": False,
        "content_hash": "b" * 64,
        "url": "https://example.com/n",
        "language": "en",
    }
    published = api.post("/api/v1/notices", json=notice, headers=bearer(token))
    assert published.status_code == 201, published.text
    with Session(memory_engine) as session:
        entries = session.exec(select(AuditEntry).order_by(AuditEntry.seq)).all()
    actors = {(e.action, e.actor) for e in entries}
    assert ("notice.publish", "compliance_officer:li.wei") in actors
    assert ("token.issue", "admin") in actors


def test_revoked_token_stops_working_at_once(api: TestClient) -> None:
    issued = _issue(api, role="analyst", name="ana").json()
    assert api.get("/api/v1/ledgers", headers=bearer(issued["token"])).status_code == 200
    assert api.delete(f"/api/v1/tokens/{issued['info']['id']}", headers=ADMIN).status_code == 204
    assert api.get("/api/v1/ledgers", headers=bearer(issued["token"])).status_code == 401
    assert api.delete(f"/api/v1/tokens/{issued['info']['id']}", headers=ADMIN).status_code == 404
    assert api.get("/api/v1/tokens", headers=ADMIN).json() == []
    assert len(api.get("/api/v1/tokens?include_revoked=true", headers=ADMIN).json()) == 1


def test_expired_token_is_refused(api: TestClient, fake_clock: FakeClock) -> None:
    issued = _issue(api, role="agent", name="desk-7", expires_in_days=1).json()
    assert api.get("/api/v1/ledgers", headers=bearer(issued["token"])).status_code == 200
    fake_clock.advance(days=1)
    assert api.get("/api/v1/ledgers", headers=bearer(issued["token"])).status_code == 401


def test_subject_token_acts_only_on_its_pseudonym(api: TestClient) -> None:
    issued = _issue(api, role="subject", subject=SUBJECT).json()
    assert issued["info"]["subject"] == SUBJECT
    overview = api.get("/api/v1/me/consents", headers=bearer(issued["token"])).json()
    assert overview["subject"] == SUBJECT


def test_edge_token_for_a_channel_registers_a_working_edge(api: TestClient) -> None:
    issued = _issue(api, role="edge", name="app-1", channel="app").json()
    assert issued["info"]["channel"] == "app" and issued["info"]["edge_id"]
    event = make_consent_event(SUBJECT)
    response = api.post("/api/v1/consents", json=as_json([event]), headers=bearer(issued["token"]))
    assert response.status_code == 200, response.text
    # One live token for the new edge: registration's token is the one handed out.
    assert len(api.get("/api/v1/tokens", headers=ADMIN).json()) == 1
    again = _issue(api, role="edge", edge_id=issued["info"]["edge_id"]).json()
    assert again["info"]["edge_id"] == issued["info"]["edge_id"]


def test_bindings_that_do_not_fit_the_role_are_refused(api: TestClient) -> None:
    cases = [
        {"role": "compliance_officer"},  # no holder name
        {"role": "subject"},  # no pseudonym
        {"role": "agent", "name": "a", "subject": SUBJECT},  # only subjects take one
        {"role": "edge", "name": "e"},  # neither edge_id nor channel
        {"role": "analyst", "name": "has space"},
        {"role": "subject", "subject": "13800138000"},  # not a pseudonym
        {"role": "root", "name": "x"},
    ]
    for body in cases:
        response = _issue(api, **body)
        assert response.status_code == 422, body
        assert "13800138000" not in response.text
