"""The polls service's tables: polls (draft → scheduled → open → closed → archived), plus the
shared outbox and processed-event tables."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common import outbox

STATUSES = ("draft", "scheduled", "open", "closed", "archived")


class Base(DeclarativeBase):
    pass


class Poll(Base):
    __tablename__ = "polls"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    municipality_code: Mapped[str] = mapped_column(sa.String(6))
    status: Mapped[str] = mapped_column(sa.String(12), default="draft")
    template_id: Mapped[str | None] = mapped_column(sa.String(60))
    definition: Mapped[dict[str, Any]] = mapped_column(JSONB)
    audience: Mapped[dict[str, Any]] = mapped_column(JSONB)
    opens_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    closes_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    reminder_after_hours: Mapped[list[int]] = mapped_column(JSONB, default=list)
    # Bumped by every saved edit; the edit API checks it (optimistic locking), and the value at
    # publication is the published version, frozen together with content_hash.
    version: Mapped[int] = mapped_column(default=1)
    content_hash: Mapped[str | None] = mapped_column(sa.String(64))
    created_by: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    published_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    archived_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # A series (issue 13): this poll is the next wave of ``previous_poll_id`` (wave 1: none).
    previous_poll_id: Mapped[uuid.UUID | None]
    wave: Mapped[int] = mapped_column(default=1, server_default="1")

    __table_args__ = (
        sa.CheckConstraint(f"status IN {STATUSES!r}", name="polls_status_known"),
        sa.Index("polls_by_municipality", "municipality_code", "status"),
        # The scheduler's two questions: what must open, what must close.
        sa.Index("polls_due_to_open", "opens_at", postgresql_where=sa.text("status = 'scheduled'")),
        sa.Index("polls_due_to_close", "closes_at", postgresql_where=sa.text("status = 'open'")),
    )


# Alembic compares against both.
target_metadata = [Base.metadata, outbox.metadata]
