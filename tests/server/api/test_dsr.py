"""Data-subject requests over the API: erasure with two officers, access export, restriction,
rectification, rejection, due dates, and who may call what."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select

from consent import Purpose, SubjectEventKind, SubjectEventPage
from models import EdgeCredential
from privacy import DecryptionError, VerifyKey, verify_signed
from privacy.crypto import FieldCipher
from privacy.keyring import WrappedDataKey
from server.api.deps import OptionalPrincipal, get_principal
from server.audit.log import verify_chain
from server.config import ServerSettings
from server.crud.erasure import verify_erasure_receipt
from server.principal import Principal
from server.tables.audit_entry import AuditEntry
from server.tables.dsr import DataSubjectRequest
from server.tables.profile_field import ProfileField
from server.tables.subject_key import SubjectKey
from server.tables.token import Role

from ..factories import (
    AGENT_TOKEN,
    T0,
    FakeClock,
    as_json,
    bearer,
    make_consent_event,
    make_field,
    make_pseudonym,
    make_upload,
)

SUBJECT_A = make_pseudonym("dsr-api-subject-a")
SUBJECT_B = make_pseudonym("dsr-api-subject-b")
RISK = "finance.payment_risk_level"
SECRET_VALUES = {SUBJECT_A: "very_high", SUBJECT_B: "very_low"}
ALICE = Principal(role=Role.COMPLIANCE_OFFICER, name="alice")
BOB = Principal(role=Role.COMPLIANCE_OFFICER, name="bob")
STATIC_ADMIN = Principal(role=Role.ADMIN)
SELF_A = Principal(role=Role.SUBJECT, subject=SUBJECT_A)
SELF_B = Principal(role=Role.SUBJECT, subject=SUBJECT_B)
AGENT = Principal(role=Role.AGENT, name="desk-7")
ANALYST = Principal(role=Role.ANALYST, name="ana")


@dataclass
class Caller:
    """Calls the API as a chosen principal (``None``: resolve the bearer token as usual)."""

    api: TestClient
    principal: Principal | None = None

    def __call__(self, principal: Principal, method: str, url: str, **kw: Any) -> Any:
        self.principal = principal
        try:
            return self.api.request(method, url, **kw)
        finally:
            self.principal = None


@pytest.fixture()
def caller(api: TestClient) -> Iterator[Caller]:
    holder = Caller(api)

    async def override(resolved: OptionalPrincipal) -> Principal:
        if holder.principal is not None:
            return holder.principal
        return await get_principal(resolved)

    api.app.dependency_overrides[get_principal] = override  # type: ignore[attr-defined]
    yield holder
    api.app.dependency_overrides.pop(get_principal, None)  # type: ignore[attr-defined]


def _populate(api: TestClient, edge: EdgeCredential) -> None:
    """Two subjects with consent, a sealed risk level and two plain tags each."""
    events = [
        event
        for subject in (SUBJECT_A, SUBJECT_B)
        for event in (make_consent_event(subject, Purpose.RISK_CONTROL, separate=True),
                      make_consent_event(subject))
    ]
    response = api.post("/api/v1/consents", json=as_json(events), headers=bearer(edge.token))
    assert response.status_code == 200, response.text
    for subject in (SUBJECT_A, SUBJECT_B):
        risk = make_upload("risk_control", [make_field(RISK, SECRET_VALUES[subject])])
        for key, upload in ((f"risk-{subject[-6:]}", risk),
                            (f"tags-{subject[-6:]}", make_upload())):
            response = api.put(f"/api/v1/subjects/{subject}/profile", json=as_json(upload),
                               headers={**bearer(edge.token), "Idempotency-Key": key})
            assert response.status_code == 200, response.text


def _file(caller: Caller, principal: Principal, subject: str, kind: str,
          **extra: Any) -> dict[str, Any]:
    response = caller(principal, "POST", "/api/v1/dsr",
                      json={"subject": subject, "request_type": kind, **extra})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _act(caller: Caller, principal: Principal, request_id: str, action: str,
         **kw: Any) -> httpx.Response:
    return caller(principal, "POST", f"/api/v1/dsr/{request_id}/{action}", **kw)


def _approve_and_run(caller: Caller, request_id: str) -> dict[str, Any]:
    for principal, action in ((ALICE, "verify"), (ALICE, "approve"), (BOB, "execute")):
        response = _act(caller, principal, request_id, action)
        assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _references(engine: Engine, needle: str) -> list[str]:
    """Every ``table.column`` holding ``needle`` anywhere in its value."""
    found = []
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            for row in conn.execute(sa_select(table)).mappings():
                for column, value in row.items():
                    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    if needle in text:
                        found.append(f"{table.name}.{column}")
    return found


def _feed(api: TestClient, edge: EdgeCredential, after: str | None = None) -> SubjectEventPage:
    params = {} if after is None else {"after": after}
    response = api.get("/api/v1/edges/me/subject-events", params=params,
                       headers=bearer(edge.token))
    assert response.status_code == 200, response.text
    return SubjectEventPage.model_validate(response.json())


def _read_a(api: TestClient) -> dict[str, Any]:
    response = api.get(f"/api/v1/subjects/{SUBJECT_A}/profile",
                       params={"purpose": "personalized_service"}, headers=bearer(AGENT_TOKEN))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# ------------------------------------------------------------------ erasure


def test_erasure_needs_two_different_officers_then_leaves_no_reference(
    api: TestClient, caller: Caller, edge: EdgeCredential, memory_engine: Engine,
    fake_clock: FakeClock,
) -> None:
    # Prepare: two subjects; A's sealed ciphertext and B's key are captured for later.
    _populate(api, edge)
    with Session(memory_engine) as session:
        a_sealed = session.exec(select(ProfileField).where(
            ProfileField.subject == SUBJECT_A, ProfileField.name == RISK)).one()
        a_ciphertext = a_sealed.value_ciphertext
    assert a_ciphertext is not None
    cursor = _feed(api, edge).cursor
    request = _file(caller, SELF_A, SUBJECT_A, "erase")
    assert request["channel"] == "self-service" and request["approvals_required"] == 2
    rid = request["id"]

    # Execute: verify, two approvals by alice (the second refused), bob's approval, execution.
    assert _act(caller, ALICE, rid, "verify").status_code == 200
    first = _act(caller, ALICE, rid, "approve").json()
    again = _act(caller, ALICE, rid, "approve")
    early = _act(caller, ALICE, rid, "execute")
    second = _act(caller, BOB, rid, "approve").json()
    fake_clock.advance(hours=1)
    done = _act(caller, BOB, rid, "execute")

    # Assert: the two-officer rule, then completion.
    assert first["state"] == "verifying" and len(first["approvals"]) == 1
    assert again.status_code == 409 and again.json()["reason"] == "duplicate_approval"
    assert early.status_code == 409 and early.json()["reason"] == "invalid_transition"
    assert second["state"] == "approved"
    assert [a["officer"] for a in second["approvals"]] == ["compliance_officer:alice",
                                                           "compliance_officer:bob"]
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["state"] == "completed" and body["subject"] is None
    assert body["result"]["key_destroyed"] is True
    # No row anywhere names A, except audit entries reduced to salted commitments.
    assert _references(memory_engine, SUBJECT_A) == []
    assert _references(memory_engine, SUBJECT_A.removeprefix("ps_")) == []
    with Session(memory_engine) as session:
        unlinked = session.exec(select(AuditEntry).where(
            AuditEntry.subject_commitment.is_not(None),  # type: ignore[union-attr]
            AuditEntry.subject_ref.is_(None),  # type: ignore[union-attr]
        )).all()
        assert len(unlinked) >= 5  # consent, two uploads, dsr.create, dsr.approve...
        assert verify_chain(session=session).ok
        assert session.get(SubjectKey, SUBJECT_A) is None
        b_key_row = session.get(SubjectKey, SUBJECT_B)
        assert b_key_row is not None
    # A's sealed value opens with no remaining key: none is stored for A, and B's does not fit.
    ring = api.app.state.master_keys.current()  # type: ignore[attr-defined]
    b_key = ring.unwrap(WrappedDataKey(master_kid=b_key_row.master_kid,
                                       version=b_key_row.key_version,
                                       blob=b_key_row.wrapped_key), subject=SUBJECT_B)
    for owner in (SUBJECT_A, SUBJECT_B):
        with pytest.raises(DecryptionError):
            FieldCipher(subject=owner, data_key=b_key).decrypt(field=RISK,
                                                               ciphertext=a_ciphertext)
    # The receipt verifies offline with the published key, is about A and only A.
    public = api.get("/api/v1/signing-key").json()
    trusted = VerifyKey.from_text(public["public_key"])
    receipt = caller(ALICE, "GET", f"/api/v1/dsr/{rid}/receipt").json()
    document = verify_erasure_receipt(receipt, trusted=trusted, subject=SUBJECT_A)
    assert document["request_id"] == rid and document["key_destroyed"] is not None
    assert SUBJECT_A not in json.dumps(receipt)
    with pytest.raises(ValueError, match="another subject"):
        verify_erasure_receipt(receipt, trusted=trusted, subject=SUBJECT_B)
    forged = copy.deepcopy(receipt)
    forged["document"]["rows_erased"]["profile_field"] = 0
    with pytest.raises(DecryptionError):
        verify_erasure_receipt(forged, trusted=trusted)
    # The edges are told by salted hash, and a stale upload of A is refused.
    events = _feed(api, edge, cursor).events
    erasures = [e for e in events if e.kind is SubjectEventKind.ERASURE]
    assert len(erasures) == 1 and erasures[0].matches(SUBJECT_A)
    assert not erasures[0].matches(SUBJECT_B) and erasures[0].subject is None
    stale = api.put(f"/api/v1/subjects/{SUBJECT_A}/profile", json=as_json(make_upload()),
                    headers={**bearer(edge.token), "Idempotency-Key": "stale-after-erasure"})
    assert stale.status_code == 403
    assert {r["reason"] for r in stale.json()["refused"]} == {"subject_erased"}


def test_static_admin_counts_as_one_officer(api: TestClient, caller: Caller) -> None:
    rid = _file(caller, ALICE, SUBJECT_A, "erase")["id"]
    assert _act(caller, STATIC_ADMIN, rid, "verify").status_code == 200
    assert _act(caller, STATIC_ADMIN, rid, "approve").json()["state"] == "verifying"

    again = _act(caller, STATIC_ADMIN, rid, "approve")

    assert again.status_code == 409 and again.json()["reason"] == "duplicate_approval"
    assert _act(caller, BOB, rid, "approve").json()["state"] == "approved"


# ------------------------------------------------------------------ access and export


def test_access_export_is_signed_and_holds_profile_consents_and_history(
    api: TestClient, caller: Caller, edge: EdgeCredential
) -> None:
    _populate(api, edge)
    rid = _file(caller, SELF_A, SUBJECT_A, "access")["id"]
    before = caller(SELF_A, "GET", f"/api/v1/dsr/{rid}/export")
    done = _approve_and_run(caller, rid)

    response = caller(SELF_A, "GET", f"/api/v1/dsr/{rid}/export")

    assert before.status_code == 409
    # History: consent.record, 2 x profile.write, dsr.create, .verify, .approve, .start.
    assert done["result"] == {"consent_events": 2, "history_entries": 7, "profile_fields": 3}
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    envelope = response.json()
    trusted = VerifyKey.from_text(api.get("/api/v1/signing-key").json()["public_key"])
    verify_signed(envelope, trusted=trusted)
    document = envelope["document"]
    assert document["subject"] == SUBJECT_A and document["restricted"] is False
    values = {f["name"]: f["value"] for f in document["profile"]}
    assert values[RISK] == SECRET_VALUES[SUBJECT_A]  # sealed field opened for its owner
    assert SECRET_VALUES[SUBJECT_B] not in json.dumps(document)
    assert all("zh" in f["meaning"] and "en" in f["meaning"] for f in document["profile"])
    assert {c["purpose"] for c in document["consents"]} == {"risk_control",
                                                            "personalized_service"}
    actions = [h["action"] for h in document["processing_history"]]
    assert actions.count("profile.write") == 2 and "dsr.create" in actions
    assert "alice" not in json.dumps(document["processing_history"])  # roles, not staff names


def test_subject_sees_only_own_requests_and_never_the_queue(
    api: TestClient, caller: Caller
) -> None:
    own = _file(caller, SELF_A, SUBJECT_A, "access")["id"]
    other = _file(caller, ALICE, SUBJECT_B, "access")["id"]

    for_other = caller(SELF_A, "POST", "/api/v1/dsr",
                       json={"subject": SUBJECT_B, "request_type": "erase"})

    assert for_other.status_code == 403
    assert caller(SELF_A, "GET", f"/api/v1/dsr/{own}").status_code == 200
    assert caller(SELF_A, "GET", f"/api/v1/dsr/{other}").status_code == 404
    assert caller(SELF_A, "GET", "/api/v1/dsr").status_code == 403
    assert caller(SELF_A, "POST", f"/api/v1/dsr/{own}/verify").status_code == 403


# ------------------------------------------------------------------ restriction


def test_restriction_keeps_the_subject_but_stops_reads_uploads_and_tells_edges(
    api: TestClient, caller: Caller, edge: EdgeCredential, memory_engine: Engine
) -> None:
    _populate(api, edge)
    cursor = _feed(api, edge).cursor
    rid = _file(caller, SELF_A, SUBJECT_A, "restrict")["id"]

    _approve_and_run(caller, rid)

    restricted = _read_a(api)
    upload = api.put(f"/api/v1/subjects/{SUBJECT_A}/profile", json=as_json(make_upload()),
                     headers={**bearer(edge.token), "Idempotency-Key": "while-restricted"})
    assert restricted["fields"] == [] and restricted["withheld"] == 3
    assert upload.status_code == 403
    assert {r["reason"] for r in upload.json()["refused"]} == {"subject_restricted"}
    with Session(memory_engine) as session:  # kept, not deleted
        assert len(session.exec(select(ProfileField).where(
            ProfileField.subject == SUBJECT_A)).all()) == 3
    page = _feed(api, edge, cursor)
    assert [(e.kind, e.subject) for e in page.events] == [
        (SubjectEventKind.RESTRICTION, SUBJECT_A)]
    # Lifting: reads return fields again, and edges learn it.
    lift = _file(caller, SELF_A, SUBJECT_A, "lift_restriction")["id"]
    _approve_and_run(caller, lift)
    assert {f["name"] for f in _read_a(api)["fields"]} == {"tag.high_purchasing_power",
                                                           "feature.recency_days"}
    assert [e.kind for e in _feed(api, edge, page.cursor).events] == [
        SubjectEventKind.RESTRICTION_LIFTED]


# ------------------------------------------------------------------ rectification


def test_rectification_corrects_field_suppresses_uploads_and_forgets_value(
    api: TestClient, caller: Caller, edge: EdgeCredential, memory_engine: Engine
) -> None:
    _populate(api, edge)
    cursor = _feed(api, edge).cursor
    bad = caller(SELF_A, "POST", "/api/v1/dsr", json={
        "subject": SUBJECT_A, "request_type": "rectify",
        "rectification": {"field": "tag.high_purchasing_power", "value": "very"}})
    rid = _file(caller, SELF_A, SUBJECT_A, "rectify", rectification={
        "field": "tag.high_purchasing_power", "value": False})["id"]

    done = _approve_and_run(caller, rid)

    assert bad.status_code == 422 and bad.json()["error"] == "dsr_invalid"
    assert done["result"] == {"action": "corrected", "field": "tag.high_purchasing_power"}
    assert "value" not in done["rectification"] and len(done["rectification"]["value_sha256"]) == 64
    values = {f["name"]: f["value"] for f in _read_a(api)["fields"]}
    assert values["tag.high_purchasing_power"] is False
    stale = api.put(f"/api/v1/subjects/{SUBJECT_A}/profile", json=as_json(make_upload()),
                    headers={**bearer(edge.token), "Idempotency-Key": "stale-tag"})
    assert stale.status_code == 403
    assert [(r["field"], r["reason"]) for r in stale.json()["refused"]] == [
        ("tag.high_purchasing_power", "field_suppressed")]
    events = _feed(api, edge, cursor).events
    assert [(e.kind, e.field, e.reason) for e in events] == [
        (SubjectEventKind.FIELD_SUPPRESSED, "tag.high_purchasing_power", "rectified")]


# ------------------------------------------------------------------ rejection, due dates


def test_rejection_needs_a_reason_and_is_final(api: TestClient, caller: Caller) -> None:
    rid = _file(caller, ALICE, SUBJECT_A, "erase", channel="email")["id"]

    missing = _act(caller, ALICE, rid, "reject", json={"reason": ""})
    blank = _act(caller, ALICE, rid, "reject", json={"reason": "   "})
    done = _act(caller, ALICE, rid, "reject", json={"reason": "identity could not be verified"})
    after = _act(caller, BOB, rid, "verify")

    assert missing.status_code == 422
    assert blank.status_code == 409 and blank.json()["reason"] == "reason_required"
    assert done.status_code == 200
    assert done.json()["rejection_reason"] == "identity could not be verified"
    assert done.json()["channel"] == "email"
    assert after.status_code == 409


def test_due_date_overdue_flag_and_queue_filters(
    api: TestClient, caller: Caller, fake_clock: FakeClock
) -> None:
    first = _file(caller, ALICE, SUBJECT_A, "access")
    fake_clock.advance(days=10)
    second = _file(caller, ALICE, SUBJECT_B, "access")
    fake_clock.advance(days=6)  # first is 16 days old, second 6

    overdue = caller(ALICE, "GET", "/api/v1/dsr", params={"overdue": "true"}).json()
    early = caller(ALICE, "GET", "/api/v1/dsr",
                   params={"due_before": (T0 + timedelta(days=20)).isoformat()}).json()
    received = caller(ALICE, "GET", "/api/v1/dsr", params={"state": "received"}).json()

    assert first["due_at"].startswith((T0 + timedelta(days=15)).date().isoformat())
    assert [r["id"] for r in overdue] == [first["id"]] and overdue[0]["overdue"] is True
    assert [r["id"] for r in early] == [first["id"]]
    assert [r["id"] for r in received] == [first["id"], second["id"]]


def test_due_days_setting_sets_the_due_date(
    api: TestClient, caller: Caller
) -> None:
    base = api.app.state.settings  # type: ignore[attr-defined]
    api.app.state.settings = ServerSettings(  # type: ignore[attr-defined]
        **{**base.model_dump(), "dsr_due_days": 30}
    )

    body = _file(caller, ALICE, SUBJECT_A, "access")

    assert body["due_at"].startswith((T0 + timedelta(days=30)).date().isoformat())


# ------------------------------------------------------------------ who may call what

ROUTES = [
    ("POST", "/api/v1/dsr", {Role.COMPLIANCE_OFFICER, Role.ADMIN, Role.SUBJECT}),
    ("GET", "/api/v1/dsr", {Role.COMPLIANCE_OFFICER, Role.ADMIN}),
    ("GET", "/api/v1/dsr/{id}", {Role.COMPLIANCE_OFFICER, Role.ADMIN, Role.SUBJECT}),
    ("POST", "/api/v1/dsr/{id}/verify", {Role.COMPLIANCE_OFFICER, Role.ADMIN}),
    ("POST", "/api/v1/dsr/{id}/approve", {Role.COMPLIANCE_OFFICER, Role.ADMIN}),
    ("POST", "/api/v1/dsr/{id}/reject", {Role.COMPLIANCE_OFFICER, Role.ADMIN}),
    ("POST", "/api/v1/dsr/{id}/execute", {Role.COMPLIANCE_OFFICER, Role.ADMIN}),
    ("GET", "/api/v1/dsr/{id}/export", {Role.COMPLIANCE_OFFICER, Role.ADMIN, Role.SUBJECT}),
    ("GET", "/api/v1/dsr/{id}/receipt", {Role.COMPLIANCE_OFFICER, Role.ADMIN, Role.SUBJECT}),
    ("GET", "/api/v1/edges/me/subject-events", {Role.EDGE}),
]
PRINCIPALS = {
    Role.EDGE: Principal(role=Role.EDGE, edge_id="edge-x", channel="web"),
    Role.AGENT: AGENT,
    Role.ANALYST: ANALYST,
    Role.COMPLIANCE_OFFICER: ALICE,
    Role.ADMIN: STATIC_ADMIN,
    Role.SUBJECT: SELF_A,
}


@pytest.mark.parametrize(("method", "path", "allowed"), ROUTES,
                         ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_only_declared_roles_pass_the_role_check(
    api: TestClient, caller: Caller, method: str, path: str, allowed: set[Role]
) -> None:
    rid = _file(caller, ALICE, SUBJECT_A, "access")["id"]
    url = path.replace("{id}", rid)
    body = {"subject": SUBJECT_A, "request_type": "access"} if path == "/api/v1/dsr" else None

    codes = {role: caller(p, method, url, json=body).status_code
             for role, p in PRINCIPALS.items()}

    for role, code in codes.items():
        if role in allowed:
            assert code != 403, (role, code)
        else:
            assert code == 403, (role, code)
    assert api.request(method, url, json=body).status_code == 401  # no token at all


def test_feed_refuses_a_cursor_it_did_not_issue(api: TestClient, edge: EdgeCredential) -> None:
    response = api.get("/api/v1/edges/me/subject-events", params={"after": "v9:1:2"},
                       headers=bearer(edge.token))

    assert response.status_code == 422 and response.json()["error"] == "invalid_cursor"


def test_erased_subject_requests_keep_only_a_commitment(
    api: TestClient, caller: Caller, edge: EdgeCredential, memory_engine: Engine
) -> None:
    _populate(api, edge)
    pending = _file(caller, SELF_A, SUBJECT_A, "rectify", rectification={
        "field": "feature.recency_days", "value": 3})["id"]
    rid = _file(caller, SELF_A, SUBJECT_A, "erase")["id"]
    assert _act(caller, ALICE, rid, "verify").status_code == 200
    assert _act(caller, ALICE, rid, "approve").status_code == 200
    assert _act(caller, BOB, rid, "approve").status_code == 200

    assert _act(caller, BOB, rid, "execute").status_code == 200

    with Session(memory_engine) as session:
        rows = {r.id: r for r in session.exec(select(DataSubjectRequest)).all()}
    assert rows[pending].subject is None and rows[rid].subject is None
    assert rows[pending].rectification_json is not None
    assert '"value"' not in rows[pending].rectification_json
    assert rows[rid].subject_commitment is not None
    # The pending request cannot run on an erased subject.
    assert _act(caller, ALICE, pending, "verify").status_code == 200
    assert _act(caller, ALICE, pending, "approve").status_code == 200
    refused = _act(caller, ALICE, pending, "execute")
    assert refused.status_code == 422 and refused.json()["error"] == "dsr_invalid"
