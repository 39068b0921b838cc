"""series of polls: the previous wave and the wave number (feat/regions, issue 13)

Revision ID: 0002_series_feat_regions
Revises: 0001
Create Date: 2026-12-06 02:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_series_feat_regions"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("polls", sa.Column("previous_poll_id", sa.Uuid(), nullable=True))
    op.add_column("polls", sa.Column("wave", sa.Integer(), server_default="1", nullable=False))


def downgrade() -> None:
    op.drop_column("polls", "wave")
    op.drop_column("polls", "previous_poll_id")
