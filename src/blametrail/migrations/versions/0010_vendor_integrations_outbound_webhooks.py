"""vendor integrations, outbound webhooks, customer versions

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 19:40:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outbound_endpoint',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('events', sa.JSON(), nullable=False),
    sa.Column('secret_encrypted', sa.Text(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('disabled_reason', sa.Text(), nullable=True),
    sa.Column('failure_streak', sa.Integer(), nullable=False),
    sa.Column('first_failure_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=320), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_outbound_endpoint_org_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbound_endpoint'))
    )
    with op.batch_alter_table('outbound_endpoint', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbound_endpoint_org_id'), ['org_id'], unique=False)

    op.create_table('vendor_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('event_id', sa.String(length=255), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_vendor_event_org_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vendor_event')),
    sa.UniqueConstraint('org_id', 'kind', 'event_id', name=op.f('uq_vendor_event_org_id'))
    )
    with op.batch_alter_table('vendor_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vendor_event_received_at'), ['received_at'], unique=False)

    op.create_table('vendor_integration',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('secrets_encrypted', sa.Text(), nullable=True),
    sa.Column('inbound_uid', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=320), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_vendor_integration_org_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vendor_integration')),
    sa.UniqueConstraint('inbound_uid', name=op.f('uq_vendor_integration_inbound_uid')),
    sa.UniqueConstraint('org_id', 'kind', name=op.f('uq_vendor_integration_org_id'))
    )
    op.create_table('customer_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('public_token', sa.String(length=64), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('removed', sa.JSON(), nullable=False),
    sa.Column('source_version', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_by', sa.String(length=320), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], name=op.f('fk_customer_version_incident_id_incident'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_customer_version_org_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_version')),
    sa.UniqueConstraint('incident_id', name=op.f('uq_customer_version_incident_id')),
    sa.UniqueConstraint('public_token', name=op.f('uq_customer_version_public_token'))
    )
    op.create_table('outbound_delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('msg_id', sa.String(length=64), nullable=False),
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['endpoint_id'], ['outbound_endpoint.id'], name=op.f('fk_outbound_delivery_endpoint_id_outbound_endpoint'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_outbound_delivery_org_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbound_delivery'))
    )
    with op.batch_alter_table('outbound_delivery', schema=None) as batch_op:
        batch_op.create_index('ix_outbound_delivery_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbound_delivery_endpoint_id'), ['endpoint_id'], unique=False)

    op.create_table('external_link',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('external_id', sa.String(length=255), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('action_item_id', sa.Integer(), nullable=True),
    sa.Column('entry_id', sa.Integer(), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['action_item_id'], ['action_item.id'], name=op.f('fk_external_link_action_item_id_action_item'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['entry_id'], ['timeline_entry.id'], name=op.f('fk_external_link_entry_id_timeline_entry'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], name=op.f('fk_external_link_incident_id_incident'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_external_link_org_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_external_link')),
    sa.UniqueConstraint('org_id', 'kind', 'external_id', name=op.f('uq_external_link_org_id'))
    )
    with op.batch_alter_table('external_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_external_link_action_item_id'), ['action_item_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_external_link_incident_id'), ['incident_id'], unique=False)

    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.add_column(sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('acknowledged_by', sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column('mitigated_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('organization', schema=None) as batch_op:
        batch_op.add_column(sa.Column('public_postmortems', sa.Boolean(), server_default=sa.false(), nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('organization', schema=None) as batch_op:
        batch_op.drop_column('public_postmortems')

    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.drop_column('mitigated_at')
        batch_op.drop_column('acknowledged_by')
        batch_op.drop_column('acknowledged_at')

    with op.batch_alter_table('external_link', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_external_link_incident_id'))
        batch_op.drop_index(batch_op.f('ix_external_link_action_item_id'))

    op.drop_table('external_link')
    with op.batch_alter_table('outbound_delivery', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbound_delivery_endpoint_id'))
        batch_op.drop_index('ix_outbound_delivery_due')

    op.drop_table('outbound_delivery')
    op.drop_table('customer_version')
    op.drop_table('vendor_integration')
    with op.batch_alter_table('vendor_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vendor_event_received_at'))

    op.drop_table('vendor_event')
    with op.batch_alter_table('outbound_endpoint', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbound_endpoint_org_id'))

    op.drop_table('outbound_endpoint')
