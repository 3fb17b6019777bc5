"""Named tokens, subject tokens and token expiry; published privacy notices.

Widens ``api_token.role`` to 20 characters (``compliance_officer`` does not fit in 10 on
PostgreSQL), adds ``holder_name`` (staff tokens), ``subject`` (self-service tokens bound to a
pseudonym) and ``expires_at``, and creates ``privacy_notice`` (append-only notice versions whose
material changes pause older grants until renewed). Checked against ``SQLModel.metadata`` by
``tests/server/test_migrations.py``.

Revision ID: 0005a
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005a"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Widen the role column, add the holder columns and create ``privacy_notice``."""
    tz = sa.DateTime(timezone=True)
    with op.batch_alter_table("api_token") as batch:
        batch.alter_column(
            "role",
            existing_type=sa.String(length=10),
            type_=sa.String(length=20),
            existing_nullable=False,
        )
        batch.add_column(sa.Column("holder_name", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("subject", sa.String(length=67), nullable=True))
        batch.add_column(sa.Column("expires_at", tz, nullable=True))
    op.create_index("ix_api_token_subject", "api_token", ["subject"], unique=False)
    op.create_table(
        "privacy_notice",
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("purposes", sa.String(length=400), nullable=False),
        sa.Column("material", sa.Boolean(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("language", sa.String(length=20), nullable=False),
        sa.Column("published_at", tz, nullable=False),
        sa.Column("published_by", sa.String(length=90), nullable=False),
        sa.PrimaryKeyConstraint("version", name="pk_privacy_notice"),
    )
    op.create_index(
        "ix_privacy_notice_published_at", "privacy_notice", ["published_at"], unique=False
    )


def downgrade() -> None:
    """Drop ``privacy_notice`` and the holder columns; narrow the role column again."""
    op.drop_index("ix_privacy_notice_published_at", table_name="privacy_notice")
    op.drop_table("privacy_notice")
    op.drop_index("ix_api_token_subject", table_name="api_token")
    with op.batch_alter_table("api_token") as batch:
        batch.drop_column("expires_at")
        batch.drop_column("subject")
        batch.drop_column("holder_name")
        batch.alter_column(
            "role",
            existing_type=sa.String(length=20),
            type_=sa.String(length=10),
            existing_nullable=False,
        )
