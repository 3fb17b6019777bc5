"""The audit page: newest-first keyset pages, filters, verify in the background."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from models import EdgeCredential
from server.audit.export import verify_export
from server.console.queries import AuditFilter, audit_page
from server.tables.audit_entry import AuditEntry

from .factories import logged_in, seed_consents


def _seqs(html: str) -> list[int]:
    table = re.search(r'<table id="audit">(.*?)</table>', html, re.S)
    assert table is not None
    return [int(s) for s in re.findall(r'<tr><td class="num">(\d+)</td>', table.group(1))]


def test_pages_walk_back_without_gaps_or_repeats(
    console: TestClient, officer_a: str, edge: EdgeCredential, memory_engine: Engine
) -> None:
    seed_consents(console, edge.token, 60)  # one consent.record entry per subject
    logged_in(console, officer_a)
    with Session(memory_engine) as session:
        first = audit_page(session=session, filters=AuditFilter(), limit=25)
        seen = [e.seq for e in first.rows]
        cursor = first.before
        while cursor is not None:
            page = audit_page(session=session, filters=AuditFilter(), before=cursor, limit=25)
            seen += [e.seq for e in page.rows]
            cursor = page.before
    assert seen == sorted(seen, reverse=True) and seen == list(range(seen[0], 0, -1))
    html = console.get("/console/audit").text
    newest = _seqs(html)
    assert len(newest) == 50 and newest[0] == seen[0]
    older = re.search(r'id="older" href="([^"]+)"', html)
    assert older is not None
    assert _seqs(console.get(older.group(1).replace("&amp;", "&")).text)[0] == newest[-1] - 1


def test_filters_narrow_the_page(console: TestClient, officer_a: str, edge: EdgeCredential) -> None:
    seed_consents(console, edge.token, 3)
    logged_in(console, officer_a)
    html = console.get("/console/audit", params={"action": "console.login"}).text
    assert len(_seqs(html)) == 1 and "compliance_officer:li.wei" in html
    html = console.get("/console/audit", params={"actor": f"edge:{edge.edge_id}"}).text
    assert len(_seqs(html)) == 3
    assert "No entries match" in console.get("/console/audit", params={"outcome": "conflict"}).text


def test_verify_runs_in_the_background_and_the_overview_shows_the_result(
    console: TestClient, officer_a: str, edge: EdgeCredential, memory_engine: Engine
) -> None:
    seed_consents(console, edge.token, 5)
    csrf = logged_in(console, officer_a)
    assert "not verified since the server started" in console.get("/console/").text
    response = console.post("/console/audit/verify", data={"csrf": csrf}, follow_redirects=False)
    assert response.status_code == 303
    overview = console.get("/console/").text
    assert re.search(r'class="verify ok"', overview) and "intact" in overview
    # Tamper with one entry: the next run names it.
    with Session(memory_engine) as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(outcome="refused"))  # type: ignore[arg-type]
        session.commit()
    console.post("/console/audit/verify", data={"csrf": csrf})
    overview = console.get("/console/?lang=zh").text
    assert 'class="verify broken"' in overview and "#3" in overview and "已损坏" in overview


def test_verify_requires_csrf(console: TestClient, officer_a: str) -> None:
    logged_in(console, officer_a)
    assert console.post("/console/audit/verify", data={"csrf": "x"}).status_code == 403
    assert "not verified" in console.get("/console/").text


def test_export_a_range_as_signed_json_that_verifies_offline(
    console: TestClient, officer_a: str, edge: EdgeCredential, memory_engine: Engine
) -> None:
    seed_consents(console, edge.token, 6)
    logged_in(console, officer_a)
    response = console.get("/console/audit/export", params={"start": 2, "end": 5})
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    export = json.loads(response.text)
    key = console.app.state.signing.key.verify_key  # type: ignore[attr-defined]
    check = verify_export(export, public_key=key)
    assert check.ok and (check.first, check.last) == (2, 5)
    assert [e["seq"] for e in export["document"]["entries"]] == [2, 3, 4, 5]
    with Session(memory_engine) as session:
        logged = session.exec(
            select(AuditEntry).where(col(AuditEntry.action) == "console.export")
        ).all()
    assert [json.loads(e.detail_json) for e in logged] == [{"from": 2, "to": 5}]
    # A range past the head is a 404 page, and nothing is audited.
    assert (
        console.get("/console/audit/export", params={"start": 1, "end": 10_000}).status_code == 404
    )
