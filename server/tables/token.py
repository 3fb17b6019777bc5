"""The ``ApiToken`` family: bearer tokens, stored only as SHA-256 hashes.

Tokens are ``secrets.token_urlsafe(32)`` strings shown once to their holder; the table keeps
the hex SHA-256 so a database leak does not leak usable credentials.
"""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import String, UniqueConstraint
from sqlmodel import Field, SQLModel

from .types import UTCDateTime


class Role(StrEnum):
    """What a bearer may do."""

    EDGE = "edge"  # uploads consents, profile fields and its privacy ledger
    AGENT = "agent"  # reads profiles for a stated purpose
    ANALYST = "analyst"  # reads aggregate reports (training runs, ledgers, coverage)
    COMPLIANCE_OFFICER = "compliance_officer"  # consent, notices, requests, audit
    ADMIN = "admin"  # registers edges, manages tokens, verifies the audit log
    SUBJECT = "subject"  # a data subject acting on their own pseudonym (self-service)


class ApiTokenBase(SQLModel):
    """Fields every token shape shares (no secret material)."""

    role: Role = Field(sa_type=String(10))
    edge_id: str | None = Field(default=None, foreign_key="edge.id", max_length=36, index=True)
    channel: str | None = Field(default=None, max_length=20)


class ApiToken(ApiTokenBase, table=True):
    """An issued bearer token (table ``api_token``); ``token_hash`` is the hex SHA-256."""

    __tablename__ = "api_token"
    __table_args__ = (UniqueConstraint("token_hash", name="uq_api_token_token_hash"),)

    id: str = Field(primary_key=True, max_length=36)
    token_hash: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ApiTokenPublic(ApiTokenBase):
    """A token's metadata as shown to admins (never the hash)."""

    id: str
    created_at: datetime
    revoked_at: datetime | None
