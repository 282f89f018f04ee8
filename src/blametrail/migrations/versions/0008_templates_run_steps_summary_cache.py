"""org templates, generation steps, cached observations of live summaries

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 15:40:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('org_template',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=320), nullable=True),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_org_template_org_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_org_template')),
    sa.UniqueConstraint('org_id', name=op.f('uq_org_template_org_id'))
    )
    with op.batch_alter_table('generation_run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('step', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('step_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('incident_summary', schema=None) as batch_op:
        batch_op.add_column(sa.Column('observations', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('observed_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('incident_summary', schema=None) as batch_op:
        batch_op.drop_column('observed_at')
        batch_op.drop_column('observations')
    with op.batch_alter_table('generation_run', schema=None) as batch_op:
        batch_op.drop_column('step_at')
        batch_op.drop_column('step')
    op.drop_table('org_template')
