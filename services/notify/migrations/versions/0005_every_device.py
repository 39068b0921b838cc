"""issue 14 (contacts): a notification reaches every device of its participant — each contact's
phone and computer — and a delivery remembers the devices it is done with, so a retry, a sweep
or a replay goes only to the others

Revision ID: 0005_every_device
Revises: 0004_emaillink
Create Date: 2026-12-07 09:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005_every_device"
down_revision = "0004_emaillink"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant default: PostgreSQL adds the column without rewriting the table.
    op.add_column(
        "deliveries",
        sa.Column(
            "done_endpoints",
            postgresql.ARRAY(sa.Uuid()),
            server_default=sa.text("'{}'::uuid[]"),
            nullable=False,
        ),
    )


def downgrade() -> None:
    op.drop_column("deliveries", "done_endpoints")
