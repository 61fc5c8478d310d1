"""last failed sign-in

Revision ID: 9b3e5d7f1a42
Revises: 5c1e8f3a7d20
Create Date: 2026-12-07 17:00:00

When an account's last failed sign-in was counted, so that failures quiet for 30 days are
forgotten as an unknown name's are (docs/decisions.md, "Failed sign-ins are forgotten after a
quiet month"). Existing counts keep counting until their next failure.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9b3e5d7f1a42"
down_revision: str | None = "5c1e8f3a7d20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("staff_user", "learning_account"):
        op.add_column(table, sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for table in ("staff_user", "learning_account"):
        op.drop_column(table, "last_failed_at")
