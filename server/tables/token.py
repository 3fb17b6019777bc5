"""The ``ApiToken`` family: bearer tokens, stored only as SHA-256 hashes.

Tokens are ``secrets.token_urlsafe(32)`` strings shown once to their holder; the table keeps
the hex SHA-256 so a database leak does not leak usable credentials. A token carries one
role and what binds it: an edge (and its channel) for ``edge``, a holder name for staff
(agents, analysts, compliance officers, admins; the audit log names them ``<role>:<name>``)
and a pseudonym for ``subject`` (self-service acts only on that subject).
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


#: Roles whose tokens name a holder (a person or team), so the audit log can tell them apart.
NAMED_ROLES: frozenset[Role] = frozenset(
    {Role.AGENT, Role.ANALYST, Role.COMPLIANCE_OFFICER, Role.ADMIN}
)


class ApiTokenBase(SQLModel):
    """Fields every token shape shares (no secret material)."""

    role: Role = Field(sa_type=String(20))
    edge_id: str | None = Field(default=None, foreign_key="edge.id", max_length=36, index=True)
    channel: str | None = Field(default=None, max_length=20)
    holder_name: str | None = Field(default=None, max_length=64)
    subject: str | None = Field(default=None, max_length=67, index=True)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


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
