"""issue 15 (items 3, 4): invitations keep whether, not when or where, a resident answered;
tombstones of residents who left, so a late resident_joined/updated cannot bring them back

Revision ID: 0002_fix_audience
Revises: 0001
Create Date: 2026-12-05 23:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_fix_audience"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "invitations",
        sa.Column("answered", sa.Boolean(), server_default="false", nullable=False),
    )
    op.alter_column("invitations", "wijk_code", nullable=True)
    op.alter_column("invitations", "buurt_code", nullable=True)
    op.execute(
        "UPDATE invitations SET answered = true, wijk_code = NULL, buurt_code = NULL "
        "WHERE answered_at IS NOT NULL"
    )
    op.drop_column("invitations", "answered_at")
    op.create_table(
        "left_residents",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id_hash"),
    )


def downgrade() -> None:
    op.drop_table("left_residents")
    op.add_column(
        "invitations", sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.execute("UPDATE invitations SET answered_at = invited_at WHERE answered")
    op.execute("DELETE FROM invitations WHERE wijk_code IS NULL OR buurt_code IS NULL")
    op.alter_column("invitations", "wijk_code", nullable=False)
    op.alter_column("invitations", "buurt_code", nullable=False)
    op.drop_column("invitations", "answered")
