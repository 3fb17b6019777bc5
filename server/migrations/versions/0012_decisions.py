"""The decision layer: decisions, refusals of automated decisions, triggers, experiment outcomes.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create ``decision``, ``automated_decision_refusal``, ``decision_trigger`` and
    ``experiment_outcome``."""
    op.create_table(
        "decision",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("subject", sa.String(length=67), nullable=False),
        sa.Column("person", sa.String(length=67), nullable=True),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=True),
        sa.Column("policy_version", sa.String(length=40), nullable=False),
        sa.Column("experiment", sa.String(length=40), nullable=True),
        sa.Column("arm", sa.String(length=40), nullable=True),
        sa.Column("action_kind", sa.String(length=20), nullable=False),
        sa.Column("action_json", sa.Text(), nullable=False),
        sa.Column("automated", sa.Boolean(), nullable=False),
        sa.Column("decided_by", sa.String(length=40), nullable=True),
        sa.Column("fallback", sa.String(length=30), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("rules_json", sa.Text(), nullable=False),
        sa.Column("fields_read_json", sa.Text(), nullable=False),
        sa.Column("decided_at", _AT, nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("role", sa.String(length=30), nullable=False),
        sa.Column("audited", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_decision"),
    )
    op.create_index("ix_decision_subject", "decision", ["subject"], unique=False)
    op.create_index("ix_decision_decided_at", "decision", ["decided_at"], unique=False)
    op.create_index("ix_decision_audited_at", "decision", ["audited", "decided_at"], unique=False)
    op.create_table(
        "automated_decision_refusal",
        sa.Column("subject", sa.String(length=67), nullable=False),
        sa.Column("refused_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("subject", name="pk_automated_decision_refusal"),
    )
    op.create_table(
        "decision_trigger",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("person_key", sa.String(length=67), nullable=False),
        sa.Column("subject", sa.String(length=67), nullable=False),
        sa.Column("rule", sa.String(length=40), nullable=False),
        sa.Column("period", sa.String(length=20), nullable=False),
        sa.Column("decision_id", sa.String(length=36), nullable=False),
        sa.Column("action_json", sa.Text(), nullable=False),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("delivered_at", _AT, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_decision_trigger"),
        sa.UniqueConstraint("purpose", "person_key", "rule", "period", name="uq_decision_trigger"),
    )
    op.create_index(
        "ix_decision_trigger_person_key", "decision_trigger", ["person_key"], unique=False
    )
    op.create_table(
        "experiment_outcome",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("experiment", sa.String(length=40), nullable=False),
        sa.Column("arm", sa.String(length=40), nullable=False),
        sa.Column("edge_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("contacts", sa.Integer(), nullable=False),
        sa.Column("resolved", sa.Integer(), nullable=False),
        sa.Column("transferred", sa.Integer(), nullable=False),
        sa.Column("first_response_sum", sa.Float(), nullable=False),
        sa.Column("first_response_sumsq", sa.Float(), nullable=False),
        sa.Column("order_value_sum", sa.Float(), nullable=False),
        sa.Column("order_value_sumsq", sa.Float(), nullable=False),
        sa.Column("retained", sa.Integer(), nullable=False),
        sa.Column("retention_known", sa.Integer(), nullable=False),
        sa.Column("received_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_experiment_outcome"),
        sa.UniqueConstraint("experiment", "arm", "edge_id", "day", name="uq_experiment_outcome"),
    )
    op.create_index(
        "ix_experiment_outcome_experiment", "experiment_outcome", ["experiment"], unique=False
    )


def downgrade() -> None:
    """Drop the decision layer's tables."""
    op.drop_index("ix_experiment_outcome_experiment", table_name="experiment_outcome")
    op.drop_table("experiment_outcome")
    op.drop_index("ix_decision_trigger_person_key", table_name="decision_trigger")
    op.drop_table("decision_trigger")
    op.drop_table("automated_decision_refusal")
    op.drop_index("ix_decision_audited_at", table_name="decision")
    op.drop_index("ix_decision_decided_at", table_name="decision")
    op.drop_index("ix_decision_subject", table_name="decision")
    op.drop_table("decision")
