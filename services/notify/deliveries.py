"""What was sent, for staff and operations: a poll's deliveries per kind, channel and status,
the dead deliveries of a municipality, and their replay. Every query is scoped by the
municipality of the caller (from the verified staff token); a poll of another municipality is
``NotFound``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.common.db import rowcount
from services.common.errors import NotFound
from services.notify.models import Delivery, Invitation, Poll


def poll_id_of(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound("no such poll") from None


def delivery_summary(session: Session, *, municipality_code: str, poll_id: str) -> dict[str, Any]:
    poll = session.get(Poll, poll_id_of(poll_id))
    if poll is None:  # not published (yet): nothing sent
        return {"poll_id": poll_id, "invited": 0, "deliveries": []}
    if poll.municipality_code != municipality_code:
        raise NotFound("no such poll")
    rows = session.execute(
        sa.select(Delivery.kind, Delivery.channel, Delivery.status, sa.func.count())
        .where(Delivery.poll_id == poll.id)
        .group_by(Delivery.kind, Delivery.channel, Delivery.status)
    ).all()
    invited = session.scalar(
        sa.select(sa.func.count()).select_from(Invitation).where(Invitation.poll_id == poll.id)
    )
    return {
        "poll_id": poll_id,
        "invited": invited,
        "deliveries": [{"kind": k, "channel": c, "status": st, "count": n} for k, c, st, n in rows],
    }


def list_dead(session: Session, *, municipality_code: str, limit: int) -> list[dict[str, Any]]:
    """The newest dead deliveries (at most 1,000)."""
    rows = session.execute(
        sa.select(Delivery)
        .join(Poll, Poll.id == Delivery.poll_id)
        .where(Poll.municipality_code == municipality_code, Delivery.status == "dead")
        .order_by(Delivery.updated_at.desc())
        .limit(min(limit, 1000))
    ).scalars()
    return [
        {
            "delivery_id": d.id,
            "kind": d.kind,
            "poll_id": str(d.poll_id),
            "channel": d.channel,
            "attempts": d.attempts,
            "last_error": d.last_error,
            "updated_at": d.updated_at.isoformat(),
        }
        for d in rows
    ]


def replay_dead(
    session: Session,
    *,
    municipality_code: str,
    delivery_ids: list[int] | None,
    now: datetime,
) -> int:
    """Queue dead deliveries again, with fresh attempts (all of the municipality's, or the ids
    given); returns how many."""
    query = (
        sa.update(Delivery)
        .where(
            Delivery.status == "dead",
            Delivery.poll_id.in_(
                sa.select(Poll.id).where(Poll.municipality_code == municipality_code)
            ),
        )
        .values(status="queued", attempts=0, dispatched_at=None, queued_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if delivery_ids:
        query = query.where(Delivery.id.in_(delivery_ids))
    return rowcount(session.execute(query))
