"""feedback: poll projection, feedback, measures, notes, reactions, reminders, outbox

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from services.common import outbox

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "polls",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("municipality_code", sa.String(6), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("audience_kind", sa.String(20), nullable=False),
        sa.Column("area_codes", JSONB, nullable=False),
        sa.Column("published_at", TS, nullable=False),
        sa.Column("closed_at", TS),
    )
    op.create_index("feedback_polls_by_municipality", "polls", ["municipality_code"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("poll_id", sa.Uuid, sa.ForeignKey("polls.id"), nullable=False, unique=True),
        sa.Column("municipality_code", sa.String(6), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("title", sa.String(120), nullable=False),
        sa.Column("heard", sa.Text, nullable=False),
        sa.Column("plan", sa.Text, nullable=False),
        sa.Column("not_followed", sa.Text),
        sa.Column("key_figure_requests", JSONB, nullable=False),
        sa.Column("key_figures", JSONB, nullable=False),
        sa.Column("notify_all_invitees", sa.Boolean, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("updated_by", sa.String(320)),
        sa.Column("published_at", TS),
        sa.Column("published_by", sa.String(320)),
        sa.CheckConstraint("status IN ('draft', 'published')", name="feedback_status_known"),
    )
    op.create_index("feedback_by_municipality", "feedback", ["municipality_code", "status"])
    op.create_table(
        "measures",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("feedback_id", sa.Uuid, sa.ForeignKey("feedback.id"), nullable=False),
        sa.Column("municipality_code", sa.String(6), nullable=False),
        sa.Column("title", sa.String(120), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("area_codes", JSONB, nullable=False),
        sa.Column("owner", sa.String(120), nullable=False),
        sa.Column("expected_date", sa.Date),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("updated_by", sa.String(320)),
        sa.CheckConstraint(
            "status IN ('planned', 'in_progress', 'done', 'dropped')", name="measures_status_known"
        ),
    )
    op.create_index("measures_by_feedback", "measures", ["feedback_id"])
    op.create_table(
        "measure_notes",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("measure_id", sa.Uuid, sa.ForeignKey("measures.id"), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(320)),
    )
    op.create_index("measure_notes_by_measure", "measure_notes", ["measure_id", "id"])
    op.create_table(
        "reactions",
        sa.Column("feedback_id", sa.Uuid, sa.ForeignKey("feedback.id"), primary_key=True),
        sa.Column("reactor_key", sa.String(64), primary_key=True),
        sa.Column("municipality_code", sa.String(6), nullable=False),
        sa.Column("wijk_code", sa.String(8)),
        sa.Column("buurt_code", sa.String(10)),
        sa.Column("useful", sa.Boolean, nullable=False),
        sa.Column("comment", sa.Text),
    )
    op.create_index("reactions_by_key", "reactions", ["reactor_key"])
    op.create_table(
        "overdue_reminders",
        sa.Column("poll_id", sa.Uuid, sa.ForeignKey("polls.id"), primary_key=True),
        sa.Column("municipality_code", sa.String(6), nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("claimed_at", TS, nullable=False),
        sa.Column("sent_at", TS),
        sa.Column("recipients", sa.Integer, nullable=False),
    )
    outbox.create_tables(op)


def downgrade() -> None:
    op.drop_table("processed_events")
    op.drop_table("outbox")
    for table in ("overdue_reminders", "reactions", "measure_notes", "measures", "feedback"):
        op.drop_table(table)
    op.drop_table("polls")
