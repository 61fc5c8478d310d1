"""indexes for a learner's newest first: records, check-ins, ledger transactions

Revision ID: 7c3e9a41d2b6
Revises: 7c4f2e9a1d36
Create Date: 2026-11-25 14:00:00

The portfolio reads the first page of each of a learner's lists, newest first. With an index on
the learner alone, PostgreSQL reads every row of the learner and sorts them for the first 20
(ten years of a busy learner: thousands of rows a request). Led by the learner and ordered as
the pages are, the first page is the index's first entries. The check-in and transaction
indexes replace the learner-only ones (their leading column serves the same lookups).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "7c3e9a41d2b6"
down_revision: str | None = "7c4f2e9a1d36"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_learning_record_learner_newest", "learning_record", ["learner_id", "id"])
    op.create_index(
        "ix_attendance_learner_checked_in", "attendance", ["learner_id", "checked_in_at", "id"]
    )
    op.drop_index("ix_attendance_learner_id", table_name="attendance")
    op.create_index(
        "ix_ledger_transaction_learner_newest", "ledger_transaction", ["learner_id", "id"]
    )
    op.drop_index("ix_ledger_transaction_learner_id", table_name="ledger_transaction")


def downgrade() -> None:
    op.create_index("ix_ledger_transaction_learner_id", "ledger_transaction", ["learner_id"])
    op.drop_index("ix_ledger_transaction_learner_newest", table_name="ledger_transaction")
    op.create_index("ix_attendance_learner_id", "attendance", ["learner_id"])
    op.drop_index("ix_attendance_learner_checked_in", table_name="attendance")
    op.drop_index("ix_learning_record_learner_newest", table_name="learning_record")
