"""``POST /profile-uploads``: per-item answers as the single PUT gives them, in one request."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from consent import Purpose
from models import BatchUploadItem, EdgeCredential, ProfileUpload
from server.audit.log import count_entries, verify_chain
from server.tables.audit_entry import AuditEntry
from server.tables.profile_field import ProfileField

from ...factories import (
    ADMIN_TOKEN,
    AGENT_TOKEN,
    as_json,
    bearer,
    make_consent_event,
    make_field,
    make_item,
    make_pseudonym,
    make_upload,
)

BATCH = "/api/v1/profile-uploads"
ALICE = make_pseudonym("batch-alice")
BOB = make_pseudonym("batch-bob")  # no consent at all
RAW_PHONE = "+8613800138000"


def _consent(api: TestClient, edge: EdgeCredential, *events: object) -> None:
    response = api.post("/api/v1/consents", json=as_json(list(events)), headers=bearer(edge.token))
    assert response.status_code == 200, response.text


def _put(api: TestClient, edge: EdgeCredential, upload: ProfileUpload, key: str) -> Any:
    return api.put(f"/api/v1/subjects/{ALICE}/profile", json=as_json(upload),
                   headers={**bearer(edge.token), "Idempotency-Key": key})


def _post(api: TestClient, token: str | None, items: list[Any]) -> Any:
    body = {"items": [as_json(i) if isinstance(i, BatchUploadItem) else i for i in items]}
    return api.post(BATCH, json=body, headers=bearer(token) if token else {})


def _audit(engine: Engine) -> list[AuditEntry]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEntry).order_by(AuditEntry.seq)).all())


def _fields(engine: Engine, subject: str) -> dict[str, str]:
    with Session(engine) as session:
        rows = session.exec(select(ProfileField).where(ProfileField.subject == subject)).all()
        return {r.name: r.value_json for r in rows}


def test_post_profile_uploads_mixed_batch_answers_each_item_like_the_single_put(
    api: TestClient, edge: EdgeCredential, memory_engine: Engine
) -> None:
    # Prepare: Alice consents to personalized_service; two keys already used by single PUTs.
    _consent(api, edge, make_consent_event(ALICE))
    assert _put(api, edge, make_upload(), "sync-replay").status_code == 200
    assert _put(api, edge, make_upload(), "sync-conflict").status_code == 200
    before = len(_audit(memory_engine))
    items = [
        make_item(ALICE, "sync-stored", make_upload(
            fields=[make_field("tag.churn_risk", True)])),                       # 200 stored
        make_item(ALICE, "sync-replay"),                                          # 200 replayed
        make_item(ALICE, "sync-conflict", make_upload(
            fields=[make_field("feature.recency_days", 99)])),                   # 409
        make_item(BOB, "sync-refused"),                                           # 403
        make_item(ALICE, "sync-purpose", make_upload("upselling")),              # 422
        make_item(ALICE, "sync-shape", make_upload(
            fields=[make_field("tag.high_interaction_willingness", 0.7)])),      # 403 value
    ]
    # Execute
    response = _post(api, edge.token, items)
    # Assert: one result per item, in order, with the single route's status and body.
    assert response.status_code == 200
    results = response.json()["results"]
    assert [(r["idempotency_key"], r["status"]) for r in results] == [
        ("sync-stored", 200), ("sync-replay", 200), ("sync-conflict", 409),
        ("sync-refused", 403), ("sync-purpose", 422), ("sync-shape", 422)]
    assert results[0]["result"]["stored"] == ["tag.churn_risk"]
    assert results[0]["result"]["replayed"] is False and results[1]["result"]["replayed"] is True
    assert [r["error"]["error"] if r["error"] else None for r in results] == [
        None, None, "idempotency_conflict", "consent_refused", "purpose_not_registered",
        "invalid_field_value"]
    assert results[3]["error"]["refused"][0] == {
        "field": "tag.high_purchasing_power", "reason": "no_consent_for_purpose",
        "message": results[3]["error"]["refused"][0]["message"]}
    assert [r["reason"] for r in results[5]["error"]["refused"]] == ["invalid_value"]
    # Exactly one audit entry per item, in item order; nothing stored for refused items.
    entries = _audit(memory_engine)[before:]
    assert [e.outcome for e in entries] == [
        "accepted", "replayed", "conflict", "refused", "refused", "refused"]
    assert all(e.action == "profile.write" for e in entries)
    assert _fields(memory_engine, BOB) == {}
    assert _fields(memory_engine, ALICE) == {
        "feature.recency_days": "12", "tag.churn_risk": "true", "tag.high_purchasing_power": "true"}
    with Session(memory_engine) as session:
        assert verify_chain(session=session).ok


@pytest.mark.parametrize("batch_first", [True, False], ids=["batch-then-put", "put-then-batch"])
def test_idempotency_keys_are_shared_between_single_and_batch_routes(
    api: TestClient, edge: EdgeCredential, memory_engine: Engine, batch_first: bool
) -> None:
    _consent(api, edge, make_consent_event(ALICE))
    other = make_upload(fields=[make_field("feature.recency_days", 1)])
    if batch_first:
        first = _post(api, edge.token, [make_item(ALICE, "shared-key")]).json()["results"][0]
        replay = _put(api, edge, make_upload(), "shared-key")
        conflict = _put(api, edge, other, "shared-key")
        assert (first["status"], replay.json()["replayed"], conflict.status_code) == (
            200, True, 409)
    else:
        first = _put(api, edge, make_upload(), "shared-key").json()
        results = _post(api, edge.token, [make_item(ALICE, "shared-key"),
                                          make_item(ALICE, "shared-key", other)]).json()["results"]
        assert first["replayed"] is False
        assert [(r["status"], (r["result"] or {}).get("replayed")) for r in results] == [
            (200, True), (409, None)]
    assert _fields(memory_engine, ALICE)["feature.recency_days"] == "12"


def test_idempotency_keys_are_scoped_per_edge(
    api: TestClient, edge: EdgeCredential, memory_engine: Engine
) -> None:
    app_edge = EdgeCredential.model_validate(api.post(
        "/api/v1/edges", json={"name": "app-1", "channel": "app"}, headers=bearer(ADMIN_TOKEN),
    ).json())
    _consent(api, edge, make_consent_event(ALICE), make_consent_event(ALICE, Purpose.MARKETING))
    _post(api, edge.token, [make_item(ALICE, "same-key-1")])
    marketing = make_item(ALICE, "same-key-1", make_upload("marketing"))
    response = _post(api, app_edge.token, [marketing])
    assert response.json()["results"][0]["result"]["replayed"] is False


@pytest.mark.parametrize(
    ("token", "status"),
    [(None, 401), ("not-a-real-token-value", 401), (AGENT_TOKEN, 403), (ADMIN_TOKEN, 403)],
    ids=["none", "unknown", "agent", "admin"],
)
def test_post_profile_uploads_only_edges_may_upload(
    api: TestClient, memory_engine: Engine, token: str | None, status: int
) -> None:
    with Session(memory_engine) as session:
        before = count_entries(session=session)
    response = _post(api, token, [make_item(ALICE, "role-key-1")])
    assert response.status_code == status
    with Session(memory_engine) as session:
        assert count_entries(session=session) == before


@pytest.mark.parametrize(
    ("count", "status"), [(0, 422), (1, 200), (500, 200), (501, 422)],
    ids=["empty", "one", "500", "501"],
)
def test_post_profile_uploads_accepts_1_to_500_items(
    api: TestClient, edge: EdgeCredential, memory_engine: Engine, count: int, status: int
) -> None:
    _consent(api, edge, make_consent_event(ALICE))
    with Session(memory_engine) as session:
        before = count_entries(session=session)
    items = [make_item(ALICE, f"limit-{n:04d}") for n in range(count)]
    response = _post(api, edge.token, items)
    assert response.status_code == status
    with Session(memory_engine) as session:
        written = count_entries(session=session) - before
    if status == 422:
        assert response.json()["error"] == "invalid_request" and written == 0
    else:
        assert len(response.json()["results"]) == count == written


@pytest.mark.parametrize(
    "item",
    [
        {"subject": RAW_PHONE, "idempotency_key": "bad-subject",
         "upload": as_json(make_upload())},
        {"subject": ALICE, "idempotency_key": "bad key/with spaces",
         "upload": as_json(make_upload())},
        {"subject": ALICE, "idempotency_key": "extra-key", "upload": as_json(make_upload()),
         "note": "x"},
    ],
    ids=["raw-identifier-subject", "bad-key", "unknown-member"],
)
def test_post_profile_uploads_malformed_item_rejects_the_request_without_echo(
    api: TestClient, edge: EdgeCredential, memory_engine: Engine, item: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="server")
    with Session(memory_engine) as session:
        before = count_entries(session=session)
    response = _post(api, edge.token, [make_item(ALICE, "fine-key-1"), item])
    assert response.status_code == 422
    assert response.json()["problems"][0]["loc"][:3] == ["body", "items", "1"]
    assert "13800138000" not in response.text
    assert all("13800138000" not in r.getMessage() for r in caplog.records)
    with Session(memory_engine) as session:
        assert count_entries(session=session) == before
