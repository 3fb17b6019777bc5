"""The ``ProfileField`` table: one edge's contribution to one catalogued field of a subject.

Each edge keeps its own row per (subject, field); reads merge the rows by the catalogue's
``merge`` rule (``server.profiles``). A row with no ``source_edge_id`` was set by an officer
(rectification) and stands alone.

Written by ``server.crud.upload_state`` (per batch), read through ``server.profiles``;
readers receive ``models.ProfileFieldOut`` (the wire record), so this module defines no
separate public shape.

Sensitive fields (catalogue ``sensitivity: sensitive``) are stored sealed: ``value_json`` is
NULL, ``value_ciphertext`` holds the value and explanation encrypted under the subject's data
key (``server.tables.subject_key``), bound to (subject, name, ``key_version``). Normal fields
keep ``value_json`` in plain text and NULL ciphertext columns. A check constraint keeps
exactly one of the two forms.
"""

from datetime import datetime

from sqlalchemy import CheckConstraint, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from .types import UTCDateTime


class ProfileField(SQLModel, table=True):
    """A stored contribution (table ``profile_field``; unique per subject, name and edge).

    ``value_json`` and ``explanation_json`` hold JSON text; ``uploaded_purpose`` is the purpose
    declared by the upload that wrote the current value. A sealed (sensitive) field has
    ``value_json`` NULL, ``explanation_json`` ``"[]"``, and its value and explanation in
    ``value_ciphertext`` under data key version ``key_version``.
    """

    __tablename__ = "profile_field"
    __table_args__ = (
        UniqueConstraint(
            "subject", "name", "source_edge_id", name="uq_profile_field_subject_name_edge"
        ),
        CheckConstraint(
            "(value_json IS NULL) <> (value_ciphertext IS NULL)",
            name="ck_profile_field_plain_or_sealed",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    subject: str = Field(foreign_key="subject.pseudonym", max_length=67, index=True)
    name: str = Field(max_length=80)
    value_json: str | None = Field(default=None, sa_type=Text)
    confidence: float | None = None
    explanation_json: str = Field(default="[]", sa_type=Text)
    provisional: bool = False
    computed_at: datetime = Field(sa_type=UTCDateTime)
    source_edge_id: str | None = Field(default=None, foreign_key="edge.id", max_length=36)
    source_channel: str | None = Field(default=None, max_length=20)
    uploaded_purpose: str = Field(max_length=40)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    value_ciphertext: bytes | None = Field(default=None, sa_type=LargeBinary)
    key_version: int | None = None
