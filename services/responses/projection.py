"""What responses keeps of other services' events: the published polls (which accept answers,
and until when), the number invited per area (response rates) and the CBS margins (weighting);
and the receipts the gateway asks after.

Each event function applies one event in the caller's transaction (the handler's, which has
claimed it). Each change to what results are computed from bumps the poll's
``results_version``, so cached results are stale from that commit on. Events come on separate
queues: ``close_poll`` before the poll was published raises :class:`PollNotYetKnown`, and the
handler's retry applies it once the publication has arrived.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.common.db import rowcount
from services.common.errors import NotFound
from services.responses.intake import bump_results_version
from services.responses.models import AreaMargins, Invited, Poll, Receipt
from services.responses.overview import SAFETY_THEMES


class PollNotYetKnown(RuntimeError):
    """poll_closed before poll_published: retried later through the delay queues."""


def store_poll(session: Session, payload: dict[str, Any]) -> None:
    """poll_published: the poll as published (again: a new version replaces the old one)."""
    values = {
        "municipality_code": payload["municipality_code"],
        "version": payload["version"],
        "definition": payload["definition"],
        "audience": payload["audience"],
        "opens_at": datetime.fromisoformat(payload["opens_at"]),
        "closes_at": (
            datetime.fromisoformat(payload["closes_at"]) if payload["closes_at"] else None
        ),
        # Optional in the event (added later): a poll without them is wave 1 of its own.
        "previous_poll_id": (
            uuid.UUID(payload["previous_poll_id"]) if payload.get("previous_poll_id") else None
        ),
        "wave": payload.get("wave") or 1,
    }
    session.execute(
        insert(Poll)
        .values(id=uuid.UUID(payload["poll_id"]), closed_at=None, **values)
        .on_conflict_do_update(
            index_elements=["id"],
            set_={**values, "results_version": Poll.results_version + 1},
        )
    )


def close_poll(session: Session, payload: dict[str, Any]) -> None:
    """poll_closed: no more answers; a new results version, as the final release comes after
    close. Raises PollNotYetKnown when the poll was not published here yet (separate queues):
    the rollback takes the claim back and the retry finds the poll — else it would stay open."""
    closed = rowcount(
        session.execute(
            sa.update(Poll)
            .where(Poll.id == uuid.UUID(payload["poll_id"]))
            .values(
                closed_at=datetime.fromisoformat(payload["closed_at"]),
                results_version=Poll.results_version + 1,
            )
        )
    )
    if not closed:
        raise PollNotYetKnown(f"poll {payload['poll_id']} closed before it was published here")


def record_invited(session: Session, payload: dict[str, Any]) -> None:
    """invitations_sent: how many were invited per area (the last count wins)."""
    if not payload["per_area"]:
        return
    poll_id = uuid.UUID(payload["poll_id"])
    stmt = insert(Invited).values(
        [
            {"poll_id": poll_id, "area_code": a["area_code"], "n": a["invited"]}
            for a in payload["per_area"]
        ]
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["poll_id", "area_code"], set_={"n": stmt.excluded.n}
        )
    )
    bump_results_version(session, [poll_id])


MARGIN_COLUMNS = ("level", "name", "parent_code", "population", "sex", "age")


def store_margins(session: Session, payload: dict[str, Any]) -> None:
    """areas_imported: the CBS margins of a municipality's areas for one year; the results of
    every poll of that municipality are computed anew."""
    code = payload["municipality_code"]
    rows = [
        {
            "municipality_code": code,
            "year": payload["year"],
            "code": a["code"],
            "level": a["level"],
            "name": a["name"],
            "parent_code": a.get("parent_code"),
            "population": a.get("population"),
            "sex": a.get("sex") or {},
            "age": a.get("age") or {},
        }
        for a in payload["areas"]
    ]
    stmt = insert(AreaMargins).values(rows)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["municipality_code", "year", "code"],
            set_={c: stmt.excluded[c] for c in MARGIN_COLUMNS},
        )
    )
    bump_results_version(session, polls_of(session, code))


def polls_of(session: Session, municipality_code: str) -> Iterable[uuid.UUID]:
    return session.scalars(sa.select(Poll.id).where(Poll.municipality_code == municipality_code))


def overview_polls(session: Session, municipality_code: str) -> list[Poll]:
    """The municipality's safety polls that opened (responses knows a poll from when it
    opens), oldest first: what the safety overview is made from."""
    return list(
        session.scalars(
            sa.select(Poll)
            .where(
                Poll.municipality_code == municipality_code,
                Poll.definition["theme"].astext.in_(SAFETY_THEMES),
            )
            .order_by(Poll.opens_at, Poll.wave)
        )
    )


def get_receipt(session: Session, receipt_id: str) -> dict[str, Any]:
    """recorded or rejected (with the reason); NotFound while still on its way."""
    try:
        found = session.get(Receipt, uuid.UUID(str(receipt_id)))
    except ValueError:
        found = None
    if found is None:
        raise NotFound("no such receipt (yet)")
    return {
        "receipt_id": str(found.id),
        "poll_id": str(found.poll_id),
        "status": found.status,
        "reason": found.reason,
        "updated_at": found.updated_at.isoformat(),
    }
