"""notify

Revision ID: 0001
Revises:
Create Date: 2026-11-25 13:38:39.941181
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
        "deliveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("ref_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("poll_id", sa.Uuid(), nullable=False),
        sa.Column("resident_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("endpoint_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "ref_id", "seq", "resident_id", name="deliveries_once"),
    )
    op.create_index("deliveries_by_ref", "deliveries", ["ref_id", "status"], unique=False)
    op.create_index(
        "deliveries_deferred",
        "deliveries",
        ["not_before"],
        unique=False,
        postgresql_where=sa.text("status = 'deferred'"),
    )
    op.create_index(
        "deliveries_to_dispatch",
        "deliveries",
        ["id"],
        unique=False,
        postgresql_where=sa.text("status = 'queued' AND dispatched_at IS NULL"),
    )
    op.create_index(op.f("ix_deliveries_resident_id"), "deliveries", ["resident_id"], unique=False)
    op.create_table(
        "endpoints",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("resident_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("p256dh", sa.String(length=100), nullable=True),
        sa.Column("auth", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "address", name="endpoints_unique"),
    )
    op.create_index(op.f("ix_endpoints_resident_id"), "endpoints", ["resident_id"], unique=False)
    op.create_table(
        "invitations",
        sa.Column("poll_id", sa.Uuid(), nullable=False),
        sa.Column("resident_id", sa.Uuid(), nullable=False),
        sa.Column("municipality_code", sa.String(length=6), nullable=False),
        sa.Column("wijk_code", sa.String(length=8), nullable=False),
        sa.Column("buurt_code", sa.String(length=10), nullable=False),
        sa.Column("invited_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminders_sent", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("poll_id", "resident_id"),
    )
    op.create_index(
        "invitations_by_resident", "invitations", ["resident_id", "invited_at"], unique=False
    )
    op.create_table(
        "notices",
        sa.Column("ref_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("poll_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=True),
        sa.PrimaryKeyConstraint("ref_id"),
    )
    op.create_table(
        "polls",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("municipality_code", sa.String(length=6), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("audience", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("opens_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminder_after_hours", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("estimated_minutes", sa.Integer(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "residents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("municipality_code", sa.String(length=6), nullable=False),
        sa.Column("wijk_code", sa.String(length=8), nullable=False),
        sa.Column("buurt_code", sa.String(length=10), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("consent", sa.Boolean(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("channel_order", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("quiet_hours", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "notify_residents_area",
        "residents",
        ["municipality_code", "wijk_code", "buurt_code"],
        unique=False,
    )
    outbox.create_tables(op)


def downgrade() -> None:
    op.drop_table("processed_events")
    op.drop_table("outbox")
    op.drop_index("notify_residents_area", table_name="residents")
    op.drop_table("residents")
    op.drop_table("polls")
    op.drop_table("notices")
    op.drop_index("invitations_by_resident", table_name="invitations")
    op.drop_table("invitations")
    op.drop_index(op.f("ix_endpoints_resident_id"), table_name="endpoints")
    op.drop_table("endpoints")
    op.drop_index(op.f("ix_deliveries_resident_id"), table_name="deliveries")
    op.drop_index(
        "deliveries_to_dispatch",
        table_name="deliveries",
        postgresql_where=sa.text("status = 'queued' AND dispatched_at IS NULL"),
    )
    op.drop_index(
        "deliveries_deferred",
        table_name="deliveries",
        postgresql_where=sa.text("status = 'deferred'"),
    )
    op.drop_index("deliveries_by_ref", table_name="deliveries")
    op.drop_table("deliveries")
