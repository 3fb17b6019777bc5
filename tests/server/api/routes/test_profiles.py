"""Acceptance tests of the profile plane: atomic refusal, idempotency, audit, withdrawal."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from consent import ConsentStatus, Purpose
from models import EdgeCredential, ProfileUpload
from server.audit.log import count_entries, verify_chain
from server.tables.audit_entry import AuditEntry
from server.tables.profile_field import ProfileField

from ...factories import (
    ADMIN_TOKEN,
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

SUBJECT = make_pseudonym("api-subject")
PATH = f"/api/v1/subjects/{SUBJECT}/profile"
RAW_PHONE = "+8613800138000"


def _consent(api: TestClient, edge: EdgeCredential, *events: object) -> None:
    response = api.post("/api/v1/consents", json=as_json(list(events)), headers=bearer(edge.token))
    assert response.status_code == 200, response.text


def _put(api: TestClient, edge: EdgeCredential, upload: ProfileUpload, key: str = "k1"):  # noqa: ANN202
    return api.put(PATH, json=as_json(upload),
                   headers={**bearer(edge.token), "Idempotency-Key": key})


def _read(api: TestClient, purpose: str = "personalized_service", token: str = AGENT_TOKEN):  # noqa: ANN202
    return api.get(PATH, params={"purpose": purpose}, headers=bearer(token))


def _fields(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return sorted(r.name for r in session.exec(select(ProfileField)).all())


def _audit(engine: Engine) -> list[AuditEntry]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEntry).order_by(AuditEntry.seq)).all())


def test_put_profile_refused_field_returns_403_and_stores_nothing(
    api: TestClient, edge: EdgeCredential, memory_engine: Engine
) -> None:
    # Prepare: consent for personalized_service only; one field is allowed, one is sensitive.
    _consent(api, edge, make_consent_event(SUBJECT))
    upload = make_upload(fields=[make_field("tag.high_purchasing_power"),
                                 make_field("tag.escalation_need")])
    # Execute
    response = _put(api, edge, upload)
    # Assert
    assert response.status_code == 403
    body = response.json()
    assert body["error"] == "consent_refused"
    assert [(r["field"], r["reason"]) for r in body["refused"]] == [
        ("tag.escalation_need", "purpose_not_allowed_for_field")
    ]
    assert _fields(memory_engine) == []


def test_put_profile_same_idempotency_key_stores_once(
    api: TestClient, edge: EdgeCredential, memory_engine: Engine
) -> None:
    _consent(api, edge, make_consent_event(SUBJECT))
    first = _put(api, edge, make_upload())
    second = _put(api, edge, make_upload())
    assert (first.status_code, second.status_code) == (200, 200)
    assert (first.json()["replayed"], second.json()["replayed"]) == (False, True)
    assert first.json()["stored"] == second.json()["stored"]
    assert _fields(memory_engine) == ["feature.recency_days", "tag.high_purchasing_power"]


def test_put_profile_same_key_different_body_returns_409(
    api: TestClient, edge: EdgeCredential
) -> None:
    _consent(api, edge, make_consent_event(SUBJECT))
    _put(api, edge, make_upload())
    response = _put(api, edge, make_upload(fields=[make_field("feature.recency_days", 99)]))
    assert response.status_code == 409 and response.json()["error"] == "idempotency_conflict"


def test_each_write_and_each_read_leaves_exactly_one_audit_entry(
    api: TestClient, edge: EdgeCredential, memory_engine: Engine
) -> None:
    _consent(api, edge, make_consent_event(SUBJECT))
    before = len(_audit(memory_engine))
    steps = [
        (lambda: _put(api, edge, make_upload()), "profile.write", "accepted"),
        (lambda: _put(api, edge, make_upload(purpose="marketing"), key="k2"),
         "profile.write", "refused"),
        (lambda: _read(api), "profile.read", "accepted"),
        (lambda: _read(api, "marketing", ADMIN_TOKEN), "profile.read", "accepted"),
    ]
    for call, action, outcome in steps:
        call()
        entries = _audit(memory_engine)
        assert len(entries) == before + 1
        assert (entries[-1].action, entries[-1].outcome) == (action, outcome)
        assert entries[-1].subject_ref == SUBJECT
        before += 1
    with Session(memory_engine) as session:
        assert verify_chain(session=session).ok


def test_consent_withdrawal_makes_the_next_read_withhold_fields(
    api: TestClient, edge: EdgeCredential, fake_clock: FakeClock
) -> None:
    # Prepare: granted for personalized_service and marketing, so withdrawal of the first
    # keeps the fields stored (marketing still allows them) but withholds them on reads.
    _consent(api, edge, make_consent_event(SUBJECT),
             make_consent_event(SUBJECT, Purpose.MARKETING))
    _put(api, edge, make_upload())
    assert len(_read(api).json()["fields"]) == 2
    # Execute
    fake_clock.advance(minutes=5)
    _consent(api, edge, make_consent_event(
        SUBJECT, status=ConsentStatus.WITHDRAWN, occurred_at=fake_clock.now - timedelta(minutes=1)))
    response = _read(api)
    # Assert
    assert response.status_code == 200
    assert response.json()["fields"] == [] and response.json()["withheld"] == 2
    assert len(_read(api, "marketing").json()["fields"]) == 2


def test_consent_expiry_withholds_fields_when_time_passes(
    api: TestClient, edge: EdgeCredential, fake_clock: FakeClock
) -> None:
    _consent(api, edge, make_consent_event(SUBJECT, expires_at=T0 + timedelta(days=1)))
    _put(api, edge, make_upload())
    fake_clock.advance(days=2)
    assert _read(api).json()["withheld"] == 2


def test_sensitive_field_needs_separate_consent(api: TestClient, edge: EdgeCredential) -> None:
    upload = make_upload("risk_control", [make_field("finance.payment_risk_level", "low")])
    _consent(api, edge, make_consent_event(SUBJECT, Purpose.RISK_CONTROL))
    refused = _put(api, edge, upload)
    _consent(api, edge, make_consent_event(SUBJECT, Purpose.RISK_CONTROL, separate=True,
                                           occurred_at=T0 - timedelta(hours=2)))
    accepted = _put(api, edge, upload, key="k2")
    assert refused.json()["refused"][0]["reason"] == "separate_consent_required"
    assert accepted.status_code == 200


def test_sensitive_field_is_sealed_at_rest_and_read_in_clear(
    api: TestClient, edge: EdgeCredential, memory_engine: Engine
) -> None:
    _consent(api, edge, make_consent_event(SUBJECT, Purpose.RISK_CONTROL, separate=True))
    upload = make_upload("risk_control", [make_field("finance.payment_risk_level", "critical")])
    assert _put(api, edge, upload).status_code == 200

    read = _read(api, purpose="risk_control")

    with Session(memory_engine) as session:
        (row,) = session.exec(select(ProfileField)).all()
    assert row.value_json is None and row.value_ciphertext is not None
    assert b"critical" not in row.value_ciphertext
    assert [f["value"] for f in read.json()["fields"]] == ["critical"]


@pytest.mark.parametrize("method", ["get", "put"])
def test_raw_phone_number_as_subject_is_422_and_not_echoed(
    api: TestClient, edge: EdgeCredential, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="server")
    path = f"/api/v1/subjects/{RAW_PHONE}/profile"
    if method == "get":
        response = api.get(path, params={"purpose": "marketing"}, headers=bearer(AGENT_TOKEN))
    else:
        response = api.put(path, json=as_json(make_upload()),
                           headers={**bearer(edge.token), "Idempotency-Key": "k"})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"
    server_logs = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("server"))
    assert RAW_PHONE not in response.text and "13800138000" not in server_logs


def test_get_profile_unknown_purpose_is_422_listing_known(api: TestClient) -> None:
    response = _read(api, "upselling")
    assert response.status_code == 422
    assert response.json()["error"] == "purpose_not_registered"
    assert "marketing" in response.json()["known"]


def test_get_profile_unknown_subject_is_404(api: TestClient) -> None:
    assert _read(api).status_code == 404


def test_put_profile_without_idempotency_key_is_422(api: TestClient, edge: EdgeCredential) -> None:
    response = api.put(PATH, json=as_json(make_upload()), headers=bearer(edge.token))
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("method", "token", "status"),
    [("get", None, 401), ("get", "edge", 403), ("put", AGENT_TOKEN, 403), ("put", None, 401),
     ("get", "not-a-real-token-value", 401)],
)
def test_profile_routes_enforce_roles(
    api: TestClient, edge: EdgeCredential, method: str, token: str | None, status: int
) -> None:
    token = edge.token if token == "edge" else token
    headers = {"Idempotency-Key": "k", **(bearer(token) if token else {})}
    if method == "get":
        response = api.get(PATH, params={"purpose": "marketing"}, headers=headers)
    else:
        response = api.put(PATH, json=as_json(make_upload()), headers=headers)
    assert response.status_code == status


def test_audit_entries_carry_no_profile_values(
    api: TestClient, edge: EdgeCredential, memory_engine: Engine
) -> None:
    _consent(api, edge, make_consent_event(SUBJECT))
    _put(api, edge, make_upload(fields=[make_field("feature.recency_days", 987654)]))
    _read(api)
    with Session(memory_engine) as session:
        assert count_entries(session=session) == 4  # register, consent, write, read
    assert all("987654" not in e.detail_json for e in _audit(memory_engine))
