"""ai config, incident summary, run audit

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 04:59:01.626136
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ai_config',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('engine', sa.String(length=32), nullable=False),
    sa.Column('model', sa.String(length=200), nullable=True),
    sa.Column('base_url', sa.String(length=2000), nullable=True),
    sa.Column('api_key_encrypted', sa.Text(), nullable=True),
    sa.Column('output_mode', sa.String(length=16), nullable=True),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('updated_by_user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_ai_config_org_id_organization'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['updated_by_user_id'], ['user_account.id'], name=op.f('fk_ai_config_updated_by_user_id_user_account'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ai_config')),
    sa.UniqueConstraint('org_id', name=op.f('uq_ai_config_org_id'))
    )
    op.create_table('incident_summary',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('content', sa.JSON(), nullable=True),
    sa.Column('engine', sa.String(length=200), nullable=True),
    sa.Column('evidence_version', sa.String(length=64), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('generated_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], name=op.f('fk_incident_summary_incident_id_incident'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_incident_summary_org_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_summary')),
    sa.UniqueConstraint('incident_id', name=op.f('uq_incident_summary_incident_id'))
    )
    with op.batch_alter_table('generation_run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prompt_version', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('prompt', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('response_raw', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('tokens_in', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('tokens_out', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('model_latency_ms', sa.Integer(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('generation_run', schema=None) as batch_op:
        batch_op.drop_column('model_latency_ms')
        batch_op.drop_column('tokens_out')
        batch_op.drop_column('tokens_in')
        batch_op.drop_column('response_raw')
        batch_op.drop_column('prompt')
        batch_op.drop_column('prompt_version')

    op.drop_table('incident_summary')
    op.drop_table('ai_config')
