"""Recording submissions: one transaction per batch inserts the responses (one per resident and
poll, under a pseudonymous key), bumps the counters per area and stratum, answers the receipts
and queues ``response_recorded`` — results never scan raw responses.

A submission (from the gateway, on the ``responses.intake`` queue) is ``SubmissionV1`` of
``services/common/intake.py``: the contract lives there, next to the event catalogue.
``wijk_code``/``buurt_code`` are where the resident was invited; ``recently_moved`` (absent:
false, as in messages queued before it existed) says they moved since. Both kinds are kept in
the stratum so results can leave them out (``respondents=panel``), and so are the kind of
participant (resident, ondernemer, organisatie) and the channel (app, link, paper) of the
answer, for results per kind and per channel (absent: a resident, in the app).

The resident id is used for two things only: the respondent key
HMAC-SHA256(secret, "poll_id:resident_id"), and the ``response_recorded`` event (whose outbox
row is deleted once published). It is stored nowhere else.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.common import intake as contract
from services.responses.models import Count, OpenText, Poll, Receipt, Respondents, Response

UNKNOWN = "?"


def respondent_key(secret: bytes, poll_id: str, resident_id: str) -> str:
    return hmac.new(secret, f"{poll_id}:{resident_id}".encode(), hashlib.sha256).hexdigest()


def malformed(body: Any) -> str | None:
    """Why a message can never be recorded (it goes to the dead-letter queue), or None: it does
    not fit the intake contract (``SubmissionV1``)."""
    return contract.malformed(body)


@dataclass(frozen=True)
class Outcome:
    receipt_id: str
    poll_id: str
    status: str  # recorded | rejected | deferred (try again later: nothing was written)
    reason: str | None
    submitted_at: datetime


def answer_options(question: dict[str, Any], value: Any) -> list[str]:
    """What one answer counts as: the option ids, or the scale value, as strings."""
    if question["type"] in ("multiple_choice",):
        return [str(v) for v in value]
    if question["type"] == "ranking":
        return [str(value[0])] if value else []  # first choice; full rankings stay in answers
    if question["type"] in ("single_choice", "likert5", "rating10"):
        return [str(value)]
    return []  # open_text and location are not counted as options


def record_batch(
    session: Session,
    submissions: list[dict[str, Any]],
    *,
    secret: bytes,
    emit_many: Callable[[Session, str, list[dict[str, Any]]], Any],
    today: Callable[[], datetime],
) -> list[Outcome]:
    """Record what can be recorded; reject the rest with a reason. One transaction (the
    caller's); safe to run again for the same messages (a redelivered batch changes nothing).

    The outcomes come in this order: those decided by screening (answered before, deferred,
    rejected), in the order of the submissions, then those of the accepted ones."""
    polls, answered = _polls_and_receipts(session, submissions)
    now = today()
    outcomes, accepted = _screen(submissions, polls, answered, secret)
    accepted_outcomes, recorded = _insert_accepted(session, accepted, now)
    outcomes += accepted_outcomes
    _bump_counters(session, recorded)
    _store_open_texts(session, recorded)
    bump_results_version(session, {poll.id for _, poll in recorded})
    emit_many(
        session,
        "response_recorded",
        [
            {
                "poll_id": s["poll_id"],
                "municipality_code": poll.municipality_code,
                "resident_id": s["resident"]["id"],
                "recorded_at": now.isoformat(),
            }
            for s, poll in recorded
        ],
    )
    _store_receipts(
        session,
        [o for o in outcomes if uuid.UUID(o.receipt_id) not in answered and o.status != "deferred"],
        now,
    )
    return outcomes


# --- record_batch's phases ---------------------------------------------------------------------


def _polls_and_receipts(
    session: Session, submissions: list[dict[str, Any]]
) -> tuple[dict[uuid.UUID, Poll], dict[uuid.UUID, Receipt]]:
    """The polls the submissions are for, and the receipts already answered (redeliveries)."""
    poll_ids = {uuid.UUID(s["poll_id"]) for s in submissions}
    polls = {p.id: p for p in session.scalars(sa.select(Poll).where(Poll.id.in_(poll_ids)))}
    receipt_ids = [uuid.UUID(s["receipt_id"]) for s in submissions]
    answered = {
        r.id: r for r in session.scalars(sa.select(Receipt).where(Receipt.id.in_(receipt_ids)))
    }
    return polls, answered


def _screen(
    submissions: list[dict[str, Any]],
    polls: dict[uuid.UUID, Poll],
    answered: dict[uuid.UUID, Receipt],
    secret: bytes,
) -> tuple[list[Outcome], list[tuple[dict[str, Any], Poll, str]]]:
    """Outcomes for the submissions that need no insert — answered before (the same answer
    again), poll unknown yet (deferred), refused (rejected) — and the rest, accepted, each with
    its poll and respondent key."""
    outcomes: list[Outcome] = []
    accepted: list[tuple[dict[str, Any], Poll, str]] = []
    seen: set[tuple[uuid.UUID, str]] = set()  # (poll, respondent) accepted in this batch
    for s in submissions:
        receipt_id = uuid.UUID(s["receipt_id"])
        submitted = datetime.fromisoformat(s["submitted_at"])
        if receipt_id in answered:  # a redelivered message: already answered
            r = answered[receipt_id]
            outcomes.append(Outcome(s["receipt_id"], s["poll_id"], r.status, r.reason, submitted))
            continue
        poll = polls.get(uuid.UUID(s["poll_id"]))
        key = respondent_key(secret, s["poll_id"], s["resident"]["id"])
        if poll is None:  # poll_published not processed yet: the gateway knew it was open
            outcomes.append(
                Outcome(s["receipt_id"], s["poll_id"], "deferred", "unknown_poll", submitted)
            )
            continue
        reason = _refusal(s, poll, submitted, already=(poll.id, key) in seen)
        if reason:
            outcomes.append(Outcome(s["receipt_id"], s["poll_id"], "rejected", reason, submitted))
            continue
        seen.add((poll.id, key))
        accepted.append((s, poll, key))
    return outcomes, accepted


def _refusal(s: dict[str, Any], poll: Poll, submitted: datetime, *, already: bool) -> str | None:
    """Why a submission for a known poll is rejected, or None; ``already``: the same resident
    has a submission for this poll earlier in the batch."""
    if poll.closed_at is not None and poll.closed_at < submitted:
        return "poll_closed"
    if poll.municipality_code != s["resident"]["municipality_code"]:
        return "not_eligible"
    if already:
        return "already_answered"
    return None


def _insert_accepted(
    session: Session, accepted: list[tuple[dict[str, Any], Poll, str]], now: datetime
) -> tuple[list[Outcome], list[tuple[dict[str, Any], Poll]]]:
    """Insert the accepted responses: an outcome for each (recorded, or rejected when the
    resident answered in an earlier batch), and the submissions that were new."""
    inserted = _insert_responses(session, accepted, now)
    outcomes: list[Outcome] = []
    recorded: list[tuple[dict[str, Any], Poll]] = []
    for s, poll, key in accepted:
        new = key in inserted
        outcomes.append(
            Outcome(
                s["receipt_id"],
                s["poll_id"],
                "recorded" if new else "rejected",
                None if new else "already_answered",
                datetime.fromisoformat(s["submitted_at"]),
            )
        )
        if new:
            recorded.append((s, poll))
    return outcomes, recorded


def _store_receipts(session: Session, outcomes: list[Outcome], now: datetime) -> None:
    """Answer the receipts of these (newly decided) outcomes."""
    insert_many(
        session,
        Receipt,
        ["id", "poll_id", "status", "reason", "updated_at"],
        [(o.receipt_id, o.poll_id, o.status, o.reason, now) for o in outcomes],
        on_conflict="DO NOTHING",
    )


def _insert_responses(
    session: Session, accepted: Iterable[tuple[dict, Poll, str]], now: datetime
) -> dict[str, uuid.UUID]:
    """Insert; return respondent key → response id for the rows that were new."""
    rows = [
        {
            "id": uuid.uuid4(),
            "poll_id": poll.id,
            "respondent_key": key,
            "wijk_code": s["resident"]["wijk_code"],
            "buurt_code": s["resident"]["buurt_code"],
            "age_band": s["resident"].get("age_band"),
            "sex": s["resident"].get("sex"),
            "self_selected": bool(s["resident"].get("self_selected")),
            "recently_moved": bool(s["resident"].get("recently_moved")),
            "kind": s["resident"].get("kind") or "resident",
            "channel": s.get("channel") or "app",
            "answers": s["answers"],
            "recorded_on": now.date(),
        }
        for s, poll, key in accepted
    ]
    if not rows:
        return {}
    result = session.execute(
        insert(Response)
        .on_conflict_do_nothing(constraint="responses_one_per_resident")
        .returning(Response.respondent_key, Response.id),
        rows,
    )
    return dict(result.all())


def bump_results_version(session: Session, poll_ids: Iterable[uuid.UUID]) -> None:
    """Cached results of these polls are stale from this transaction's commit on."""
    ids = sorted(poll_ids)  # same lock order in concurrent batches
    if ids:
        session.execute(
            sa.update(Poll)
            .where(Poll.id.in_(ids))
            .values(results_version=Poll.results_version + 1)
            .execution_options(synchronize_session=False)
        )


def _strata(s: dict[str, Any]) -> tuple[str, str, bool, bool, str, str]:
    """The stratum a submission is counted in: age band, sex, self-selected, recently moved,
    kind of participant and channel (absent in older messages: a resident, in the app)."""
    r = s["resident"]
    return (
        r.get("age_band") or UNKNOWN,
        r.get("sex") or UNKNOWN,
        bool(r.get("self_selected")),
        bool(r.get("recently_moved")),
        r.get("kind") or "resident",
        s.get("channel") or "app",
    )


def _bump_counters(session: Session, recorded: list[tuple[dict[str, Any], Poll]]) -> None:
    counts: Counter[tuple] = Counter()
    respondents: Counter[tuple] = Counter()
    for s, poll in recorded:
        r = s["resident"]
        stratum = _strata(s)
        questions = {q["id"]: q for q in poll.definition["questions"]}
        for area in (poll.municipality_code, r["wijk_code"], r["buurt_code"]):
            respondents[(poll.id, "*", area, *stratum)] += 1
            for qid, value in s["answers"].items():
                if qid not in questions:
                    continue
                respondents[(poll.id, qid, area, *stratum)] += 1
                for option in answer_options(questions[qid], value):
                    counts[(poll.id, qid, option, area, *stratum)] += 1
    _upsert(
        session,
        Count,
        [
            "poll_id",
            "question_id",
            "option",
            "area_code",
            "age_band",
            "sex",
            "self_selected",
            "recently_moved",
            "kind",
            "channel",
        ],
        counts,
    )
    _upsert(
        session,
        Respondents,
        [
            "poll_id",
            "question_id",
            "area_code",
            "age_band",
            "sex",
            "self_selected",
            "recently_moved",
            "kind",
            "channel",
        ],
        respondents,
    )


def _upsert(session: Session, model: Any, keys: list[str], counter: Counter[tuple]) -> None:
    """Add ``counter`` to ``model``'s counters in one statement (``insert_many``)."""
    if not counter:
        return
    # Sorted, so concurrent batches lock the shared (gemeente) rows in the same order.
    items = sorted(counter.items(), key=lambda kv: tuple(map(str, kv[0])))
    table = model.__table__.name
    insert_many(
        session,
        model,
        [*keys, "n"],
        [(*key, n) for key, n in items],
        on_conflict=f"({', '.join(keys)}) DO UPDATE SET n = {table}.n + excluded.n",
    )


def insert_many(
    session: Session,
    model: Any,
    columns: list[str],
    rows: list[tuple[Any, ...]],
    *,
    on_conflict: str,
) -> None:
    """INSERT … SELECT FROM unnest(one array per column) ON CONFLICT ``on_conflict``: one
    statement, parsed and planned once, one round trip, where an executemany of an upsert
    sends, parses and plans one statement per row (psycopg2 runs it row by row; a batch of
    100 full answers touches ~5,000 counter rows). Rows are inserted in the given order."""
    if not rows:
        return
    table = model.__table__
    values: list[list[Any]] = [[] for _ in columns]
    for row in rows:
        for i, v in enumerate(row):
            values[i].append(str(v) if isinstance(v, uuid.UUID) else v)
    casts = ", ".join(
        f"CAST(:c{i} AS {_array_type(table.c[c].type)})" for i, c in enumerate(columns)
    )
    names = ", ".join(columns)
    session.execute(
        sa.text(
            f"INSERT INTO {table.name} ({names}) SELECT {names} "
            f"FROM unnest({casts}) WITH ORDINALITY AS u({names}, ord) ORDER BY ord "
            f"ON CONFLICT {on_conflict}"
        ),
        {f"c{i}": v for i, v in enumerate(values)},
    )


_ARRAY_TYPES = {"Uuid": "uuid[]", "String": "text[]", "Text": "text[]", "Boolean": "boolean[]"}
_ARRAY_TYPES |= {"Integer": "integer[]", "BigInteger": "bigint[]"}


def _array_type(column_type: Any) -> str:
    """The PostgreSQL array type for a parameter of unnest() filling a column of this type."""
    if isinstance(column_type, sa.DateTime):
        return "timestamptz[]" if column_type.timezone else "timestamp[]"
    return _ARRAY_TYPES[type(column_type).__name__]


def _store_open_texts(session: Session, recorded: list[tuple[dict[str, Any], Poll]]) -> None:
    rows = []
    for s, poll in recorded:
        for q in poll.definition["questions"]:
            if q["type"] == "open_text" and s["answers"].get(q["id"]):
                rows.append(
                    {
                        "id": uuid.uuid4(),
                        "poll_id": poll.id,
                        "question_id": q["id"],
                        "wijk_code": s["resident"]["wijk_code"],
                        "buurt_code": s["resident"]["buurt_code"],
                        "kind": s["resident"].get("kind") or "resident",
                        "text": s["answers"][q["id"]],
                    }
                )
    if rows:
        session.execute(insert(OpenText), rows)
