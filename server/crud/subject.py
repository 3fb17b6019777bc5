"""Subjects: created on first consent event or upload, ``last_seen_at`` kept current."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import bindparam, insert, update
from sqlalchemy import select as sa_select
from sqlmodel import Session

from ..tables.subject import Subject


def touch_subject(*, session: Session, subject: str, at: datetime) -> Subject:
    """Create the subject row or advance its ``last_seen_at`` (no commit).

    Parameters
    ----------
    session : Session
        Session of the enclosing write.
    subject : str
        The pseudonym (validated by the caller's wire record).
    at : datetime
        When the subject was seen.

    Returns
    -------
    Subject
        The new or updated row.
    """
    row = session.get(Subject, subject)
    if row is None:
        row = Subject(pseudonym=subject, first_seen_at=at, last_seen_at=at)
    elif row.last_seen_at < at:
        row.last_seen_at = at
    session.add(row)
    return row


def touch_subjects(*, session: Session, subjects: Iterable[str], at: datetime) -> int:
    """Create missing subject rows and advance ``last_seen_at`` of the others (no commit).

    The bulk form of ``touch_subject``: a few statements whatever the number of subjects.

    Parameters
    ----------
    session : Session
        Session of the enclosing write.
    subjects : Iterable[str]
        Pseudonyms (validated by the caller's wire records).
    at : datetime
        When the subjects were seen.

    Returns
    -------
    int
        How many subject rows were created.
    """
    table = Subject.metadata.tables[Subject.__tablename__]
    wanted = sorted(set(subjects))
    connection = session.connection()
    existing: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        existing.update(
            str(r[0])
            for r in connection.execute(
                sa_select(table.c.pseudonym).where(table.c.pseudonym.in_(chunk))
            )
        )
    new = [s for s in wanted if s not in existing]
    if new:
        connection.execute(
            insert(table), [{"pseudonym": s, "first_seen_at": at, "last_seen_at": at} for s in new]
        )
    if existing:
        connection.execute(
            update(table)
            .where(table.c.pseudonym == bindparam("key"), table.c.last_seen_at < at)
            .values(last_seen_at=at),
            [{"key": s} for s in sorted(existing)],
        )
    return len(new)
