"""status lists hand out their bits in a secret order

Revision ID: 3e5a7c9b1d24
Revises: 9b1e7c3d5a20
Create Date: 2026-11-25

One row per status list with the key of its permutation. Lists that already hold credentials
keep handing out bits in issue order (a NULL key): their first bits are taken in that order,
and a shuffled order could land on one of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3e5a7c9b1d24"
down_revision: str | None = "9b1e7c3d5a20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "status_list",
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("permutation_key", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_status_list")),
    )
    op.execute(
        "INSERT INTO status_list (number, permutation_key, created_at)"
        " SELECT DISTINCT status_list, NULL, CURRENT_TIMESTAMP FROM issued_document"
        " WHERE status_list IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_table("status_list")
