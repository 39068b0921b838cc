"""polls: the series a poll belongs to (previous_poll_id, wave), from poll_published, for the
safety overview's trend arrows (issue 13)

Revision ID: 0005_series_feat_overview
Revises: 0004_bounds_municipalities
Create Date: 2026-12-06 05:10:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0005_series_feat_overview"
down_revision = "0004_bounds_municipalities"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("polls", sa.Column("previous_poll_id", UUID(as_uuid=True), nullable=True))
    op.add_column("polls", sa.Column("wave", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    op.drop_column("polls", "wave")
    op.drop_column("polls", "previous_poll_id")
