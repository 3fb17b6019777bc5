"""Field encryption: per-subject wrapped data keys; sealed columns on profile fields.

Adds ``subject_key`` (one wrapped data key per subject) and, on ``profile_field``, the
``value_ciphertext`` and ``key_version`` columns, makes ``value_json`` nullable (NULL for a
sealed field) and checks that a row holds exactly one of the plain and sealed forms. Existing
rows are plain and stay valid. Checked against ``SQLModel.metadata`` by
``tests/server/test_migrations.py``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHECK = "ck_profile_field_plain_or_sealed"
_CHECK_SQL = "(value_json IS NULL) <> (value_ciphertext IS NULL)"


def upgrade() -> None:
    """Create ``subject_key``; add the sealed columns and their check to ``profile_field``."""
    tz = sa.DateTime(timezone=True)
    op.create_table(
        "subject_key",
        sa.Column("subject", sa.String(length=67), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("master_kid", sa.String(length=32), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", tz, nullable=False),
        sa.Column("rewrapped_at", tz, nullable=True),
        sa.ForeignKeyConstraint(
            ["subject"], ["subject.pseudonym"], name="fk_subject_key_subject_subject"
        ),
        sa.PrimaryKeyConstraint("subject", name="pk_subject_key"),
    )
    op.create_index("ix_subject_key_master_kid", "subject_key", ["master_kid"], unique=False)
    with op.batch_alter_table("profile_field") as batch:
        batch.add_column(sa.Column("value_ciphertext", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("key_version", sa.Integer(), nullable=True))
        batch.alter_column("value_json", existing_type=sa.Text(), nullable=True)
        batch.create_check_constraint(_CHECK, _CHECK_SQL)


def downgrade() -> None:
    """Drop the sealed columns and ``subject_key``; refuses while sealed fields exist."""
    sealed = op.get_bind().execute(
        sa.text("SELECT COUNT(*) FROM profile_field WHERE value_ciphertext IS NOT NULL")
    ).scalar_one()
    if sealed:
        raise RuntimeError(
            f"{sealed} sealed profile field(s) exist; erase or purge them before downgrading"
        )
    with op.batch_alter_table("profile_field") as batch:
        batch.drop_constraint(_CHECK, type_="check")
        batch.alter_column("value_json", existing_type=sa.Text(), nullable=False)
        batch.drop_column("key_version")
        batch.drop_column("value_ciphertext")
    op.drop_index("ix_subject_key_master_kid", table_name="subject_key")
    op.drop_table("subject_key")
