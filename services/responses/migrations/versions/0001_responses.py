"""responses

Revision ID: 0001
Revises:
Create Date: 2026-11-25 14:11:02.362804
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from services.common import outbox

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "area_margins",
        sa.Column("municipality_code", sa.String(length=6), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=10), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("parent_code", sa.String(length=10), nullable=True),
        sa.Column("population", sa.Integer(), nullable=True),
        sa.Column("sex", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("age", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("municipality_code", "year", "code"),
    )
    op.create_table(
        "counts",
        sa.Column("poll_id", sa.Uuid(), nullable=False),
        sa.Column("question_id", sa.String(length=40), nullable=False),
        sa.Column("option", sa.String(length=40), nullable=False),
        sa.Column("area_code", sa.String(length=10), nullable=False),
        sa.Column("age_band", sa.String(length=8), nullable=False),
        sa.Column("sex", sa.String(length=10), nullable=False),
        sa.Column("self_selected", sa.Boolean(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "poll_id", "question_id", "option", "area_code", "age_band", "sex", "self_selected"
        ),
    )
    op.create_table(
        "invited",
        sa.Column("poll_id", sa.Uuid(), nullable=False),
        sa.Column("area_code", sa.String(length=10), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("poll_id", "area_code"),
    )
    op.create_table(
        "open_texts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("poll_id", sa.Uuid(), nullable=False),
        sa.Column("question_id", sa.String(length=40), nullable=False),
        sa.Column("wijk_code", sa.String(length=8), nullable=False),
        sa.Column("buurt_code", sa.String(length=10), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("open_texts_by_poll", "open_texts", ["poll_id", "question_id"], unique=False)
    op.create_table(
        "polls",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("municipality_code", sa.String(length=6), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("audience", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("opens_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "receipts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("poll_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=30), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "respondents",
        sa.Column("poll_id", sa.Uuid(), nullable=False),
        sa.Column("question_id", sa.String(length=40), nullable=False),
        sa.Column("area_code", sa.String(length=10), nullable=False),
        sa.Column("age_band", sa.String(length=8), nullable=False),
        sa.Column("sex", sa.String(length=10), nullable=False),
        sa.Column("self_selected", sa.Boolean(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "poll_id", "question_id", "area_code", "age_band", "sex", "self_selected"
        ),
    )
    op.create_table(
        "responses",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("poll_id", sa.Uuid(), nullable=False),
        sa.Column("respondent_key", sa.String(length=64), nullable=False),
        sa.Column("wijk_code", sa.String(length=8), nullable=False),
        sa.Column("buurt_code", sa.String(length=10), nullable=False),
        sa.Column("age_band", sa.String(length=8), nullable=True),
        sa.Column("sex", sa.String(length=10), nullable=True),
        sa.Column("self_selected", sa.Boolean(), nullable=False),
        sa.Column("answers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("recorded_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("poll_id", "respondent_key", name="responses_one_per_resident"),
    )
    op.create_index("responses_by_poll_area", "responses", ["poll_id", "buurt_code"], unique=False)
    outbox.create_tables(op)


def downgrade() -> None:
    op.drop_table("processed_events")
    op.drop_table("outbox")
    op.drop_index("responses_by_poll_area", table_name="responses")
    op.drop_table("responses")
    op.drop_table("respondents")
    op.drop_table("receipts")
    op.drop_table("polls")
    op.drop_index("open_texts_by_poll", table_name="open_texts")
    op.drop_table("open_texts")
    op.drop_table("invited")
    op.drop_table("counts")
    op.drop_table("area_margins")
