"""Appending to the chain: entries link up, batches chain like single appends, the lock."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

import server.tables  # noqa: F401
from server.audit.append import append_entries, append_entry, lock_chain
from server.audit.log import (
    compute_entry_hash,
    count_entries,
    read_head,
    subject_commitment,
    verify_chain,
)
from server.audit.record import AuditRecord
from server.db import create_db_engine, upgrade_database
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


def _records(n: int, *, subject: str | None = SUBJECT, at: datetime = T0) -> list[AuditRecord]:
    return [
        AuditRecord(
            actor="edge:e1",
            role="edge",
            action="profile.write",
            purpose="marketing",
            subject=subject,
            outcome="accepted",
            detail={"n": i},
            at=at,
        )
        for i in range(n)
    ]


@pytest.fixture()
def sqlite_file(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'audit.sqlite'}"
    upgrade_database(url)
    engine = create_db_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def test_append_entry_links_each_entry_to_the_previous(db_session: Session) -> None:
    entries = _append(db_session, 3)
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[0].prev_hash == GENESIS_HASH
    assert entries[1].prev_hash == entries[0].entry_hash
    assert entries[2].entry_hash == compute_entry_hash(entries[2])
    assert read_head(session=db_session) == (3, entries[2].entry_hash)


def test_append_entry_stores_salted_commitment_not_bare_hash(db_session: Session) -> None:
    a, b = _append(db_session, 2)
    assert a.subject_salt != b.subject_salt
    assert a.subject_commitment != b.subject_commitment  # unlinkable across entries
    assert a.subject_commitment == subject_commitment(a.subject_salt or "", SUBJECT)


def test_append_entry_without_subject_has_no_commitment(db_session: Session) -> None:
    (entry,) = _append(db_session, 1, subject=None)
    assert (entry.subject_commitment, entry.subject_salt, entry.subject_ref) == (None, None, None)


@pytest.mark.parametrize(
    ("detail", "at"),
    [
        ({"subject": SUBJECT}, T0),  # pseudonym in detail
        ({"value": float("nan")}, T0),  # not plain JSON
        ({"n": 1}, datetime(2026, 1, 1)),  # naive time
    ],
)
def test_append_entry_bad_arguments_raise_value_error(
    db_session: Session, detail: dict[str, object], at: datetime
) -> None:
    with pytest.raises(ValueError):
        append_entry(
            session=db_session,
            actor="admin",
            role="admin",
            action="profile.read",
            purpose=None,
            subject=None,
            outcome="accepted",
            detail=detail,
            at=at,
        )


def _concurrent_appends(engine: Engine, threads: int, per_thread: int) -> None:
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(per_thread):
                with Session(engine) as session:
                    append_entry(
                        session=session,
                        actor=f"edge:{worker}",
                        role="edge",
                        action="ledger.report",
                        purpose=None,
                        subject=None,
                        outcome="accepted",
                        detail={"i": i},
                        at=datetime.now(UTC),
                    )
                    session.commit()
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assert below
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=60)
    assert errors == []


def test_append_entry_concurrent_writers_sqlite_file_keep_chain_valid(
    sqlite_file: Engine,
) -> None:
    _concurrent_appends(sqlite_file, threads=4, per_thread=10)
    with Session(sqlite_file) as session:
        report = verify_chain(session=session)
        total = count_entries(session=session)
    assert report.ok and total == 40


@pytest.mark.postgres
def test_append_entry_concurrent_writers_postgres_keep_chain_valid(postgres_url: str) -> None:
    upgrade_database(postgres_url)
    engine = create_db_engine(postgres_url)
    try:
        _concurrent_appends(engine, threads=4, per_thread=10)
        with Session(engine) as session:
            report = verify_chain(session=session)
    finally:
        engine.dispose()
    assert report.ok and report.entries == 40


def test_append_entry_without_head_row_creates_it(memory_engine: Engine) -> None:
    # create_all made the tables but not the head row the migration inserts.
    with Session(memory_engine) as session:
        entry = append_entry(
            session=session,
            actor="admin",
            role="admin",
            action="profile.read",
            purpose=None,
            subject=None,
            outcome="accepted",
            detail={},
            at=T0,
        )
        session.commit()
        assert entry.seq == 1 and entry.prev_hash == GENESIS_HASH


def test_append_entries_batch_continues_the_chain_of_single_appends(db_session: Session) -> None:
    # Prepare: two single appends.
    _append(db_session, 2)
    # Execute: a batch of three, then one more single append.
    head = append_entries(session=db_session, records=_records(3))
    db_session.commit()
    (last,) = _append(db_session, 1)
    # Assert
    assert head[0] == 5 and last.seq == 6 and last.prev_hash == head[1]
    report = verify_chain(session=db_session)
    assert report.ok and report.entries == 6


def test_append_entries_touches_the_head_twice_whatever_the_batch_size(
    sqlite_file: Engine,
) -> None:
    statements: list[str] = []
    with Session(sqlite_file) as session:
        raw = session.connection().connection.driver_connection
        raw.set_trace_callback(statements.append)
        append_entries(session=session, records=_records(50))
        session.commit()
        raw.set_trace_callback(None)
        assert count_entries(session=session) == 50
    assert sum("audit_head" in s for s in statements) == 2
    # One prepared insert run once per row; nothing else touches the entries.
    assert sum("audit_entry" in s for s in statements) == 50


def test_append_entries_bad_record_writes_nothing(db_session: Session) -> None:
    _append(db_session, 1)
    head = read_head(session=db_session)
    records = [*_records(2), *_records(1, at=datetime(2026, 1, 1))]  # last one naive
    with pytest.raises(ValueError):
        append_entries(session=db_session, records=records)
    db_session.commit()
    assert read_head(session=db_session) == head and count_entries(session=db_session) == 1


def test_append_entries_empty_returns_the_head(db_session: Session) -> None:
    _append(db_session, 2)
    assert append_entries(session=db_session, records=[]) == read_head(session=db_session)


def test_lock_chain_changes_nothing(db_session: Session) -> None:
    _append(db_session, 2)
    head = read_head(session=db_session)
    lock_chain(session=db_session)
    db_session.commit()
    assert read_head(session=db_session) == head and verify_chain(session=db_session).ok


def test_lock_chain_holds_the_sqlite_write_lock_until_commit(
    sqlite_file: Engine, tmp_path: Path
) -> None:
    def other_writer_gets_lock() -> bool:
        raw = sqlite3.connect(tmp_path / "audit.sqlite", timeout=0)
        try:
            raw.execute("BEGIN IMMEDIATE")
            raw.rollback()
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            raw.close()

    with Session(sqlite_file) as session:
        lock_chain(session=session)
        while_held = other_writer_gets_lock()
        session.commit()
    assert (while_held, other_writer_gets_lock()) == (False, True)
