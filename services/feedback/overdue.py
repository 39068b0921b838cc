"""Polls closed for longer than the municipality's ``feedback_due_days`` without published
feedback: the admin list, the gauge, and one reminder e-mail per poll to its editors and admins.

The reminder is claimed before it is sent (a row in ``overdue_reminders``, unique per poll,
committed first) and sent after that commit: **at most once**. A process killed between the
commit and the SMTP hand-over loses that one reminder; we accept that, because the poll stays in
the admin list and on the alert, whereas the other order (send, then record) would repeat the
e-mail after every crash or with two replicas sweeping at once. A send that fails cleanly (SMTP
refused, panel unreachable) releases the claim, so the next sweep tries again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.feedback.models import Feedback, OverdueReminder, Poll

REMIND_ROLES = ("editor", "admin")


def due_at(closed_at: datetime, due_days: int) -> datetime:
    return closed_at + timedelta(days=due_days)


def is_overdue(
    closed_at: datetime | None, published_at: datetime | None, *, due_days: int, now: datetime
) -> bool:
    return closed_at is not None and published_at is None and now > due_at(closed_at, due_days)


def days_overdue(closed_at: datetime, due_days: int, now: datetime) -> int:
    return max(0, (now - due_at(closed_at, due_days)).days)


def overdue_polls(
    session: Session, *, municipality_code: str, due_days: int, now: datetime
) -> list[dict[str, Any]]:
    """Closed polls past their due date without published feedback, longest overdue first."""
    rows = session.execute(
        sa.select(Poll.id, Poll.title, Poll.closed_at)
        .outerjoin(Feedback, sa.and_(Feedback.poll_id == Poll.id, Feedback.status == "published"))
        .where(
            Poll.municipality_code == municipality_code,
            Poll.closed_at.is_not(None),
            Poll.closed_at < now - timedelta(days=due_days),
            Feedback.id.is_(None),
        )
        .order_by(Poll.closed_at, Poll.id)
    ).all()
    return [
        {
            "poll_id": str(r.id),
            "poll_title": r.title,
            "closed_at": r.closed_at.isoformat(),
            "due_at": due_at(r.closed_at, due_days).isoformat(),
            "days_overdue": days_overdue(r.closed_at, due_days, now),
        }
        for r in rows
    ]


def municipalities(session: Session) -> list[str]:
    return list(
        session.scalars(
            sa.select(Poll.municipality_code).distinct().order_by(Poll.municipality_code)
        )
    )


def unreminded(session: Session, poll_ids: list[str]) -> list[str]:
    if not poll_ids:
        return []
    done = set(
        session.scalars(
            sa.select(OverdueReminder.poll_id).where(
                OverdueReminder.poll_id.in_([uuid.UUID(p) for p in poll_ids])
            )
        )
    )
    return [p for p in poll_ids if uuid.UUID(p) not in done]


def claim_reminder(
    session: Session, *, poll: dict[str, Any], municipality_code: str, now: datetime
) -> bool:
    """True if this sweep may send the poll's reminder (nobody claimed it before)."""
    return (
        session.execute(
            insert(OverdueReminder)
            .values(
                poll_id=uuid.UUID(poll["poll_id"]),
                municipality_code=municipality_code,
                due_at=datetime.fromisoformat(poll["due_at"]),
                claimed_at=now,
                recipients=0,
            )
            .on_conflict_do_nothing()
            .returning(OverdueReminder.poll_id)
        ).first()
        is not None
    )


def mark_sent(session: Session, *, poll_id: str, recipients: int, now: datetime) -> None:
    session.execute(
        sa.update(OverdueReminder)
        .where(OverdueReminder.poll_id == uuid.UUID(poll_id))
        .values(sent_at=now, recipients=recipients)
    )


def release(session: Session, *, poll_id: str) -> None:
    session.execute(
        sa.delete(OverdueReminder).where(
            OverdueReminder.poll_id == uuid.UUID(poll_id), OverdueReminder.sent_at.is_(None)
        )
    )


def recipients(staff: list[dict[str, Any]]) -> list[str]:
    """Active editors and admins (not viewers, not invited or disabled accounts)."""
    return sorted(
        {
            s["email"]
            for s in staff
            if s.get("role") in REMIND_ROLES and s.get("status") == "active" and s.get("email")
        }
    )


def reminder_text(poll: dict[str, Any], *, admin_url: str) -> tuple[str, str]:
    """Subject and body (Dutch) of the reminder for one overdue poll."""
    days = poll["days_overdue"]
    closed = datetime.fromisoformat(poll["closed_at"]).date().strftime("%d-%m-%Y")
    due = datetime.fromisoformat(poll["due_at"]).date().strftime("%d-%m-%Y")
    link = f"{admin_url.rstrip('/')}/polls/{poll['poll_id']}/feedback"
    late = "minder dan een dag" if days == 0 else f"{days} dag{'en' if days != 1 else ''}"
    subject = f"Terugkoppeling {late} te laat: {poll['poll_title']}"
    body = (
        "Beste collega,\n\n"
        f'De peiling "{poll["poll_title"]}" is gesloten op {closed}. De terugkoppeling aan de '
        f"inwoners had uiterlijk {due} gepubliceerd moeten zijn en is nu {late} te laat.\n\n"
        "Inwoners die meededen, horen graag wat de gemeente met hun antwoorden doet. Publiceer "
        "de terugkoppeling (wat we hoorden, wat we gaan doen en waarom) in het beheer van "
        f"Buurtpeil, onder Peilingen > {poll['poll_title']} > Terugkoppeling:\n"
        f"{link}\n\n"
        "U krijgt deze herinnering één keer per peiling.\n\n"
        "Met vriendelijke groet,\nBuurtpeil\n"
    )
    return subject, body


def send_reminders(
    *,
    run: Callable[[Callable[[Session], Any]], Any],
    municipality_code: str,
    overdue: list[dict[str, Any]],
    staff: Callable[[], list[dict[str, Any]]],
    send: Callable[[list[str], str, str], Any],
    admin_url: str,
    now: datetime,
) -> int:
    """Claim, send and record the reminder of every overdue poll that has had none; each claim
    commits (``run`` is one transaction) before its e-mail goes. Returns how many were sent."""
    pending = run(lambda s: unreminded(s, [p["poll_id"] for p in overdue]))
    if not pending:
        return 0
    to = recipients(staff())
    if not to:
        return 0  # nobody to tell yet; a later sweep tries again
    sent = 0
    for poll in (p for p in overdue if p["poll_id"] in pending):
        claimed = run(
            partial(claim_reminder, poll=poll, municipality_code=municipality_code, now=now)
        )
        if not claimed:
            continue
        subject, body = reminder_text(poll, admin_url=admin_url)
        try:
            send(to, subject, body)
        except Exception:
            run(partial(release, poll_id=poll["poll_id"]))
            raise
        run(partial(mark_sent, poll_id=poll["poll_id"], recipients=len(to), now=now))
        sent += 1
    return sent
