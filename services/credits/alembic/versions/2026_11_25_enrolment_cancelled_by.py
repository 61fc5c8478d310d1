"""enrolment.cancelled_by

Revision ID: 9e332cf3455b
Revises: 11068e5aa11a
Create Date: 2026-11-25 09:00:00

Staff may now cancel a resident's enrolment: who cancelled is kept beside who enrolled.
Rows cancelled before this revision keep NULL (then only the resident could cancel).
Plain ADD/DROP COLUMN, not a batch: SQLite (3.35+) drops the column in place, where a batch
would copy the table and could lose the partial unique index on live enrolments.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9e332cf3455b"
down_revision: str | None = "11068e5aa11a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("enrolment", sa.Column("cancelled_by", sa.String(length=60), nullable=True))


def downgrade() -> None:
    op.drop_column("enrolment", "cancelled_by")
