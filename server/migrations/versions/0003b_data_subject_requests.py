"""Data-subject requests, restriction, suppressed fields, the edge feed and erasure tombstones.

Adds ``data_subject_request`` (the DSR workflow), ``subject_restriction`` (restricted
subjects), ``field_suppression`` (fields edges must not upload again), ``subject_event`` (the
edge feed), ``subject_tombstone`` and ``erasure_salt`` (salted hashes of erased pseudonyms).
Checked against ``SQLModel.metadata`` by ``tests/server/test_migrations.py``.

Revision ID: 0003b
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003b"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _subject_fk(table: str) -> sa.ForeignKeyConstraint:
    """The foreign key of ``table.subject`` to ``subject.pseudonym`` (named as 0001 does)."""
    return sa.ForeignKeyConstraint(
        ["subject"], ["subject.pseudonym"], name=f"fk_{table}_subject_subject"
    )


def upgrade() -> None:
    """Create the six tables and their indexes."""
    tz = sa.DateTime(timezone=True)
    op.create_table(
        "data_subject_request",
        sa.Column("request_type", sa.String(length=20), nullable=False),
        sa.Column("subject", sa.String(length=67), nullable=True),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("received_at", tz, nullable=False),
        sa.Column("due_at", tz, nullable=False),
        sa.Column("updated_at", tz, nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_role", sa.String(length=20), nullable=False),
        sa.Column("approvals_json", sa.Text(), nullable=False),
        sa.Column("rejection_reason", sa.String(length=500), nullable=True),
        sa.Column("started_at", tz, nullable=True),
        sa.Column("completed_at", tz, nullable=True),
        sa.Column("rectification_json", sa.Text(), nullable=True),
        sa.Column("result_json", sa.Text(), nullable=False),
        sa.Column("subject_commitment", sa.String(length=64), nullable=True),
        sa.Column("commitment_salt", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_data_subject_request"),
    )
    for column in ("subject", "state", "due_at"):
        op.create_index(
            f"ix_data_subject_request_{column}", "data_subject_request", [column], unique=False
        )
    op.create_table(
        "subject_restriction",
        sa.Column("subject", sa.String(length=67), nullable=False),
        sa.Column("restricted_at", tz, nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=True),
        _subject_fk("subject_restriction"),
        sa.PrimaryKeyConstraint("subject", name="pk_subject_restriction"),
    )
    op.create_table(
        "field_suppression",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=67), nullable=False),
        sa.Column("field", sa.String(length=80), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("suppressed_at", tz, nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=True),
        _subject_fk("field_suppression"),
        sa.PrimaryKeyConstraint("id", name="pk_field_suppression"),
        sa.UniqueConstraint("subject", "field", name="uq_field_suppression_subject_field"),
    )
    op.create_index(
        "ix_field_suppression_subject", "field_suppression", ["subject"], unique=False
    )
    op.create_table(
        "subject_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("subject", sa.String(length=67), nullable=True),
        sa.Column("subject_hash", sa.String(length=64), nullable=True),
        sa.Column("hash_salt", sa.String(length=32), nullable=True),
        sa.Column("field", sa.String(length=80), nullable=True),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("request_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", tz, nullable=False),
        _subject_fk("subject_event"),
        sa.PrimaryKeyConstraint("id", name="pk_subject_event"),
    )
    op.create_index("ix_subject_event_subject", "subject_event", ["subject"], unique=False)
    op.create_table(
        "subject_tombstone",
        sa.Column("subject_hash", sa.String(length=64), nullable=False),
        sa.Column("erased_at", tz, nullable=False),
        sa.Column("receipt_id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("subject_hash", name="pk_subject_tombstone"),
    )
    op.create_table(
        "erasure_salt",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("salt", sa.String(length=32), nullable=False),
        sa.Column("created_at", tz, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_erasure_salt"),
    )


def downgrade() -> None:
    """Drop the six tables (the requests, restrictions and tombstones are lost)."""
    op.drop_table("erasure_salt")
    op.drop_table("subject_tombstone")
    op.drop_index("ix_subject_event_subject", table_name="subject_event")
    op.drop_table("subject_event")
    op.drop_index("ix_field_suppression_subject", table_name="field_suppression")
    op.drop_table("field_suppression")
    op.drop_table("subject_restriction")
    for column in ("due_at", "state", "subject"):
        op.drop_index(f"ix_data_subject_request_{column}", table_name="data_subject_request")
    op.drop_table("data_subject_request")
