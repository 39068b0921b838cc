"""The polls feedback knows about, kept from ``poll_published`` and ``poll_closed``, and the
region versions those polls froze (for the open measures per region, ``measures.py``).

The two events arrive on separate queues, so a ``poll_closed`` can overtake its
``poll_published`` (a retry, a slow consumer). It then raises, which rolls back its claim, and
the retry (through the delay queues) finds the poll.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.common.db import rowcount
from services.feedback.models import Poll, RegionVersion


class PollNotYetKnown(RuntimeError):
    """poll_closed before poll_published: retried later."""


def apply_poll_published(session: Session, payload: dict[str, Any]) -> None:
    audience = payload.get("audience") or {}
    kind = audience.get("kind", "municipality")
    values = {
        "municipality_code": payload["municipality_code"],
        "title": (payload.get("definition") or {}).get("title") or "",
        "audience_kind": kind,
        "area_codes": list(audience.get("area_codes") or []),
        # A municipality-wide audience names regions only to show results for them: its poll
        # was for the whole municipality, and so are its measures that name no area.
        "region_codes": [] if kind == "municipality" else list(audience.get("region_codes") or []),
        "published_at": datetime.fromisoformat(payload["published_at"]),
    }
    session.execute(
        insert(Poll)
        .values(id=uuid.UUID(payload["poll_id"]), closed_at=None, **values)
        .on_conflict_do_update(index_elements=["id"], set_=values)
    )
    keep_region_versions(session, payload["municipality_code"], audience.get("regions") or [])


def keep_region_versions(
    session: Session, municipality_code: str, regions: list[dict[str, Any]]
) -> None:
    """Each frozen region version once (a version never changes: a repeat does nothing)."""
    rows = {
        (r["code"], int(r["version"])): {
            "code": r["code"],
            "version": int(r["version"]),
            "municipality_code": municipality_code,
            "buurt_codes": sorted(r["buurt_codes"]),
        }
        for r in regions
    }
    if rows:
        session.execute(
            insert(RegionVersion)
            .values(list(rows.values()))
            .on_conflict_do_nothing(index_elements=["code", "version"])
        )


def apply_poll_closed(session: Session, payload: dict[str, Any]) -> None:
    updated = rowcount(
        session.execute(
            sa.update(Poll)
            .where(Poll.id == uuid.UUID(payload["poll_id"]))
            .values(closed_at=datetime.fromisoformat(payload["closed_at"]))
        )
    )
    if not updated:
        raise PollNotYetKnown(f"poll {payload['poll_id']} closed before feedback saw it published")
