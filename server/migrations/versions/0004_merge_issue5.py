"""Join the data-subject-request and audit-checkpoint branches.

0003b and 0003c were written in parallel on top of 0002 and touch disjoint tables; this
revision makes them one line again so ``alembic_version`` holds a single head.

Revision ID: 0004
Revises: 0003b, 0003c
Create Date: 2026-11-23
"""

from collections.abc import Sequence

revision: str = "0004"
down_revision: str | Sequence[str] | None = ("0003b", "0003c")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing to change: the merge only joins the two branches."""


def downgrade() -> None:
    """Nothing to change: the merge only joins the two branches."""
