"""audit hash chain

Revision ID: a7d1c0e5b921
Revises: 1334c3889a6f
Create Date: 2026-11-25 15:40:00

Chains ``audit_entry``: ``seq``, ``prev_hash`` and ``hash`` columns (existing rows are numbered
by id and hashed here), the one-row ``audit_head``, and triggers that keep entries append only
(docs/decisions.md, "Audit trail").
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kernel import auditmigration

revision: str = "a7d1c0e5b921"
down_revision: str | None = "1334c3889a6f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table("audit_head", *auditmigration.head_table_columns())
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    auditmigration.chain_existing(op.get_bind())
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_audit_entry_seq"), ["seq"])
        batch_op.create_index(batch_op.f("ix_audit_entry_at"), ["at"], unique=False)
    auditmigration.add_guards(op.get_bind())


def downgrade() -> None:
    auditmigration.drop_guards(op.get_bind())
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_entry_at"))
        batch_op.drop_constraint(batch_op.f("uq_audit_entry_seq"), type_="unique")
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("seq")
    op.drop_table("audit_head")
