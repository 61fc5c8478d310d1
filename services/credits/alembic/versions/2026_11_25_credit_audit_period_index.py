"""index of ledger transactions by the time they were written, for the credit audit's periods

Revision ID: 4b7d2e8f1a93
Revises: 7c3e9a41d2b6
Create Date: 2026-11-25 16:00:00

The credit audit draws its population from the entries written in a period (Beijing days).
Without an index that is a scan of the whole ledger per sample; with one, it reads the period's
entries only. One more b-tree on an append-only table, written once per transaction.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "4b7d2e8f1a93"
down_revision: str | None = "7c3e9a41d2b6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_ledger_transaction_created_at", "ledger_transaction", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_ledger_transaction_created_at", table_name="ledger_transaction")
