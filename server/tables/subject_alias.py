"""The ``SubjectAlias`` table: earlier pseudonyms of a subject, left by tenant key rotations.

When an edge re-keys (``server.crud.rekey``), every row of the old pseudonym is renamed to
the new one, except the audit log, which is never rewritten: its entries keep the old
pseudonym in ``subject_ref``. An alias row ``old_pseudonym -> subject`` keeps that history
linkable. ``subject`` references the subject (renamed again by a later rotation), so erasure
deletes the subject's aliases with its other rows. No public shape: aliases are never returned
by the API.
"""

from datetime import datetime

from sqlmodel import Field, SQLModel

from .types import UTCDateTime


class SubjectAlias(SQLModel, table=True):
    """An earlier pseudonym of a subject (table ``subject_alias``).

    ``from_kid`` and ``to_kid`` are the public ids of the tenant key generations the
    rotation mapped between; ``edge_id`` is the edge whose mapping applied it first.
    """

    __tablename__ = "subject_alias"

    old_pseudonym: str = Field(primary_key=True, max_length=67)
    subject: str = Field(foreign_key="subject.pseudonym", max_length=67, index=True)
    from_kid: str = Field(max_length=19)
    to_kid: str = Field(max_length=19, index=True)
    edge_id: str | None = Field(default=None, max_length=36)
    created_at: datetime = Field(sa_type=UTCDateTime)
