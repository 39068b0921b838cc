"""issue 14 (e-mail link): a revoked personal link can be reissued — the invitation counts its
link's generation (only the current one answers) and the requests for a new link (limited)

Revision ID: 0006_relink
Revises: 0005_every_device
Create Date: 2026-12-07 16:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_relink"
down_revision = "0005_every_device"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Constant defaults: PostgreSQL adds the columns without rewriting the table.
    op.add_column(
        "invitations",
        sa.Column("link_generation", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column(
        "invitations",
        sa.Column("link_requests", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("invitations", "link_requests")
    op.drop_column("invitations", "link_generation")
