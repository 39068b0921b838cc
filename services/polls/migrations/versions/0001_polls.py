"""polls, outbox and processed events

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from services.common import outbox

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "polls",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("municipality_code", sa.String(6), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("template_id", sa.String(60)),
        sa.Column("definition", JSONB, nullable=False),
        sa.Column("audience", JSONB, nullable=False),
        sa.Column("opens_at", sa.DateTime(timezone=True)),
        sa.Column("closes_at", sa.DateTime(timezone=True)),
        sa.Column("reminder_after_hours", JSONB, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("content_hash", sa.String(64)),
        sa.Column("created_by", sa.String(200)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("archived_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(
            "status IN ('draft', 'scheduled', 'open', 'closed', 'archived')",
            name="polls_status_known",
        ),
    )
    op.create_index("polls_by_municipality", "polls", ["municipality_code", "status"])
    op.create_index(
        "polls_due_to_open", "polls", ["opens_at"], postgresql_where=sa.text("status = 'scheduled'")
    )
    op.create_index(
        "polls_due_to_close", "polls", ["closes_at"], postgresql_where=sa.text("status = 'open'")
    )
    outbox.create_tables(op)


def downgrade() -> None:
    op.drop_table("processed_events")
    op.drop_table("outbox")
    op.drop_table("polls")
