"""Keep one profile-field row per contributing edge (merged on read).

``profile_field`` was unique on (subject, name): the last edge to upload a field overwrote
every other channel's value. Each row is now one edge's *contribution* (unique on subject,
name and source edge); reads merge them by the catalogue's rule.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Swap ``uq_profile_field_subject_name`` for a per-edge unique constraint."""
    with op.batch_alter_table("profile_field") as batch:
        batch.drop_constraint("uq_profile_field_subject_name", type_="unique")
        batch.create_unique_constraint(
            "uq_profile_field_subject_name_edge", ["subject", "name", "source_edge_id"]
        )


def downgrade() -> None:
    """Keep the latest contribution per (subject, name) and restore the old constraint."""
    op.execute(
        "DELETE FROM profile_field WHERE id NOT IN (SELECT MAX(id) FROM profile_field "
        "GROUP BY subject, name)"
    )
    with op.batch_alter_table("profile_field") as batch:
        batch.drop_constraint("uq_profile_field_subject_name_edge", type_="unique")
        batch.create_unique_constraint("uq_profile_field_subject_name", ["subject", "name"])
