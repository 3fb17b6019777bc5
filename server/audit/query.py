"""Reading the audit log: filtered, keyset-paginated entry listings and checkpoint listings.

Plain functions over a session, shared by the API routes (``server.api.routes.audit``) and
the officer console. Pages are cut by sequence number (keyset pagination: ``seq < cursor``
newest first, or ``seq > cursor`` oldest first), so page *k* costs the same as page 1 on a
log of millions of entries. Each filter column has an index that ends in ``seq``
(``ix_audit_entry_<column>_seq``), so a filtered page is an index range scan in ``seq``
order, not a scan of the log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, col, select

from ..tables.audit_checkpoint import AuditCheckpoint, AuditCheckpointPublic
from ..tables.audit_entry import AuditEntry, AuditEntryPublic
from .checkpoint import envelope_of, list_checkpoints

#: Largest page a listing returns.
MAX_PAGE = 1000

Order = Literal["desc", "asc"]


class EntryFilter(BaseModel):
    """Which entries a listing returns (every given condition must hold).

    Parameters
    ----------
    actor, action, purpose : str or None
        Exact values of those columns.
    subject : str or None
        A subject's pseudonym: entries that still reference it (erased subjects' entries
        keep only an unlinkable salted commitment and no longer match).
    seq_from, seq_to : int or None
        Inclusive sequence-number bounds.
    at_from, at_to : datetime or None
        Time bounds (timezone-aware): ``at_from <= at < at_to``.
    """

    model_config = ConfigDict(frozen=True)

    actor: str | None = None
    action: str | None = None
    purpose: str | None = None
    subject: str | None = None
    seq_from: int | None = Field(default=None, ge=1)
    seq_to: int | None = Field(default=None, ge=1)
    at_from: datetime | None = None
    at_to: datetime | None = None


class EntryPage(BaseModel):
    """One page of entries and the cursor of the next page.

    Parameters
    ----------
    items : list[AuditEntryPublic]
        The entries, in the requested order (no pseudonyms, no salts).
    next_cursor : int or None
        Pass as ``cursor`` to get the next page; None on the last page.
    """

    items: list[AuditEntryPublic]
    next_cursor: int | None = None


class SignedCheckpoint(BaseModel):
    """A checkpoint and the signed envelope anyone can check offline.

    Parameters
    ----------
    checkpoint : AuditCheckpointPublic
        Its fields.
    envelope : dict[str, Any]
        ``{"document", "signature", "algorithm", "key_id", "public_key"}``; check it with
        ``privacy.verify_signed`` and the server's pinned public key.
    """

    checkpoint: AuditCheckpointPublic
    envelope: dict[str, Any]


class CheckpointPage(BaseModel):
    """One page of checkpoints, newest first.

    Parameters
    ----------
    items : list[SignedCheckpoint]
        The checkpoints.
    next_before_size : int or None
        Pass as ``before_size`` to get the next page; None on the last page.
    """

    items: list[SignedCheckpoint]
    next_before_size: int | None = None


def list_entries(
    *,
    session: Session,
    filters: EntryFilter,
    cursor: int | None = None,
    limit: int = 100,
    order: Order = "desc",
) -> EntryPage:
    """Return one page of entries matching ``filters``.

    Parameters
    ----------
    session : Session
        A session on the audited database.
    filters : EntryFilter
        The conditions.
    cursor : int or None
        ``next_cursor`` of the previous page (a sequence number); None for the first page.
    limit : int
        Page size, 1 to :data:`MAX_PAGE`.
    order : {"desc", "asc"}
        Newest first (default) or oldest first.

    Returns
    -------
    EntryPage
        The entries and the next cursor.

    Raises
    ------
    ValueError
        If ``limit`` is out of range or a time bound is naive.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
    for bound in (filters.at_from, filters.at_to):
        if bound is not None and bound.utcoffset() is None:
            raise ValueError("at_from and at_to must be timezone-aware")
    seq = col(AuditEntry.seq)
    stmt = select(AuditEntry)
    equal = {
        AuditEntry.actor: filters.actor,
        AuditEntry.action: filters.action,
        AuditEntry.purpose: filters.purpose,
        AuditEntry.subject_ref: filters.subject,
    }
    for column, value in equal.items():
        if value is not None:
            stmt = stmt.where(col(column) == value)
    if filters.seq_from is not None:
        stmt = stmt.where(seq >= filters.seq_from)
    if filters.seq_to is not None:
        stmt = stmt.where(seq <= filters.seq_to)
    if filters.at_from is not None:
        stmt = stmt.where(col(AuditEntry.at) >= filters.at_from)
    if filters.at_to is not None:
        stmt = stmt.where(col(AuditEntry.at) < filters.at_to)
    if cursor is not None:
        stmt = stmt.where(seq < cursor if order == "desc" else seq > cursor)
    stmt = stmt.order_by(seq.desc() if order == "desc" else seq).limit(limit + 1)
    rows = list(session.exec(stmt))
    more = len(rows) > limit
    items = [AuditEntryPublic.model_validate(row) for row in rows[:limit]]
    return EntryPage(items=items, next_cursor=items[-1].seq if more else None)


def signed_checkpoint(checkpoint: AuditCheckpoint) -> SignedCheckpoint:
    """Return a stored checkpoint with its signed envelope.

    Parameters
    ----------
    checkpoint : AuditCheckpoint
        A stored checkpoint.

    Returns
    -------
    SignedCheckpoint
        Public fields and envelope.
    """
    return SignedCheckpoint(
        checkpoint=AuditCheckpointPublic.model_validate(checkpoint),
        envelope=envelope_of(checkpoint),
    )


def checkpoint_page(
    *, session: Session, limit: int = 100, before_size: int | None = None
) -> CheckpointPage:
    """Return one page of checkpoints, newest first, each with its signed envelope.

    Parameters
    ----------
    session : Session
        A session on the audited database.
    limit : int
        Page size, 1 to :data:`MAX_PAGE`.
    before_size : int or None
        ``next_before_size`` of the previous page; None for the newest checkpoints.

    Returns
    -------
    CheckpointPage
        The checkpoints and the next cursor.

    Raises
    ------
    ValueError
        If ``limit`` is out of range.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
    rows = list_checkpoints(session=session, limit=limit + 1, before_size=before_size)
    more = len(rows) > limit
    items = [signed_checkpoint(row) for row in rows[:limit]]
    return CheckpointPage(items=items, next_before_size=items[-1].checkpoint.size if more else None)
