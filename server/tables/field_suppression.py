"""The ``FieldSuppression`` table: fields of a subject that edges must not upload again.

Written when a rectification replaces or deletes a field (the corrected value must not be
overwritten by the edge's old one) and when the subject deletes one of their own tags. An
upload carrying a suppressed field is refused (``field_suppressed``); edges learn of it from
the feed and stop sending it. It references the subject, so erasure removes it too.
"""

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from .types import UTCDateTime


class FieldSuppression(SQLModel, table=True):
    """One suppressed (subject, field) (table ``field_suppression``).

    ``reason`` is a code: ``rectified`` (the server holds the corrected value),
    ``rectified_deleted`` (deleted on request) or ``deleted_by_subject`` (self-service).
    """

    __tablename__ = "field_suppression"
    __table_args__ = (
        UniqueConstraint("subject", "field", name="uq_field_suppression_subject_field"),
    )

    id: int | None = Field(default=None, primary_key=True)
    subject: str = Field(foreign_key="subject.pseudonym", max_length=67, index=True)
    field: str = Field(max_length=80)
    reason: str = Field(max_length=40)
    suppressed_at: datetime = Field(sa_type=UTCDateTime)
    request_id: str | None = Field(default=None, max_length=36)
