"""action items, comments, reviews, revision versions, review mode

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 19:05:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('action_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=1000), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('priority', sa.String(length=16), nullable=False),
    sa.Column('owner', sa.String(length=320), nullable=True),
    sa.Column('owner_user_id', sa.Integer(), nullable=True),
    sa.Column('due_date', sa.Date(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=True),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('service', sa.String(length=200), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('source_key', sa.String(length=64), nullable=True),
    sa.Column('duplicate_of_id', sa.Integer(), nullable=True),
    sa.Column('external', sa.JSON(), nullable=True),
    sa.Column('created_by', sa.String(length=320), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['duplicate_of_id'], ['action_item.id'], name=op.f('fk_action_item_duplicate_of_id_action_item'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], name=op.f('fk_action_item_incident_id_incident'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_action_item_org_id_organization'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['owner_user_id'], ['user_account.id'], name=op.f('fk_action_item_owner_user_id_user_account'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_action_item')),
    sa.UniqueConstraint('org_id', 'incident_id', 'source_key', name=op.f('uq_action_item_org_id'))
    )
    with op.batch_alter_table('action_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_action_item_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index('ix_action_item_org_status', ['org_id', 'status'], unique=False)

    op.create_table('postmortem_comment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('postmortem_id', sa.Integer(), nullable=False),
    sa.Column('section', sa.String(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('author_user_id', sa.Integer(), nullable=True),
    sa.Column('author', sa.String(length=320), nullable=False),
    sa.Column('resolved', sa.Boolean(), nullable=False),
    sa.Column('resolved_by', sa.String(length=320), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_user_id'], ['user_account.id'], name=op.f('fk_postmortem_comment_author_user_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_postmortem_comment_org_id_organization'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['parent_id'], ['postmortem_comment.id'], name=op.f('fk_postmortem_comment_parent_id_postmortem_comment'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['postmortem_id'], ['postmortem.id'], name=op.f('fk_postmortem_comment_postmortem_id_postmortem'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_postmortem_comment'))
    )
    with op.batch_alter_table('postmortem_comment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_postmortem_comment_postmortem_id'), ['postmortem_id'], unique=False)

    op.create_table('postmortem_review',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('postmortem_id', sa.Integer(), nullable=False),
    sa.Column('reviewer_user_id', sa.Integer(), nullable=False),
    sa.Column('reviewer', sa.String(length=320), nullable=False),
    sa.Column('state', sa.String(length=24), nullable=False),
    sa.Column('approved_version', sa.Integer(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('requested_by', sa.String(length=320), nullable=True),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_postmortem_review_org_id_organization'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['postmortem_id'], ['postmortem.id'], name=op.f('fk_postmortem_review_postmortem_id_postmortem'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reviewer_user_id'], ['user_account.id'], name=op.f('fk_postmortem_review_reviewer_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_postmortem_review')),
    sa.UniqueConstraint('postmortem_id', 'reviewer_user_id', name=op.f('uq_postmortem_review_postmortem_id'))
    )
    with op.batch_alter_table('postmortem_review', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_postmortem_review_postmortem_id'), ['postmortem_id'], unique=False)

    with op.batch_alter_table('organization', schema=None) as batch_op:
        batch_op.add_column(sa.Column('review_mode', sa.String(length=16), server_default='off', nullable=False))

    with op.batch_alter_table('postmortem_revision', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('postmortem_revision', schema=None) as batch_op:
        batch_op.drop_column('version')

    with op.batch_alter_table('organization', schema=None) as batch_op:
        batch_op.drop_column('review_mode')

    with op.batch_alter_table('postmortem_review', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_postmortem_review_postmortem_id'))

    op.drop_table('postmortem_review')
    with op.batch_alter_table('postmortem_comment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_postmortem_comment_postmortem_id'))

    op.drop_table('postmortem_comment')
    with op.batch_alter_table('action_item', schema=None) as batch_op:
        batch_op.drop_index('ix_action_item_org_status')
        batch_op.drop_index(batch_op.f('ix_action_item_incident_id'))

    op.drop_table('action_item')
