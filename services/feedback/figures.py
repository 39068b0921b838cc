"""How well a municipality closes the loop: of its closed polls, how many got published
feedback, how fast (median days from close to publication), and how useful residents found it.
Pure helpers plus one query; the sweep exports the same figures as gauges."""

from __future__ import annotations

import statistics
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.feedback.models import Feedback, Poll, Reaction


def median_days(pairs: list[tuple[datetime, datetime]]) -> float | None:
    """Median of (published − closed) in days, one decimal; None without any pair."""
    days = [(published - closed).total_seconds() / 86400 for closed, published in pairs]
    return round(statistics.median(days), 1) if days else None


def share(part: int, whole: int | None) -> float | None:
    return round(part / whole, 3) if whole else None


def loop_figures(session: Session, *, municipality_code: str) -> dict[str, object]:
    closed = session.scalar(
        sa.select(sa.func.count()).where(
            Poll.municipality_code == municipality_code, Poll.closed_at.is_not(None)
        )
    )
    pairs = [
        (r.closed_at, r.published_at)
        for r in session.execute(
            sa.select(Poll.closed_at, Feedback.published_at)
            .join(Feedback, Feedback.poll_id == Poll.id)
            .where(
                Poll.municipality_code == municipality_code,
                Poll.closed_at.is_not(None),
                Feedback.status == "published",
            )
        )
    ]
    reactions, useful = session.execute(
        sa.select(sa.func.count(), sa.func.count().filter(Reaction.useful.is_(True))).where(
            Reaction.municipality_code == municipality_code
        )
    ).one()
    return {
        "closed_polls": closed,
        "with_feedback": len(pairs),
        "share_with_feedback": share(len(pairs), closed),
        "median_days_to_feedback": median_days(pairs),
        "reactions": reactions,
        "share_useful": share(useful, reactions),
    }
