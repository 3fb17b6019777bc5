"""Identity tables: keyed tokens per pseudonym, persons, and officers' merge / detach decisions.

``IdentityToken``: one row per (pseudonym, ``it_`` token) an edge reported; tokens are HMACs
under a key the server never holds (``privacy.IdentityTokenizer``), so equal tokens show only
that two pseudonyms used the same identifier. ``PersonMember``: the person a pseudonym
belongs to, only for persons of two or more pseudonyms (a pseudonym without a row is a
person of one). ``IdentityOverride``: an officer's decision, kept for audit and undo: a
``merge`` of two pseudonyms (a must-link) or a ``detach`` of one pseudonym from every
automatic link (a split). All three reference the subject, so erasure removes them.
"""

from datetime import datetime

from sqlalchemy import Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from .types import UTCDateTime


class IdentityToken(SQLModel, table=True):
    """A keyed identity token a pseudonym was seen with (table ``identity_token``)."""

    __tablename__ = "identity_token"
    __table_args__ = (UniqueConstraint("subject", "token", name="uq_identity_token_subject"),)

    id: int | None = Field(default=None, primary_key=True)
    subject: str = Field(foreign_key="subject.pseudonym", max_length=67, index=True)
    token: str = Field(max_length=67, index=True)
    kind: str = Field(max_length=20)
    edge_id: str | None = Field(default=None, foreign_key="edge.id", max_length=36)
    first_seen_at: datetime = Field(sa_type=UTCDateTime)


class PersonMember(SQLModel, table=True):
    """The person a pseudonym belongs to (table ``person_member``; persons of 2+ only)."""

    __tablename__ = "person_member"

    subject: str = Field(foreign_key="subject.pseudonym", primary_key=True, max_length=67)
    person_id: str = Field(max_length=36, index=True)
    linked_at: datetime = Field(sa_type=UTCDateTime)


class IdentityOverride(SQLModel, table=True):
    """An officer's merge or detach decision (table ``identity_override``).

    ``action`` is ``merge`` (``subject`` and ``other`` are one person whatever their tokens
    say) or ``detach`` (``subject`` ignores every automatic link). ``undone_at`` set: the
    decision was undone and no longer applies; the row stays as evidence.
    """

    __tablename__ = "identity_override"

    id: int | None = Field(default=None, primary_key=True)
    action: str = Field(max_length=10)
    subject: str = Field(foreign_key="subject.pseudonym", max_length=67, index=True)
    other: str | None = Field(default=None, foreign_key="subject.pseudonym", max_length=67)
    officer: str = Field(max_length=120)
    reason: str = Field(max_length=500)
    created_at: datetime = Field(sa_type=UTCDateTime)
    undone_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    undone_by: str | None = Field(default=None, max_length=120)


class IdentityEncoding(SQLModel, table=True):
    """A pseudonym's latest keyed Bloom-filter encoding (table ``identity_encoding``).

    ``record_json`` is the edge's encoded record (keyed labels and filters, no raw value); the
    server compares filters and never decodes them.
    """

    __tablename__ = "identity_encoding"

    subject: str = Field(foreign_key="subject.pseudonym", primary_key=True, max_length=67)
    record_json: str = Field(sa_type=Text)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class IdentityCandidate(SQLModel, table=True):
    """A probabilistic pair of pseudonyms (table ``identity_candidate``; ``subject < other``).

    ``decision`` is what the model said (``match`` or ``review``) with its ``score``
    (P(match)); ``status`` is what applies: ``linked`` (a match, joined automatically),
    ``pending`` (waiting for an officer), ``accepted`` / ``rejected`` (an officer's review,
    which later scores never overturn).
    """

    __tablename__ = "identity_candidate"
    __table_args__ = (UniqueConstraint("subject", "other", name="uq_identity_candidate_pair"),)

    id: int | None = Field(default=None, primary_key=True)
    subject: str = Field(foreign_key="subject.pseudonym", max_length=67, index=True)
    other: str = Field(foreign_key="subject.pseudonym", max_length=67, index=True)
    score: float
    decision: str = Field(max_length=10)
    status: str = Field(max_length=10, index=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    reviewed_by: str | None = Field(default=None, max_length=120)
    reviewed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
