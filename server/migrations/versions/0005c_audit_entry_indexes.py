"""Indexes for filtered audit-log listings.

Adds ``(actor, seq)``, ``(action, seq)``, ``(purpose, seq)`` and ``(at)`` indexes on
``audit_entry`` so ``GET /api/v1/audit/entries`` pages through a filtered log of millions of
entries by index range scans in ``seq`` order (``server.audit.query``). Checked against
``SQLModel.metadata`` by ``tests/server/test_migrations.py``.

Revision ID: 0005c
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005c"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = {
    "ix_audit_entry_actor_seq": ["actor", "seq"],
    "ix_audit_entry_action_seq": ["action", "seq"],
    "ix_audit_entry_purpose_seq": ["purpose", "seq"],
    "ix_audit_entry_at": ["at"],
}


def upgrade() -> None:
    """Create the listing indexes."""
    for name, columns in _INDEXES.items():
        op.create_index(name, "audit_entry", columns, unique=False)


def downgrade() -> None:
    """Drop the listing indexes."""
    for name in _INDEXES:
        op.drop_index(name, table_name="audit_entry")
