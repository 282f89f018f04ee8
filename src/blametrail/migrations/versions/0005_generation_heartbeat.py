"""generation heartbeat

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 07:30:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('postmortem', schema=None) as batch_op:
        batch_op.add_column(sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('postmortem', schema=None) as batch_op:
        batch_op.drop_column('heartbeat_at')
