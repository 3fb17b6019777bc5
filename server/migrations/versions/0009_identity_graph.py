"""Identity graph: keyed tokens per pseudonym, persons, officers' merge / detach decisions.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _subject_fk(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], ["subject.pseudonym"], name=f"fk_{table}_{column}_subject"
    )


def upgrade() -> None:
    """Create ``identity_token``, ``person_member`` and ``identity_override``."""
    op.create_table(
        "identity_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=67), nullable=False),
        sa.Column("token", sa.String(length=67), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("edge_id", sa.String(length=36), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        _subject_fk("identity_token", "subject"),
        sa.ForeignKeyConstraint(["edge_id"], ["edge.id"], name="fk_identity_token_edge_id_edge"),
        sa.PrimaryKeyConstraint("id", name="pk_identity_token"),
        sa.UniqueConstraint("subject", "token", name="uq_identity_token_subject"),
    )
    op.create_index("ix_identity_token_subject", "identity_token", ["subject"], unique=False)
    op.create_index("ix_identity_token_token", "identity_token", ["token"], unique=False)
    op.create_table(
        "person_member",
        sa.Column("subject", sa.String(length=67), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        _subject_fk("person_member", "subject"),
        sa.PrimaryKeyConstraint("subject", name="pk_person_member"),
    )
    op.create_index("ix_person_member_person_id", "person_member", ["person_id"], unique=False)
    op.create_table(
        "identity_override",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("subject", sa.String(length=67), nullable=False),
        sa.Column("other", sa.String(length=67), nullable=True),
        sa.Column("officer", sa.String(length=120), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("undone_by", sa.String(length=120), nullable=True),
        _subject_fk("identity_override", "subject"),
        _subject_fk("identity_override", "other"),
        sa.PrimaryKeyConstraint("id", name="pk_identity_override"),
    )
    op.create_index(
        "ix_identity_override_subject", "identity_override", ["subject"], unique=False
    )


def downgrade() -> None:
    """Drop the identity tables."""
    op.drop_index("ix_identity_override_subject", table_name="identity_override")
    op.drop_table("identity_override")
    op.drop_index("ix_person_member_person_id", table_name="person_member")
    op.drop_table("person_member")
    op.drop_index("ix_identity_token_token", table_name="identity_token")
    op.drop_index("ix_identity_token_subject", table_name="identity_token")
    op.drop_table("identity_token")
