"""The hash-chained audit log: the head, reading entry rows fast, and whole-log verification.

Each entry's ``entry_hash`` is ``sha256(prev_hash || canonical_json(entry))`` over the
columns in :data:`~server.audit.entry_hash.HASHED_COLUMNS` (see ``entry_hash``). The subject
is stored as a salted commitment ``sha256(salt || pseudonym)`` next to the pseudonym and salt;
erasure may null the last two without breaking the chain. Appends serialise on the single
``audit_head`` row (``server.audit.append``).

:func:`verify_chain` streams the entries in ``seq`` order through the driver's own cursor
(no ORM rows, which cost more than the hashing on a large log) into
:func:`server.audit.verify.verify_rows`, which recomputes every hash, link and commitment
and the RFC 9162 Merkle tree of the entry hashes, and at each signed checkpoint checks the
signature (against pinned keys), the head hash and the Merkle root at that size. So edits,
deletions, reorderings and insertions are found at the entry, and a suffix rewritten with
recomputed hashes (someone with write access to the database) is found at the first
checkpoint after it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Connection
from sqlmodel import Session, col
from sqlmodel import select as sm_select

from privacy import VerifyKey

from ..tables.audit_entry import GENESIS_HASH, HEAD_ID, AuditEntry, AuditHead
from .checkpoint import all_checkpoints
from .entry_hash import (
    HASHED_COLUMNS,
    canonical_detail,
    compute_entry_hash,
    compute_row_hash,
    subject_commitment,
)
from .parallel import FIRST_SEQ, PARALLEL_FROM, shareable_url, verify_in_pieces
from .verify import PROBLEM_HELP, ROW_COLUMNS, ChainProblem, VerifyReport, verify_rows

__all__ = [
    "HASHED_COLUMNS",
    "PROBLEM_HELP",
    "ROW_COLUMNS",
    "VERIFY_BATCH",
    "ChainProblem",
    "VerifyReport",
    "canonical_detail",
    "compute_entry_hash",
    "compute_row_hash",
    "count_entries",
    "iter_entry_rows",
    "placeholder",
    "read_head",
    "subject_commitment",
    "verify_chain",
]

logger = logging.getLogger(__name__)

#: Entries read per query while verifying.
VERIFY_BATCH = 20000


def read_head(*, session: Session) -> tuple[int, str]:
    """Return the head's ``(seq, hash)``; ``(0, GENESIS_HASH)`` for an empty log.

    Parameters
    ----------
    session : Session
        A session on the audited database.

    Returns
    -------
    tuple[int, str]
        Sequence number and hash of the newest entry.
    """
    row = session.exec(
        sm_select(AuditHead.seq, AuditHead.hash).where(col(AuditHead.id) == HEAD_ID)
    ).first()
    if row is None:
        return 0, GENESIS_HASH
    return int(row[0]), str(row[1])


def count_entries(*, session: Session) -> int:
    """Return the number of stored entries.

    Parameters
    ----------
    session : Session
        A session on the audited database.

    Returns
    -------
    int
        ``count(*)`` of ``audit_entry``.
    """
    return int(session.exec(sm_select(func.count()).select_from(AuditEntry)).one())


def placeholder(connection: Connection) -> str:
    """Return the driver's positional bind marker (``?`` for sqlite3, ``%s`` for psycopg).

    Parameters
    ----------
    connection : Connection
        A connection on the audited database.

    Returns
    -------
    str
        The marker to write raw driver SQL with.

    Raises
    ------
    ValueError
        If the driver uses neither marker (fedprofile supports SQLite and PostgreSQL).
    """
    style = connection.dialect.paramstyle
    if style == "qmark":
        return "?"
    if style in ("format", "pyformat"):
        return "%s"
    raise ValueError(f"unsupported driver paramstyle {style!r}")


def iter_entry_rows(
    *,
    session: Session,
    first: int = 1,
    last: int | None = None,
    batch_size: int = VERIFY_BATCH,
) -> Iterator[tuple[Any, ...]]:
    """Yield the stored entries with ``first <= seq <= last`` as :data:`ROW_COLUMNS` tuples.

    Reads through the driver's cursor in keyset batches of ``batch_size`` (ascending
    ``seq``), inside the session's transaction; ``at`` comes back as the driver returns it
    (text on SQLite), which :func:`server.audit.entry_hash.stored_time_text` understands.

    Parameters
    ----------
    session : Session
        A session on the audited database.
    first : int
        Smallest sequence number to read.
    last : int or None
        Largest sequence number to read; None reads to the end.
    batch_size : int
        Rows per query.

    Yields
    ------
    tuple
        One entry per stored row, in ``seq`` order.
    """
    return iter_connection_rows(
        connection=session.connection(), first=first, last=last, batch_size=batch_size
    )


def iter_connection_rows(
    *,
    connection: Connection,
    first: int = 1,
    last: int | None = None,
    batch_size: int = VERIFY_BATCH,
) -> Iterator[tuple[Any, ...]]:
    """Yield entries like :func:`iter_entry_rows`, on a plain connection (a verify worker's).

    Parameters
    ----------
    connection : Connection
        A connection on the audited database.
    first, last, batch_size
        As for :func:`iter_entry_rows`.

    Yields
    ------
    tuple
        One entry per stored row, in ``seq`` order.
    """
    mark = placeholder(connection)
    upper = "" if last is None else f" AND seq <= {mark}"
    sql = (
        f"SELECT {', '.join(ROW_COLUMNS)} FROM audit_entry WHERE seq >= {mark}{upper} "
        f"ORDER BY seq LIMIT {int(batch_size)}"
    )
    cursor = connection.connection.cursor()
    try:
        start = first
        while True:
            cursor.execute(sql, (start,) if last is None else (start, last))
            rows = cursor.fetchall()
            if not rows:
                return
            yield from rows
            start = int(rows[-1][0]) + 1
            if len(rows) < batch_size:
                return
    finally:
        cursor.close()


def verify_chain(
    *,
    session: Session,
    batch_size: int = VERIFY_BATCH,
    progress: Callable[[int], None] | None = None,
    trusted_keys: Sequence[VerifyKey] | None = None,
    checkpoint_every: int | None = None,
    workers: int = 1,
    parallel_from: int = PARALLEL_FROM,
) -> VerifyReport:
    """Recompute the whole log and compare it with the stored hashes, head and checkpoints.

    Parameters
    ----------
    session : Session
        A session on the audited database.
    batch_size : int
        Entries read per query (and between ``progress`` calls in a single pass).
    progress : Callable[[int], None] or None
        Called as the pass advances (every ``batch_size`` entries, or per piece when
        parallel) and at the end with the number checked so far.
    trusted_keys : Sequence[VerifyKey] or None
        Public keys checkpoints must be signed with (the server's key, or one pinned on the
        command line). ``None`` checks each checkpoint against its own public key only.
    checkpoint_every : int or None
        The checkpoint interval in force; when given, a checkpoint missing at any multiple
        of it is reported (``checkpoint_missing``).
    workers : int
        Processes to verify with. Above 1, a log of at least ``parallel_from`` entries in a
        database other processes can open is cut at its checkpoints and verified on that
        many cores (:mod:`server.audit.parallel`; same report as one pass). Workers read
        committed data through their own connections.
    parallel_from : int
        Smallest log verified in parallel.

    Returns
    -------
    VerifyReport
        ``ok=True``, or the first bad sequence number, the failed check and the last
        checkpoint that verified.
    """
    # Checkpoints before the head, the head before the entries: whatever a concurrent
    # append commits meanwhile lies beyond what is checked, and a checkpoint beyond the
    # head read after it can only mean a truncated log.
    checkpoints = list(all_checkpoints(session=session))
    head = read_head(session=session)
    report: VerifyReport | None = None
    url = None
    if workers > 1 and head[0] >= parallel_from:
        bound = session.get_bind().engine.url  # an Engine, or a Connection's engine
        url = shareable_url(bound.render_as_string(hide_password=False))
    if url is not None:
        report = verify_in_pieces(
            url=url, checkpoints=checkpoints, head=head, workers=workers,
            rows_from=lambda first, last: iter_entry_rows(
                session=session, first=first, last=last, batch_size=batch_size
            ),
            trusted_keys=trusted_keys, checkpoint_every=checkpoint_every, progress=progress,
        )  # fmt: skip
    if report is None:
        report = verify_rows(
            rows=iter_entry_rows(
                session=session, first=FIRST_SEQ, last=head[0], batch_size=batch_size
            ),
            checkpoints=checkpoints,
            head=head,
            trusted_keys=trusted_keys,
            checkpoint_every=checkpoint_every,
            progress=progress,
            progress_every=batch_size,
        )
    if report.ok and _rows_beyond(session, head[0]) and read_head(session=session) == head:
        # Entries past a head that did not move were written around the appender.
        logger.warning("audit log has entries beyond its head %d", head[0])
        return report.model_copy(
            update={"ok": False, "first_bad_seq": head[0] + 1,
                    "reason": ChainProblem.HEAD_MISMATCH, "root_hash": None}
        )  # fmt: skip
    return report


def _rows_beyond(session: Session, seq: int) -> bool:
    """Whether any entry has a sequence number above ``seq``."""
    stmt = sm_select(AuditEntry.seq).where(col(AuditEntry.seq) > seq).limit(1)
    return session.exec(stmt).first() is not None
