"""How well a municipality closes the loop: of its closed polls, how many got published
feedback, how fast (median days from close to publication), and how useful residents found it.
Pure helpers plus one query; the sweep exports the same figures as gauges.

The reactions are counted only from what their released versions publish (``reactions.py``,
docs/suppression.md, "Reactions over time"), never from the reactions table: two reads of a
live count around one reaction would say how that resident reacted. Each feedback's latest
released version contributes its gemeente-level figures when it shows them (its total and how
many found it useful); one whose figures are hidden contributes nothing and is counted as
hidden. The sum is a function of figures already released, so it can say nothing the versions
do not, and it moves only when a version is released."""

from __future__ import annotations

import statistics
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.feedback.models import Feedback, Poll, ReactionRelease


def median_days(pairs: list[tuple[datetime, datetime]]) -> float | None:
    """Median of (published − closed) in days, one decimal; None without any pair."""
    days = [(published - closed).total_seconds() / 86400 for closed, published in pairs]
    return round(statistics.median(days), 1) if days else None


def share(part: int, whole: int | None) -> float | None:
    return round(part / whole, 3) if whole else None


def released_reactions(documents: list[dict[str, Any]]) -> dict[str, Any]:
    """The loop figures' reactions from each feedback's latest released version (its served
    ``document``): the sum of the gemeente-level totals and useful counts of those that show
    both; one that hides either is left out and counted in ``reactions_feedbacks_hidden``.
    Pure."""
    reactions = useful = counted = hidden = 0
    for document in documents:
        n, yes = document.get("n"), document.get("useful")
        if document.get("suppressed") or n is None or yes is None:
            hidden += 1
            continue
        reactions += n
        useful += yes
        counted += 1
    return {
        "reactions": reactions,
        "share_useful": share(useful, reactions),
        "reactions_feedbacks_counted": counted,
        "reactions_feedbacks_hidden": hidden,
    }


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
    released = session.scalars(
        sa.select(ReactionRelease.document)
        .join(Feedback, Feedback.id == ReactionRelease.feedback_id)
        .where(Feedback.municipality_code == municipality_code)
    ).all()
    return {
        "closed_polls": closed,
        "with_feedback": len(pairs),
        "share_with_feedback": share(len(pairs), closed),
        "median_days_to_feedback": median_days(pairs),
        **released_reactions(list(released)),
    }
