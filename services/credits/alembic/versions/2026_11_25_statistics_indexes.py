"""indexes for the statistics reports: records by host and time, provenance and volunteer
service by day

Revision ID: 5d8b2f6c0a17
Revises: 4b7d2e8f1a93
Create Date: 2026-11-25 16:00:00

A report reads the records of the learning points under a unit for a period: led by the host
path and the start, each learning point is one index range. On PostgreSQL the index carries the
columns the report sums and counts (INCLUDE), so the records are read from the index alone
(an index-only scan while the visibility map is current) and the wide rows with their evidence
are never touched; likewise provenance lines by the day they were earned. SQLite has no INCLUDE; it gets the plain two-column index.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5d8b2f6c0a17"
down_revision: str | None = "4b7d2e8f1a93"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RECORD_COLUMNS = ["id", "learner_id", "minutes", "status", "source", "category_code", "mode"]


def upgrade() -> None:
    op.create_index(
        "ix_learning_record_host_started",
        "learning_record",
        ["host_unit_path", "started_at"],
        postgresql_include=RECORD_COLUMNS,
    )
    op.create_index(
        "ix_credit_source_earned_on",
        "credit_source",
        ["earned_on"],
        postgresql_include=["key", "amount_hundredths"],
    )
    op.create_index(
        "ix_volunteer_service_unit_path_served_on", "volunteer_service", ["unit_path", "served_on"]
    )


def downgrade() -> None:
    op.drop_index("ix_volunteer_service_unit_path_served_on", table_name="volunteer_service")
    op.drop_index("ix_credit_source_earned_on", table_name="credit_source")
    op.drop_index("ix_learning_record_host_started", table_name="learning_record")
