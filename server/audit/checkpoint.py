"""Signed checkpoints of the audit log: the policy, the signed document, writing and reading.

A checkpoint is the document ``{type, origin, size, head_hash, root_hash, time}`` signed with
the server's Ed25519 key (:class:`privacy.SigningKey`, canonical JSON): the log had ``size``
entries, the last one hashing to ``head_hash``, and the RFC 9162 Merkle tree over their entry
hashes has root ``root_hash``. The ``type`` member keeps checkpoint signatures apart from the
receipts the same key signs.

Appends write the checkpoints that fall due in the appending transaction
(:func:`write_due_checkpoints`, called by ``server.audit.append``): one each time the log's
size reaches a multiple of :attr:`CheckpointPolicy.every`. Each stored checkpoint keeps the
Merkle frontier of its size, so the next one hashes only the entries added since.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection
from sqlmodel import Session, col
from sqlmodel import select as sm_select

from privacy import DecryptionError, SigningKey, VerifyKey

from ..config import ServerSettings, SigningKeySource
from ..tables.audit_checkpoint import AuditCheckpoint
from ..tables.audit_entry import AuditEntry
from .entry_hash import format_time
from .merkle import MerkleFrontier, leaf_hash

logger = logging.getLogger(__name__)

#: ``type`` member of every checkpoint document (domain separation from receipts).
CHECKPOINT_TYPE = "fedprofile.audit.checkpoint/v1"
#: Default ``origin``: names the log a checkpoint speaks about.
DEFAULT_ORIGIN = "fedprofile/audit"
#: Signature algorithm of the envelopes (``privacy.SigningKey``).
SIGNATURE_ALGORITHM = "Ed25519"

_CHECKPOINT = AuditCheckpoint.metadata.tables[AuditCheckpoint.__tablename__]
_ENTRY = AuditEntry.metadata.tables[AuditEntry.__tablename__]


def _utcnow() -> datetime:
    """Return the current UTC time."""
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
class CheckpointPolicy:
    """When and how the audit log signs checkpoints.

    Parameters
    ----------
    key : SigningKey
        The server's evidence-signing key.
    every : int
        Sign a checkpoint each time the log's size reaches a multiple of this many entries.
    origin : str
        Name of the log written into every checkpoint (at most 64 characters).
    clock : Callable[[], datetime]
        Source of the checkpoints' ``time`` (timezone-aware).

    Raises
    ------
    ValueError
        If ``every`` is below 1 or ``origin`` is empty or longer than 64 characters.
    """

    key: SigningKey
    every: int = 1000
    origin: str = DEFAULT_ORIGIN
    clock: Callable[[], datetime] = field(default=_utcnow)

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError("every must be at least 1")
        if not 0 < len(self.origin) <= 64:
            raise ValueError("origin must have 1 to 64 characters")

    def due_sizes(self, first: int, last: int) -> range:
        """Return the sizes in ``[first, last]`` at which a checkpoint falls due."""
        start = -(-first // self.every) * self.every
        return range(max(start, self.every), last + 1, self.every)


def policy_from_settings(
    settings: ServerSettings, *, clock: Callable[[], datetime] | None = None
) -> CheckpointPolicy:
    """Return the checkpoint policy a process configured by ``settings`` must append with.

    Every writer of audit entries outside the API (command-line jobs such as retention or
    token issuing) should pass this to ``DatabaseAuditSink(session, checkpoints=...)``, so
    the checkpoints that fall due in its appends are signed like the API's.

    Parameters
    ----------
    settings : ServerSettings
        The process's settings (signing key path and ``audit_checkpoint_every``).
    clock : Callable[[], datetime] or None
        Source of the checkpoints' time; None uses the system clock.

    Returns
    -------
    CheckpointPolicy
        The server's signing key and interval.

    Raises
    ------
    SettingsError
        If the signing key cannot be opened (see ``server.config.SigningKeySource``).
    """
    return CheckpointPolicy(
        key=SigningKeySource(settings).key,
        every=settings.audit_checkpoint_every,
        clock=clock or _utcnow,
    )


def checkpoint_document(
    *, origin: str, size: int, head_hash: str, root_hash: str, at: datetime
) -> dict[str, Any]:
    """Return the document a checkpoint signs.

    Parameters
    ----------
    origin : str
        Name of the log.
    size : int
        Number of entries covered (the sequence number of the last one).
    head_hash : str
        ``entry_hash`` of entry ``size`` (64 zeros for an empty log).
    root_hash : str
        Hex RFC 9162 Merkle root over the entry hashes of entries ``1..size``.
    at : datetime
        When it was signed (timezone-aware).

    Returns
    -------
    dict[str, Any]
        ``{"type", "origin", "size", "head_hash", "root_hash", "time"}``.
    """
    return {
        "type": CHECKPOINT_TYPE,
        "origin": origin,
        "size": size,
        "head_hash": head_hash,
        "root_hash": root_hash,
        "time": format_time(at),
    }


def document_of(checkpoint: AuditCheckpoint) -> dict[str, Any]:
    """Return the signed document of a stored checkpoint.

    Parameters
    ----------
    checkpoint : AuditCheckpoint
        A stored checkpoint.

    Returns
    -------
    dict[str, Any]
        What its signature covers.
    """
    return checkpoint_document(
        origin=checkpoint.origin,
        size=checkpoint.size,
        head_hash=checkpoint.head_hash,
        root_hash=checkpoint.root_hash,
        at=checkpoint.at,
    )


def envelope_of(checkpoint: AuditCheckpoint) -> dict[str, Any]:
    """Return a stored checkpoint as a ``SigningKey.signed`` envelope (for export and display).

    Parameters
    ----------
    checkpoint : AuditCheckpoint
        A stored checkpoint.

    Returns
    -------
    dict[str, Any]
        ``{"document", "signature", "algorithm", "key_id", "public_key"}``; check it with
        ``privacy.verify_signed`` and a pinned public key.
    """
    return {
        "document": document_of(checkpoint),
        "signature": checkpoint.signature,
        "algorithm": SIGNATURE_ALGORITHM,
        "key_id": checkpoint.key_id,
        "public_key": checkpoint.public_key,
    }


def signature_ok(checkpoint: AuditCheckpoint, trusted: Mapping[str, VerifyKey] | None) -> bool:
    """Whether a stored checkpoint's signature verifies.

    Parameters
    ----------
    checkpoint : AuditCheckpoint
        A stored checkpoint.
    trusted : Mapping[str, VerifyKey] or None
        Pinned keys by key id; the checkpoint must be signed by one of them. ``None`` checks
        against the checkpoint's own public key (integrity only, not authenticity).

    Returns
    -------
    bool
        True when the signature verifies under an acceptable key.
    """
    try:
        if trusted is None:
            key = VerifyKey.from_text(checkpoint.public_key)
            if key.key_id != checkpoint.key_id:
                return False
        else:
            found = trusted.get(checkpoint.key_id)
            if found is None:
                return False
            key = found
        key.verify(document_of(checkpoint), checkpoint.signature)
    except (DecryptionError, ValueError):
        return False
    return True


def _signed_row(
    policy: CheckpointPolicy, *, size: int, head_hash: str, frontier: MerkleFrontier
) -> dict[str, Any]:
    """Return the ``audit_checkpoint`` row of a new checkpoint at ``size``."""
    at = policy.clock()
    root = frontier.root().hex()
    document = checkpoint_document(
        origin=policy.origin, size=size, head_hash=head_hash, root_hash=root, at=at
    )
    verify_key = policy.key.verify_key
    return {
        "size": size,
        "at": at,
        "origin": policy.origin,
        "head_hash": head_hash,
        "root_hash": root,
        "key_id": verify_key.key_id,
        "public_key": verify_key.to_text(),
        "signature": policy.key.sign(document),
        "frontier_json": json.dumps(frontier.to_hex(), separators=(",", ":")),
    }


def frontier_at(connection: Connection, size: int) -> MerkleFrontier:
    """Return the Merkle frontier of the first ``size`` entries, from the nearest checkpoint.

    Parameters
    ----------
    connection : Connection
        A connection on the audited database.
    size : int
        Number of leading entries to cover.

    Returns
    -------
    MerkleFrontier
        Built from the newest stored frontier at or below ``size`` plus the entry hashes
        after it (the whole log if no checkpoint exists yet).
    """
    row = connection.execute(
        select(_CHECKPOINT.c.size, _CHECKPOINT.c.frontier_json)
        .where(_CHECKPOINT.c.size <= size)
        .order_by(_CHECKPOINT.c.size.desc())
        .limit(1)
    ).first()
    frontier = (
        MerkleFrontier() if row is None else MerkleFrontier.from_hex(row[0], json.loads(row[1]))
    )
    hashes = connection.execute(
        select(_ENTRY.c.entry_hash)
        .where(_ENTRY.c.seq > frontier.size, _ENTRY.c.seq <= size)
        .order_by(_ENTRY.c.seq)
    ).scalars()
    frontier.extend(leaf_hash(bytes.fromhex(h)) for h in hashes)
    return frontier


def write_due_checkpoints(
    connection: Connection, *, policy: CheckpointPolicy, hashes: Sequence[tuple[int, str]]
) -> list[dict[str, Any]]:
    """Sign and insert the checkpoints that fall due among freshly appended entries.

    Call it in the appending transaction, after the entries were inserted and under the
    chain's write lock. Costs nothing when no checkpoint is due; otherwise one query for the
    nearest stored frontier, one for the entry hashes since, and one insert.

    Parameters
    ----------
    connection : Connection
        The appending transaction's connection.
    policy : CheckpointPolicy
        Key, interval, origin and clock.
    hashes : Sequence[tuple[int, str]]
        ``(seq, entry_hash)`` of the appended entries, consecutive and in order.

    Returns
    -------
    list[dict[str, Any]]
        The inserted checkpoint rows (empty when none was due).
    """
    if not hashes:
        return []
    first = int(hashes[0][0])
    due = policy.due_sizes(first, int(hashes[-1][0]))
    if not due:
        return []
    frontier = frontier_at(connection, first - 1)
    written: list[dict[str, Any]] = []
    for _seq, entry_hash in hashes:
        frontier.append(leaf_hash(bytes.fromhex(entry_hash)))
        if frontier.size in due:
            written.append(
                _signed_row(policy, size=frontier.size, head_hash=entry_hash, frontier=frontier)
            )
            if frontier.size == due[-1]:
                break
    connection.execute(insert(_CHECKPOINT), written)
    logger.info("audit checkpoint(s) signed at size %s", ", ".join(str(r["size"]) for r in written))
    return written


def write_checkpoint(
    connection: Connection, *, policy: CheckpointPolicy, size: int, head_hash: str
) -> AuditCheckpoint:
    """Sign and insert a checkpoint at ``size`` (the current head; caller holds the lock).

    Parameters
    ----------
    connection : Connection
        The transaction's connection.
    policy : CheckpointPolicy
        Key, origin and clock.
    size : int
        The head's sequence number.
    head_hash : str
        The head's hash.

    Returns
    -------
    AuditCheckpoint
        The inserted checkpoint (a detached object).
    """
    row = _signed_row(
        policy, size=size, head_hash=head_hash, frontier=frontier_at(connection, size)
    )
    new_id = connection.execute(insert(_CHECKPOINT).returning(_CHECKPOINT.c.id), [row]).scalar_one()
    logger.info("audit checkpoint signed on demand at size %d", size)
    return AuditCheckpoint(id=int(new_id), **row)


def latest_checkpoint(*, session: Session) -> AuditCheckpoint | None:
    """Return the newest checkpoint, or None when none was signed yet.

    Parameters
    ----------
    session : Session
        A session on the audited database.

    Returns
    -------
    AuditCheckpoint or None
        The checkpoint with the largest size.
    """
    stmt = sm_select(AuditCheckpoint).order_by(col(AuditCheckpoint.size).desc()).limit(1)
    return session.exec(stmt).first()


def covering_checkpoint(*, session: Session, seq: int) -> AuditCheckpoint | None:
    """Return the smallest checkpoint whose size is at least ``seq``, or None.

    Parameters
    ----------
    session : Session
        A session on the audited database.
    seq : int
        The sequence number to cover.

    Returns
    -------
    AuditCheckpoint or None
        The earliest checkpoint that covers entry ``seq``.
    """
    stmt = (
        sm_select(AuditCheckpoint)
        .where(col(AuditCheckpoint.size) >= seq)
        .order_by(col(AuditCheckpoint.size))
        .limit(1)
    )
    return session.exec(stmt).first()


def list_checkpoints(
    *, session: Session, limit: int, before_size: int | None = None
) -> list[AuditCheckpoint]:
    """Return up to ``limit`` checkpoints, newest first.

    Parameters
    ----------
    session : Session
        A session on the audited database.
    limit : int
        Maximum number returned.
    before_size : int or None
        Only checkpoints smaller than this size (the next page of a listing).

    Returns
    -------
    list[AuditCheckpoint]
        Newest first.
    """
    stmt = sm_select(AuditCheckpoint).order_by(col(AuditCheckpoint.size).desc()).limit(limit)
    if before_size is not None:
        stmt = stmt.where(col(AuditCheckpoint.size) < before_size)
    return list(session.exec(stmt))


def all_checkpoints(*, session: Session) -> Iterable[AuditCheckpoint]:
    """Return every checkpoint in insertion (``id``) order, detached from the session.

    Parameters
    ----------
    session : Session
        A session on the audited database.

    Returns
    -------
    Iterable[AuditCheckpoint]
        All checkpoints, oldest first.
    """
    rows = list(session.exec(sm_select(AuditCheckpoint).order_by(col(AuditCheckpoint.id))))
    for row in rows:
        session.expunge(row)
    return rows
