"""activities enrolment attendance records

Revision ID: 8b8138df952d
Revises: b8b98458520a
Create Date: 2026-11-25 04:17:06

Read and edited after autogeneration: plain String types and CHECK constraints on every
status, kind, mode and interval.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '8b8138df952d'
down_revision: str | None = 'b8b98458520a'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('activity',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('category_code', sa.String(length=40), nullable=False),
    sa.Column('mode', sa.String(length=10), nullable=False),
    sa.Column('host_unit', sa.String(length=40), nullable=False),
    sa.Column('host_unit_path', sa.String(length=400), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=True),
    sa.Column('enrol_closes_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('created_by', sa.String(length=60), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['category_code'], ['activity_category.code'], name=op.f('fk_activity_category_code_activity_category')),
    sa.CheckConstraint("kind IN ('course', 'lecture', 'training_class', 'activity', 'online_course')", name=op.f('ck_activity_kind_known')),
    sa.CheckConstraint("mode IN ('offline', 'online', 'blended')", name=op.f('ck_activity_mode_known')),
    sa.CheckConstraint("status IN ('open', 'closed', 'cancelled')", name=op.f('ck_activity_status_known')),
    sa.CheckConstraint("capacity IS NULL OR capacity > 0", name=op.f('ck_activity_capacity_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activity'))
    )
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_activity_host_unit_path'), ['host_unit_path'], unique=False, postgresql_ops={'host_unit_path': 'text_pattern_ops'})

    op.create_table('activity_session',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('activity_id', sa.Uuid(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('place', sa.String(length=120), nullable=True),
    sa.Column('planned_minutes', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['activity_id'], ['activity.id'], name=op.f('fk_activity_session_activity_id_activity')),
    sa.CheckConstraint("ends_at > starts_at", name=op.f('ck_activity_session_ends_after_start')),
    sa.CheckConstraint("planned_minutes > 0", name=op.f('ck_activity_session_planned_minutes_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activity_session'))
    )
    with op.batch_alter_table('activity_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_activity_session_activity_id'), ['activity_id'], unique=False)

    op.create_table('enrolment',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('activity_id', sa.Uuid(), nullable=False),
    sa.Column('learner_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('enrolled_by', sa.String(length=60), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['activity_id'], ['activity.id'], name=op.f('fk_enrolment_activity_id_activity')),
    sa.CheckConstraint("status IN ('enrolled', 'waitlisted', 'cancelled')", name=op.f('ck_enrolment_status_known')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enrolment'))
    )
    with op.batch_alter_table('enrolment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_enrolment_activity_id'), ['activity_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_enrolment_learner_id'), ['learner_id'], unique=False)
        batch_op.create_index('uq_enrolment_live', ['activity_id', 'learner_id'], unique=True, sqlite_where=sa.text("status != 'cancelled'"), postgresql_where=sa.text("status != 'cancelled'"))

    op.create_table('learning_record',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('learner_id', sa.Uuid(), nullable=False),
    sa.Column('activity_id', sa.Uuid(), nullable=False),
    sa.Column('session_id', sa.Uuid(), nullable=True),
    sa.Column('category_code', sa.String(length=40), nullable=False),
    sa.Column('mode', sa.String(length=10), nullable=False),
    sa.Column('host_unit_path', sa.String(length=400), nullable=False),
    sa.Column('source', sa.String(length=12), nullable=False),
    sa.Column('source_client', sa.String(length=60), nullable=True),
    sa.Column('external_id', sa.String(length=120), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('minutes', sa.Integer(), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('status_changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status_changed_by', sa.String(length=60), nullable=False),
    sa.Column('status_reason', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['activity_id'], ['activity.id'], name=op.f('fk_learning_record_activity_id_activity')),
    sa.ForeignKeyConstraint(['session_id'], ['activity_session.id'], name=op.f('fk_learning_record_session_id_activity_session')),
    sa.CheckConstraint("status IN ('pending', 'verified', 'rejected', 'voided')", name=op.f('ck_learning_record_status_known')),
    sa.CheckConstraint("source IN ('check_in', 'staff_entry', 'partner', 'xapi', 'import')", name=op.f('ck_learning_record_source_known')),
    sa.CheckConstraint("minutes >= 0", name=op.f('ck_learning_record_minutes_nonnegative')),
    sa.CheckConstraint("ended_at >= started_at", name=op.f('ck_learning_record_ended_after_start')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_learning_record'))
    )
    with op.batch_alter_table('learning_record', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_learning_record_activity_id'), ['activity_id'], unique=False)
        batch_op.create_index('ix_learning_record_learner_started', ['learner_id', 'started_at'], unique=False)
        batch_op.create_index('uq_learning_record_external', ['source_client', 'external_id'], unique=True, sqlite_where=sa.text('external_id IS NOT NULL'), postgresql_where=sa.text('external_id IS NOT NULL'))

    op.create_table('attendance',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('session_id', sa.Uuid(), nullable=False),
    sa.Column('learner_id', sa.Uuid(), nullable=False),
    sa.Column('checked_in_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('checked_out_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('record_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['record_id'], ['learning_record.id'], name=op.f('fk_attendance_record_id_learning_record')),
    sa.ForeignKeyConstraint(['session_id'], ['activity_session.id'], name=op.f('fk_attendance_session_id_activity_session')),
    sa.CheckConstraint("checked_out_at IS NULL OR checked_out_at >= checked_in_at", name=op.f('ck_attendance_out_after_in')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attendance')),
    sa.UniqueConstraint('session_id', 'learner_id', name=op.f('uq_attendance_session_id_learner_id'))
    )
    with op.batch_alter_table('attendance', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attendance_learner_id'), ['learner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_attendance_session_id'), ['session_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('attendance', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attendance_session_id'))
        batch_op.drop_index(batch_op.f('ix_attendance_learner_id'))

    op.drop_table('attendance')
    with op.batch_alter_table('learning_record', schema=None) as batch_op:
        batch_op.drop_index('uq_learning_record_external', sqlite_where=sa.text('external_id IS NOT NULL'), postgresql_where=sa.text('external_id IS NOT NULL'))
        batch_op.drop_index('ix_learning_record_learner_started')
        batch_op.drop_index(batch_op.f('ix_learning_record_activity_id'))

    op.drop_table('learning_record')
    with op.batch_alter_table('enrolment', schema=None) as batch_op:
        batch_op.drop_index('uq_enrolment_live', sqlite_where=sa.text("status != 'cancelled'"), postgresql_where=sa.text("status != 'cancelled'"))
        batch_op.drop_index(batch_op.f('ix_enrolment_learner_id'))
        batch_op.drop_index(batch_op.f('ix_enrolment_activity_id'))

    op.drop_table('enrolment')
    with op.batch_alter_table('activity_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_activity_session_activity_id'))

    op.drop_table('activity_session')
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_activity_host_unit_path'))

    op.drop_table('activity')
