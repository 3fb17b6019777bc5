"""The model registry: one ``model_version`` row per published global model.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``model_version`` (unique on model and version)."""
    op.create_table(
        "model_version",
        sa.Column("model", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("server_round", sa.Integer(), nullable=False),
        sa.Column("epsilon", sa.Float(), nullable=True),
        sa.Column("delta", sa.Float(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("metrics_json", sa.Text(), nullable=False),
        sa.Column("architecture_json", sa.Text(), nullable=False),
        sa.Column("weights", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["training_run.id"], name="fk_model_version_run_id_training_run"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_model_version"),
        sa.UniqueConstraint("model", "version", name="uq_model_version_model_version"),
    )
    op.create_index("ix_model_version_run_id", "model_version", ["run_id"], unique=False)
    op.create_index("ix_model_version_created_at", "model_version", ["created_at"], unique=False)


def downgrade() -> None:
    """Drop the model registry."""
    op.drop_index("ix_model_version_created_at", table_name="model_version")
    op.drop_index("ix_model_version_run_id", table_name="model_version")
    op.drop_table("model_version")
