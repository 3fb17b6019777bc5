"""The ``SubjectEvent`` table: what every edge must learn about a subject at its next sync.

Rows are appended by erasure, restriction and field suppression (rectification, deletion by
the subject) and never updated; the edge feed (``GET /api/v1/edges/me/subject-events``)
serves them with the consent events recorded elsewhere. Writers take the audit chain's lock
before inserting, so ids grow in commit order and a feed cursor never skips a row.

``subject`` references the subject, so erasure deletes the subject's earlier events (the
erasure event supersedes them); the erasure event itself names no one: it carries a salted
hash (``subject_hash``, ``hash_salt``) that only a holder of the pseudonym can match.
No public shape: the feed answers with ``consent.SubjectEventWire``.
"""

from datetime import datetime

from sqlalchemy import String
from sqlmodel import Field, SQLModel

from consent import SubjectEventKind

from .types import UTCDateTime


class SubjectEvent(SQLModel, table=True):
    """One feed event (table ``subject_event``); ``id`` is the feed's order."""

    __tablename__ = "subject_event"

    id: int | None = Field(default=None, primary_key=True)
    kind: SubjectEventKind = Field(sa_type=String(30))
    subject: str | None = Field(
        default=None, foreign_key="subject.pseudonym", max_length=67, index=True
    )
    subject_hash: str | None = Field(default=None, max_length=64)
    hash_salt: str | None = Field(default=None, max_length=32)
    field: str | None = Field(default=None, max_length=80)
    reason: str | None = Field(default=None, max_length=40)
    request_id: str | None = Field(default=None, max_length=36)
    created_at: datetime = Field(sa_type=UTCDateTime)
