"""What can happen to a poll: create, edit while draft, publish, open and close on schedule,
close by hand, archive. Plain functions over an explicit session and clock; the service class
only wires them to RPC and timers.

States::

    draft ──publish──▶ scheduled ──(opens_at)──▶ open ──close / (closes_at)──▶ closed ──▶ archived
      └────publish (no opens_at, or in the past)──▶ open

``poll_published`` is emitted when a poll *opens* (residents can answer from then on), with the
frozen definition, its version and content hash. ``poll_closed`` when an open poll closes.
Every transition is idempotent: publishing an open poll again, or closing a closed one, returns
the poll unchanged and emits nothing.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.common.areas import in_municipality
from services.common.errors import Conflict, InvalidInput, NotFound
from services.common.events import audience_kinds
from services.common.pollspec import PollSpecError, content_hash, validate_definition
from services.polls import library
from services.polls.models import Poll

Emit = Callable[[Session, str, dict[str, Any]], Any]


# --- reading ---------------------------------------------------------------------------------


def load_poll(
    session: Session, *, municipality_code: str, poll_id: str, lock: bool = False
) -> Poll:
    """The poll, if it belongs to this municipality; NotFound otherwise (same answer for both,
    so one municipality cannot learn which ids another has)."""
    try:
        pid = uuid.UUID(str(poll_id))
    except ValueError:
        raise NotFound("no such poll") from None
    query = sa.select(Poll).where(Poll.id == pid, Poll.municipality_code == municipality_code)
    if lock:
        query = query.with_for_update()
    poll = session.scalars(query).first()
    if poll is None:
        raise NotFound("no such poll")
    return poll


def list_polls(
    session: Session, *, municipality_code: str, status: str | None = None
) -> list[Poll]:
    query = sa.select(Poll).where(Poll.municipality_code == municipality_code)
    if status is not None:
        query = query.where(Poll.status == status)
    return list(session.scalars(query.order_by(Poll.created_at.desc())))


def list_open(session: Session) -> list[Poll]:
    """Every open poll of every municipality: the gateway warms its cache with these."""
    return list(session.scalars(sa.select(Poll).where(Poll.status == "open")))


def serialize_poll(poll: Poll) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": str(poll.id),
        "municipality_code": poll.municipality_code,
        "status": poll.status,
        "template_id": poll.template_id,
        "title": poll.definition.get("title"),
        "definition": poll.definition,
        "audience": poll.audience,
        "opens_at": iso(poll.opens_at),
        "closes_at": iso(poll.closes_at),
        "reminder_after_hours": list(poll.reminder_after_hours or []),
        "version": poll.version,
        "content_hash": poll.content_hash,
        "created_by": poll.created_by,
        "created_at": iso(poll.created_at),
        "updated_at": iso(poll.updated_at),
        "published_at": iso(poll.published_at),
        "closed_at": iso(poll.closed_at),
        "archived_at": iso(poll.archived_at),
        "previous_poll_id": str(poll.previous_poll_id) if poll.previous_poll_id else None,
        "wave": poll.wave,
    }


# --- checks ----------------------------------------------------------------------------------


def check_definition(definition: Any) -> None:
    try:
        validate_definition(definition)
    except PollSpecError as exc:
        raise InvalidInput(
            "the poll definition is not valid",
            [{**e.as_dict(), "field": f"definition.{e.field}"} for e in exc.errors],
        ) from exc


def check_audience(audience: dict[str, Any], municipality_code: str) -> None:
    """Area codes must belong to the municipality (CBS codes share its four digits)."""
    errors = [
        {
            "field": f"audience.area_codes[{i}]",
            "code": "other_municipality",
            "message": f"{code} is not an area of {municipality_code}",
        }
        for i, code in enumerate(audience.get("area_codes", []))
        if not in_municipality(code, municipality_code)
    ]
    errors += [
        {
            "field": f"audience.region_codes[{i}]",
            "code": "other_municipality",
            "message": f"{code} is not a region of {municipality_code}",
        }
        for i, code in enumerate(audience.get("region_codes", []))
        if not in_municipality(code, municipality_code)
    ]
    if (
        audience["kind"] == "areas"
        and not audience.get("area_codes")
        and not audience.get("region_codes")
    ):
        errors.append(
            {
                "field": "audience.area_codes",
                "code": "required",
                "message": "list at least one wijk, buurt or region",
            }
        )
    if audience["kind"] == "sample" and not audience.get("sample_size"):
        errors.append(
            {
                "field": "audience.sample_size",
                "code": "required",
                "message": "a sample needs a sample_size",
            }
        )
    kinds = audience.get("kinds")
    if kinds is not None and len(set(kinds)) != len(kinds):
        errors.append(
            {
                "field": "audience.kinds",
                "code": "duplicate",
                "message": "name each kind of participant once",
            }
        )
    if audience["kind"] == "municipality" and audience.get("area_codes"):
        errors.append(
            {
                "field": "audience.area_codes",
                "code": "not_allowed",
                "message": "a municipality-wide audience lists no areas",
            }
        )
    if errors:
        raise InvalidInput("the audience is not valid", errors)


def _previous_wave(session: Session, municipality_code: str, poll_id: str) -> Poll:
    try:
        previous = load_poll(session, municipality_code=municipality_code, poll_id=poll_id)
    except NotFound:
        raise InvalidInput(
            "no such earlier poll",
            [
                {
                    "field": "previous_poll_id",
                    "code": "unknown",
                    "message": "not a poll of this municipality",
                }
            ],
        ) from None
    if previous.status in ("draft", "scheduled"):
        raise InvalidInput(
            "the earlier poll has not opened",
            [
                {
                    "field": "previous_poll_id",
                    "code": "not_published",
                    "message": "a next wave follows a poll that has opened",
                }
            ],
        )
    return previous


def withdrawn(poll: Poll) -> bool:
    """A poll that was scheduled and closed before it opened: never announced, no answers.
    (Opening sets ``opens_at`` to the moment it opened, so a poll that opened has
    ``opens_at`` ≤ ``closed_at``; one closed by hand within the schedule timer's tick after
    its planned opening counts as opened: the safe side for a series.)"""
    return (
        poll.status in ("closed", "archived")
        and poll.opens_at is not None
        and poll.closed_at is not None
        and poll.opens_at > poll.closed_at
    )


def check_wave_free(session: Session, previous: Poll, *, poll_id: uuid.UUID | None = None) -> None:
    """A series is linear (wave 1, 2, 3…; a trend compares consecutive waves): refuse a next
    wave of ``previous`` when another poll (not ``poll_id``) already follows it and has been
    published — scheduled, open, closed or archived, unless withdrawn (closed before it
    opened). Drafts do not count: they cannot be deleted, so an abandoned one must not block
    the series; of two drafts following one wave, the first published wins."""
    query = sa.select(Poll).where(
        Poll.municipality_code == previous.municipality_code,
        Poll.previous_poll_id == previous.id,
        Poll.status != "draft",
    )
    if poll_id is not None:
        query = query.where(Poll.id != poll_id)
    taken = [
        p for p in session.scalars(query.order_by(Poll.published_at, Poll.id)) if not withdrawn(p)
    ]
    if taken:
        other = taken[0]
        message = (
            f"wave {previous.wave} is already followed by poll {other.id} (wave {other.wave}, "
            f"{other.status}); a series goes one wave after another: follow that poll instead"
        )
        raise Conflict(
            message,
            [
                {
                    "field": "previous_poll_id",
                    "code": "wave_already_followed",
                    "message": message,
                    "poll_id": str(other.id),
                }
            ],
        )


COMPARED = ("single_choice", "multiple_choice", "likert5", "rating10", "ranking")


def _answers_of(q: dict[str, Any]) -> tuple[Any, ...]:
    """What must stay the same for a question to be compared between waves: its type, option
    ids (scales: their range and "weet niet"), and for multiple choice its selections."""
    options = tuple(o["id"] for o in q.get("options") or [])
    return (
        q["type"],
        options,
        bool(q.get("dont_know")),
        q.get("min_selections"),
        q.get("max_selections"),
    )


def check_series(definition: dict[str, Any], previous: dict[str, Any]) -> None:
    """A next wave may change wording, add and drop questions; a question it shares (same
    id) with the earlier wave keeps its type and options, or it could not be compared."""
    before = {q["id"]: q for q in previous.get("questions", [])}
    errors = []
    for i, q in enumerate(definition.get("questions", [])):
        old = before.get(q["id"])
        if old is None or q["type"] not in COMPARED and old["type"] not in COMPARED:
            continue
        if _answers_of(q) != _answers_of(old):
            errors.append(
                {
                    "field": f"definition.questions[{i}]",
                    "code": "changed_in_series",
                    "message": f"question {q['id']!r} is compared with the earlier wave: keep "
                    "its type and options (or give it a new id)",
                }
            )
    if errors:
        raise InvalidInput("this wave changes answers of questions it is compared on", errors)


def whole_series(session: Session, *, municipality_code: str, poll_id: str) -> list[Poll]:
    """Every wave of the poll's series, the same list from any of them: the first wave it goes
    back to and every poll that follows that one, directly or through a later wave, drafts
    too. Ordered by wave, then by opening (not yet scheduled last), then by creation. Only one
    published poll may follow a wave (``check_wave_free``: the series is linear), but drafts
    following the same wave, and a withdrawn poll beside the one published after it, may be
    there too: all are listed (``previous_poll_id`` says which wave each follows)."""
    first = series(session, municipality_code=municipality_code, poll_id=poll_id)[0]
    found = {first.id: first}
    following = [first.id]
    while following:
        later = session.scalars(
            sa.select(Poll).where(
                Poll.municipality_code == municipality_code,
                Poll.previous_poll_id.in_(following),
            )
        ).all()
        following = [p.id for p in later if p.id not in found]
        found.update((p.id, p) for p in later)
    return sorted(
        found.values(),
        key=lambda p: (
            p.wave,
            p.opens_at is None,
            p.opens_at or p.created_at,
            p.created_at,
            str(p.id),
        ),
    )


def serialize_wave(poll: Poll) -> dict[str, Any]:
    """A wave as the series lists it: which poll, its place and state, and its dates."""
    full = serialize_poll(poll)
    return {
        "poll_id": full["id"],
        **{
            key: full[key]
            for key in (
                "title",
                "wave",
                "previous_poll_id",
                "status",
                "opens_at",
                "closes_at",
                "published_at",
                "closed_at",
            )
        },
    }


def series(session: Session, *, municipality_code: str, poll_id: str) -> list[Poll]:
    """The poll and the earlier waves it follows, oldest first."""
    chain = [load_poll(session, municipality_code=municipality_code, poll_id=poll_id)]
    seen = {chain[0].id}
    while chain[0].previous_poll_id is not None and chain[0].previous_poll_id not in seen:
        earlier = load_poll(
            session, municipality_code=municipality_code, poll_id=str(chain[0].previous_poll_id)
        )
        seen.add(earlier.id)
        chain.insert(0, earlier)
    return chain


def freeze_regions(audience: dict[str, Any], regions: list[dict[str, Any]]) -> dict[str, Any]:
    """The audience with its regions frozen (code, name, version, buurt codes); every region
    it names must be given, and no other."""
    wanted = list(dict.fromkeys(audience.get("region_codes") or []))
    given = {r["code"]: r for r in regions}
    missing = [code for code in wanted if code not in given]
    if missing or set(given) - set(wanted):
        raise InvalidInput(
            "the regions of the audience could not be frozen",
            [
                {
                    "field": "audience.region_codes",
                    "code": "unknown_region",
                    "message": f"{code} is not an active region",
                }
                for code in missing
            ],
        )
    if not wanted:
        return audience
    frozen = [
        {
            "code": code,
            "name": given[code]["name"],
            "version": given[code]["version"],
            "buurt_codes": sorted(given[code]["buurt_codes"]),
        }
        for code in wanted
    ]
    out = {**audience, "regions": frozen}
    if audience["kind"] == "areas":
        codes = list(audience.get("area_codes") or [])
        for region in frozen:
            codes += [b for b in region["buurt_codes"] if b not in codes]
        out["area_codes"] = codes
    return out


def check_schedule(opens_at: datetime | None, closes_at: datetime | None, now: datetime) -> None:
    if closes_at is None:
        return
    if opens_at is not None and closes_at <= opens_at:
        raise InvalidInput(
            "the poll would close before it opens",
            [
                {
                    "field": "closes_at",
                    "code": "before_opening",
                    "message": "closes_at must be later than opens_at",
                }
            ],
        )
    if closes_at <= now:
        raise InvalidInput(
            "closes_at lies in the past",
            [
                {
                    "field": "closes_at",
                    "code": "in_past",
                    "message": "closes_at must be in the future",
                }
            ],
        )


# --- transitions -----------------------------------------------------------------------------


def create_poll(
    session: Session,
    *,
    municipality_code: str,
    data: dict[str, Any],
    now: datetime,
    created_by: str | None = None,
) -> Poll:
    """A new draft, from a template (``template_id``) or from a full ``definition``; with
    ``previous_poll_id`` the next wave of that (published) poll, by default with its
    definition."""
    template_id, definition = data.get("template_id"), data.get("definition")
    previous = None
    if data.get("previous_poll_id") is not None:
        previous = _previous_wave(session, municipality_code, str(data["previous_poll_id"]))
        check_wave_free(session, previous)
        if template_id is None and definition is None:
            template_id, definition = previous.template_id, previous.definition
    if template_id and definition is None:
        try:
            definition = library.get_template(template_id)["definition"]
        except NotFound:
            raise InvalidInput(
                f"no template {template_id!r}",
                [{"field": "template_id", "code": "unknown", "message": "no such template"}],
            ) from None
    if definition is None:
        raise InvalidInput(
            "give a template_id or a definition",
            [
                {
                    "field": "definition",
                    "code": "required",
                    "message": "a template_id or a definition is required",
                }
            ],
        )
    check_definition(definition)
    check_audience(data["audience"], municipality_code)
    check_schedule(data.get("opens_at"), data.get("closes_at"), now)
    if previous is not None:
        check_series(definition, previous.definition)
    poll = Poll(
        previous_poll_id=previous.id if previous is not None else None,
        wave=previous.wave + 1 if previous is not None else 1,
        id=uuid.uuid4(),
        municipality_code=municipality_code,
        status="draft",
        template_id=template_id,
        definition=definition,
        audience=data["audience"],
        opens_at=data.get("opens_at"),
        closes_at=data.get("closes_at"),
        reminder_after_hours=sorted(set(data.get("reminder_after_hours") or [])),
        version=1,
        created_by=created_by,
        created_at=now,
        updated_at=now,
    )
    session.add(poll)
    session.flush()
    return poll


def update_draft(
    session: Session,
    *,
    municipality_code: str,
    poll_id: str,
    changes: dict[str, Any],
    now: datetime,
    expected_version: int | None = None,
) -> Poll:
    poll = load_poll(session, municipality_code=municipality_code, poll_id=poll_id, lock=True)
    if poll.status != "draft":
        raise Conflict(
            f"this poll is {poll.status} and can no longer be edited; "
            "a published poll is frozen so every resident answers the same questions"
        )
    if expected_version is not None and expected_version != poll.version:
        raise Conflict(
            f"the poll was changed meanwhile (version {poll.version}, you edited "
            f"{expected_version}); reload and edit again"
        )
    if "definition" in changes:
        check_definition(changes["definition"])
        poll.definition = changes["definition"]
    if "audience" in changes:
        check_audience(changes["audience"], municipality_code)
        poll.audience = changes["audience"]
    if "reminder_after_hours" in changes:
        poll.reminder_after_hours = sorted(set(changes["reminder_after_hours"]))
    for key in ("opens_at", "closes_at"):
        if key in changes:
            setattr(poll, key, changes[key])
    check_schedule(poll.opens_at, poll.closes_at, now)
    poll.version += 1
    poll.updated_at = now
    session.flush()
    return poll


def publish_poll(
    session: Session,
    *,
    municipality_code: str,
    poll_id: str,
    now: datetime,
    emit: Emit,
    regions: list[dict[str, Any]] | None = None,
) -> Poll:
    """Freeze the draft and open it now, or schedule it for ``opens_at``. ``regions``: the
    current versions of the regions the audience names (``region_codes``), as the panel
    serves them; frozen into the audience (``regions``), and with kind "areas" their buurten
    join its ``area_codes``."""
    poll = load_poll(session, municipality_code=municipality_code, poll_id=poll_id, lock=True)
    if poll.status in ("scheduled", "open"):
        return poll  # already published: idempotent, nothing emitted
    if poll.status != "draft":
        raise Conflict(f"this poll is {poll.status}; only a draft can be published")
    check_definition(poll.definition)
    check_audience(poll.audience, municipality_code)
    check_schedule(poll.opens_at, poll.closes_at, now)
    poll.audience = freeze_regions(poll.audience, regions or [])
    # The kinds of participant frozen as well: an event always says whom the poll is for.
    poll.audience = {**poll.audience, "kinds": list(audience_kinds(poll.audience))}
    if poll.previous_poll_id is not None:
        # Locked: two drafts following the same wave, published at once, take turns here, so
        # the second sees the first published and is refused.
        earlier = load_poll(
            session,
            municipality_code=municipality_code,
            poll_id=str(poll.previous_poll_id),
            lock=True,
        )
        check_wave_free(session, earlier, poll_id=poll.id)
        check_series(poll.definition, earlier.definition)
    if poll.audience["kind"] == "sample":
        # Drawn once, so notify can reproduce the same sample after a redelivery.
        poll.audience = {**poll.audience, "seed": random.SystemRandom().randrange(2**31)}
    poll.content_hash = content_hash({"definition": poll.definition, "audience": poll.audience})
    poll.published_at = now
    poll.updated_at = now
    if poll.opens_at is not None and poll.opens_at > now:
        poll.status = "scheduled"
    else:
        open_poll(session, poll, now=now, emit=emit)
    session.flush()
    return poll


def open_poll(session: Session, poll: Poll, *, now: datetime, emit: Emit) -> None:
    poll.status = "open"
    poll.opens_at = min(poll.opens_at or now, now)
    poll.updated_at = now
    emit(session, "poll_published", published_payload(poll))


def published_payload(poll: Poll) -> dict[str, Any]:
    # Called by open_poll only: publish has set published_at, open_poll has just set opens_at.
    assert poll.opens_at is not None and poll.published_at is not None
    return {
        "poll_id": str(poll.id),
        "municipality_code": poll.municipality_code,
        "version": poll.version,
        "content_hash": poll.content_hash,
        "template_id": poll.template_id,
        "definition": poll.definition,
        "audience": poll.audience,
        "opens_at": poll.opens_at.isoformat(),
        "closes_at": poll.closes_at.isoformat() if poll.closes_at else None,
        "reminder_after_hours": list(poll.reminder_after_hours or []),
        "published_at": poll.published_at.isoformat(),
        "previous_poll_id": str(poll.previous_poll_id) if poll.previous_poll_id else None,
        "wave": poll.wave,
    }


def close_poll(
    session: Session,
    *,
    municipality_code: str,
    poll_id: str,
    now: datetime,
    emit: Emit,
    reason: str = "manual",
) -> Poll:
    poll = load_poll(session, municipality_code=municipality_code, poll_id=poll_id, lock=True)
    return _close(session, poll, now=now, emit=emit, reason=reason)


def _close(session: Session, poll: Poll, *, now: datetime, emit: Emit, reason: str) -> Poll:
    if poll.status in ("closed", "archived"):
        return poll  # idempotent
    if poll.status == "draft":
        raise Conflict("a draft was never published; delete or publish it instead of closing")
    was_open = poll.status == "open"
    poll.status = "closed"
    poll.closed_at = now
    poll.updated_at = now
    if was_open:
        # A scheduled poll that never opened was never announced: nothing to retract.
        emit(
            session,
            "poll_closed",
            {
                "poll_id": str(poll.id),
                "municipality_code": poll.municipality_code,
                "closed_at": now.isoformat(),
                "reason": reason,
            },
        )
    session.flush()
    return poll


def archive_poll(session: Session, *, municipality_code: str, poll_id: str, now: datetime) -> Poll:
    poll = load_poll(session, municipality_code=municipality_code, poll_id=poll_id, lock=True)
    if poll.status == "archived":
        return poll
    if poll.status != "closed":
        raise Conflict(f"this poll is {poll.status}; only a closed poll can be archived")
    poll.status = "archived"
    poll.archived_at = now
    poll.updated_at = now
    session.flush()
    return poll


def run_schedule(
    session: Session, *, now: datetime, emit: Emit, limit: int = 100
) -> dict[str, int]:
    """Open scheduled polls whose time has come and close open polls past ``closes_at``.

    Rows are locked with SKIP LOCKED, so two replicas running the timer never both act on a
    poll; a poll that is due to open and close in one tick opens and then closes.
    """
    due_open = session.scalars(
        sa.select(Poll)
        .where(Poll.status == "scheduled", Poll.opens_at <= now)
        .order_by(Poll.opens_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for poll in due_open:
        open_poll(session, poll, now=now, emit=emit)
    due_close = session.scalars(
        sa.select(Poll)
        .where(Poll.status == "open", Poll.closes_at <= now)
        .order_by(Poll.closes_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for poll in due_close:
        _close(session, poll, now=now, emit=emit, reason="schedule")
    session.flush()
    return {"opened": len(due_open), "closed": len(due_close)}
