"""Join the token-holder, audit-index and subject-alias branches.

0005a (named tokens, notices), 0005c (audit entry indexes) and 0005r (subject aliases for
tenant-key rotation) were written in parallel on top of 0004 and touch disjoint tables; this
revision makes them one line again so ``alembic_version`` holds a single head.

Revision ID: 0006
Revises: 0005a, 0005c, 0005r
Create Date: 2026-11-23
"""

from collections.abc import Sequence

revision: str = "0006"
down_revision: str | Sequence[str] | None = ("0005a", "0005c", "0005r")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing to change: the merge only joins the branches."""


def downgrade() -> None:
    """Nothing to change: the merge only joins the branches."""
