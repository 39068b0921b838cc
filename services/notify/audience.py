"""Who is told what: the audience of a poll, invitations, and the deliveries for every kind of
notification — written in the database with INSERT … SELECT, so 100,000 residents cost two
statements, not 100,000 round trips, and notify's memory does not grow with the audience.

Also what the poll and feedback events change in it (a poll closed, a resident who answered,
a feedback or measure to tell), the reminders the timer queues, and the gateway's question of
where a resident was invited. Every function works in the caller's transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.common.db import rowcount
from services.common.events import audience_kinds
from services.notify.models import Delivery, Invitation, Notice, Poll

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def month_start(now: datetime) -> datetime:
    """The monthly invitation cap counts calendar months in Dutch time."""
    local = now.astimezone(AMSTERDAM)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def store_poll(session: Session, payload: dict[str, Any]) -> Poll:
    poll_id = uuid.UUID(payload["poll_id"])
    poll = session.get(Poll, poll_id) or Poll(id=poll_id)
    poll.municipality_code = payload["municipality_code"]
    poll.title = payload["definition"]["title"]
    poll.audience = payload["audience"]
    poll.opens_at = datetime.fromisoformat(payload["opens_at"])
    poll.closes_at = datetime.fromisoformat(payload["closes_at"]) if payload["closes_at"] else None
    poll.reminder_after_hours = payload.get("reminder_after_hours") or []
    poll.estimated_minutes = payload["definition"].get("estimated_minutes", 5)
    session.add(poll)
    session.flush()
    return poll


# The residents a poll may reach: consent, in the municipality, of the kinds of participant
# the poll is for (residents, businesses, organisations), under the monthly cap.
_ELIGIBLE = """
    FROM residents r
    WHERE r.municipality_code = :municipality AND r.consent AND r.kind = ANY(:kinds)
      AND (SELECT count(*) FROM invitations i
           WHERE i.resident_id = r.id AND i.invited_at >= :month_start) < :cap
"""

_INSERT = """
    INSERT INTO invitations (poll_id, resident_id, municipality_code, wijk_code, buurt_code,
                             invited_at, reminders_sent)
"""


def invite(session: Session, *, poll: Poll, now: datetime, monthly_cap: int) -> int:
    """Write the invitations of a published poll; return how many were written.

    Idempotent: a redelivered poll_published writes nothing new (primary key, ON CONFLICT).
    A sample is drawn reproducibly: residents ordered by md5(seed || id) within each area.
    """
    audience = poll.audience
    codes = audience.get("area_codes") or []
    params = {
        "poll": poll.id,
        "municipality": poll.municipality_code,
        "now": now,
        "month_start": month_start(now),
        "cap": monthly_cap,
        "codes": codes,
        "kinds": list(audience_kinds(audience)),
    }
    if audience["kind"] == "sample":
        area = (
            "CASE WHEN r.buurt_code = ANY(:codes) THEN r.buurt_code ELSE r.wijk_code END"
            if codes
            else "r.municipality_code"
        )
        in_areas = "AND (r.wijk_code = ANY(:codes) OR r.buurt_code = ANY(:codes))" if codes else ""
        sql = f"""{_INSERT}
            SELECT :poll, s.id, s.municipality_code, s.wijk_code, s.buurt_code, :now, 0
            FROM (SELECT r.*, row_number() OVER (
                      PARTITION BY {area} ORDER BY md5(:seed || r.id::text)) AS draw
                  {_ELIGIBLE} {in_areas}) s
            WHERE s.draw <= :sample_size
            ON CONFLICT DO NOTHING"""
        params |= {"seed": str(audience.get("seed") or 0), "sample_size": audience["sample_size"]}
    else:
        in_areas = (
            "AND (r.wijk_code = ANY(:codes) OR r.buurt_code = ANY(:codes))"
            if audience["kind"] == "areas"
            else ""
        )
        sql = f"""{_INSERT}
            SELECT :poll, r.id, r.municipality_code, r.wijk_code, r.buurt_code, :now, 0
            {_ELIGIBLE} {in_areas}
            ON CONFLICT DO NOTHING"""
    return rowcount(session.execute(sa.text(sql), params))


# Each participant is reached on their first channel that has an endpoint: on a device channel
# every device they registered (channels.load_jobs finds them when sending), by e-mail the
# newest address. One delivery per participant, however many devices.
_DELIVERIES = """
    INSERT INTO deliveries (kind, ref_id, seq, poll_id, resident_id, channel, endpoint_id,
                            status, attempts, queued_at, updated_at)
    SELECT :kind, :ref, :seq, :poll, i.resident_id, e.channel,
           CASE WHEN e.channel = 'email' THEN e.id END, 'queued', 0, :now, :now
    FROM invitations i
    JOIN residents r ON r.id = i.resident_id
    JOIN LATERAL (
        SELECT e.id, e.channel FROM endpoints e
        WHERE e.resident_id = i.resident_id
        ORDER BY coalesce((SELECT t.n FROM jsonb_array_elements_text(r.channel_order)
                           WITH ORDINALITY AS t(ch, n) WHERE t.ch = e.channel), 99),
                 e.created_at DESC
        LIMIT 1) e ON true
    WHERE i.poll_id = :poll {condition}
    ON CONFLICT DO NOTHING
"""

CONDITIONS = {
    "everyone": "",
    "answered": "AND i.answered",
    "not_answered": "AND NOT i.answered",
}


def queue_deliveries(
    session: Session,
    *,
    kind: str,
    ref_id: uuid.UUID,
    poll_id: uuid.UUID,
    now: datetime,
    who: str = "everyone",
    seq: int = 0,
) -> int:
    """Queue one delivery per invitee (all, those who answered, or those who did not), sent
    to every device of theirs."""
    return rowcount(
        session.execute(
            sa.text(_DELIVERIES.format(condition=CONDITIONS[who])),
            {"kind": kind, "ref": ref_id, "seq": seq, "poll": poll_id, "now": now},
        )
    )


def invited_per_area(session: Session, poll_id: uuid.UUID) -> list[dict[str, Any]]:
    """Invitations per buurt (responses rolls them up to wijk and gemeente)."""
    rows = session.execute(
        sa.text(
            "SELECT buurt_code, count(*) FROM invitations WHERE poll_id = :p GROUP BY buurt_code "
            "ORDER BY buurt_code"
        ),
        {"p": poll_id},
    ).all()
    return [{"area_code": code, "invited": n} for code, n in rows]


def reach(
    session: Session,
    *,
    municipality_code: str,
    audience: dict[str, Any],
    now: datetime,
    monthly_cap: int,
) -> int:
    """How many residents an audience would invite if the poll were published now: the same
    eligibility (consent, the monthly cap) and areas as ``invite``; for a sample, the sample
    size per area capped at the residents there. An estimate for staff choosing the audience:
    residents who join, leave or are invited elsewhere before publishing change it."""
    codes = audience.get("area_codes") or []
    params: dict[str, Any] = {
        "municipality": municipality_code,
        "month_start": month_start(now),
        "cap": monthly_cap,
        "codes": codes,
        "kinds": list(audience_kinds(audience)),
    }
    kind = audience.get("kind", "municipality")
    if kind == "areas" and not codes:
        return 0  # no area chosen yet: nobody (publishing refuses it)
    in_areas = (
        "AND (r.wijk_code = ANY(:codes) OR r.buurt_code = ANY(:codes))"
        if codes and kind in ("areas", "sample")
        else ""
    )
    if kind == "sample":
        area = (
            "CASE WHEN r.buurt_code = ANY(:codes) THEN r.buurt_code ELSE r.wijk_code END"
            if codes
            else "r.municipality_code"
        )
        sql = f"""SELECT coalesce(sum(least(n, :sample_size)), 0) FROM (
                      SELECT {area} AS area, count(*) AS n {_ELIGIBLE} {in_areas}
                      GROUP BY 1) per_area"""
        params["sample_size"] = int(audience.get("sample_size") or 0)
    else:
        sql = f"SELECT count(*) {_ELIGIBLE} {in_areas}"
    return int(session.execute(sa.text(sql), params).scalar_one())


# Deliveries not sent yet, which an event can still cancel.
PENDING = ("queued", "deferred", "retrying")


class PollNotYetKnown(RuntimeError):
    """poll_closed or response_recorded before poll_published: retried later through the delay
    queues."""


def close_poll(session: Session, *, poll_id: uuid.UUID, closed_at: datetime, now: datetime) -> None:
    """poll_closed: the poll stored closed, its pending invitations, reminders and new links
    cancelled.

    Raises PollNotYetKnown when poll_closed overtook poll_published (separate queues): the
    rollback takes the handler's claim back and its retry finds the poll — else the poll would
    be stored open."""
    closed = rowcount(
        session.execute(sa.update(Poll).where(Poll.id == poll_id).values(closed_at=closed_at))
    )
    if not closed:
        raise PollNotYetKnown(f"poll {poll_id} closed before notify saw it published")
    session.execute(
        sa.update(Delivery)
        .where(
            Delivery.poll_id == poll_id,
            Delivery.kind.in_(["invitation", "reminder", "link"]),
            Delivery.status.in_(PENDING),
        )
        .values(status="cancelled", updated_at=now)
    )


def mark_answered(
    session: Session, *, poll_id: uuid.UUID, resident_id: uuid.UUID, now: datetime
) -> None:
    """response_recorded: the invitation answered, the resident's pending reminders (and new
    link) cancelled.
    Whether, not when or where: the invitation keeps no link to the response (issue 15).

    Raises PollNotYetKnown when the answer overtook poll_published (responses records as soon
    as it has the poll; notify may still be fanning out, or drain its queues in the other
    order): the invitations are written with the poll, so marking nothing now would leave
    the resident's invitation unanswered and reminded. The retry finds them."""
    if session.get(Poll, poll_id) is None:
        raise PollNotYetKnown(f"poll {poll_id} answered before notify saw it published")
    session.execute(
        sa.update(Invitation)
        .where(
            Invitation.poll_id == poll_id,
            Invitation.resident_id == resident_id,
            Invitation.answered.is_(False),
        )
        .values(answered=True, wijk_code=None, buurt_code=None)
    )
    session.execute(
        sa.update(Delivery)
        .where(
            Delivery.poll_id == poll_id,
            Delivery.resident_id == resident_id,
            Delivery.kind.in_(["reminder", "link"]),
            Delivery.status.in_(PENDING),
        )
        .values(status="cancelled", updated_at=now)
    )


def queue_reminders(session: Session, *, now: datetime) -> int:
    """Each reminder of each open poll once its offset after opening has passed, for invitees
    who have not answered (``queue_deliveries`` skips those already queued)."""
    polls = session.scalars(
        sa.select(Poll).where(
            Poll.closed_at.is_(None),
            sa.or_(Poll.closes_at.is_(None), Poll.closes_at > now),
            sa.func.jsonb_array_length(Poll.reminder_after_hours) > 0,
        )
    ).all()
    queued = 0
    for poll in polls:
        for seq, hours in enumerate(sorted(poll.reminder_after_hours), start=1):
            if poll.opens_at + timedelta(hours=hours) <= now:
                queued += queue_deliveries(
                    session,
                    kind="reminder",
                    ref_id=poll.id,
                    poll_id=poll.id,
                    now=now,
                    who="not_answered",
                    seq=seq,
                )
    return queued


def queue_notice(
    session: Session,
    *,
    kind: str,
    ref_id: uuid.UUID,
    poll_id: uuid.UUID,
    title: str,
    status: str | None,
    who: str,
    now: datetime,
    seq: int = 0,
) -> int:
    """feedback_published / measure_updated: what the notification says, and one delivery per
    invitee it is for; returns how many were queued."""
    session.merge(Notice(ref_id=ref_id, kind=kind, poll_id=poll_id, title=title, status=status))
    session.flush()
    return queue_deliveries(
        session, kind=kind, ref_id=ref_id, poll_id=poll_id, now=now, who=who, seq=seq
    )


def invitation_areas(
    session: Session, *, resident_id: uuid.UUID, poll_ids: list[uuid.UUID]
) -> dict[str, Any]:
    """Of these polls, those the resident was invited to, each with the area they were invited
    in (None once answered)."""
    rows = session.execute(
        sa.select(Invitation.poll_id, Invitation.wijk_code, Invitation.buurt_code).where(
            Invitation.resident_id == resident_id,
            Invitation.poll_id.in_(poll_ids),
        )
    ).all()
    return {str(p): {"wijk_code": w, "buurt_code": b} for p, w, b in rows}
