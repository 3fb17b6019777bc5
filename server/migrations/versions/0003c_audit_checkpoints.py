"""Signed audit-log checkpoints.

Adds ``audit_checkpoint``: one Ed25519-signed statement per checkpoint of the log's size,
head hash and RFC 9162 Merkle root, with the Merkle frontier the next checkpoint extends.
Checked against ``SQLModel.metadata`` by ``tests/server/test_migrations.py``.

Revision ID: 0003c
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003c"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``audit_checkpoint``."""
    op.create_table(
        "audit_checkpoint",
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("origin", sa.String(length=64), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("root_hash", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.Column("frontier_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_checkpoint"),
        sa.UniqueConstraint("size", name="uq_audit_checkpoint_size"),
    )


def downgrade() -> None:
    """Drop ``audit_checkpoint``."""
    op.drop_table("audit_checkpoint")
