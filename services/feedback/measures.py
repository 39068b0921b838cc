"""Measures promised in feedback and their progress.

Status moves forward only::

    planned ──▶ in_progress ──▶ done
       │  └──────────────────▶ done
       └──────▶ dropped ◀── in_progress

``done`` and ``dropped`` are final. Every change appends a dated note (required when a measure
is dropped: residents deserve to know why). Once the feedback is published, each change is
announced with ``measure_updated``, so those who answered hear of it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.common.areas import in_municipality, parent_of
from services.common.errors import InvalidInput, NotFound, invalid
from services.feedback.lifecycle import Emit, conflict, get_feedback, parse_id
from services.feedback.models import Feedback, Measure, MeasureNote, Poll, RegionVersion

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "planned": ("in_progress", "done", "dropped"),
    "in_progress": ("done", "dropped"),
    "done": (),
    "dropped": (),
}


def check_transition(current: str, target: str, note: str | None) -> None:
    """Raise Conflict ``invalid_transition`` or InvalidInput on ``note``; pure."""
    if target not in TRANSITIONS:
        raise invalid("status", "unknown_status", f"one of {', '.join(TRANSITIONS)}")
    if target not in TRANSITIONS[current]:
        allowed = TRANSITIONS[current]
        raise conflict(
            "invalid_transition",
            f"a measure that is {current} cannot become {target}"
            + (f"; it can become {' or '.join(allowed)}" if allowed else "; that is final"),
            "status",
        )
    if target == "dropped" and not note:
        raise invalid("note", "required", "say why the measure is dropped")


def check_area_codes(area_codes: list[str], municipality_code: str) -> None:
    """Wijk and buurt codes carry the municipality's four digits (WK0344.., BU0344....)."""
    errors = [
        {
            "field": f"area_codes[{i}]",
            "code": "other_municipality",
            "message": f"{code} is not an area of {municipality_code}",
        }
        for i, code in enumerate(area_codes)
        if not in_municipality(code, municipality_code)
    ]
    if errors:
        raise InvalidInput("an area does not belong to this municipality", errors)


def get_measure(
    session: Session, *, municipality_code: str, measure_id: str, lock: bool = False
) -> Measure:
    query = sa.select(Measure).where(
        Measure.id == parse_id(measure_id, "measure"),
        Measure.municipality_code == municipality_code,
    )
    measure = session.scalars(query.with_for_update() if lock else query).first()
    if measure is None:
        raise NotFound("no such measure")
    return measure


def add_measure(
    session: Session,
    *,
    municipality_code: str,
    poll_id: str,
    fields: dict[str, Any],
    actor: str | None,
    now: datetime,
) -> Measure:
    feedback = get_feedback(session, municipality_code=municipality_code, poll_id=poll_id)
    check_area_codes(fields["area_codes"], municipality_code)
    measure = Measure(
        id=uuid.uuid4(),
        feedback_id=feedback.id,
        municipality_code=municipality_code,
        title=fields["title"],
        description=fields.get("description"),
        area_codes=list(dict.fromkeys(fields["area_codes"])),
        owner=fields["owner"],
        expected_date=fields.get("expected_date"),
        status="planned",
        created_at=now,
        updated_at=now,
        updated_by=actor,
    )
    session.add(measure)
    session.flush()
    session.add(
        MeasureNote(measure_id=measure.id, status="planned", note=None, at=now, actor=actor)
    )
    feedback.updated_at = now
    session.flush()
    return measure


def update_measure(
    session: Session,
    *,
    municipality_code: str,
    measure_id: str,
    changes: dict[str, Any],
    actor: str | None,
    now: datetime,
) -> Measure:
    """Edit what a measure is (not its status): only the fields given change."""
    measure = get_measure(
        session, municipality_code=municipality_code, measure_id=measure_id, lock=True
    )
    if "area_codes" in changes:
        check_area_codes(changes["area_codes"], municipality_code)
        changes = {**changes, "area_codes": list(dict.fromkeys(changes["area_codes"]))}
    for key, value in changes.items():
        setattr(measure, key, value)
    measure.updated_at = now
    measure.updated_by = actor
    _touch_feedback(session, measure, now)
    session.flush()
    return measure


def change_status(
    session: Session,
    *,
    municipality_code: str,
    measure_id: str,
    status: str,
    note: str | None,
    actor: str | None,
    now: datetime,
    emit: Emit,
) -> Measure:
    measure = get_measure(
        session, municipality_code=municipality_code, measure_id=measure_id, lock=True
    )
    check_transition(measure.status, status, note)
    measure.status = status
    measure.updated_at = now
    measure.updated_by = actor
    session.add(MeasureNote(measure_id=measure.id, status=status, note=note, at=now, actor=actor))
    feedback = _touch_feedback(session, measure, now)
    session.flush()
    if feedback.status == "published":
        emit(
            session,
            "measure_updated",
            {
                "measure_id": str(measure.id),
                "feedback_id": str(feedback.id),
                "poll_id": str(feedback.poll_id),
                "municipality_code": municipality_code,
                "title": measure.title,
                "status": status,
                "note": note,
                "updated_at": now.isoformat(),
            },
        )
    return measure


def _touch_feedback(session: Session, measure: Measure, now: datetime) -> Feedback:
    """The public timeline's ``updated_at`` follows every change to a measure."""
    feedback = session.get(Feedback, measure.feedback_id)
    assert feedback is not None
    feedback.updated_at = now
    return feedback


# --- open measures per area (the safety overview, issue 13) ---------------------------------

OPEN_STATUSES = ("planned", "in_progress")  # promised and not yet done or dropped


@dataclass(frozen=True)
class OpenMeasure:
    """Where an open measure is: the wijken and buurten it names, and its poll's audience
    (the wijken and buurten, and the regions an "areas" or "sample" audience named)."""

    area_codes: Sequence[str]
    poll_area_codes: Sequence[str] = ()
    poll_region_codes: Sequence[str] = ()


def measure_areas(
    measure: OpenMeasure, municipality_code: str, regions: Mapping[str, Iterable[str]]
) -> set[str]:
    """The areas a measure counts for (docs/methods.md, "Safety overview").

    It is in the areas it names — else where its poll's audience was (its wijken, buurten
    and regions), else the whole gemeente. In the CBS tree it counts for those areas and every
    area containing one of them (a buurt's wijk, the gemeente), as before regions existed.
    A region (``regions``: code → the buurten of its newest version) stands beside the tree,
    so it counts every measure that reaches into it: one naming a buurt of the region, or a
    wijk that holds one of the region's buurten — and, naming no area, one of a poll whose
    audience named the region. A measure for the whole gemeente counts for the gemeente only,
    as it does not for each wijk and buurt."""
    named = (
        list(measure.area_codes)
        or [*measure.poll_area_codes, *measure.poll_region_codes]
        or [municipality_code]
    )
    out: set[str] = {municipality_code}
    for code in named:
        current: str | None = code
        while current is not None:
            out.add(current)
            current = parent_of(current)
    places = set(named)
    for code, buurten in regions.items():
        if any(b in places or parent_of(b) in places for b in buurten):
            out.add(code)
    return out


def count_by_area(
    found: Iterable[OpenMeasure],
    municipality_code: str,
    regions: Mapping[str, Iterable[str]] | None = None,
) -> dict[str, int]:
    """The number of open measures per area code, each measure counted once per area."""
    counts: dict[str, int] = {}
    for measure in found:
        for code in measure_areas(measure, municipality_code, regions or {}):
            counts[code] = counts.get(code, 0) + 1
    return dict(sorted(counts.items()))


def newest_regions(session: Session, *, municipality_code: str) -> dict[str, list[str]]:
    """Each region's buurten in its newest version a published poll froze (``poll_published``:
    feedback does not ask panel). Open measures are a figure of today, so a region counts
    them on the newest version known, whichever poll the figures beside them come from."""
    found = session.execute(
        sa.select(RegionVersion.code, RegionVersion.buurt_codes)
        .where(RegionVersion.municipality_code == municipality_code)
        .order_by(RegionVersion.code, RegionVersion.version.desc())
        .distinct(RegionVersion.code)
    )
    return {code: list(buurten) for code, buurten in found}


def open_measures_by_area(session: Session, *, municipality_code: str) -> dict[str, int]:
    """Measures planned or in progress in published feedback, per area code (GM, WK, BU, RG)."""
    found = session.execute(
        sa.select(Measure.area_codes, Poll.area_codes, Poll.region_codes)
        .join(Feedback, Feedback.id == Measure.feedback_id)
        .join(Poll, Poll.id == Feedback.poll_id)
        .where(
            Measure.municipality_code == municipality_code,
            Measure.status.in_(OPEN_STATUSES),
            Feedback.status == "published",
        )
    )
    return count_by_area(
        [OpenMeasure(list(m or []), list(p or []), list(r or [])) for m, p, r in found],
        municipality_code,
        newest_regions(session, municipality_code=municipality_code),
    )
