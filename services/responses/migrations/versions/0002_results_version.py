"""polls.results_version: bumped by every change that results are computed from

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 16:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "polls",
        sa.Column("results_version", sa.BigInteger(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("polls", "results_version")
