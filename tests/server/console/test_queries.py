"""The console's read models on SQLite and PostgreSQL: coverage, keyset pages, budgets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from consent import ConsentStatus, Purpose, RequestState, RequestType
from server.console.queries import (
    AuditFilter,
    audit_page,
    budget_series,
    consent_coverage,
    count_subjects,
    notice_registry,
    notice_rows,
    request_page,
)
from server.crud.consent import event_hash
from server.db import create_db_engine
from server.tables.audit_entry import AuditEntry
from server.tables.consent_record import ConsentRecord
from server.tables.dsr import DataSubjectRequest
from server.tables.edge import Edge
from server.tables.notice import PrivacyNotice
from server.tables.subject import Subject
from server.tables.training import EdgeLedger
from tests.server.factories import T0, make_consent_event, make_pseudonym


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    url = "sqlite://" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    built = create_db_engine(url)
    SQLModel.metadata.create_all(built)
    try:
        yield built
    finally:
        built.dispose()


def _fill(session: Session) -> list[str]:
    subjects = [make_pseudonym(f"q-{i}") for i in range(6)]
    for subject in subjects:
        session.add(Subject(pseudonym=subject, first_seen_at=T0, last_seen_at=T0))
    session.flush()
    events = []
    for i, subject in enumerate(subjects):
        events.append(make_consent_event(subject, Purpose.MARKETING, notice_version="v1"))
        if i < 2:  # two renew under v2, one withdraws
            events.append(
                make_consent_event(
                    subject,
                    Purpose.MARKETING,
                    notice_version="v2",
                    occurred_at=T0 - timedelta(hours=1),
                )
            )
        if i == 5:
            events.append(
                make_consent_event(
                    subject,
                    Purpose.MARKETING,
                    notice_version="v1",
                    status=ConsentStatus.WITHDRAWN,
                    occurred_at=T0 - timedelta(hours=1),
                )
            )
    for event in events:
        row = event.model_dump()
        session.add(ConsentRecord(**row, event_hash=event_hash(event), received_at=T0))
    session.add(
        PrivacyNotice(
            version="v2",
            purposes="marketing",
            material=True,
            content_hash="0" * 64,
            url="https://example.com/v2",
            language="en",
            published_at=T0 - timedelta(hours=2),
            published_by="compliance_officer:x",
        )
    )
    for i in range(5):
        session.add(
            DataSubjectRequest(
                id=f"req-{i}",
                request_type=RequestType.ACCESS,
                subject=subjects[i],
                channel="desk",
                state=RequestState.RECEIVED if i % 2 == 0 else RequestState.COMPLETED,
                received_at=T0,
                due_at=T0 + timedelta(days=i % 3),
                updated_at=T0,
                created_by="x",
                created_role="compliance_officer",
            )
        )
    for seq in range(1, 31):
        session.add(
            AuditEntry(
                seq=seq,
                at=T0,
                actor="edge:e" if seq % 3 else "admin",
                role="edge",
                action="profile.read",
                outcome="accepted",
                prev_hash=f"{seq - 1:064d}",
                entry_hash=f"{seq:064d}",
            )
        )
    session.add(Edge(id="e1", name="web-1", channel="web", created_at=T0))
    session.flush()
    entries = [{"epsilon_after": e} for e in (0.5, 1.0, 1.7)]
    session.add(
        EdgeLedger(
            edge_id="e1",
            channel="web",
            model="behaviour",
            epsilon=1.7,
            delta=1e-5,
            accountant="prv",
            reported_at=T0,
            entries_json=json.dumps(entries),
        )
    )
    session.commit()
    return subjects


def test_coverage_counts_latest_state_and_renewal(engine: Engine) -> None:
    with Session(engine) as session:
        _fill(session)
        registry = notice_registry(notice_rows(session=session))
        rows = {c.purpose: c for c in consent_coverage(session=session, notices=registry, at=T0)}
        assert count_subjects(session=session) == 6
    marketing = rows[Purpose.MARKETING]
    # Two renewed under v2 (granted), one withdrew, three still on v1 (paused by v2).
    assert (marketing.granted, marketing.withdrawn, marketing.renewal) == (2, 1, 3)
    assert rows[Purpose.ANALYTICS].granted == 0


def test_request_keyset_pages_cover_everything_once(engine: Engine) -> None:
    with Session(engine) as session:
        _fill(session)
        seen: list[str] = []
        page = request_page(session=session, limit=2)
        seen += [r.id for r in page.rows]
        while page.next_cursor is not None:
            page = request_page(session=session, limit=2, after=page.next_cursor)
            seen += [r.id for r in page.rows]
        open_page = request_page(session=session, open_only=True)
        received = request_page(
            session=session, state=RequestState.RECEIVED, due_before=T0 + timedelta(days=1)
        )
    assert sorted(seen) == [f"req-{i}" for i in range(5)] and len(seen) == 5
    assert open_page.open_count == 3 and {r.id for r in open_page.rows} == {
        "req-0",
        "req-2",
        "req-4",
    }
    assert [r.id for r in received.rows] == ["req-0"]


def test_audit_pages_and_filters(engine: Engine) -> None:
    with Session(engine) as session:
        _fill(session)
        first = audit_page(session=session, filters=AuditFilter(), limit=10)
        second = audit_page(session=session, filters=AuditFilter(), before=first.before, limit=10)
        admins = audit_page(session=session, filters=AuditFilter(actor="admin"), limit=100)
    assert [e.seq for e in first.rows] == list(range(30, 20, -1)) and first.before == 21
    assert [e.seq for e in second.rows] == list(range(20, 10, -1))
    assert [e.seq for e in admins.rows] == list(range(30, 0, -3)) and admins.before is None


def test_budget_series_follow_the_ledger_entries(engine: Engine) -> None:
    with Session(engine) as session:
        _fill(session)
        series = budget_series(session=session)
    assert len(series) == 1 and series[0].edge_name == "web-1"
    assert series[0].points == [(1, 0.5), (2, 1.0), (3, 1.7)]
