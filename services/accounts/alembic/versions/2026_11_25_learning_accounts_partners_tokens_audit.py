"""learning accounts partners tokens audit

Revision ID: 1334c3889a6f
Revises: e572189cb3bf
Create Date: 2026-11-25 03:42:48

Read and edited after autogeneration: plain String types, CHECK constraints on statuses and
counters, a server default for the new staff counter, text_pattern_ops on residence_path.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '1334c3889a6f'
down_revision: str | None = 'e572189cb3bf'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('account_number_sequence',
    sa.Column('district_code', sa.String(length=6), nullable=False),
    sa.Column('last_value', sa.Integer(), nullable=False),
    sa.CheckConstraint("last_value >= 0", name=op.f('ck_account_number_sequence_last_value_nonnegative')),
    sa.PrimaryKeyConstraint('district_code', name=op.f('pk_account_number_sequence'))
    )
    op.create_table('audit_entry',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('actor_kind', sa.String(length=20), nullable=False),
    sa.Column('actor_role', sa.String(length=40), nullable=True),
    sa.Column('actor_unit', sa.String(length=40), nullable=True),
    sa.Column('action', sa.String(length=60), nullable=False),
    sa.Column('target_type', sa.String(length=40), nullable=False),
    sa.Column('target_id', sa.String(length=80), nullable=False),
    sa.Column('before_digest', sa.String(length=64), nullable=True),
    sa.Column('after_digest', sa.String(length=64), nullable=True),
    sa.Column('reason', sa.String(length=300), nullable=True),
    sa.Column('request_id', sa.String(length=128), nullable=True),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_entry'))
    )
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_entry_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_entry_target_id'), ['target_id'], unique=False)

    op.create_table('refresh_token',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('family_id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=60), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refresh_token')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_refresh_token_token_hash'))
    )
    with op.batch_alter_table('refresh_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refresh_token_family_id'), ['family_id'], unique=False)

    op.create_table('learning_account',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('account_number', sa.String(length=14), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('id_number_cipher', sa.LargeBinary(), nullable=False),
    sa.Column('id_number_index', sa.String(length=64), nullable=False),
    sa.Column('id_number_masked', sa.String(length=18), nullable=False),
    sa.Column('phone_cipher', sa.LargeBinary(), nullable=True),
    sa.Column('phone_index', sa.String(length=64), nullable=True),
    sa.Column('phone_masked', sa.String(length=11), nullable=True),
    sa.Column('birth_date', sa.Date(), nullable=False),
    sa.Column('gender', sa.String(length=6), nullable=False),
    sa.Column('residence_unit_id', sa.Uuid(), nullable=False),
    sa.Column('residence_path', sa.String(length=400), nullable=False),
    sa.Column('groups', sa.JSON(), nullable=False),
    sa.Column('roles', sa.JSON(), nullable=False),
    sa.Column('consent_version', sa.String(length=20), nullable=False),
    sa.Column('consent_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('consent_channel', sa.String(length=20), nullable=False),
    sa.Column('guardian_name', sa.String(length=60), nullable=True),
    sa.Column('guardian_consent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('status_reason', sa.String(length=200), nullable=True),
    sa.Column('password_hash', sa.String(length=200), nullable=True),
    sa.Column('failed_sign_ins', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('active', 'frozen', 'closed')", name=op.f('ck_learning_account_status_known')),
    sa.CheckConstraint("gender IN ('male', 'female')", name=op.f('ck_learning_account_gender_known')),
    sa.CheckConstraint("failed_sign_ins >= 0", name=op.f('ck_learning_account_failed_sign_ins_nonnegative')),
    sa.ForeignKeyConstraint(['residence_unit_id'], ['unit.id'], name=op.f('fk_learning_account_residence_unit_id_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_learning_account')),
    sa.UniqueConstraint('account_number', name=op.f('uq_learning_account_account_number')),
    sa.UniqueConstraint('id_number_index', name=op.f('uq_learning_account_id_number_index'))
    )
    with op.batch_alter_table('learning_account', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_learning_account_phone_index'), ['phone_index'], unique=False)
        batch_op.create_index(batch_op.f('ix_learning_account_residence_path'), ['residence_path'], unique=False, postgresql_ops={'residence_path': 'text_pattern_ops'})
        batch_op.create_index(batch_op.f('ix_learning_account_residence_unit_id'), ['residence_unit_id'], unique=False)

    op.create_table('partner_client',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('client_id', sa.String(length=60), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('secret_hash', sa.String(length=200), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('unit_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('secret_rotated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_partner_client_unit_id_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partner_client')),
    sa.CheckConstraint("status IN ('active', 'disabled')", name=op.f('ck_partner_client_status_known')),
    sa.UniqueConstraint('client_id', name=op.f('uq_partner_client_client_id'))
    )
    with op.batch_alter_table('partner_client', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_partner_client_unit_id'), ['unit_id'], unique=False)

    with op.batch_alter_table('staff_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failed_sign_ins', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('staff_user', schema=None) as batch_op:
        batch_op.drop_column('locked_until')
        batch_op.drop_column('failed_sign_ins')

    with op.batch_alter_table('partner_client', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_partner_client_unit_id'))

    op.drop_table('partner_client')
    with op.batch_alter_table('learning_account', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_learning_account_residence_unit_id'))
        batch_op.drop_index(batch_op.f('ix_learning_account_residence_path'))
        batch_op.drop_index(batch_op.f('ix_learning_account_phone_index'))

    op.drop_table('learning_account')
    with op.batch_alter_table('refresh_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refresh_token_family_id'))

    op.drop_table('refresh_token')
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_entry_target_id'))
        batch_op.drop_index(batch_op.f('ix_audit_entry_action'))

    op.drop_table('audit_entry')
    op.drop_table('account_number_sequence')
