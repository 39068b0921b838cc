"""participant kinds (issue 14): a poll reaches the kinds of participant its audience names

Revision ID: 0003_kinds
Revises: 0002_fix_audience
Create Date: 2026-12-06 08:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_kinds"
down_revision = "0002_fix_audience"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "residents",
        sa.Column("kind", sa.String(length=12), server_default="resident", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("residents", "kind")
