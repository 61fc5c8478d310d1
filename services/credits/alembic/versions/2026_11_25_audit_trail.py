"""audit trail

Revision ID: 2f6b8d0c4e17
Revises: 5d8b2f6c0a17
Create Date: 2026-11-25 15:50:00

The credits service's own hash-chained audit trail, as in accounts: ``audit_entry``, the
one-row ``audit_head`` and the append-only triggers (docs/decisions.md, "Audit trail").
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kernel import auditmigration

revision: str = "2f6b8d0c4e17"
down_revision: str | None = "5d8b2f6c0a17"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_entry",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("actor_kind", sa.String(length=20), nullable=False),
        sa.Column("actor_role", sa.String(length=40), nullable=True),
        sa.Column("actor_unit", sa.String(length=40), nullable=True),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("target_type", sa.String(length=40), nullable=False),
        sa.Column("target_id", sa.String(length=80), nullable=False),
        sa.Column("before_digest", sa.String(length=64), nullable=True),
        sa.Column("after_digest", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=300), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entry")),
        sa.UniqueConstraint("seq", name=op.f("uq_audit_entry_seq")),
    )
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_entry_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_entry_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_entry_target_id"), ["target_id"], unique=False)
    op.create_table("audit_head", *auditmigration.head_table_columns())
    auditmigration.chain_existing(op.get_bind())  # writes the head row; there are no entries
    auditmigration.add_guards(op.get_bind())


def downgrade() -> None:
    auditmigration.drop_guards(op.get_bind())
    op.drop_table("audit_head")
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_entry_target_id"))
        batch_op.drop_index(batch_op.f("ix_audit_entry_at"))
        batch_op.drop_index(batch_op.f("ix_audit_entry_action"))
    op.drop_table("audit_entry")
