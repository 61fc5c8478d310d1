"""school network and staff

Revision ID: e572189cb3bf
Revises:
Create Date: 2026-11-25 03:23:55

Read and edited after autogeneration: plain String types, CHECK constraints on status and
population, and a text_pattern_ops index on unit.path so subtree prefix queries use it on
PostgreSQL whatever the database collation.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e572189cb3bf"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "unit_level",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.CheckConstraint("rank BETWEEN 1 AND 9", name=op.f("ck_unit_level_rank_range")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_unit_level")),
    )
    op.create_table(
        "unit",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("level_code", sa.String(length=40), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("path", sa.String(length=400), nullable=False),
        sa.Column("division_code", sa.String(length=12), nullable=True),
        sa.Column("division_name", sa.String(length=80), nullable=True),
        sa.Column("population", sa.Integer(), nullable=True),
        sa.Column("address", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("is_demo", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("population IS NULL OR population >= 0", name=op.f("ck_unit_population_nonnegative")),
        sa.CheckConstraint("status IN ('active', 'closed')", name=op.f("ck_unit_status_known")),
        sa.ForeignKeyConstraint(["level_code"], ["unit_level.code"], name=op.f("fk_unit_level_code_unit_level")),
        sa.ForeignKeyConstraint(["parent_id"], ["unit.id"], name=op.f("fk_unit_parent_id_unit")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unit")),
        sa.UniqueConstraint("key", name=op.f("uq_unit_key")),
    )
    op.create_index(op.f("ix_unit_division_code"), "unit", ["division_code"])
    op.create_index(op.f("ix_unit_parent_id"), "unit", ["parent_id"])
    op.create_index(
        op.f("ix_unit_path"), "unit", ["path"], postgresql_ops={"path": "text_pattern_ops"}
    )
    op.create_table(
        "staff_user",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("username", sa.String(length=60), nullable=False),
        sa.Column("display_name", sa.String(length=80), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "role IN ('learning_point_staff', 'school_staff', 'college_staff', 'auditor', 'district_admin')",
            name=op.f("ck_staff_user_role_known"),
        ),
        sa.CheckConstraint("status IN ('active', 'disabled')", name=op.f("ck_staff_user_status_known")),
        sa.ForeignKeyConstraint(["unit_id"], ["unit.id"], name=op.f("fk_staff_user_unit_id_unit")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_user")),
        sa.UniqueConstraint("username", name=op.f("uq_staff_user_username")),
    )
    op.create_index(op.f("ix_staff_user_unit_id"), "staff_user", ["unit_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_staff_user_unit_id"), table_name="staff_user")
    op.drop_table("staff_user")
    op.drop_index(op.f("ix_unit_path"), table_name="unit")
    op.drop_index(op.f("ix_unit_parent_id"), table_name="unit")
    op.drop_index(op.f("ix_unit_division_code"), table_name="unit")
    op.drop_table("unit")
    op.drop_table("unit_level")
