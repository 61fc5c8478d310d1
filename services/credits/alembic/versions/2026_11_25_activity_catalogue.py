"""activity catalogue

Revision ID: b8b98458520a
Revises:
Create Date: 2026-11-25 03:40:00

Read and edited after autogeneration: plain String types.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b8b98458520a"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "activity_category",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name_zh", sa.String(length=80), nullable=False),
        sa.Column("name_en", sa.String(length=80), nullable=False),
        sa.Column("parent_code", sa.String(length=40), nullable=True),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_code"],
            ["activity_category.code"],
            name=op.f("fk_activity_category_parent_code_activity_category"),
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_activity_category")),
    )


def downgrade() -> None:
    op.drop_table("activity_category")
