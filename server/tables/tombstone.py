"""Erasure tombstones: salted hashes of erased pseudonyms, so stale edges cannot re-create them.

``SubjectTombstone.subject_hash`` is ``sha256(salt || pseudonym)`` under the deployment's
``ErasureSalt`` (one random row, created with the first erasure). Uploads compute the hash of
their subjects and refuse tombstoned ones (``subject_erased``) without the server keeping
any erased pseudonym. The same salt and hash go to the edges in the erasure event.
"""

from datetime import datetime

from sqlmodel import Field, SQLModel

from .types import UTCDateTime

#: Primary key of the single ``erasure_salt`` row.
SALT_ID = 1


class SubjectTombstone(SQLModel, table=True):
    """An erased subject, known only by its salted hash (table ``subject_tombstone``)."""

    __tablename__ = "subject_tombstone"

    subject_hash: str = Field(primary_key=True, max_length=64)
    erased_at: datetime = Field(sa_type=UTCDateTime)
    receipt_id: str = Field(max_length=32)


class ErasureSalt(SQLModel, table=True):
    """The deployment's tombstone salt (table ``erasure_salt``; one row)."""

    __tablename__ = "erasure_salt"

    id: int = Field(default=SALT_ID, primary_key=True, sa_column_kwargs={"autoincrement": False})
    salt: str = Field(max_length=32)
    created_at: datetime = Field(sa_type=UTCDateTime)
