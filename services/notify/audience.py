"""Who is told what: the audience of a poll, invitations, and the deliveries for every kind of
notification — written in the database with INSERT … SELECT, so 100,000 residents cost two
statements, not 100,000 round trips, and notify's memory does not grow with the audience.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.notify.models import Poll

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


# The residents a poll may reach: consent, in the municipality, under the monthly cap.
_ELIGIBLE = """
    FROM residents r
    WHERE r.municipality_code = :municipality AND r.consent
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
    return session.execute(sa.text(sql), params).rowcount


# Each resident is reached on their first channel that has an endpoint.
_DELIVERIES = """
    INSERT INTO deliveries (kind, ref_id, seq, poll_id, resident_id, channel, endpoint_id,
                            status, attempts, queued_at, updated_at)
    SELECT :kind, :ref, :seq, :poll, i.resident_id, e.channel, e.id, 'queued', 0, :now, :now
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
    "answered": "AND i.answered_at IS NOT NULL",
    "not_answered": "AND i.answered_at IS NULL",
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
    """Queue one delivery per invitee (all, those who answered, or those who did not)."""
    return session.execute(
        sa.text(_DELIVERIES.format(condition=CONDITIONS[who])),
        {"kind": kind, "ref": ref_id, "seq": seq, "poll": poll_id, "now": now},
    ).rowcount


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
