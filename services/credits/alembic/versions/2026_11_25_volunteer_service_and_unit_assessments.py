"""volunteer service entries and unit assessment totals (the cap of volunteer points)

Revision ID: 51aef828bed9
Revises: 6c1f2b7d9a34
Create Date: 2026-11-25 13:24:26.933854
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '51aef828bed9'
down_revision: str | None = '6c1f2b7d9a34'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('unit_assessment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit', sa.String(length=40), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('total_hundredths', sa.Integer(), nullable=False),
    sa.Column('set_by', sa.String(length=60), nullable=False),
    sa.Column('set_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_unit_assessment')),
    sa.UniqueConstraint('unit', 'year', name=op.f('uq_unit_assessment_unit_year'))
    )
    op.create_table('volunteer_service',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('learner_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('unit', sa.String(length=40), nullable=False),
    sa.Column('unit_path', sa.String(length=400), nullable=False),
    sa.Column('activity_id', sa.Uuid(), nullable=False),
    sa.Column('session_id', sa.Uuid(), nullable=True),
    sa.Column('occasion', sa.String(length=60), nullable=False),
    sa.Column('served_on', sa.Date(), nullable=False),
    sa.Column('minutes', sa.Integer(), nullable=False),
    sa.Column('recorded_by', sa.String(length=60), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['activity_id'], ['activity.id'], name=op.f('fk_volunteer_service_activity_id_activity')),
    sa.ForeignKeyConstraint(['session_id'], ['activity_session.id'], name=op.f('fk_volunteer_service_session_id_activity_session')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_volunteer_service')),
    sa.UniqueConstraint('learner_id', 'kind', 'occasion', name=op.f('uq_volunteer_service_learner_id_kind_occasion'))
    )
    with op.batch_alter_table('volunteer_service', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_volunteer_service_learner_id'), ['learner_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('volunteer_service', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_volunteer_service_learner_id'))

    op.drop_table('volunteer_service')
    op.drop_table('unit_assessment')
