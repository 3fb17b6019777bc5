"""Verifying the hash chain: an intact log passes; edit, delete, reorder and insert are found."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlmodel import Session

import server.tables  # noqa: F401
from server.audit.append import append_entry
from server.audit.log import (
    ChainProblem,
    compute_entry_hash,
    verify_chain,
)
from server.tables.audit_entry import GENESIS_HASH, AuditEntry

from ..factories import T0, make_pseudonym

SUBJECT = make_pseudonym("audit-subject")


def _append(session: Session, n: int, *, subject: str | None = SUBJECT) -> list[AuditEntry]:
    entries = [
        append_entry(
            session=session,
            actor="edge:e1",
            role="edge",
            action="profile.write",
            purpose="marketing",
            subject=subject,
            outcome="accepted",
            detail={"stored": ["tag.churn_risk"], "n": i},
            at=T0 + timedelta(seconds=i),
        )
        for i in range(n)
    ]
    session.commit()
    return entries


def test_verify_chain_intact_log_is_ok(db_session: Session) -> None:
    _append(db_session, 5)
    report = verify_chain(session=db_session, batch_size=2)
    assert report.ok and report.entries == 5 and report.first_bad_seq is None


def test_verify_chain_empty_log_is_ok(db_session: Session) -> None:
    report = verify_chain(session=db_session)
    assert report.ok and report.entries == 0 and report.head_hash == GENESIS_HASH


def _sql(s: Session, statement: str) -> None:
    s.connection().execute(text(statement))


def _edit_outcome(s: Session) -> None:
    _sql(s, "UPDATE audit_entry SET outcome = 'refused' WHERE seq = 3")


def _edit_detail(s: Session) -> None:
    _sql(s, "UPDATE audit_entry SET detail_json = '{}' WHERE seq = 3")


def _edit_subject_ref(s: Session) -> None:
    other = make_pseudonym("someone-else")
    _sql(s, f"UPDATE audit_entry SET subject_ref = '{other}' WHERE seq = 3")


def _delete_middle(s: Session) -> None:
    _sql(s, "DELETE FROM audit_entry WHERE seq = 3")


def _delete_tail(s: Session) -> None:
    _sql(s, "DELETE FROM audit_entry WHERE seq = 5")


def _reorder(s: Session) -> None:
    _sql(s, "UPDATE audit_entry SET seq = -1 WHERE seq = 2")
    _sql(s, "UPDATE audit_entry SET seq = 2 WHERE seq = 3")
    _sql(s, "UPDATE audit_entry SET seq = 3 WHERE seq = -1")


def _insert_middle(s: Session) -> None:
    # Shift entries 3..5 up by one and insert a forged, self-consistent entry as seq 3.
    for seq in (5, 4, 3):
        _sql(s, f"UPDATE audit_entry SET seq = {seq + 1} WHERE seq = {seq}")
    prev = s.get(AuditEntry, 2)
    assert prev is not None
    forged = AuditEntry(
        seq=3,
        at=T0,
        actor="admin",
        role="admin",
        action="profile.read",
        purpose=None,
        outcome="accepted",
        subject_commitment=None,
        detail_json="{}",
        prev_hash=prev.entry_hash,
        entry_hash="",
    )
    forged.entry_hash = compute_entry_hash(forged)
    s.add(forged)


@pytest.mark.parametrize(
    ("tamper", "first_bad", "reason"),
    [
        (_edit_outcome, 3, ChainProblem.ENTRY_HASH_MISMATCH),
        (_edit_detail, 3, ChainProblem.ENTRY_HASH_MISMATCH),
        (_edit_subject_ref, 3, ChainProblem.COMMITMENT_MISMATCH),
        (_delete_middle, 3, ChainProblem.SEQ_GAP),
        (_delete_tail, 5, ChainProblem.HEAD_MISMATCH),
        (_reorder, 2, ChainProblem.PREV_HASH_MISMATCH),
        (_insert_middle, 4, ChainProblem.PREV_HASH_MISMATCH),
    ],
    ids=["edit", "edit-detail", "edit-subject", "delete", "truncate", "reorder", "insert"],
)
def test_verify_chain_tampered_log_names_first_bad_seq(
    db_session: Session,
    tamper: Callable[[Session], None],
    first_bad: int,
    reason: ChainProblem,
) -> None:
    _append(db_session, 5)
    tamper(db_session)
    db_session.commit()
    db_session.expunge_all()
    report = verify_chain(session=db_session)
    assert (report.ok, report.first_bad_seq, report.reason) == (False, first_bad, reason)


def test_verify_chain_erased_subject_ref_and_salt_keeps_chain_valid(db_session: Session) -> None:
    _append(db_session, 3)
    _sql(db_session, "UPDATE audit_entry SET subject_ref = NULL, subject_salt = NULL WHERE seq = 2")
    db_session.commit()
    db_session.expunge_all()
    assert verify_chain(session=db_session).ok


def test_verify_chain_progress_reports_counts(db_session: Session) -> None:
    _append(db_session, 5)
    seen: list[int] = []
    verify_chain(session=db_session, batch_size=2, progress=seen.append)
    assert seen == [2, 4, 5]
