"""regions and their versions (feat/regions, issue 13)

Revision ID: 0003_regions_feat_regions
Revises: 0002_access_sessions
Create Date: 2026-12-06 02:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003_regions_feat_regions"
down_revision = "0002_access_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "regions",
        sa.Column("code", sa.String(length=10), nullable=False),
        sa.Column("municipality_code", sa.String(length=6), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_index("regions_by_municipality", "regions", ["municipality_code"])
    op.create_table(
        "region_versions",
        sa.Column("code", sa.String(length=10), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("buurt_codes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=True),
        sa.ForeignKeyConstraint(["code"], ["regions.code"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("code", "version"),
    )


def downgrade() -> None:
    op.drop_table("region_versions")
    op.drop_index("regions_by_municipality", table_name="regions")
    op.drop_table("regions")
