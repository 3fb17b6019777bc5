"""Probabilistic linkage on the server: pseudonyms' keyed encodings and scored pairs.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _subject_fk(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], ["subject.pseudonym"], name=f"fk_{table}_{column}_subject"
    )


def upgrade() -> None:
    """Create ``identity_encoding`` and ``identity_candidate``."""
    op.create_table(
        "identity_encoding",
        sa.Column("subject", sa.String(length=67), nullable=False),
        sa.Column("record_json", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _subject_fk("identity_encoding", "subject"),
        sa.PrimaryKeyConstraint("subject", name="pk_identity_encoding"),
    )
    op.create_table(
        "identity_candidate",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=67), nullable=False),
        sa.Column("other", sa.String(length=67), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("decision", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewed_by", sa.String(length=120), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        _subject_fk("identity_candidate", "subject"),
        _subject_fk("identity_candidate", "other"),
        sa.PrimaryKeyConstraint("id", name="pk_identity_candidate"),
        sa.UniqueConstraint("subject", "other", name="uq_identity_candidate_pair"),
    )
    for column in ("subject", "other", "status"):
        op.create_index(
            f"ix_identity_candidate_{column}", "identity_candidate", [column], unique=False
        )


def downgrade() -> None:
    """Drop the linkage tables."""
    for column in ("status", "other", "subject"):
        op.drop_index(f"ix_identity_candidate_{column}", table_name="identity_candidate")
    op.drop_table("identity_candidate")
    op.drop_table("identity_encoding")
