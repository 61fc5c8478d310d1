"""partner ownership and idempotency

Revision ID: faf9421b708c
Revises: 8b8138df952d
Create Date: 2026-11-25 04:31:22.631229
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'faf9421b708c'
down_revision: str | None = '8b8138df952d'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('idempotency_record',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('client', sa.String(length=80), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('response', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_record')),
    sa.UniqueConstraint('client', 'key', name=op.f('uq_idempotency_record_client_key'))
    )
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.add_column(sa.Column('partner_client', sa.String(length=60), nullable=True))
        batch_op.create_index(batch_op.f('ix_activity_partner_client'), ['partner_client'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_activity_partner_client'))
        batch_op.drop_column('partner_client')

    op.drop_table('idempotency_record')
