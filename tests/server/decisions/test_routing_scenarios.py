"""Routing scenarios through the API on a migrated SQLite file and on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from consent import Purpose
from server.audit.log import verify_chain
from server.tables.audit_entry import AuditEntry

from ..factories import make_pseudonym
from .harness import DecisionApi, decision_api, signals

ANGRY = make_pseudonym("angry-high-value")
NEWCOMER = make_pseudonym("newcomer")


@pytest.fixture(params=["sqlite", "postgres"])
def dapi(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DecisionApi]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'server.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    yield from decision_api(url)


def _high_value_customer(dapi: DecisionApi, subject: str = ANGRY) -> None:
    dapi.consent(subject, Purpose.SERVICE_ROUTING)
    dapi.upload(subject, "service_routing", feature__monetary_90d=23988.0,
                feature__complaints_90d=1)  # fmt: skip


def test_angry_urgent_high_value_complainer_goes_to_senior_queue(dapi: DecisionApi) -> None:
    _high_value_customer(dapi)
    answer = dapi.decide(ANGRY, signals("complaint", "negative", "urgent"))
    action = {k: v for k, v in answer["action"].items() if v is not None}
    assert action == {"kind": "queue", "queue": "senior", "skill": "complaints", "priority": 8}
    assert answer["automated"] is True
    assert answer["decided_by"] == "senior_high_value_complaint"
    top = answer["rules"][0]
    assert top["inputs"]["feature.monetary_90d"] == pytest.approx(23988.0)
    assert top["inputs"]["signal_urgency"] == "urgent"
    assert "senior agent" in answer["explanation_en"] and "23988" in answer["explanation_en"]
    assert "高级客服" in answer["explanation_zh"]
    assert "feature.monetary_90d" in answer["fields_read"]


def test_new_customer_with_simple_inquiry_gets_self_service(dapi: DecisionApi) -> None:
    answer = dapi.decide(NEWCOMER, signals("inquiry", "neutral", "normal", p=0.9))
    assert answer["action"]["kind"] == "self_service"
    assert answer["decided_by"] == "simple_inquiry_self_service"
    assert answer["fields_read"] == []


def test_uncertain_case_goes_to_a_human(dapi: DecisionApi) -> None:
    answer = dapi.decide(NEWCOMER, signals("inquiry", "neutral", "normal", p=0.45))
    assert answer["action"]["kind"] == "human"
    assert answer["automated"] is False
    assert answer["fallback"] == "low_confidence"
    assert "0.45" in answer["explanation_en"]


def test_refusal_of_automated_decisions_always_gets_a_human(dapi: DecisionApi) -> None:
    _high_value_customer(dapi)
    me = dapi.subject_headers(ANGRY)
    response = dapi.client.put("/api/v1/me/automated-decisions", json={"refuse": True}, headers=me)
    assert response.status_code == 200, response.text
    for sig in (signals("complaint", "negative", "urgent"), signals("inquiry", "neutral", "low")):
        answer = dapi.decide(ANGRY, sig)
        assert answer["action"]["kind"] == "human"
        assert answer["fallback"] == "refused_automated"
        assert answer["rules"] == [] and answer["fields_read"] == []
    mine = dapi.client.get("/api/v1/me/decisions", headers=me).json()
    assert mine["refused_automated"] is True
    assert len(mine["decisions"]) == 2
    one = dapi.client.get(f"/api/v1/me/decisions/{mine['decisions'][0]['id']}", headers=me)
    assert one.status_code == 200 and "refused" in one.json()["explanation_en"]
    # Another person's decision is not theirs to read.
    other = dapi.decide(NEWCOMER, signals("inquiry", "neutral", "normal"))
    assert dapi.client.get(f"/api/v1/me/decisions/{other['id']}", headers=me).status_code == 404


def test_withdrawing_consent_changes_the_next_decision_at_once(dapi: DecisionApi) -> None:
    _high_value_customer(dapi)
    sig = signals("complaint", "negative", "urgent")
    assert dapi.decide(ANGRY, sig)["decided_by"] == "senior_high_value_complaint"
    dapi.consent(ANGRY, Purpose.SERVICE_ROUTING, withdraw=True)
    after = dapi.decide(ANGRY, sig)
    assert after["decided_by"] == "urgent_complaint"  # the message alone, not the profile
    assert after["fields_read"] == []
    assert "feature.monetary_90d" not in after["rules"][0]["inputs"]


def test_every_decision_is_audited_in_batches_and_the_chain_verifies(dapi: DecisionApi) -> None:
    _high_value_customer(dapi)
    ids = [dapi.decide(ANGRY, signals("complaint", "negative", "urgent"))["id"] for _ in range(3)]
    assert dapi.flush_audit() == 3
    assert dapi.flush_audit() == 0
    with Session(dapi.engine) as session:
        entries = session.exec(select(AuditEntry).where(AuditEntry.action == "decision.make")).all()
        details = [json.loads(e.detail_json) for e in entries]
        assert sorted(d["decision"] for d in details) == sorted(ids)
        detail = details[0]
        assert detail["fields_read"] == ["feature.complaints_90d", "feature.monetary_90d"]
        assert "23988" not in str(detail)  # names, never values
        assert verify_chain(session=session).ok
