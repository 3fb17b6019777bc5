"""Subject self-service under /me: own profile, consent changes, receipts, switch, tags."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from consent import Purpose
from models import EdgeCredential, ProfileUpload
from privacy import DecryptionError, VerifyKey, verify_signed
from server.crud.token import issue_token
from server.tables.audit_entry import AuditEntry
from server.tables.profile_field import ProfileField
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

SUBJECT = make_pseudonym("me-subject")
OTHER = make_pseudonym("me-other")


def _subject_token(engine: Engine, subject: str = SUBJECT) -> dict[str, str]:
    with Session(engine) as session:
        raw, _ = issue_token(session=session, role=Role.SUBJECT, at=T0, subject=subject)
        session.commit()
    return bearer(raw)


def _consent(api: TestClient, edge: EdgeCredential, *events: object) -> None:
    response = api.post("/api/v1/consents", json=as_json(list(events)), headers=bearer(edge.token))
    assert response.status_code == 200, response.text


def _upload(
    api: TestClient, edge: EdgeCredential, upload: ProfileUpload, key: str, subject: str = SUBJECT
):  # noqa: ANN202
    return api.put(
        f"/api/v1/subjects/{subject}/profile",
        json=as_json(upload),
        headers={**bearer(edge.token), "Idempotency-Key": key},
    )


def _stored(engine: Engine, subject: str = SUBJECT) -> list[str]:
    with Session(engine) as session:
        rows = session.exec(select(ProfileField).where(ProfileField.subject == subject)).all()
        return sorted(r.name for r in rows)


@pytest.fixture()
def profiled(api: TestClient, edge: EdgeCredential, memory_engine: Engine) -> dict[str, str]:
    """SUBJECT granted personalized_service, marketing and service_routing, with fields."""
    _consent(
        api,
        edge,
        make_consent_event(SUBJECT, Purpose.PERSONALIZED_SERVICE),
        make_consent_event(SUBJECT, Purpose.MARKETING),
        make_consent_event(SUBJECT, Purpose.SERVICE_ROUTING),
    )
    fields = [
        make_field("tag.high_purchasing_power", True),
        make_field("feature.recency_days", 12),
        make_field("feature.preferred_category", "books"),
    ]
    assert _upload(api, edge, make_upload(fields=fields), "k1").status_code == 200
    routing = make_upload("service_routing", [make_field("tag.common_question_tendency", True)])
    assert _upload(api, edge, routing, "k2").status_code == 200
    return _subject_token(memory_engine)


def test_my_profile_shows_every_field_with_meanings_and_uses(
    api: TestClient, profiled: dict[str, str]
) -> None:
    response = api.get("/api/v1/me/profile", headers=profiled)
    assert response.status_code == 200, response.text
    body = response.json()
    fields = {f["name"]: f for f in body["fields"]}
    assert set(fields) == {
        "feature.preferred_category",
        "feature.recency_days",
        "tag.common_question_tendency",
        "tag.high_purchasing_power",
    }
    tag = fields["tag.high_purchasing_power"]
    assert tag["meaning_zh"].startswith("高购买力") and tag["meaning_en"]
    assert set(tag["usable_for"]) == {"personalized_service", "marketing", "service_routing"}
    assert body["personalization"] is True


def test_withdrawal_purges_fields_no_other_purpose_needs(
    api: TestClient, profiled: dict[str, str], memory_engine: Engine
) -> None:
    response = api.post(
        "/api/v1/me/consents",
        json={"purpose": "personalized_service", "action": "withdraw"},
        headers=profiled,
    )
    assert response.status_code == 200, response.text
    assert response.json()["purged_fields"] == []  # marketing still allows all three
    response = api.post(
        "/api/v1/me/consents", json={"purpose": "marketing", "action": "withdraw"}, headers=profiled
    )
    body = response.json()
    # tag.high_purchasing_power is still allowed for service_routing: kept.
    assert body["purged_fields"] == ["feature.preferred_category", "feature.recency_days"]
    assert _stored(memory_engine) == ["tag.common_question_tendency", "tag.high_purchasing_power"]
    overview = api.get("/api/v1/me/consents", headers=profiled).json()
    status = {p["purpose"]: p["status"] for p in overview["purposes"]}
    assert status["marketing"] == "withdrawn" and status["service_routing"] == "granted"
    assert status["analytics"] == "not_given"


def test_receipt_is_signed_by_the_published_key_and_names_the_event(
    api: TestClient, profiled: dict[str, str]
) -> None:
    overview = api.get("/api/v1/me/consents", headers=profiled).json()
    event = next(e for e in overview["events"] if e["purpose"] == "marketing")
    response = api.get(f"/api/v1/me/consents/{event['receipt_id']}/receipt", headers=profiled)
    assert response.status_code == 200, response.text
    envelope = response.json()
    published = api.get("/api/v1/signing-key").json()
    verify_signed(envelope, trusted=VerifyKey.from_text(published["public_key"]))
    document = envelope["document"]
    assert document["consentReceiptID"] == event["receipt_id"]
    assert document["piiPrincipalId"] == SUBJECT
    assert document["services"][0]["purposes"][0]["purposeCategory"] == [
        "https://w3id.org/dpv#Marketing"
    ]
    document["status"] = "withdrawn"  # any edit breaks the signature
    with pytest.raises(DecryptionError):
        verify_signed(envelope, trusted=VerifyKey.from_text(published["public_key"]))


def test_a_subject_cannot_fetch_another_subjects_receipt(
    api: TestClient, profiled: dict[str, str], memory_engine: Engine
) -> None:
    event = api.get("/api/v1/me/consents", headers=profiled).json()["events"][0]
    other = _subject_token(memory_engine, OTHER)
    response = api.get(f"/api/v1/me/consents/{event['receipt_id']}/receipt", headers=other)
    assert response.status_code == 404


def test_personalization_off_stops_its_purposes_at_once(
    api: TestClient, profiled: dict[str, str], memory_engine: Engine
) -> None:
    response = api.put("/api/v1/me/personalization", json={"enabled": False}, headers=profiled)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["withdrawn"] == ["marketing", "personalized_service", "proactive_service"]
    assert "feature.recency_days" in body["purged_fields"]
    read = api.get(
        f"/api/v1/subjects/{SUBJECT}/profile",
        params={"purpose": "marketing"},
        headers=bearer(AGENT_TOKEN),
    ).json()
    assert read["fields"] == []
    overview = api.get("/api/v1/me/consents", headers=profiled).json()
    assert overview["personalization"] is False
    with Session(memory_engine) as session:
        entries = session.exec(select(AuditEntry).order_by(AuditEntry.seq)).all()
    actions = [e.action for e in entries]
    switch = actions.index("personalization.set")
    assert actions[switch - 1] == "consent.record" and entries[switch].actor == "subject"
    assert _stored(memory_engine) == ["tag.common_question_tendency", "tag.high_purchasing_power"]


def test_personalization_on_needs_named_purposes_and_grants_each(
    api: TestClient, profiled: dict[str, str]
) -> None:
    api.put("/api/v1/me/personalization", json={"enabled": False}, headers=profiled)
    refused = api.put("/api/v1/me/personalization", json={"enabled": True}, headers=profiled)
    assert refused.status_code == 422 and "list the purposes" in refused.json()["message"]
    wrong = api.put(
        "/api/v1/me/personalization",
        json={"enabled": True, "purposes": ["risk_control"]},
        headers=profiled,
    )
    assert wrong.status_code == 422
    granted = api.put(
        "/api/v1/me/personalization",
        json={"enabled": True, "purposes": ["personalized_service"]},
        headers=profiled,
    )
    assert granted.json()["granted"] == ["personalized_service"]
    status = {
        p["purpose"]: p["status"]
        for p in api.get("/api/v1/me/consents", headers=profiled).json()["purposes"]
    }
    assert status["personalized_service"] == "granted" and status["marketing"] == "withdrawn"


def test_deleted_tag_is_gone_and_refused_on_upload(
    api: TestClient,
    profiled: dict[str, str],
    edge: EdgeCredential,
    memory_engine: Engine,
    fake_clock: FakeClock,
) -> None:
    response = api.delete("/api/v1/me/tags/tag.high_purchasing_power", headers=profiled)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "field": "tag.high_purchasing_power",
        "deleted": True,
        "suppressed": True,
    }
    assert "tag.high_purchasing_power" not in _stored(memory_engine)
    fake_clock.advance(minutes=5)
    again = _upload(api, edge, make_upload(fields=[make_field()]), "k3")
    assert again.status_code == 403
    assert again.json()["refused"][0]["reason"] == "field_suppressed"
    with Session(memory_engine) as session:
        actions = [e.action for e in session.exec(select(AuditEntry)).all()]
    assert "field.rectify" in actions


def test_deleting_an_uncatalogued_field_is_refused(
    api: TestClient, profiled: dict[str, str]
) -> None:
    response = api.delete("/api/v1/me/tags/tag.not_in_catalogue", headers=profiled)
    assert response.status_code == 422


def test_grant_under_a_replaced_notice_is_refused_with_the_accepted_versions(
    api: TestClient, profiled: dict[str, str]
) -> None:
    from ..factories import ADMIN_TOKEN

    notice = {
        "version": "2026-12",
        "purposes": ["marketing"],
        "material": True,
        "content_hash": "a" * 64,
        "url": "https://example.com/notice/2026-12",
        "language": "zh-CN",
    }
    assert api.post("/api/v1/notices", json=notice, headers=bearer(ADMIN_TOKEN)).status_code == 201
    stale = api.post(
        "/api/v1/me/consents",
        json={"purpose": "marketing", "action": "grant", "notice_version": "2026-11"},
        headers=profiled,
    )
    assert stale.status_code == 422 and "2026-12" in stale.json()["message"]
    fresh = api.post(
        "/api/v1/me/consents", json={"purpose": "marketing", "action": "grant"}, headers=profiled
    )
    assert fresh.json()["notice_version"] == "2026-12"


def test_edges_learn_of_self_service_withdrawals_and_deleted_tags_from_the_feed(
    api: TestClient, profiled: dict[str, str], edge: EdgeCredential
) -> None:
    api.put("/api/v1/me/personalization", json={"enabled": False}, headers=profiled)
    api.delete("/api/v1/me/tags/tag.common_question_tendency", headers=profiled)
    page = api.get("/api/v1/edges/me/subject-events", headers=bearer(edge.token)).json()
    consents = [e["consent"] for e in page["events"] if e["kind"] == "consent" and e["consent"]]
    withdrawn = {c["purpose"] for c in consents if c["status"] == "withdrawn"}
    assert withdrawn == {"marketing", "personalized_service", "proactive_service"}
    assert all(c["channel"] == "self_service" for c in consents)
    suppressed = [e["field"] for e in page["events"] if e["kind"] == "field_suppressed"]
    assert suppressed == ["tag.common_question_tendency"]
