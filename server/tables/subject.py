"""The ``Subject`` family: a pseudonymous data subject known to the server."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from models import PSEUDONYM_REGEX

from .types import UTCDateTime


class SubjectBase(SQLModel):
    """Fields every subject shape shares."""

    pseudonym: str = Field(primary_key=True, max_length=67, regex=PSEUDONYM_REGEX)


class Subject(SubjectBase, table=True):
    """A subject seen in a consent event or an upload (table ``subject``)."""

    __tablename__ = "subject"

    first_seen_at: datetime = Field(sa_type=UTCDateTime)
    last_seen_at: datetime = Field(sa_type=UTCDateTime)


class SubjectPublic(SubjectBase):
    """A subject as shown to admins."""

    first_seen_at: datetime
    last_seen_at: datetime
