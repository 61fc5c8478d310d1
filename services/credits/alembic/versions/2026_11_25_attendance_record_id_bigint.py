"""attendance.record_id as bigint

Revision ID: 5d1e0c2a7b90
Revises: 3591088fa9cc
Create Date: 2026-11-25 05:08:00

learning_record.id is a bigint on PostgreSQL; the foreign key pointing at it was an integer.
SQLite has one integer type, so nothing changes there.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5d1e0c2a7b90"
down_revision: str | None = "3591088fa9cc"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("attendance", "record_id", type_=sa.BigInteger(), existing_nullable=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("attendance", "record_id", type_=sa.Integer(), existing_nullable=True)
