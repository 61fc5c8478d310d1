"""issued documents: every transcript and credential issued, its status list bit and revocation

Revision ID: f32f8ce6ebe9
Revises: 51aef828bed9
Create Date: 2026-11-25 12:33:52.215538
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'f32f8ce6ebe9'
down_revision: str | None = '51aef828bed9'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('issued_document',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('document_id', sa.Uuid(), nullable=False),
    sa.Column('certificate_number', sa.String(length=24), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('learner_id', sa.Uuid(), nullable=False),
    sa.Column('subject_ref', sa.String(length=80), nullable=False),
    sa.Column('title', sa.String(length=160), nullable=False),
    sa.Column('holder_masked_name', sa.String(length=40), nullable=False),
    sa.Column('issued_by', sa.String(length=60), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status_list', sa.Integer(), nullable=True),
    sa.Column('status_index', sa.Integer(), nullable=True),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_reason', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_issued_document')),
    sa.UniqueConstraint('certificate_number', name=op.f('uq_issued_document_certificate_number')),
    sa.UniqueConstraint('document_id', name=op.f('uq_issued_document_document_id')),
    sa.UniqueConstraint('status_list', 'status_index', name=op.f('uq_issued_document_status_list_status_index'))
    )
    with op.batch_alter_table('issued_document', schema=None) as batch_op:
        batch_op.create_index('ix_issued_document_learner_subject', ['learner_id', 'subject_ref'], unique=False)
        batch_op.create_index('ix_issued_document_revoked', ['status_list'], unique=False, sqlite_where=sa.text('revoked_at IS NOT NULL'), postgresql_where=sa.text('revoked_at IS NOT NULL'))



def downgrade() -> None:
    with op.batch_alter_table('issued_document', schema=None) as batch_op:
        batch_op.drop_index('ix_issued_document_revoked', sqlite_where=sa.text('revoked_at IS NOT NULL'), postgresql_where=sa.text('revoked_at IS NOT NULL'))
        batch_op.drop_index('ix_issued_document_learner_subject')

    op.drop_table('issued_document')
