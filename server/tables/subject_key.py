"""The ``SubjectKey`` table: a subject's data key, wrapped under a master key.

One row per subject that has sensitive fields. The data key itself never reaches the
database: ``wrapped_key`` is AES-256-GCM-sealed under the master key ``master_kid`` and bound
to the subject and ``key_version`` (``privacy.crypto``). Deleting the row is the
crypto-shredding step of erasure. No public shape: the row is never returned by the API.
"""

from datetime import datetime

from sqlalchemy import LargeBinary
from sqlmodel import Field, SQLModel

from .types import UTCDateTime


class SubjectKey(SQLModel, table=True):
    """A subject's wrapped data key (table ``subject_key``).

    ``rewrapped_at`` is the last master-key rotation that re-wrapped it (``None`` until then).
    """

    __tablename__ = "subject_key"

    subject: str = Field(primary_key=True, foreign_key="subject.pseudonym", max_length=67)
    key_version: int = 1
    master_kid: str = Field(max_length=32, index=True)
    wrapped_key: bytes = Field(sa_type=LargeBinary)
    created_at: datetime = Field(sa_type=UTCDateTime)
    rewrapped_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
