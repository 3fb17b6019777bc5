"""Subject aliases left by tenant key rotations (re-keying of pseudonyms).

Adds ``subject_alias``: one row per earlier pseudonym of a subject, so audit entries that
still name the old pseudonym stay linkable. Checked against ``SQLModel.metadata`` by
``tests/server/test_migrations.py``.

Revision ID: 0005r
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005r"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``subject_alias`` and its indexes."""
    op.create_table(
        "subject_alias",
        sa.Column("old_pseudonym", sa.String(length=67), nullable=False),
        sa.Column("subject", sa.String(length=67), nullable=False),
        sa.Column("from_kid", sa.String(length=19), nullable=False),
        sa.Column("to_kid", sa.String(length=19), nullable=False),
        sa.Column("edge_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["subject"], ["subject.pseudonym"], name="fk_subject_alias_subject_subject"
        ),
        sa.PrimaryKeyConstraint("old_pseudonym", name="pk_subject_alias"),
    )
    op.create_index("ix_subject_alias_subject", "subject_alias", ["subject"], unique=False)
    op.create_index("ix_subject_alias_to_kid", "subject_alias", ["to_kid"], unique=False)


def downgrade() -> None:
    """Drop ``subject_alias``."""
    op.drop_index("ix_subject_alias_to_kid", table_name="subject_alias")
    op.drop_index("ix_subject_alias_subject", table_name="subject_alias")
    op.drop_table("subject_alias")
