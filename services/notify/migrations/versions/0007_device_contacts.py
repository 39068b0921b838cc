"""a device remembers the contact who registered it; tombstones of contacts who left alone

Devices registered before this migration keep contact_id NULL: whose they are is not known
(listed as such; any contact of the organisation may remove them).

Revision ID: 0007_device_contacts
Revises: 0006_relink
Create Date: 2026-12-06 16:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_device_contacts"
down_revision = "0006_relink"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("endpoints", sa.Column("contact_id", sa.Uuid(), nullable=True))
    op.create_table(
        "left_contacts",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id_hash"),
    )


def downgrade() -> None:
    op.drop_table("left_contacts")
    op.drop_column("endpoints", "contact_id")
