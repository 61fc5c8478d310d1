"""record status history

Revision ID: 3591088fa9cc
Revises: faf9421b708c
Create Date: 2026-11-25 04:55:15.354389
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '3591088fa9cc'
down_revision: str | None = 'faf9421b708c'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('record_status_change',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('record_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('from_status', sa.String(length=10), nullable=False),
    sa.Column('to_status', sa.String(length=10), nullable=False),
    sa.Column('changed_by', sa.String(length=60), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['record_id'], ['learning_record.id'], name=op.f('fk_record_status_change_record_id_learning_record')),
    sa.CheckConstraint("to_status IN ('verified', 'rejected', 'voided')", name=op.f('ck_record_status_change_to_status_known')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_record_status_change'))
    )
    with op.batch_alter_table('record_status_change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_record_status_change_record_id'), ['record_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('record_status_change', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_record_status_change_record_id'))

    op.drop_table('record_status_change')
