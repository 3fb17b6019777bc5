"""The identity page: persons, hubs, the review queue, lookups, detach and undo (audited)."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from models import EdgeCredential
from server.tables.audit_entry import AuditEntry
from server.tables.identity import IdentityCandidate
from tests.server.factories import T0, bearer, make_consent_event, make_pseudonym

from .factories import csrf_of, logged_in

TOKEN = "it_" + "cd" * 32


def _seed(console: TestClient, edge: EdgeCredential, engine: Engine) -> list[str]:
    """Three pseudonyms sharing an e-mail token (a person), one review pair, one hub."""
    subjects = [make_pseudonym(f"identity-page-{i}") for i in range(10)]
    events = [make_consent_event(s).model_dump(mode="json") for s in subjects]
    assert console.post("/api/v1/consents", json=events, headers=bearer(edge.token)).is_success
    hub = "it_" + "ef" * 32
    items = [{"subject": s, "tokens": [{"kind": "member_card", "token": hub}]} for s in subjects]
    for s in subjects[:3]:
        items[subjects.index(s)]["tokens"].append({"kind": "email", "token": TOKEN})
    answer = console.post("/api/v1/identity-tokens", json={"items": items},
                          headers=bearer(edge.token))  # fmt: skip
    assert answer.status_code == 200 and answer.json()["linked"] == 3, answer.text
    with Session(engine) as session:
        session.add(IdentityCandidate(subject=subjects[5], other=subjects[6], score=0.31,
                                      decision="review", status="pending",
                                      created_at=T0 - timedelta(hours=1)))  # fmt: skip
        session.commit()
    return subjects


def test_identity_page_lists_persons_hubs_and_reviews_in_both_languages(
    console: TestClient, officer_a: str, edge: EdgeCredential, memory_engine: Engine
) -> None:
    subjects = _seed(console, edge, memory_engine)
    logged_in(console, officer_a)

    page = console.get("/console/identity?lang=en").text
    assert 'id="person-count">1<' in page and 'id="hub-count">1<' in page
    assert 'id="review-count">1<' in page and "0.310" in page and "member_card" in page
    assert subjects[0][:15] in page and "Persons across channels" in page
    assert "跨渠道身份关联" in console.get("/console/identity?lang=zh").text


def test_lookup_detach_undo_and_review_from_the_console_are_audited(
    console: TestClient, officer_a: str, edge: EdgeCredential, memory_engine: Engine
) -> None:
    subjects = _seed(console, edge, memory_engine)
    csrf = logged_in(console, officer_a)
    lookup = console.get(f"/console/identity?subject={subjects[1]}").text
    assert all(s in lookup for s in subjects[:3])
    csrf = csrf_of(lookup)

    form = {"csrf": csrf, "subject": subjects[1], "reason": "a son's phone"}
    detached = console.post("/console/identity/detach", data=form, follow_redirects=False)
    assert detached.status_code == 303
    after = console.get(f"/console/identity?subject={subjects[1]}").text
    person = after.split('<section id="person">')[1].split("</section>")[0]
    assert subjects[0] not in person and "a son&#39;s phone" in person
    with Session(memory_engine) as session:
        decision = session.exec(select(AuditEntry).where(
            col(AuditEntry.action) == "identity.detach")).one()  # fmt: skip
        detail = decision.detail_json
    assert "li.wei" in decision.actor and "override" in detail
    undo_id = after.split("/identity/decisions/")[1].split("/undo")[0]
    undone = console.post(f"/console/identity/decisions/{undo_id}/undo", follow_redirects=False,
                          data={"csrf": csrf, "subject": subjects[1]})  # fmt: skip
    assert undone.status_code == 303
    relinked = console.get(f"/console/identity?subject={subjects[1]}").text
    assert subjects[0] in relinked.split('<section id="person">')[1].split("</section>")[0]

    review_id = console.get("/console/identity").text.split('<tr data-id="')[1].split('"')[0]
    forged = console.post(f"/console/identity/reviews/{review_id}/accept",
                          data={"csrf": "forged"}, follow_redirects=False)  # fmt: skip
    assert forged.status_code == 403
    accepted = console.post(f"/console/identity/reviews/{review_id}/accept",
                            data={"csrf": csrf}, follow_redirects=False)  # fmt: skip
    assert accepted.status_code == 303
    assert 'id="review-count">0<' in console.get("/console/identity").text
    with Session(memory_engine) as session:
        actions = {e.action for e in session.exec(select(AuditEntry)).all()}
    assert {"identity.review", "identity.undo", "console.lookup", "identity.link"} <= actions
