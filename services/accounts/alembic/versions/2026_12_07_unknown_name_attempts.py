"""unknown name attempts

Revision ID: 5c1e8f3a7d20
Revises: a7d1c0e5b921
Create Date: 2026-12-07 12:00:00

Failed sign-ins under names that name no account, counted and locked as an account's are, so
the lockout does not reveal which names are registered (docs/decisions.md, "Unknown sign-in
names lock as accounts do").
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5c1e8f3a7d20"
down_revision: str | None = "a7d1c0e5b921"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "unknown_name_attempts",
        sa.Column("name_index", sa.String(length=64), nullable=False),
        sa.Column("failed_sign_ins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "failed_sign_ins >= 0",
            name=op.f("ck_unknown_name_attempts_failed_sign_ins_nonnegative"),
        ),
        sa.PrimaryKeyConstraint("name_index", name=op.f("pk_unknown_name_attempts")),
    )
    op.create_index(
        op.f("ix_unknown_name_attempts_last_attempt_at"),
        "unknown_name_attempts",
        ["last_attempt_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_unknown_name_attempts_last_attempt_at"), table_name="unknown_name_attempts"
    )
    op.drop_table("unknown_name_attempts")
