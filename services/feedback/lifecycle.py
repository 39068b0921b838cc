"""Feedback on a poll: saved as a draft (while the poll is open, if staff like), published once
the poll has closed, then frozen — only its measures change afterwards.

Plain functions over an explicit session, clock value and ``emit``; the service wires them to
RPC. Every read and write is scoped by ``municipality_code``: another municipality's poll or
feedback is NotFound, exactly like one that does not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.common.errors import Conflict, NotFound
from services.feedback.models import Feedback, Measure, MeasureNote, Poll
from services.feedback.overdue import is_overdue

Emit = Callable[[Session, str, dict[str, Any]], Any]
SUMMARY_LENGTH = 200


def iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def conflict(code: str, message: str, field: str) -> Conflict:
    return Conflict(message, [{"field": field, "code": code, "message": message}])


def parse_id(value: Any, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound(f"no such {what}") from None


# --- reading ---------------------------------------------------------------------------------


def load_poll(session: Session, *, municipality_code: str, poll_id: str) -> Poll:
    poll = session.get(Poll, parse_id(poll_id, "poll"))
    if poll is None or poll.municipality_code != municipality_code:
        raise NotFound("no such poll")
    return poll


def find_feedback(
    session: Session, *, municipality_code: str, poll_id: str, lock: bool = False
) -> Feedback | None:
    query = sa.select(Feedback).where(
        Feedback.poll_id == parse_id(poll_id, "poll"),
        Feedback.municipality_code == municipality_code,
    )
    return session.scalars(query.with_for_update() if lock else query).first()


def get_feedback(
    session: Session, *, municipality_code: str, poll_id: str, lock: bool = False
) -> Feedback:
    load_poll(session, municipality_code=municipality_code, poll_id=poll_id)
    feedback = find_feedback(
        session, municipality_code=municipality_code, poll_id=poll_id, lock=lock
    )
    if feedback is None:
        raise NotFound("this poll has no feedback yet")
    return feedback


def get_published(session: Session, *, municipality_code: str, feedback_id: str) -> Feedback:
    """Published feedback by id, for residents; a draft is NotFound."""
    feedback = session.get(Feedback, parse_id(feedback_id, "feedback"))
    if (
        feedback is None
        or feedback.municipality_code != municipality_code
        or feedback.status != "published"
    ):
        raise NotFound("no such feedback")
    return feedback


def measures_of(session: Session, feedback_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Measure]]:
    out: dict[uuid.UUID, list[Measure]] = {fid: [] for fid in feedback_ids}
    if feedback_ids:
        for m in session.scalars(
            sa.select(Measure)
            .where(Measure.feedback_id.in_(feedback_ids))
            .order_by(Measure.created_at, Measure.id)
        ):
            out[m.feedback_id].append(m)
    return out


def history_of(
    session: Session, measure_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[MeasureNote]]:
    out: dict[uuid.UUID, list[MeasureNote]] = {mid: [] for mid in measure_ids}
    if measure_ids:
        for n in session.scalars(
            sa.select(MeasureNote)
            .where(MeasureNote.measure_id.in_(measure_ids))
            .order_by(MeasureNote.id)
        ):
            out[n.measure_id].append(n)
    return out


def measure_view(m: Measure, notes: list[MeasureNote], *, staff: bool = True) -> dict[str, Any]:
    view = {
        "measure_id": str(m.id),
        "feedback_id": str(m.feedback_id),
        "title": m.title,
        "description": m.description,
        "area_codes": list(m.area_codes or []),
        "owner": m.owner,
        "expected_date": m.expected_date.isoformat() if m.expected_date else None,
        "status": m.status,
        "history": [{"status": n.status, "note": n.note, "at": iso(n.at)} for n in notes],
    }
    if staff:
        view["updated_by"] = m.updated_by
    return view


def feedback_view(
    session: Session, feedback: Feedback, *, staff: bool = True, poll: Poll | None = None
) -> dict[str, Any]:
    poll = poll or session.get(Poll, feedback.poll_id)
    measures = measures_of(session, [feedback.id])[feedback.id]
    history = history_of(session, [m.id for m in measures])
    view = {
        "feedback_id": str(feedback.id),
        "poll_id": str(feedback.poll_id),
        "poll_title": poll.title if poll else None,
        "municipality_code": feedback.municipality_code,
        "status": feedback.status,
        "title": feedback.title,
        "heard": feedback.heard,
        "plan": feedback.plan,
        "not_followed": feedback.not_followed,
        "key_figures": list(feedback.key_figures or []),
        "notify_all_invitees": feedback.notify_all_invitees,
        "created_at": iso(feedback.created_at),
        "updated_at": iso(feedback.updated_at),
        "published_at": iso(feedback.published_at),
        "measures": [measure_view(m, history[m.id], staff=staff) for m in measures],
    }
    if staff:
        view["updated_by"] = feedback.updated_by
    return view


def summary_of(heard: str) -> str:
    """The first ~200 characters of "what we heard", cut at a word where possible."""
    text = " ".join(heard.split())
    if len(text) <= SUMMARY_LENGTH:
        return text
    cut = text[: SUMMARY_LENGTH - 1]
    if " " in cut[SUMMARY_LENGTH // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.") + "…"


# --- staff: list, draft, publish --------------------------------------------------------------


def list_feedback(
    session: Session, *, municipality_code: str, due_days: int, now: datetime
) -> list[dict[str, Any]]:
    rows = session.execute(
        sa.select(Poll, Feedback)
        .outerjoin(Feedback, Feedback.poll_id == Poll.id)
        .where(Poll.municipality_code == municipality_code)
        .order_by(Poll.published_at.desc(), Poll.id)
    ).all()
    return [
        {
            "poll_id": str(poll.id),
            "poll_title": poll.title,
            "poll_closed_at": iso(poll.closed_at),
            "status": feedback.status if feedback else "none",
            "feedback_id": str(feedback.id) if feedback else None,
            "published_at": iso(feedback.published_at) if feedback else None,
            "overdue": is_overdue(
                poll.closed_at,
                feedback.published_at if feedback else None,
                due_days=due_days,
                now=now,
            ),
        }
        for poll, feedback in rows
    ]


def check_can_save(session: Session, *, municipality_code: str, poll_id: str) -> Poll:
    """Before fetching key figures: the poll is ours and its feedback is not published."""
    poll = load_poll(session, municipality_code=municipality_code, poll_id=poll_id)
    existing = find_feedback(session, municipality_code=municipality_code, poll_id=poll_id)
    if existing is not None and existing.status == "published":
        raise feedback_published()
    return poll


def feedback_published() -> Conflict:
    return conflict(
        "feedback_published",
        "this feedback is published; after publishing only its measures can change",
        "status",
    )


def save_draft(
    session: Session,
    *,
    municipality_code: str,
    poll_id: str,
    fields: dict[str, Any],
    requests: list[dict[str, Any]],
    key_figures: list[dict[str, Any]],
    actor: str | None,
    now: datetime,
) -> Feedback:
    """Create the draft, or replace the texts and key figures of the existing one."""
    poll = load_poll(session, municipality_code=municipality_code, poll_id=poll_id)
    values = {
        "title": fields["title"],
        "heard": fields["heard"],
        "plan": fields["plan"],
        "not_followed": fields.get("not_followed"),
        "key_figure_requests": requests,
        "key_figures": key_figures,
        "notify_all_invitees": bool(fields.get("notify_all_invitees")),
        "updated_at": now,
        "updated_by": actor,
    }
    # Two editors saving the first draft at once: one inserts, the other then updates.
    session.execute(
        insert(Feedback)
        .values(
            id=uuid.uuid4(),
            poll_id=poll.id,
            municipality_code=municipality_code,
            status="draft",
            created_at=now,
            **values,
        )
        .on_conflict_do_nothing(index_elements=["poll_id"])
    )
    feedback = get_feedback(
        session, municipality_code=municipality_code, poll_id=poll_id, lock=True
    )
    if feedback.status == "published":
        raise feedback_published()
    for key, value in values.items():
        setattr(feedback, key, value)
    session.flush()
    return feedback


def check_can_publish(session: Session, *, municipality_code: str, poll_id: str) -> Feedback:
    """Before refreshing the key figures: a draft exists and the poll has closed."""
    feedback = get_feedback(session, municipality_code=municipality_code, poll_id=poll_id)
    if feedback.status == "draft":
        _require_closed(session, feedback)
    return feedback


def _require_closed(session: Session, feedback: Feedback) -> None:
    poll = session.get(Poll, feedback.poll_id)
    if poll is None or poll.closed_at is None:
        raise conflict(
            "poll_not_closed",
            "the poll must be closed before its feedback can be published",
            "poll_id",
        )


def publish(
    session: Session,
    *,
    municipality_code: str,
    poll_id: str,
    key_figures: list[dict[str, Any]] | None,
    actor: str | None,
    now: datetime,
    emit: Emit,
) -> Feedback:
    """Publish the draft (with the key figures fetched just now, if given) and announce it.
    Publishing again returns the published feedback and emits nothing."""
    feedback = get_feedback(
        session, municipality_code=municipality_code, poll_id=poll_id, lock=True
    )
    if feedback.status == "published":
        return feedback
    _require_closed(session, feedback)  # checked again: this is the transaction that counts
    if key_figures is not None:
        feedback.key_figures = key_figures
    feedback.status = "published"
    feedback.published_at = now
    feedback.published_by = actor
    feedback.updated_at = now
    feedback.updated_by = actor
    session.flush()
    emit(
        session,
        "feedback_published",
        {
            "feedback_id": str(feedback.id),
            "poll_id": str(feedback.poll_id),
            "municipality_code": municipality_code,
            "title": feedback.title,
            "summary": summary_of(feedback.heard),
            "notify_all_invitees": feedback.notify_all_invitees,
            "published_at": now.isoformat(),
        },
    )
    return feedback
