"""The review's drawn charts, shared by every serving process and the pre-draw
(clinic/web/charts.py): one picture per patient, language and range of days.

Revision ID: chart01
Revises: web01
"""
from alembic import op
import sqlalchemy as sa


revision = 'chart01'
down_revision = 'web01'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('web_review_charts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('lang', sa.String(length=8), nullable=False),
    sa.Column('first_day', sa.Date(), nullable=False),
    sa.Column('last_day', sa.Date(), nullable=False),
    sa.Column('chart_state', sa.String(length=64), nullable=False),
    sa.Column('log_mark', sa.String(length=64), nullable=False),
    sa.Column('png', sa.LargeBinary(), nullable=False),
    sa.Column('drawn_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('draw_cpu_ms', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('patient_id', 'lang', 'first_day', 'last_day', name='uq_web_review_charts_range')
    )


def downgrade() -> None:
    op.drop_table('web_review_charts')
