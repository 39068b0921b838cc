"""issue 14 (e-mail link): an invitation's personal link can be revoked by its participant

Revision ID: 0004_emaillink
Revises: 0003_kinds
Create Date: 2026-12-06 08:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_emaillink"
down_revision = "0003_kinds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("invitations", sa.Column("link_revoked_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("invitations", "link_revoked_at")
