from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from models import EdgeCredential
from server.tables.audit_entry import AuditEntry

from ...factories import AGENT_TOKEN, as_json, bearer, make_consent_event, make_pseudonym

URL = "/api/v1/consents"


def test_post_consents_counts_recorded_and_duplicates(
    api: TestClient, edge: EdgeCredential
) -> None:
    events = [make_consent_event(make_pseudonym("a")), make_consent_event(make_pseudonym("b"))]
    first = api.post(URL, json=as_json(events), headers=bearer(edge.token))
    second = api.post(URL, json=as_json(events), headers=bearer(edge.token))
    assert first.json() == {"recorded": 2, "duplicates": 0, "refused_erased": 0}
    assert second.json() == {"recorded": 0, "duplicates": 2, "refused_erased": 0}


def test_post_consents_audits_one_entry_per_subject(
    api: TestClient, edge: EdgeCredential, memory_engine: Engine
) -> None:
    events = [make_consent_event(make_pseudonym("a")), make_consent_event(make_pseudonym("b"))]
    api.post(URL, json=as_json(events), headers=bearer(edge.token))
    with Session(memory_engine) as session:
        actions = [e.action for e in session.exec(select(AuditEntry)).all()]
    assert actions == ["edge.register", "consent.record", "consent.record"]


def test_post_consents_agent_is_forbidden(api: TestClient) -> None:
    events = [make_consent_event(make_pseudonym("a"))]
    assert api.post(URL, json=as_json(events), headers=bearer(AGENT_TOKEN)).status_code == 403


def test_post_consents_empty_or_malformed_batch_is_422(
    api: TestClient, edge: EdgeCredential
) -> None:
    bad = as_json([make_consent_event(make_pseudonym("a"))])
    bad[0]["subject"] = "13800138000"
    assert api.post(URL, json=[], headers=bearer(edge.token)).status_code == 422
    response = api.post(URL, json=bad, headers=bearer(edge.token))
    assert response.status_code == 422 and "13800138000" not in response.text
