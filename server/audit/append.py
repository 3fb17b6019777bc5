"""Appending to the hash chain: one entry or a batch, signed checkpoints, the write lock.

Appends serialise on the single ``audit_head`` row: the appender updates it first (taking the
write lock on SQLite and the row lock on PostgreSQL), reads the previous hash, inserts its
entries and stores the new head hash. A batch reserves all its sequence numbers with one
update and inserts all its rows with one prepared statement (``executemany``), through the
driver's own cursor on the session's connection; the resulting chain is the same as
appending the entries one by one. Writers that read before they write take the lock first
(:func:`lock_chain`), so all audited writes follow one order and cannot deadlock.

Given a :class:`~server.audit.checkpoint.CheckpointPolicy`, an append also signs the
checkpoints that fall due (each multiple of ``policy.every``) in the same transaction;
:func:`create_checkpoint` signs one at the current head on demand.
"""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import Session

from ..tables.audit_checkpoint import AuditCheckpoint
from ..tables.audit_entry import GENESIS_HASH, HEAD_ID, AuditEntry, AuditHead
from .checkpoint import (
    CheckpointPolicy,
    latest_checkpoint,
    write_checkpoint,
    write_due_checkpoints,
)
from .entry_hash import canonical_detail, format_time, hash_fields, subject_commitment
from .log import placeholder, read_head
from .record import AuditRecord

logger = logging.getLogger(__name__)

_HEAD = AuditHead.metadata.tables[AuditHead.__tablename__]


def lock_chain(*, session: Session) -> None:
    """Take the chain's write lock now, in the session's transaction (changes nothing).

    Every audited writer that *reads before it writes* calls this first, so that audited
    writes serialise in one order: what the writer reads afterwards cannot change before it
    commits, and no two writers can each hold a row the other needs while waiting for the
    head (no deadlock on PostgreSQL). On SQLite the statement opens the write transaction
    (waiting up to the busy timeout); on PostgreSQL it takes the head row's lock.

    Parameters
    ----------
    session : Session
        The session of the audited write; the lock is held until it commits or rolls back.
    """
    session.connection().execute(update(_HEAD).where(_HEAD.c.id == HEAD_ID).values(seq=_HEAD.c.seq))


_INSERT_COLUMNS = (
    "seq",
    "at",
    "actor",
    "role",
    "action",
    "purpose",
    "outcome",
    "subject_commitment",
    "subject_salt",
    "subject_ref",
    "detail_json",
    "prev_hash",
    "entry_hash",
)


@functools.lru_cache(maxsize=4)
def _statements(mark: str) -> tuple[str, str, str, str]:
    """Return the raw reserve, create-head, insert and set-hash SQL for a bind marker."""
    return (
        f"UPDATE audit_head SET seq = seq + {mark} WHERE id = {mark} RETURNING seq, hash",
        f"INSERT INTO audit_head (id, seq, hash) VALUES ({mark}, {mark}, {mark})",
        f"INSERT INTO audit_entry ({', '.join(_INSERT_COLUMNS)}) "
        f"VALUES ({', '.join([mark] * len(_INSERT_COLUMNS))})",
        f"UPDATE audit_head SET hash = {mark} WHERE id = {mark}",
    )


def _reserve(cursor: Any, sql: tuple[str, str, str, str], count: int) -> tuple[int, str]:
    """Advance the head's seq by ``count`` (taking the lock); return (first seq, prev hash)."""
    cursor.execute(sql[0], (count, HEAD_ID))
    found = cursor.fetchall()
    if not found:
        cursor.execute(sql[1], (HEAD_ID, count, GENESIS_HASH))
        return 1, GENESIS_HASH
    return int(found[0][0]) - count + 1, str(found[0][1])


def _chained(
    record: AuditRecord, detail_json: str, seq: int, prev_hash: str, *, sqlite: bool
) -> tuple[Any, ...]:
    """Return the ``audit_entry`` row of ``record`` at ``seq`` (``_INSERT_COLUMNS`` order)."""
    at = record.at.astimezone(UTC)
    salt = commitment = None
    if record.subject is not None:
        salt = secrets.token_hex(16)
        commitment = subject_commitment(salt, record.subject)
    at_text = format_time(at)  # 2026-11-20T09:00:00.000000+00:00
    entry_hash = hash_fields(
        prev_hash, seq, at_text, record.actor, record.role, record.action,
        record.purpose, record.outcome, commitment, detail_json,
    )  # fmt: skip
    # SQLite stores UTCDateTime as naive UTC text in SQLAlchemy's format (see tables.types):
    # 2026-11-20 09:00:00.000000, the same digits.
    stored_at: object = f"{at_text[:10]} {at_text[11:26]}" if sqlite else at
    return (
        seq, stored_at, record.actor, record.role, record.action, record.purpose,
        record.outcome, commitment, salt, record.subject, detail_json, prev_hash, entry_hash,
    )  # fmt: skip


def _append_rows(
    session: Session, records: Sequence[AuditRecord], checkpoints: CheckpointPolicy | None
) -> list[tuple[Any, ...]]:
    """Validate, chain and insert ``records`` (and due checkpoints); return the written rows."""
    # 1. Validate everything before taking the lock, so a bad record writes nothing.
    if any(r.at.tzinfo is None or r.at.utcoffset() is None for r in records):
        raise ValueError("audit entries need a timezone-aware 'at'")
    details = [canonical_detail(record.detail) for record in records]
    # 2. Raw driver statements on the session's connection: same transaction, without the
    #    Core statement overhead that dominated the hot path (see benchmarks/audit.py).
    connection = session.connection()
    sql = _statements(placeholder(connection))
    sqlite = connection.dialect.name == "sqlite"
    cursor = connection.connection.cursor()
    try:
        seq, prev_hash = _reserve(cursor, sql, len(records))
        rows: list[tuple[Any, ...]] = []
        for offset, (record, detail_json) in enumerate(zip(records, details, strict=True)):
            row = _chained(record, detail_json, seq + offset, prev_hash, sqlite=sqlite)
            rows.append(row)
            prev_hash = row[-1]
        if len(rows) == 1:
            cursor.execute(sql[2], rows[0])
        else:
            cursor.executemany(sql[2], rows)
        cursor.execute(sql[3], (prev_hash, HEAD_ID))
    finally:
        cursor.close()
    # 3. Sign the checkpoints that fell due, in the same transaction.
    if checkpoints is not None:
        write_due_checkpoints(
            connection, policy=checkpoints, hashes=[(int(r[0]), str(r[-1])) for r in rows]
        )
    logger.debug("audit entries %d..%d appended", seq, seq + len(rows) - 1)
    return rows


def append_entries(
    *,
    session: Session,
    records: Sequence[AuditRecord],
    checkpoints: CheckpointPolicy | None = None,
) -> tuple[int, str]:
    """Append entries to the chain in order, inside the session's transaction (no commit).

    The head is touched twice whatever the number of entries: one statement reserves the
    sequence numbers (taking the write lock and reading the previous hash), one stores the
    new head hash after a single multi-row insert. The chain is the same as appending the
    records one by one. When the batch makes the log's size reach a multiple of
    ``checkpoints.every``, the checkpoint at that size is signed and stored in the same
    transaction (no extra statement otherwise).

    Parameters
    ----------
    session : Session
        The session of the write being audited; committing it commits the entries.
    records : Sequence[AuditRecord]
        The entries, in the order they are to be chained.
    checkpoints : CheckpointPolicy or None
        Sign the checkpoints that fall due; ``None`` signs none (``verify`` then reports
        ``checkpoint_missing`` once a due checkpoint is absent, if asked to check).

    Returns
    -------
    tuple[int, str]
        The new head: sequence number and hash of the last entry written (the current head
        when ``records`` is empty).

    Raises
    ------
    ValueError
        If a record's ``at`` is naive or its ``detail`` is not plain JSON or carries a
        pseudonym (checked before anything is written).
    """
    if not records:
        return read_head(session=session)
    rows = _append_rows(session, records, checkpoints)
    return int(rows[-1][0]), str(rows[-1][-1])


def append_entry(
    *,
    session: Session,
    actor: str,
    role: str,
    action: str,
    purpose: str | None,
    subject: str | None,
    outcome: str,
    detail: Mapping[str, object],
    at: datetime,
    checkpoints: CheckpointPolicy | None = None,
) -> AuditEntry:
    """Append one entry to the chain inside the session's transaction (no commit).

    Parameters
    ----------
    session : Session
        The session of the write being audited; committing it commits both.
    actor : str
        Who acted (``edge:<id>``, ``agent``, ``admin``, ``enrollment``).
    role : str
        The actor's role.
    action : str
        An ``AuditAction`` value.
    purpose : str or None
        Purpose stated by the request, if any.
    subject : str or None
        The subject's pseudonym, if the action concerns one; stored as a salted commitment
        plus the (erasable) pseudonym and salt.
    outcome : str
        An ``AuditOutcome`` value.
    detail : Mapping[str, object]
        Ids, counts, field names and reason codes; never values or pseudonyms.
    at : datetime
        When it happened (timezone-aware).
    checkpoints : CheckpointPolicy or None
        Sign the checkpoint if this entry makes one fall due; ``None`` signs none.

    Returns
    -------
    AuditEntry
        The written entry (a detached object; the row is in the session's transaction).

    Raises
    ------
    ValueError
        If ``at`` is naive or ``detail`` is not plain JSON or carries a pseudonym.
    """
    record = AuditRecord(
        actor=actor,
        role=role,
        action=action,
        purpose=purpose,
        subject=subject,
        outcome=outcome,
        detail=detail,
        at=at,
    )
    (row,) = _append_rows(session, [record], checkpoints)
    values = dict(zip(_INSERT_COLUMNS, row, strict=True))
    values["at"] = record.at.astimezone(UTC)
    return AuditEntry(**values)


def create_checkpoint(*, session: Session, policy: CheckpointPolicy) -> AuditCheckpoint:
    """Sign a checkpoint at the current head now, in the session's transaction (no commit).

    Takes the chain's write lock first, so the head cannot move while it is signed. When the
    newest checkpoint already covers the head, it is returned and nothing is written.

    Parameters
    ----------
    session : Session
        A session on the audited database; the caller commits.
    policy : CheckpointPolicy
        Key, origin and clock (``every`` is not used).

    Returns
    -------
    AuditCheckpoint
        The checkpoint at the head (new, or the existing one of the same size).
    """
    lock_chain(session=session)
    size, head_hash = read_head(session=session)
    latest = latest_checkpoint(session=session)
    if latest is not None and latest.size == size:
        return latest
    return write_checkpoint(session.connection(), policy=policy, size=size, head_hash=head_hash)
