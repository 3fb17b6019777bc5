"""The requests queue: filters, keyset pages, two-officer erasure, receipts and exports."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from models import EdgeCredential
from privacy import verify_signed
from server.tables.audit_entry import AuditEntry
from tests.server.factories import FakeClock

from .factories import create_dsr, logged_in, seed_consents


def _post(client: TestClient, path: str, csrf: str, **extra: str) -> object:
    return client.post(path, data={"csrf": csrf, **extra}, follow_redirects=False)


def test_erasure_needs_two_different_officers_then_yields_a_signed_receipt(
    console: TestClient,
    officer_a: str,
    officer_b: str,
    edge: EdgeCredential,
    memory_engine: Engine,
) -> None:
    subject = seed_consents(console, edge.token, 2)[0]
    request_id = create_dsr(console, officer_a, subject, "erase")
    csrf_a = logged_in(console, officer_a)
    base = f"/console/requests/{request_id}"
    assert _post(console, f"{base}/verify", csrf_a).status_code == 303  # type: ignore[attr-defined]
    assert _post(console, f"{base}/approve", csrf_a).status_code == 303  # type: ignore[attr-defined]
    page = console.get(base).text
    assert re.search(r'id="state" data-state="verifying"', page)  # one approval is not enough
    again = _post(console, f"{base}/approve", csrf_a)
    assert again.status_code == 409  # type: ignore[attr-defined]
    # A second officer, in their own session.
    csrf_b = logged_in(console, officer_b)
    assert _post(console, f"{base}/approve", csrf_b).status_code == 303  # type: ignore[attr-defined]
    page = console.get(base).text
    assert re.search(r'id="state" data-state="approved"', page)
    assert "compliance_officer:li.wei" in page and "compliance_officer:zhang.min" in page
    assert _post(console, f"{base}/execute", csrf_b).status_code == 303  # type: ignore[attr-defined]
    page = console.get(base).text
    assert re.search(r'id="state" data-state="completed"', page) and 'id="download-receipt"' in page
    download = console.get(f"{base}/receipt")
    assert download.status_code == 200
    assert "attachment" in download.headers["content-disposition"]
    verify_signed(json.loads(download.text))  # raises if the signature does not verify
    assert subject not in download.text
    with Session(memory_engine) as session:
        approvals = session.exec(
            select(AuditEntry).where(col(AuditEntry.action) == "dsr.approve")
        ).all()
    assert [e.actor for e in approvals] == [
        "compliance_officer:li.wei",
        "compliance_officer:zhang.min",
    ]


def test_reject_needs_a_reason(console: TestClient, officer_a: str, edge: EdgeCredential) -> None:
    subject = seed_consents(console, edge.token, 1)[0]
    request_id = create_dsr(console, officer_a, subject, "access")
    csrf = logged_in(console, officer_a)
    base = f"/console/requests/{request_id}"
    assert _post(console, f"{base}/reject", csrf, reason="  ").status_code == 422  # type: ignore[attr-defined]
    response = _post(console, f"{base}/reject", csrf, reason="identity could not be verified")
    assert response.status_code == 303  # type: ignore[attr-defined]
    page = console.get(base).text
    assert re.search(r'id="state" data-state="rejected"', page)
    assert "identity could not be verified" in page


def test_access_export_downloads_signed_document(
    console: TestClient, officer_a: str, officer_b: str, edge: EdgeCredential
) -> None:
    subject = seed_consents(console, edge.token, 1)[0]
    request_id = create_dsr(console, officer_a, subject, "access")
    csrf = logged_in(console, officer_a)
    base = f"/console/requests/{request_id}"
    for step in ("verify", "approve", "execute"):
        assert _post(console, f"{base}/{step}", csrf).status_code == 303, step  # type: ignore[attr-defined]
    assert 'id="download-export"' in console.get(base).text
    download = console.get(f"{base}/export")
    assert download.status_code == 200
    verify_signed(json.loads(download.text))


def test_queue_filters_by_state_and_due_date_and_pages_by_keyset(
    console: TestClient, officer_a: str, edge: EdgeCredential, fake_clock: FakeClock
) -> None:
    subjects = seed_consents(console, edge.token, 3)
    ids = []
    for subject in subjects:
        ids.append(create_dsr(console, officer_a, subject, "access"))
        fake_clock.advance(days=1)
    csrf = logged_in(console, officer_a)
    _post(console, f"/console/requests/{ids[0]}/verify", csrf)
    received = console.get("/console/requests", params={"state": "received"}).text
    assert ids[0] not in received and ids[1] in received and ids[2] in received
    early = console.get("/console/requests", params={"due_before": "2026-12-06"}).text
    assert ids[0] in early and ids[2] not in early
    # A page of one continues from the last due date seen.
    from server.console.queries import request_page

    with Session(console.app.state.engine) as session:  # type: ignore[attr-defined]
        first = request_page(session=session, limit=2)
        second = request_page(session=session, limit=2, after=first.next_cursor)
    assert [r.id for r in first.rows] == ids[:2]
    assert [r.id for r in second.rows] == ids[2:] and second.next_cursor is None


def test_unknown_request_is_a_404_page(console: TestClient, officer_a: str) -> None:
    logged_in(console, officer_a)
    assert console.get("/console/requests/does-not-exist").status_code == 404
