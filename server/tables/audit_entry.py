"""The ``AuditEntry`` family and the ``AuditHead`` row of the hash-chained audit log.

``entry_hash`` covers every column except ``subject_ref`` and ``subject_salt``, so erasure can
null those two and keep the chain verifiable: the ``subject_commitment`` (SHA-256 of salt and
pseudonym) remains and no longer links to anyone. ``AuditHead`` is a single row holding the
last sequence number and hash; appenders update it first to serialise writers.
"""

from datetime import datetime

from sqlalchemy import Index, Text
from sqlmodel import Field, SQLModel

from .types import UTCDateTime

#: ``prev_hash`` of entry 1 and ``hash`` of the head of an empty log.
GENESIS_HASH = "0" * 64
#: Primary key of the single ``audit_head`` row.
HEAD_ID = 1


class AuditEntryBase(SQLModel):
    """The hashed, PII-free fields of an audit entry."""

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: datetime = Field(sa_type=UTCDateTime)
    actor: str = Field(max_length=64)
    role: str = Field(max_length=20)
    action: str = Field(max_length=40)
    purpose: str | None = Field(default=None, max_length=40)
    outcome: str = Field(max_length=40)
    subject_commitment: str | None = Field(default=None, max_length=64)
    detail_json: str = Field(default="{}", sa_type=Text)
    prev_hash: str = Field(max_length=64)
    entry_hash: str = Field(max_length=64)


class AuditEntry(AuditEntryBase, table=True):
    """One audit log entry (table ``audit_entry``)."""

    __tablename__ = "audit_entry"
    # No unique index on ``entry_hash``: the chain (checked by verify) already makes every
    # hash depend on its position, and a B-tree keyed by random hashes cost a third of the
    # append rate. Nothing looks entries up by hash.
    __table_args__ = (
        # Filtered listings walk these in seq order (server.audit.query).
        Index("ix_audit_entry_actor_seq", "actor", "seq"),
        Index("ix_audit_entry_action_seq", "action", "seq"),
        Index("ix_audit_entry_purpose_seq", "purpose", "seq"),
        Index("ix_audit_entry_at", "at"),
    )

    subject_salt: str | None = Field(default=None, max_length=32)
    subject_ref: str | None = Field(default=None, max_length=67, index=True)


class AuditEntryPublic(AuditEntryBase):
    """An audit entry as shown to officers (no salt, no pseudonym)."""


class AuditHead(SQLModel, table=True):
    """The single row holding the chain head (table ``audit_head``)."""

    __tablename__ = "audit_head"

    id: int = Field(default=HEAD_ID, primary_key=True, sa_column_kwargs={"autoincrement": False})
    seq: int = 0
    hash: str = Field(default=GENESIS_HASH, max_length=64)
