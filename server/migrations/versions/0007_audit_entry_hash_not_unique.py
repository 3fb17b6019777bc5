"""Drop the unique index on ``audit_entry.entry_hash``.

Each entry's hash covers its predecessor's and its own sequence number, and ``fedprofile
audit verify`` recomputes the whole chain, so a unique index adds no protection; nothing
looks entries up by hash. Keyed by random digests, it was the most expensive index to
maintain on every append (about a third of the append rate on SQLite).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Drop ``uq_audit_entry_entry_hash`` (SQLite rebuilds the table in batch mode)."""
    with op.batch_alter_table("audit_entry") as batch:
        batch.drop_constraint("uq_audit_entry_entry_hash", type_="unique")


def downgrade() -> None:
    """Restore ``uq_audit_entry_entry_hash``."""
    with op.batch_alter_table("audit_entry") as batch:
        batch.create_unique_constraint("uq_audit_entry_entry_hash", ["entry_hash"])
