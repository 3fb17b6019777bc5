"""Appending to the hash chain: one entry or a batch, signed checkpoints, the write lock.

Appends serialise on the single ``audit_head`` row: the appender updates it first (taking the
write lock on SQLite and the row lock on PostgreSQL), reads the previous hash, inserts its
entries and stores the new head hash. A batch reserves all its sequence numbers with one
update and inserts all its rows with one statement; the resulting chain is the same as
appending the entries one by one. Writers that read before they write take the lock first
(:func:`lock_chain`), so all audited writes follow one order and cannot deadlock.

Given a :class:`~server.audit.checkpoint.CheckpointPolicy`, an append also signs the
checkpoints that fall due (each multiple of ``policy.every``) in the same transaction;
:func:`create_checkpoint` signs one at the current head on demand.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.engine import Connection
from sqlmodel import Session

from ..tables.audit_checkpoint import AuditCheckpoint
from ..tables.audit_entry import GENESIS_HASH, HEAD_ID, AuditEntry, AuditHead
from .checkpoint import (
    CheckpointPolicy,
    latest_checkpoint,
    write_checkpoint,
    write_due_checkpoints,
)
from .entry_hash import canonical_detail, compute_row_hash, subject_commitment
from .log import read_head
from .record import AuditRecord

logger = logging.getLogger(__name__)

_HEAD = AuditHead.metadata.tables[AuditHead.__tablename__]
_ENTRY = AuditEntry.metadata.tables[AuditEntry.__tablename__]


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


def _reserve(connection: Connection, count: int) -> tuple[int, str]:
    """Advance the head's seq by ``count`` (taking the lock); return (first seq, prev hash)."""
    bump = (
        update(_HEAD)
        .where(_HEAD.c.id == HEAD_ID)
        .values(seq=_HEAD.c.seq + count)
        .returning(_HEAD.c.seq, _HEAD.c.hash)
    )
    row = connection.execute(bump).first()
    if row is None:
        connection.execute(insert(_HEAD).values(id=HEAD_ID, seq=count, hash=GENESIS_HASH))
        return 1, GENESIS_HASH
    return int(row[0]) - count + 1, str(row[1])


def _chained(record: AuditRecord, detail_json: str, seq: int, prev_hash: str) -> dict[str, Any]:
    """Return the ``audit_entry`` row of ``record`` at ``seq``, linked to ``prev_hash``."""
    salt = secrets.token_hex(16) if record.subject is not None else None
    row: dict[str, Any] = {
        "seq": seq,
        "at": record.at.astimezone(UTC),
        "actor": record.actor,
        "role": record.role,
        "action": record.action,
        "purpose": record.purpose,
        "outcome": record.outcome,
        "subject_commitment": (
            subject_commitment(salt, record.subject) if salt and record.subject else None
        ),
        "subject_salt": salt,
        "subject_ref": record.subject,
        "detail_json": detail_json,
        "prev_hash": prev_hash,
    }
    row["entry_hash"] = compute_row_hash(row)
    return row


def _append_rows(
    session: Session, records: Sequence[AuditRecord], checkpoints: CheckpointPolicy | None
) -> list[dict[str, Any]]:
    """Validate, chain and insert ``records`` (and due checkpoints); return the written rows."""
    # Validate everything before taking the lock, so a bad record writes nothing.
    if any(r.at.tzinfo is None or r.at.utcoffset() is None for r in records):
        raise ValueError("audit entries need a timezone-aware 'at'")
    details = [canonical_detail(record.detail) for record in records]
    # Core statements on the session's connection: same transaction, no ORM overhead.
    connection = session.connection()
    seq, prev_hash = _reserve(connection, len(records))
    rows: list[dict[str, Any]] = []
    for offset, (record, detail_json) in enumerate(zip(records, details, strict=True)):
        row = _chained(record, detail_json, seq + offset, prev_hash)
        rows.append(row)
        prev_hash = row["entry_hash"]
    connection.execute(insert(_ENTRY), rows)
    connection.execute(update(_HEAD).where(_HEAD.c.id == HEAD_ID).values(hash=prev_hash))
    if checkpoints is not None:
        write_due_checkpoints(connection, policy=checkpoints, rows=rows)
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
    return int(rows[-1]["seq"]), str(rows[-1]["entry_hash"])


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
    (row,) = _append_rows(session, [record], None)
    return AuditEntry(**row)


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
