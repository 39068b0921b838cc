"""feedback: reaction figures released in versions (reaction_releases; each reaction's state in
the released version)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column(
        "reactions",
        sa.Column("in_release", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.alter_column("reactions", "in_release", server_default=None)
    op.add_column("reactions", sa.Column("released_wijk", sa.String(8)))
    op.add_column("reactions", sa.Column("released_comment", sa.Text))
    op.create_table(
        "reaction_releases",
        sa.Column("feedback_id", sa.Uuid, sa.ForeignKey("feedback.id"), primary_key=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("k", sa.Integer, nullable=False),
        sa.Column("released_at", TS, nullable=False),
        sa.Column("counts", JSONB, nullable=False),
        sa.Column("hidden", JSONB, nullable=False),
        sa.Column("at_least_one", JSONB, nullable=False),
        sa.Column("document", JSONB, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("reaction_releases")
    op.drop_column("reactions", "released_comment")
    op.drop_column("reactions", "released_wijk")
    op.drop_column("reactions", "in_release")
