from __future__ import annotations

from sqlmodel import Session, col, select

from server.audit.log import count_entries, verify_chain
from server.audit.record import AuditRecord
from server.audit.sink import AuditSink, DatabaseAuditSink
from server.tables.audit_entry import AuditEntry

from ..factories import T0, RecordingAuditSink


def _record(sink: AuditSink) -> None:
    sink.record(
        actor="agent",
        role="agent",
        action="profile.read",
        purpose="marketing",
        subject=None,
        outcome="accepted",
        detail={"withheld": 0},
        at=T0,
    )


def test_database_audit_sink_entry_commits_with_the_session(db_session: Session) -> None:
    _record(DatabaseAuditSink(db_session))
    db_session.commit()
    assert count_entries(session=db_session) == 1


def test_database_audit_sink_entry_rolls_back_with_the_session(db_session: Session) -> None:
    _record(DatabaseAuditSink(db_session))
    db_session.rollback()
    assert count_entries(session=db_session) == 0


def test_recording_sink_satisfies_the_protocol() -> None:
    sink = RecordingAuditSink()
    _record(sink)
    assert [e.action for e in sink.entries] == ["profile.read"]


def test_database_audit_sink_record_many_appends_in_order(db_session: Session) -> None:
    records = [
        AuditRecord(
            actor="edge:e1",
            role="edge",
            action="profile.write",
            purpose="marketing",
            subject=None,
            outcome=outcome,
            detail={},
            at=T0,
        )
        for outcome in ("accepted", "refused", "replayed")
    ]
    DatabaseAuditSink(db_session).record_many(records)
    db_session.commit()
    rows = db_session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all()
    assert [(r.seq, r.outcome) for r in rows] == [(1, "accepted"), (2, "refused"), (3, "replayed")]
    assert verify_chain(session=db_session).ok
