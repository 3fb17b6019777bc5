"""Notices: a material version pauses older grants (reads filtered, uploads refused) until
renewed; a non-material one pauses nothing; versions are immutable; purposes are public."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from consent import CatalogueError, Purpose
from models import EdgeCredential
from privacy import VerifyKey, verify_signed
from server.config import ServerSettings
from server.main import create_app
from server.tables.profile_field import ProfileField

from ..factories import (
    ADMIN_TOKEN,
    AGENT_TOKEN,
    CONTROLLER,
    FakeClock,
    as_json,
    bearer,
    make_consent_event,
    make_pseudonym,
    make_upload,
)

SUBJECT = make_pseudonym("notice-subject")
PROFILE = f"/api/v1/subjects/{SUBJECT}/profile"
SHIPPED_CATALOGUE = Path(__file__).resolve().parents[3] / "consent" / "data" / "catalogue.yaml"


def _notice(version: str, *purposes: str, material: bool = True) -> dict[str, object]:
    return {
        "version": version,
        "purposes": list(purposes),
        "material": material,
        "content_hash": "c" * 64,
        "url": f"https://example.com/notice/{version}",
        "language": "zh-CN",
    }


def _publish(api: TestClient, body: dict[str, object]):  # noqa: ANN202
    return api.post("/api/v1/notices", json=body, headers=bearer(ADMIN_TOKEN))


def _read(api: TestClient, purpose: str = "personalized_service") -> list[str]:
    response = api.get(PROFILE, params={"purpose": purpose}, headers=bearer(AGENT_TOKEN))
    assert response.status_code == 200, response.text
    return sorted(f["name"] for f in response.json()["fields"])


def _upload(api: TestClient, edge: EdgeCredential, key: str):  # noqa: ANN202
    return api.put(
        PROFILE, json=as_json(make_upload()), headers={**bearer(edge.token), "Idempotency-Key": key}
    )


def _consent(api: TestClient, edge: EdgeCredential, *events: object) -> None:
    response = api.post("/api/v1/consents", json=as_json(list(events)), headers=bearer(edge.token))
    assert response.status_code == 200, response.text


def test_material_notice_pauses_grants_until_renewed(
    api: TestClient, edge: EdgeCredential, fake_clock: FakeClock, memory_engine: Engine
) -> None:
    _consent(
        api,
        edge,
        make_consent_event(SUBJECT, Purpose.PERSONALIZED_SERVICE),
        make_consent_event(SUBJECT, Purpose.MARKETING),
    )
    assert _upload(api, edge, "k1").status_code == 200
    assert _read(api) == ["feature.recency_days", "tag.high_purchasing_power"]
    # 1. Publish a material notice for personalized_service: one consent needs renewal.
    fake_clock.advance(hours=1)
    published = _publish(api, _notice("2026-12", "personalized_service"))
    assert published.status_code == 201, published.text
    assert published.json()["renewal_required"] == {"personalized_service": 1}
    # 2. Paused: reads for it return nothing, uploads for it are refused; fields are kept.
    assert _read(api) == []
    assert _read(api, "marketing") == ["feature.recency_days", "tag.high_purchasing_power"]
    refused = _upload(api, edge, "k2")
    assert refused.status_code == 403
    assert {r["reason"] for r in refused.json()["refused"]} == {"consent_renewal_required"}
    with Session(memory_engine) as session:
        assert len(session.exec(select(ProfileField)).all()) == 2
    # 3. The subject renews under the new version at an edge: reads work again.
    fake_clock.advance(hours=1)
    _consent(
        api,
        edge,
        make_consent_event(
            SUBJECT,
            Purpose.PERSONALIZED_SERVICE,
            occurred_at=fake_clock.now,
            notice_version="2026-12",
        ),
    )
    assert _read(api) == ["feature.recency_days", "tag.high_purchasing_power"]


def test_renewal_shows_in_the_officer_view(
    api: TestClient, edge: EdgeCredential, fake_clock: FakeClock
) -> None:
    _consent(api, edge, make_consent_event(SUBJECT, Purpose.MARKETING))
    fake_clock.advance(minutes=1)
    assert _publish(api, _notice("v2", "marketing", "analytics")).status_code == 201
    view = api.get(f"/api/v1/subjects/{SUBJECT}/consents", headers=bearer(ADMIN_TOKEN)).json()
    status = {p["purpose"]: p["status"] for p in view["purposes"]}
    assert status["marketing"] == "renewal_required"
    assert status["analytics"] == "not_given"
    marketing = next(p for p in view["purposes"] if p["purpose"] == "marketing")
    assert marketing["dpv"] == "dpv:Marketing" and marketing["label_zh"] == "营销推广"


def test_non_material_notice_pauses_nothing(
    api: TestClient, edge: EdgeCredential, fake_clock: FakeClock
) -> None:
    _consent(api, edge, make_consent_event(SUBJECT, Purpose.PERSONALIZED_SERVICE))
    assert _upload(api, edge, "k1").status_code == 200
    fake_clock.advance(minutes=1)
    published = _publish(api, _notice("2026-11a", "personalized_service", material=False))
    assert published.json()["renewal_required"] == {"personalized_service": 0}
    assert _read(api) == ["feature.recency_days", "tag.high_purchasing_power"]


def test_versions_are_immutable_and_listed_publicly(api: TestClient) -> None:
    assert _publish(api, _notice("v1", "marketing")).status_code == 201
    again = _publish(api, _notice("v1", "analytics"))
    assert again.status_code == 409 and "new version label" in again.json()["message"]
    listed = api.get("/api/v1/notices").json()
    assert [n["version"] for n in listed] == ["v1"] and listed[0]["purposes"] == ["marketing"]


def test_notice_for_an_unknown_purpose_is_refused(api: TestClient) -> None:
    assert _publish(api, _notice("v1", "surveillance")).status_code == 422


def test_purposes_and_catalogue_are_public_and_bilingual(api: TestClient) -> None:
    body = api.get("/api/v1/purposes").json()
    purposes = {p["name"]: p for p in body["purposes"]}
    assert set(purposes) == {p.value for p in Purpose}
    assert all(p["dpv"].startswith("dpv:") and p["label_zh"] for p in purposes.values())
    assert {n for n, p in purposes.items() if p["personalization"]} == {
        "personalized_service",
        "proactive_service",
        "marketing",
    }
    sensitive = [f for f in body["fields"] if f["sensitivity"] == "sensitive"]
    assert sensitive and all(f["meaning_zh"] and f["meaning_en"] for f in body["fields"])


def test_server_refuses_to_start_with_a_catalogue_naming_an_unknown_purpose(
    tmp_path: Path,
) -> None:
    document = yaml.safe_load(SHIPPED_CATALOGUE.read_text(encoding="utf-8"))
    document["fields"][0]["purposes"] = ["surveillance"]
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    app = create_app(ServerSettings(database_url="sqlite://", catalogue_path=path))
    with pytest.raises(CatalogueError) as caught, TestClient(app):
        pass
    assert "fields[0].purposes" in str(caught.value)


def test_officer_downloads_a_subjects_signed_receipt(api: TestClient, edge: EdgeCredential) -> None:
    _consent(api, edge, make_consent_event(SUBJECT, Purpose.MARKETING))
    view = api.get(f"/api/v1/subjects/{SUBJECT}/consents", headers=bearer(ADMIN_TOKEN)).json()
    receipt = view["events"][0]["receipt_id"]
    url = f"/api/v1/subjects/{SUBJECT}/consents/{receipt}/receipt"
    envelope = api.get(url, headers=bearer(ADMIN_TOKEN)).json()
    verify_signed(
        envelope, trusted=VerifyKey.from_text(api.get("/api/v1/signing-key").json()["public_key"])
    )
    assert envelope["document"]["consentReceiptID"] == receipt
    (controller,) = envelope["document"]["piiControllers"]
    assert (controller["piiController"], controller["email"]) == (
        CONTROLLER["controller_name"], CONTROLLER["controller_email"],
    )  # fmt: skip
    other = make_pseudonym("someone-else")
    wrong = api.get(
        f"/api/v1/subjects/{other}/consents/{receipt}/receipt", headers=bearer(ADMIN_TOKEN)
    )
    assert wrong.status_code == 404
    # Each officer read of a subject's consent data is in the audit log, found by pseudonym.
    for action, subject, outcomes in (
        ("consent.view", SUBJECT, ["accepted"]),
        ("consent.receipt", SUBJECT, ["accepted"]),
        ("consent.receipt", other, ["not_found"]),
    ):
        page = api.get(
            "/api/v1/audit/entries", params={"action": action, "subject": subject},
            headers=bearer(ADMIN_TOKEN),
        ).json()  # fmt: skip
        assert [e["outcome"] for e in page["items"]] == outcomes, action
        assert all(e["actor"] == "admin" for e in page["items"])
