"""The ``PrivacyNotice`` table: published notice versions (append-only).

A row is written when a compliance officer publishes a notice version and is never edited.
A *material* version pauses every older grant of the purposes it covers until the subject
renews it (``consent.NoticeRegistry``); the server folds this table into every consent check.
The notice text itself stays with the channels; the row keeps its SHA-256 and URL.
"""

from datetime import datetime

from sqlmodel import Field, SQLModel

from .types import UTCDateTime


class PrivacyNotice(SQLModel, table=True):
    """One published notice version (table ``privacy_notice``).

    ``purposes`` is a comma-separated, sorted list of purpose names.
    """

    __tablename__ = "privacy_notice"

    version: str = Field(primary_key=True, max_length=40)
    purposes: str = Field(max_length=400)
    material: bool
    content_hash: str = Field(max_length=64)
    url: str = Field(max_length=500)
    language: str = Field(max_length=20)
    published_at: datetime = Field(sa_type=UTCDateTime, index=True)
    published_by: str = Field(max_length=90)
