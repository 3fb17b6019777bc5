"""The ``ConsentRecord`` family: append-only consent events as received from edges.

Rows are never updated. ``event_hash`` (SHA-256 of the canonical event) is unique, so an
edge that re-sends an event gets it counted as a duplicate instead of stored twice.
"""

from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlmodel import Field, SQLModel

from consent import ConsentStatus, Purpose

from .types import UTCDateTime


class ConsentRecordBase(SQLModel):
    """The consent event's own fields (the shape of ``consent.ConsentEvent``)."""

    subject: str = Field(foreign_key="subject.pseudonym", max_length=67, index=True)
    purpose: Purpose = Field(sa_type=String(40))
    status: ConsentStatus = Field(sa_type=String(20))
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    notice_version: str = Field(max_length=40)
    channel: str = Field(max_length=20)
    separate: bool = False
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    evidence_hash: str | None = Field(default=None, max_length=64)


class ConsentRecord(ConsentRecordBase, table=True):
    """A received consent event (table ``consent_record``)."""

    __tablename__ = "consent_record"
    __table_args__ = (UniqueConstraint("event_hash", name="uq_consent_record_event_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    event_hash: str = Field(max_length=64)
    received_at: datetime = Field(sa_type=UTCDateTime)
    edge_id: str | None = Field(default=None, foreign_key="edge.id", max_length=36)


class ConsentRecordPublic(ConsentRecordBase):
    """A consent record as shown to officers."""

    id: int
    received_at: datetime
    edge_id: str | None
