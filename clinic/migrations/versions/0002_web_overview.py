"""The clinician's patient list: per-session digests of the uploaded logs, how far each
device is digested, and each patient's computed row (clinic/web/overview.py).

Revision ID: web01
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = 'web01'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('web_session_digests',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('ref', sa.String(length=200), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('digest_json', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], ),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('device_id', 'kind', 'ref', name='uq_web_session_digests_ref')
    )
    with op.batch_alter_table('web_session_digests', schema=None) as batch_op:
        batch_op.create_index('ix_web_session_digests_patient_started', ['patient_id', 'started_at'], unique=False)

    op.create_table('web_digest_marks',
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('through_seq', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], ),
    sa.PrimaryKeyConstraint('device_id')
    )
    op.create_table('web_patient_rows',
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('cache_key', sa.String(length=200), nullable=False),
    sa.Column('row_json', sa.Text(), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], ),
    sa.PrimaryKeyConstraint('patient_id')
    )


def downgrade() -> None:
    op.drop_table('web_patient_rows')
    op.drop_table('web_digest_marks')
    with op.batch_alter_table('web_session_digests', schema=None) as batch_op:
        batch_op.drop_index('ix_web_session_digests_patient_started')
    op.drop_table('web_session_digests')
