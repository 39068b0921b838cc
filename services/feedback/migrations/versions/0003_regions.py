"""regions (issue 13): the regions a poll's audience named and the region versions polls froze,
so open measures can be counted per region

Polls projected before this revision have no ``region_codes`` and left no region versions
(their events were consumed already): a region counts open measures once a poll published
after it froze the region.

Revision ID: 0003_regions
Revises: 0002 (reaction_releases)
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003_regions"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "polls",
        sa.Column("region_codes", JSONB, server_default=sa.text("'[]'::jsonb"), nullable=False),
    )
    op.create_table(
        "region_versions",
        sa.Column("code", sa.String(10), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("municipality_code", sa.String(6), nullable=False),
        sa.Column("buurt_codes", JSONB, nullable=False),
    )
    op.create_index("region_versions_by_municipality", "region_versions", ["municipality_code"])


def downgrade() -> None:
    op.drop_table("region_versions")
    op.drop_column("polls", "region_codes")
