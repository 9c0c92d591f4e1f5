"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('mentions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('external_id', sa.String(length=128), nullable=False),
    sa.Column('brand', sa.String(length=128), nullable=False),
    sa.Column('author_id', sa.String(length=128), nullable=False),
    sa.Column('author_handle', sa.String(length=256), nullable=False),
    sa.Column('author_followers', sa.BigInteger(), nullable=False),
    sa.Column('author_verified', sa.Boolean(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('lang', sa.String(length=16), nullable=True),
    sa.Column('url', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('collected_at', sa.DateTime(), nullable=False),
    sa.Column('conversation_id', sa.String(length=128), nullable=True),
    sa.Column('in_reply_to', sa.String(length=128), nullable=True),
    sa.Column('is_brand_reply', sa.Boolean(), nullable=False),
    sa.Column('watch_next_at', sa.DateTime(), nullable=True),
    sa.Column('needs_scoring', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'external_id', name='uq_mentions_source_external_id')
    )
    with op.batch_alter_table('mentions', schema=None) as batch_op:
        batch_op.create_index('ix_mentions_author', ['source', 'author_id', 'created_at'], unique=False)
        batch_op.create_index('ix_mentions_brand_created', ['brand', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_mentions_needs_scoring'), ['needs_scoring'], unique=False)
        batch_op.create_index('ix_mentions_reply', ['source', 'in_reply_to'], unique=False)
        batch_op.create_index(batch_op.f('ix_mentions_watch_next_at'), ['watch_next_at'], unique=False)

    op.create_table('source_cursors',
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('brand', sa.String(length=128), nullable=False),
    sa.Column('cursor', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('source', 'brand')
    )
    op.create_table('storms',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('brand', sa.String(length=128), nullable=False),
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('terms', sa.JSON(), nullable=False),
    sa.Column('opened_at', sa.DateTime(), nullable=False),
    sa.Column('last_post_at', sa.DateTime(), nullable=False),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.Column('expected_per_window', sa.Float(), nullable=False),
    sa.Column('peak_per_window', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('storms', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_storms_brand'), ['brand'], unique=False)

    op.create_table('classifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mention_id', sa.Integer(), nullable=False),
    sa.Column('model', sa.String(length=256), nullable=False),
    sa.Column('model_version', sa.String(length=64), nullable=False),
    sa.Column('lang', sa.String(length=16), nullable=True),
    sa.Column('sentiment', sa.String(length=16), nullable=False),
    sa.Column('sentiment_scores', sa.JSON(), nullable=False),
    sa.Column('negative', sa.Float(), nullable=False),
    sa.Column('complaint', sa.Float(), nullable=False),
    sa.Column('triggers', sa.JSON(), nullable=False),
    sa.Column('classified_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['mention_id'], ['mentions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('mention_id', 'model', 'model_version', name='uq_classification_model')
    )
    with op.batch_alter_table('classifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_classifications_mention_id'), ['mention_id'], unique=False)

    op.create_table('engagement_snapshots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mention_id', sa.Integer(), nullable=False),
    sa.Column('observed_at', sa.DateTime(), nullable=False),
    sa.Column('reposts', sa.BigInteger(), nullable=False),
    sa.Column('replies', sa.BigInteger(), nullable=False),
    sa.Column('likes', sa.BigInteger(), nullable=False),
    sa.Column('quotes', sa.BigInteger(), nullable=False),
    sa.Column('views', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['mention_id'], ['mentions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('engagement_snapshots', schema=None) as batch_op:
        batch_op.create_index('ix_snapshots_mention_time', ['mention_id', 'observed_at'], unique=False)

    op.create_table('escalations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('brand', sa.String(length=128), nullable=False),
    sa.Column('group_key', sa.String(length=256), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('subject_mention_id', sa.Integer(), nullable=True),
    sa.Column('storm_id', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('lang', sa.String(length=16), nullable=True),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('probability', sa.Float(), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('suggested_owner', sa.String(length=256), nullable=True),
    sa.Column('owner_reason', sa.Text(), nullable=True),
    sa.Column('last_alert', sa.JSON(), nullable=False),
    sa.Column('owner', sa.String(length=256), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('claimed_by', sa.String(length=256), nullable=True),
    sa.Column('claimed_at', sa.DateTime(), nullable=True),
    sa.Column('first_reply_at', sa.DateTime(), nullable=True),
    sa.Column('closed_by', sa.String(length=256), nullable=True),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['storm_id'], ['storms.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['subject_mention_id'], ['mentions.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.create_index('ix_escalations_group_state', ['group_key', 'state'], unique=False)

    op.create_table('risk_assessments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mention_id', sa.Integer(), nullable=False),
    sa.Column('probability', sa.Float(), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=True),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('forecast_shares', sa.Float(), nullable=False),
    sa.Column('assessed_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['mention_id'], ['mentions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('risk_assessments', schema=None) as batch_op:
        batch_op.create_index('ix_risk_mention_time', ['mention_id', 'assessed_at'], unique=False)

    op.create_table('storm_members',
    sa.Column('storm_id', sa.Integer(), nullable=False),
    sa.Column('mention_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['mention_id'], ['mentions.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['storm_id'], ['storms.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('storm_id', 'mention_id'),
    sa.UniqueConstraint('mention_id')
    )
    op.create_table('alert_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('escalation_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('channel', sa.String(length=128), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('message_ts', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['escalation_id'], ['escalations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('alert_outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alert_outbox_escalation_id'), ['escalation_id'], unique=False)
        batch_op.create_index('ix_outbox_state', ['state', 'id'], unique=False)

    op.create_table('escalation_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('escalation_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('actor', sa.String(length=256), nullable=True),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['escalation_id'], ['escalations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('escalation_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_escalation_events_escalation_id'), ['escalation_id'], unique=False)

    op.create_table('escalation_mentions',
    sa.Column('escalation_id', sa.Integer(), nullable=False),
    sa.Column('mention_id', sa.Integer(), nullable=False),
    sa.Column('added_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['escalation_id'], ['escalations.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['mention_id'], ['mentions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('escalation_id', 'mention_id')
    )
    op.create_table('feedback_labels',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('escalation_id', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=32), nullable=False),
    sa.Column('by', sa.String(length=256), nullable=True),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['escalation_id'], ['escalations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('feedback_labels', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feedback_labels_escalation_id'), ['escalation_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('feedback_labels', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feedback_labels_escalation_id'))

    op.drop_table('feedback_labels')
    op.drop_table('escalation_mentions')
    with op.batch_alter_table('escalation_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_escalation_events_escalation_id'))

    op.drop_table('escalation_events')
    with op.batch_alter_table('alert_outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_state')
        batch_op.drop_index(batch_op.f('ix_alert_outbox_escalation_id'))

    op.drop_table('alert_outbox')
    op.drop_table('storm_members')
    with op.batch_alter_table('risk_assessments', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_mention_time')

    op.drop_table('risk_assessments')
    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.drop_index('ix_escalations_group_state')

    op.drop_table('escalations')
    with op.batch_alter_table('engagement_snapshots', schema=None) as batch_op:
        batch_op.drop_index('ix_snapshots_mention_time')

    op.drop_table('engagement_snapshots')
    with op.batch_alter_table('classifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_classifications_mention_id'))

    op.drop_table('classifications')
    with op.batch_alter_table('storms', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_storms_brand'))

    op.drop_table('storms')
    op.drop_table('source_cursors')
    with op.batch_alter_table('mentions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mentions_watch_next_at'))
        batch_op.drop_index('ix_mentions_reply')
        batch_op.drop_index(batch_op.f('ix_mentions_needs_scoring'))
        batch_op.drop_index('ix_mentions_brand_created')
        batch_op.drop_index('ix_mentions_author')

    op.drop_table('mentions')
