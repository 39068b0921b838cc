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
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.common.areas import in_municipality, parent_of
from services.common.errors import InvalidInput, NotFound, invalid
from services.feedback.lifecycle import Emit, conflict, get_feedback, parse_id
from services.feedback.models import Feedback, Measure, MeasureNote, Poll

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


def measure_areas(
    measure_codes: list[str], poll_codes: list[str], municipality_code: str
) -> set[str]:
    """The areas a measure is in: those it names (else its poll's audience areas, else the
    whole gemeente), and every area that contains one of them (a buurt's wijk and gemeente)."""
    named = measure_codes or poll_codes or [municipality_code]
    out: set[str] = set()
    for code in named:
        current: str | None = code
        while current is not None:
            out.add(current)
            current = parent_of(current)
    out.add(municipality_code)
    return out


def count_by_area(
    rows: list[tuple[list[str], list[str]]], municipality_code: str
) -> dict[str, int]:
    """``rows``: (the measure's area codes, its poll's audience area codes) per open measure;
    the number of measures per area, each measure counted once per area."""
    counts: dict[str, int] = {}
    for measure_codes, poll_codes in rows:
        for code in measure_areas(measure_codes, poll_codes, municipality_code):
            counts[code] = counts.get(code, 0) + 1
    return dict(sorted(counts.items()))


def open_measures_by_area(session: Session, *, municipality_code: str) -> dict[str, int]:
    """Measures planned or in progress in published feedback, per area code (GM, WK, BU, and
    an RG code a measure names)."""
    found = session.execute(
        sa.select(Measure.area_codes, Poll.area_codes)
        .join(Feedback, Feedback.id == Measure.feedback_id)
        .join(Poll, Poll.id == Feedback.poll_id)
        .where(
            Measure.municipality_code == municipality_code,
            Measure.status.in_(OPEN_STATUSES),
            Feedback.status == "published",
        )
    )
    return count_by_area([(list(m or []), list(p or [])) for m, p in found], municipality_code)
