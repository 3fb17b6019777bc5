"""Initial schema: edges, tokens, subjects, profile fields, consent records, audit log,
training runs, edge ledgers and upload receipts.

Hand-written and checked against ``SQLModel.metadata`` by
``tests/server/test_migrations.py`` (no autogenerate differences on SQLite and PostgreSQL).

Revision ID: 0001
Revises:
Create Date: 2026-11-20
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS_HASH = "0" * 64


def upgrade() -> None:
    """Create every table and the audit head row."""
    tz = sa.DateTime(timezone=True)
    op.create_table(
        "edge",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", tz, nullable=False),
        sa.Column("last_seen_at", tz, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_edge"),
        sa.UniqueConstraint("name", name="uq_edge_name"),
    )
    op.create_table(
        "api_token",
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("edge_id", sa.String(length=36), nullable=True),
        sa.Column("channel", sa.String(length=20), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", tz, nullable=False),
        sa.Column("revoked_at", tz, nullable=True),
        sa.ForeignKeyConstraint(["edge_id"], ["edge.id"], name="fk_api_token_edge_id_edge"),
        sa.PrimaryKeyConstraint("id", name="pk_api_token"),
        sa.UniqueConstraint("token_hash", name="uq_api_token_token_hash"),
    )
    op.create_index("ix_api_token_edge_id", "api_token", ["edge_id"], unique=False)
    op.create_table(
        "subject",
        sa.Column("pseudonym", sa.String(length=67), nullable=False),
        sa.Column("first_seen_at", tz, nullable=False),
        sa.Column("last_seen_at", tz, nullable=False),
        sa.PrimaryKeyConstraint("pseudonym", name="pk_subject"),
    )
    op.create_table(
        "profile_field",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=67), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("value_json", sa.Text(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("explanation_json", sa.Text(), nullable=False),
        sa.Column("provisional", sa.Boolean(), nullable=False),
        sa.Column("computed_at", tz, nullable=False),
        sa.Column("source_edge_id", sa.String(length=36), nullable=True),
        sa.Column("source_channel", sa.String(length=20), nullable=True),
        sa.Column("uploaded_purpose", sa.String(length=40), nullable=False),
        sa.Column("updated_at", tz, nullable=False),
        sa.ForeignKeyConstraint(
            ["subject"], ["subject.pseudonym"], name="fk_profile_field_subject_subject"
        ),
        sa.ForeignKeyConstraint(
            ["source_edge_id"], ["edge.id"], name="fk_profile_field_source_edge_id_edge"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_profile_field"),
        sa.UniqueConstraint("subject", "name", name="uq_profile_field_subject_name"),
    )
    op.create_index("ix_profile_field_subject", "profile_field", ["subject"], unique=False)
    op.create_table(
        "consent_record",
        sa.Column("subject", sa.String(length=67), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("occurred_at", tz, nullable=False),
        sa.Column("notice_version", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("separate", sa.Boolean(), nullable=False),
        sa.Column("expires_at", tz, nullable=True),
        sa.Column("evidence_hash", sa.String(length=64), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_hash", sa.String(length=64), nullable=False),
        sa.Column("received_at", tz, nullable=False),
        sa.Column("edge_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["subject"], ["subject.pseudonym"], name="fk_consent_record_subject_subject"
        ),
        sa.ForeignKeyConstraint(["edge_id"], ["edge.id"], name="fk_consent_record_edge_id_edge"),
        sa.PrimaryKeyConstraint("id", name="pk_consent_record"),
        sa.UniqueConstraint("event_hash", name="uq_consent_record_event_hash"),
    )
    op.create_index("ix_consent_record_subject", "consent_record", ["subject"], unique=False)
    op.create_table(
        "audit_entry",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", tz, nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=True),
        sa.Column("outcome", sa.String(length=40), nullable=False),
        sa.Column("subject_commitment", sa.String(length=64), nullable=True),
        sa.Column("detail_json", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.Column("subject_salt", sa.String(length=32), nullable=True),
        sa.Column("subject_ref", sa.String(length=67), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_entry"),
        sa.UniqueConstraint("entry_hash", name="uq_audit_entry_entry_hash"),
    )
    op.create_index("ix_audit_entry_subject_ref", "audit_entry", ["subject_ref"], unique=False)
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_head"),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS_HASH}])
    op.create_table(
        "training_run",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("model", sa.String(length=40), nullable=False),
        sa.Column("started_at", tz, nullable=False),
        sa.Column("finished_at", tz, nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("num_rounds", sa.Integer(), nullable=False),
        sa.Column("config_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_training_run"),
    )
    op.create_index("ix_training_run_model", "training_run", ["model"], unique=False)
    op.create_table(
        "training_round",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("server_round", sa.Integer(), nullable=False),
        sa.Column("phase", sa.String(length=10), nullable=False),
        sa.Column("metrics_json", sa.Text(), nullable=False),
        sa.Column("edges_json", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["training_run.id"], name="fk_training_round_run_id_training_run"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_training_round"),
        sa.UniqueConstraint(
            "run_id", "server_round", "phase", name="uq_training_round_run_round_phase"
        ),
    )
    op.create_index("ix_training_round_run_id", "training_round", ["run_id"], unique=False)
    op.create_table(
        "edge_ledger",
        sa.Column("edge_id", sa.String(length=36), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("model", sa.String(length=40), nullable=False),
        sa.Column("epsilon", sa.Float(), nullable=False),
        sa.Column("delta", sa.Float(), nullable=False),
        sa.Column("accountant", sa.String(length=10), nullable=False),
        sa.Column("budget", sa.Float(), nullable=True),
        sa.Column("exhausted", sa.Boolean(), nullable=False),
        sa.Column("reported_at", tz, nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entries_json", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["edge_id"], ["edge.id"], name="fk_edge_ledger_edge_id_edge"),
        sa.PrimaryKeyConstraint("id", name="pk_edge_ledger"),
        sa.UniqueConstraint("edge_id", "model", name="uq_edge_ledger_edge_model"),
    )
    op.create_index("ix_edge_ledger_edge_id", "edge_ledger", ["edge_id"], unique=False)
    op.create_table(
        "upload_receipt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("edge_id", sa.String(length=36), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("response_json", sa.Text(), nullable=False),
        sa.Column("created_at", tz, nullable=False),
        sa.ForeignKeyConstraint(["edge_id"], ["edge.id"], name="fk_upload_receipt_edge_id_edge"),
        sa.PrimaryKeyConstraint("id", name="pk_upload_receipt"),
        sa.UniqueConstraint("edge_id", "idempotency_key", name="uq_upload_receipt_edge_key"),
    )


def downgrade() -> None:
    """Drop every table (destroys all data)."""
    op.drop_table("upload_receipt")
    op.drop_index("ix_edge_ledger_edge_id", table_name="edge_ledger")
    op.drop_table("edge_ledger")
    op.drop_index("ix_training_round_run_id", table_name="training_round")
    op.drop_table("training_round")
    op.drop_index("ix_training_run_model", table_name="training_run")
    op.drop_table("training_run")
    op.drop_table("audit_head")
    op.drop_index("ix_audit_entry_subject_ref", table_name="audit_entry")
    op.drop_table("audit_entry")
    op.drop_index("ix_consent_record_subject", table_name="consent_record")
    op.drop_table("consent_record")
    op.drop_index("ix_profile_field_subject", table_name="profile_field")
    op.drop_table("profile_field")
    op.drop_table("subject")
    op.drop_index("ix_api_token_edge_id", table_name="api_token")
    op.drop_table("api_token")
    op.drop_table("edge")
