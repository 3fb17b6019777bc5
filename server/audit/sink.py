"""The audit sink seam: where domain code sends audit entries.

CRUD functions take an ``AuditSink``; the API passes a :class:`DatabaseAuditSink` bound to the
request's session, so the audited write and its entries commit together. Batch writes hand
all their entries over at once (:meth:`AuditSink.record_many`), which the database sink
appends with one head reservation. Tests may pass any object with matching methods.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from sqlmodel import Session

from .append import append_entries
from .checkpoint import CheckpointPolicy
from .record import AuditRecord


class AuditSink(Protocol):
    """Receives one audit entry per audited action."""

    def record(
        self,
        *,
        actor: str,
        role: str,
        action: str,
        purpose: str | None,
        subject: str | None,
        outcome: str,
        detail: Mapping[str, object],
        at: datetime,
    ) -> None:
        """Record one entry (see :class:`server.audit.record.AuditRecord` for the arguments)."""
        ...

    def record_many(self, records: Sequence[AuditRecord]) -> None:
        """Record several entries, in order, as one append."""
        ...


class DatabaseAuditSink:
    """Appends entries to the hash chain in the given session's transaction.

    Parameters
    ----------
    session : Session
        The session of the audited write; the caller commits.
    checkpoints : CheckpointPolicy or None
        Sign the checkpoints that fall due (every ``checkpoints.every`` entries) in the same
        transaction. The API always passes one (``server.api.deps.get_audit_sink``); ``None``
        signs none, and ``audit verify`` then reports the first missing checkpoint.
    """

    def __init__(self, session: Session, *, checkpoints: CheckpointPolicy | None = None) -> None:
        self._session = session
        self._checkpoints = checkpoints

    def record(
        self,
        *,
        actor: str,
        role: str,
        action: str,
        purpose: str | None,
        subject: str | None,
        outcome: str,
        detail: Mapping[str, object],
        at: datetime,
    ) -> None:
        """Append one entry to the chain (not committed)."""
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
        append_entries(session=self._session, records=[record], checkpoints=self._checkpoints)

    def record_many(self, records: Sequence[AuditRecord]) -> None:
        """Append the entries to the chain in order, with one head reservation."""
        append_entries(session=self._session, records=records, checkpoints=self._checkpoints)
