"""kept reports: a slow report's figures, answered again for a short while

Revision ID: 8a4c6e2f0b51
Revises: 6c2e9a4f7b13
Create Date: 2026-12-07 07:15:00

A district's report reads every record of its period and takes seconds; its figures are kept
for ``statistics_keep_seconds`` and the same report asked again is answered from them, with
the time they were read (see credits.statistics.models).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8a4c6e2f0b51"
down_revision: str | None = "6c2e9a4f7b13"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "statistics_kept_report",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("unit_path", sa.String(255), nullable=False),
        sa.Column("period", sa.String(120), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.UniqueConstraint("kind", "unit_path", "period", name="uq_kept_report"),
    )


def downgrade() -> None:
    op.drop_table("statistics_kept_report")
