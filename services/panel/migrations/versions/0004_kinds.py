"""participant kinds: businesses and organisations, their contacts, codes per kind (issue 14)

Revision ID: 0004_kinds
Revises: 0003_regions_feat_regions
Create Date: 2026-12-06 08:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_kinds"
down_revision = "0003_regions_feat_regions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "residents",
        sa.Column("kind", sa.String(length=12), server_default="resident", nullable=False),
    )
    op.add_column("residents", sa.Column("kvk_number", sa.String(length=8), nullable=True))
    op.add_column("residents", sa.Column("organisation_name", sa.String(length=200), nullable=True))
    op.create_index(
        "residents_kvk",
        "residents",
        ["municipality_code", "kvk_number"],
        unique=True,
        postgresql_where=sa.text("kvk_number IS NOT NULL"),
    )
    op.create_table(
        "contacts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("resident_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["resident_id"], ["residents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_contacts_resident_id", "contacts", ["resident_id"])
    op.add_column(
        "invitation_batches",
        sa.Column("kind", sa.String(length=12), server_default="resident", nullable=False),
    )
    op.add_column(
        "invitation_codes",
        sa.Column("kind", sa.String(length=12), server_default="resident", nullable=False),
    )
    op.add_column("invitation_codes", sa.Column("resident_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        "invitation_codes_resident_id_fkey",
        "invitation_codes",
        "residents",
        ["resident_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.add_column(
        "invitation_codes", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.alter_column("invitation_codes", "batch_id", existing_type=sa.Uuid(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM invitation_codes WHERE batch_id IS NULL")
    op.alter_column("invitation_codes", "batch_id", existing_type=sa.Uuid(), nullable=False)
    op.drop_column("invitation_codes", "expires_at")
    op.drop_constraint("invitation_codes_resident_id_fkey", "invitation_codes")
    op.drop_column("invitation_codes", "resident_id")
    op.drop_column("invitation_codes", "kind")
    op.drop_column("invitation_batches", "kind")
    op.drop_index("ix_contacts_resident_id", "contacts")
    op.drop_table("contacts")
    op.drop_index("residents_kvk", "residents")
    op.drop_column("residents", "organisation_name")
    op.drop_column("residents", "kvk_number")
    op.drop_column("residents", "kind")
