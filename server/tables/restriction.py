"""The ``SubjectRestriction`` table: subjects kept but not used (PIPL Art. 44, GDPR Art. 18).

A row means the subject is restricted: uploads are refused (``subject_restricted``), reads
return no field, edges stop using it (feed) and training leaves it out. Lifting the
restriction deletes the row. It references the subject, so erasure removes it too.
"""

from datetime import datetime

from sqlmodel import Field, SQLModel

from .types import UTCDateTime


class SubjectRestriction(SQLModel, table=True):
    """A restricted subject (table ``subject_restriction``)."""

    __tablename__ = "subject_restriction"

    subject: str = Field(primary_key=True, foreign_key="subject.pseudonym", max_length=67)
    restricted_at: datetime = Field(sa_type=UTCDateTime)
    request_id: str | None = Field(default=None, max_length=36)
