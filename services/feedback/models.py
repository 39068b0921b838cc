"""The feedback service's tables: a projection of published polls, feedback (one per poll),
measures with their dated status notes, resident reactions under a keyed pseudonym, and the
overdue reminders already sent — plus the shared outbox and processed-event tables."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common import outbox

TS = sa.DateTime(timezone=True)
FEEDBACK_STATUSES = ("draft", "published")
MEASURE_STATUSES = ("planned", "in_progress", "done", "dropped")


class Base(DeclarativeBase):
    pass


class Poll(Base):
    """What feedback needs of a poll, from ``poll_published`` and ``poll_closed``."""

    __tablename__ = "polls"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    municipality_code: Mapped[str] = mapped_column(sa.String(6))
    title: Mapped[str] = mapped_column(sa.Text)
    audience_kind: Mapped[str] = mapped_column(sa.String(20))
    area_codes: Mapped[list[str]] = mapped_column(JSONB, default=list)
    # The regions an "areas" audience named (their buurten are in ``area_codes`` too).
    region_codes: Mapped[list[str]] = mapped_column(
        JSONB, default=list, server_default=sa.text("'[]'::jsonb")
    )
    published_at: Mapped[datetime] = mapped_column(TS)
    closed_at: Mapped[datetime | None] = mapped_column(TS)

    __table_args__ = (sa.Index("feedback_polls_by_municipality", "municipality_code"),)


class RegionVersion(Base):
    """A version of a municipality's region as a published poll froze it (``poll_published``
    audience ``regions``): how feedback knows which buurten a region holds, for the open
    measures per region of the safety overview. Versions never change once written, so
    keeping each one (never updating) is order-tolerant; the newest is the highest."""

    __tablename__ = "region_versions"

    code: Mapped[str] = mapped_column(sa.String(10), primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True)
    municipality_code: Mapped[str] = mapped_column(sa.String(6))
    buurt_codes: Mapped[list[str]] = mapped_column(JSONB)

    __table_args__ = (sa.Index("region_versions_by_municipality", "municipality_code"),)


class Feedback(Base):
    __tablename__ = "feedback"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    poll_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("polls.id"), unique=True)
    municipality_code: Mapped[str] = mapped_column(sa.String(6))
    status: Mapped[str] = mapped_column(sa.String(10), default="draft")
    title: Mapped[str] = mapped_column(sa.String(120))
    heard: Mapped[str] = mapped_column(sa.Text)
    plan: Mapped[str] = mapped_column(sa.Text)
    not_followed: Mapped[str | None] = mapped_column(sa.Text)
    # What staff asked for ({question_id, area_code}) and the figures fetched for it.
    key_figure_requests: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    key_figures: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    notify_all_invitees: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(TS)
    updated_at: Mapped[datetime] = mapped_column(TS)
    updated_by: Mapped[str | None] = mapped_column(sa.String(320))
    published_at: Mapped[datetime | None] = mapped_column(TS)
    published_by: Mapped[str | None] = mapped_column(sa.String(320))

    __table_args__ = (
        sa.CheckConstraint(f"status IN {FEEDBACK_STATUSES!r}", name="feedback_status_known"),
        sa.Index("feedback_by_municipality", "municipality_code", "status"),
    )


class Measure(Base):
    __tablename__ = "measures"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    feedback_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("feedback.id"))
    municipality_code: Mapped[str] = mapped_column(sa.String(6))
    title: Mapped[str] = mapped_column(sa.String(120))
    description: Mapped[str | None] = mapped_column(sa.Text)
    area_codes: Mapped[list[str]] = mapped_column(JSONB, default=list)
    owner: Mapped[str] = mapped_column(sa.String(120))
    expected_date: Mapped[date | None] = mapped_column(sa.Date)
    status: Mapped[str] = mapped_column(sa.String(12), default="planned")
    created_at: Mapped[datetime] = mapped_column(TS)
    updated_at: Mapped[datetime] = mapped_column(TS)
    updated_by: Mapped[str | None] = mapped_column(sa.String(320))

    __table_args__ = (
        sa.CheckConstraint(f"status IN {MEASURE_STATUSES!r}", name="measures_status_known"),
        sa.Index("measures_by_feedback", "feedback_id"),
    )


class MeasureNote(Base):
    """One dated line of a measure's history: the status it reached and why."""

    __tablename__ = "measure_notes"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    measure_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("measures.id"))
    status: Mapped[str] = mapped_column(sa.String(12))
    note: Mapped[str | None] = mapped_column(sa.Text)
    at: Mapped[datetime] = mapped_column(TS)
    actor: Mapped[str | None] = mapped_column(sa.String(320))

    __table_args__ = (sa.Index("measure_notes_by_measure", "measure_id", "id"),)


class Reaction(Base):
    """A resident's "was this useful?" on published feedback. The resident is kept only as
    HMAC(secret, resident id) — the same key across feedback, so ``resident_left`` can erase
    them all — and deliberately without a time, so a comment cannot be matched to an app
    session."""

    __tablename__ = "reactions"

    feedback_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("feedback.id"), primary_key=True)
    reactor_key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    municipality_code: Mapped[str] = mapped_column(sa.String(6))
    wijk_code: Mapped[str | None] = mapped_column(sa.String(8))
    buurt_code: Mapped[str | None] = mapped_column(sa.String(10))
    useful: Mapped[bool]
    comment: Mapped[str | None] = mapped_column(sa.Text)
    # How the reaction stands in the feedback's released version (``ReactionRelease``): staff
    # see the comment it had then, under the wijk it had then, until the next version includes
    # it as it is now (docs/suppression.md, "Reactions over time"). Not yet in any: False.
    in_release: Mapped[bool] = mapped_column(default=False)
    released_wijk: Mapped[str | None] = mapped_column(sa.String(8))
    released_comment: Mapped[str | None] = mapped_column(sa.Text)

    __table_args__ = (sa.Index("reactions_by_key", "reactor_key"),)


class ReactionRelease(Base):
    """The released version of a feedback item's reaction figures for staff, and what the next
    version must respect (docs/suppression.md, "Reactions over time"): the counts per area it
    was computed from (area → [n, useful, not useful]), the cells it hid, the areas listed only
    because someone reacted there, and the figures as served (comments are read per request
    from the reactions in the version)."""

    __tablename__ = "reaction_releases"

    feedback_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("feedback.id"), primary_key=True)
    seq: Mapped[int]  # 1 for the first version
    k: Mapped[int]
    released_at: Mapped[datetime] = mapped_column(TS)
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB)
    hidden: Mapped[list[Any]] = mapped_column(JSONB)
    at_least_one: Mapped[list[str]] = mapped_column(JSONB)
    document: Mapped[dict[str, Any]] = mapped_column(JSONB)


class OverdueReminder(Base):
    """At most one reminder e-mail per poll: claimed here before it is sent."""

    __tablename__ = "overdue_reminders"

    poll_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("polls.id"), primary_key=True)
    municipality_code: Mapped[str] = mapped_column(sa.String(6))
    due_at: Mapped[datetime] = mapped_column(TS)
    claimed_at: Mapped[datetime] = mapped_column(TS)
    sent_at: Mapped[datetime | None] = mapped_column(TS)
    recipients: Mapped[int] = mapped_column(default=0)


# Alembic compares against both.
target_metadata = [Base.metadata, outbox.metadata]
