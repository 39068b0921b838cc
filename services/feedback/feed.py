"""Published feedback as residents and the public see it: the app's feed (what concerns my
buurt or wijk first) and the municipality's public timeline. Drafts never appear; neither do
reactions or who on the staff wrote what."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.feedback.lifecycle import history_of, iso, measure_view, measures_of, summary_of
from services.feedback.models import Feedback, Poll


def concerns(
    *,
    audience_kind: str,
    audience_areas: list[str],
    measure_areas: list[str],
    buurt_code: str | None,
    wijk_code: str | None,
) -> bool:
    """Does the poll's audience or one of its measures name the resident's buurt or wijk? A
    poll put to the whole municipality concerns everyone in it."""
    if audience_kind == "municipality" and not audience_areas:
        return True
    mine = {c for c in (buurt_code, wijk_code) if c}
    return bool(mine & (set(audience_areas) | set(measure_areas)))


def order_feed(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What concerns my area first, then the rest; newest first within each group."""
    newest_first = sorted(items, key=lambda i: i["published_at"], reverse=True)
    return sorted(newest_first, key=lambda i: not i["concerns_my_area"])  # stable


def _published(session: Session, municipality_code: str) -> list[tuple[Feedback, Poll]]:
    return [
        (f, p)
        for f, p in session.execute(
            sa.select(Feedback, Poll)
            .join(Poll, Poll.id == Feedback.poll_id)
            .where(Feedback.municipality_code == municipality_code, Feedback.status == "published")
            .order_by(Feedback.published_at.desc(), Feedback.id)
        ).all()
    ]


def resident_feed(
    session: Session, *, municipality_code: str, buurt_code: str | None, wijk_code: str | None
) -> list[dict[str, Any]]:
    published = _published(session, municipality_code)
    measures = measures_of(session, [f.id for f, _ in published])
    items = []
    for feedback, poll in published:
        own = measures[feedback.id]
        items.append(
            {
                "feedback_id": str(feedback.id),
                "poll_id": str(feedback.poll_id),
                "title": feedback.title,
                "summary": summary_of(feedback.heard),
                "published_at": iso(feedback.published_at),
                "measures_total": len(own),
                "measures_done": sum(1 for m in own if m.status == "done"),
                "concerns_my_area": concerns(
                    audience_kind=poll.audience_kind,
                    audience_areas=list(poll.area_codes or []),
                    measure_areas=[c for m in own for c in (m.area_codes or [])],
                    buurt_code=buurt_code,
                    wijk_code=wijk_code,
                ),
            }
        )
    return order_feed(items)


def public_timeline(session: Session, *, municipality_code: str) -> dict[str, Any]:
    published = _published(session, municipality_code)
    measures = measures_of(session, [f.id for f, _ in published])
    history = history_of(session, [m.id for ms in measures.values() for m in ms])
    public_keys = (
        "title",
        "description",
        "area_codes",
        "owner",
        "expected_date",
        "status",
        "history",
    )
    items = []
    for feedback, poll in published:
        items.append(
            {
                "feedback_id": str(feedback.id),
                "poll_title": poll.title,
                "title": feedback.title,
                "heard": feedback.heard,
                "plan": feedback.plan,
                "not_followed": feedback.not_followed,
                "key_figures": list(feedback.key_figures or []),
                "published_at": iso(feedback.published_at),
                "measures": [
                    {
                        k: v
                        for k, v in measure_view(m, history[m.id], staff=False).items()
                        if k in public_keys
                    }
                    for m in measures[feedback.id]
                ],
            }
        )
    latest = max((f.updated_at for f, _ in published), default=None)
    return {"municipality_code": municipality_code, "items": items, "updated_at": iso(latest)}
