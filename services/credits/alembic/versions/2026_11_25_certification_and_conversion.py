"""certification (standards, submissions, evidence) and conversion (targets, conversions)

Revision ID: 11068e5aa11a
Revises: f4a4a7e23be3
Create Date: 2026-11-25 12:17:12.356174
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '11068e5aa11a'
down_revision: str | None = 'f4a4a7e23be3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('certification_standard',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('outcome_type', sa.String(length=40), nullable=False),
    sa.Column('level', sa.String(length=20), nullable=False),
    sa.Column('name_zh', sa.String(length=80), nullable=False),
    sa.Column('name_en', sa.String(length=100), nullable=False),
    sa.Column('hundredths', sa.Integer(), nullable=False),
    sa.Column('category_code', sa.String(length=40), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_certification_standard')),
    sa.UniqueConstraint('outcome_type', 'level', name=op.f('uq_certification_standard_outcome_type_level'))
    )
    op.create_table('conversion_target',
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name_zh', sa.String(length=80), nullable=False),
    sa.Column('name_en', sa.String(length=80), nullable=False),
    sa.Column('unit_zh', sa.String(length=20), nullable=False),
    sa.Column('requirements', sa.JSON(), nullable=False),
    sa.Column('max_units_per_request', sa.Integer(), nullable=False),
    sa.Column('max_units_per_year', sa.Integer(), nullable=True),
    sa.Column('prerequisites', sa.JSON(), nullable=False),
    sa.Column('cancel_window_days', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_conversion_target'))
    )
    op.create_table('certification',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('learner_id', sa.Uuid(), nullable=False),
    sa.Column('learner_unit_path', sa.String(length=400), nullable=False),
    sa.Column('outcome_type', sa.String(length=40), nullable=False),
    sa.Column('level', sa.String(length=20), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('issuer', sa.String(length=120), nullable=False),
    sa.Column('issued_on', sa.Date(), nullable=False),
    sa.Column('category_code', sa.String(length=40), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('submitted_by', sa.String(length=60), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reviewed_by', sa.String(length=60), nullable=True),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('review_reason', sa.String(length=200), nullable=True),
    sa.Column('standard_id', sa.Integer(), nullable=True),
    sa.Column('hundredths', sa.Integer(), nullable=True),
    sa.Column('transaction_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['standard_id'], ['certification_standard.id'], name=op.f('fk_certification_standard_id_certification_standard')),
    sa.ForeignKeyConstraint(['transaction_id'], ['ledger_transaction.id'], name=op.f('fk_certification_transaction_id_ledger_transaction')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_certification'))
    )
    with op.batch_alter_table('certification', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_certification_learner_id'), ['learner_id'], unique=False)

    op.create_table('conversion',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('learner_id', sa.Uuid(), nullable=False),
    sa.Column('learner_unit_path', sa.String(length=400), nullable=False),
    sa.Column('target_code', sa.String(length=40), nullable=False),
    sa.Column('units', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=True),
    sa.Column('applied_by', sa.String(length=60), nullable=False),
    sa.Column('applied_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.String(length=60), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision_reason', sa.String(length=200), nullable=True),
    sa.Column('approval_key', sa.String(length=300), nullable=True),
    sa.Column('debits', sa.JSON(), nullable=False),
    sa.Column('transaction_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('cancelled_by', sa.String(length=60), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancel_reason', sa.String(length=200), nullable=True),
    sa.Column('cancel_transaction_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['cancel_transaction_id'], ['ledger_transaction.id'], name=op.f('fk_conversion_cancel_transaction_id_ledger_transaction')),
    sa.ForeignKeyConstraint(['target_code'], ['conversion_target.code'], name=op.f('fk_conversion_target_code_conversion_target')),
    sa.ForeignKeyConstraint(['transaction_id'], ['ledger_transaction.id'], name=op.f('fk_conversion_transaction_id_ledger_transaction')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conversion'))
    )
    with op.batch_alter_table('conversion', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_conversion_learner_id'), ['learner_id'], unique=False)
        batch_op.create_index('uq_conversion_approval_key', ['approval_key'], unique=True, sqlite_where=sa.text('approval_key IS NOT NULL'), postgresql_where=sa.text('approval_key IS NOT NULL'))

    op.create_table('certification_evidence',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('certification_id', sa.Uuid(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('media_type', sa.String(length=40), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('original_name', sa.String(length=120), nullable=False),
    sa.Column('uploaded_by', sa.String(length=60), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['certification_id'], ['certification.id'], name=op.f('fk_certification_evidence_certification_id_certification')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_certification_evidence'))
    )
    with op.batch_alter_table('certification_evidence', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_certification_evidence_certification_id'), ['certification_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('certification_evidence', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_certification_evidence_certification_id'))

    op.drop_table('certification_evidence')
    with op.batch_alter_table('conversion', schema=None) as batch_op:
        batch_op.drop_index('uq_conversion_approval_key', sqlite_where=sa.text('approval_key IS NOT NULL'), postgresql_where=sa.text('approval_key IS NOT NULL'))
        batch_op.drop_index(batch_op.f('ix_conversion_learner_id'))

    op.drop_table('conversion')
    with op.batch_alter_table('certification', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_certification_learner_id'))

    op.drop_table('certification')
    op.drop_table('conversion_target')
    op.drop_table('certification_standard')
