"""Channel workers: take a batch of delivery ids, send each on its channel concurrently, and
record every outcome in one transaction.

A delivery is one notification to one participant. On a device channel it goes to every device
the participant registered (Web Push or FCM: a resident's phone and laptop, each contact of a
business or organisation) — one request per device, the outcomes settled into the delivery's
(:func:`settle`); by e-mail, to one address.

Outcomes per device: ``sent``; ``gone`` (404/410, UNREGISTERED: that endpoint is removed);
``retry`` (429, 5xx, network: tried again later through the delay queues, after the push
service's Retry-After when it gave one); ``failed`` (a request the service will never accept).
A delivery remembers the devices it is done with (``done_endpoints``: reached, or refused for
good), so a retry, a sweep or a replay goes to the others only. It is ``retrying`` while a
device asks to be tried again; after ``max_attempts`` it is ``dead``: counted, listed for
operations and replayable. Otherwise ``sent`` when it reached a device (or the address), and
``failed`` when it reached none.

A batch records an outcome only on a delivery that is still waiting to be sent (``queued`` or
``retrying``, :data:`WAITING`): a delivery cancelled meanwhile (the poll closed, the resident
answered) stays cancelled, whatever the request in flight answered, and is not retried.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

import eventlet
import sqlalchemy as sa
from prometheus_client import Counter, Histogram
from sqlalchemy.orm import Session

from services.notify.audience import AMSTERDAM
from services.notify.models import DEVICE_CHANNELS
from services.notify.texts import notification

log = logging.getLogger(__name__)

# The notifications about a poll to answer (the others are about feedback and measures).
POLL_KINDS = ("invitation", "reminder", "link")

DELIVERIES = Counter(
    "buurtpeil_deliveries_total",
    "Notification sends by outcome: one per device (or e-mail address) a delivery went to.",
    ["channel", "kind", "outcome"],
)
DEAD_DELIVERIES = Counter(
    "buurtpeil_delivery_dead_letters_total",
    "Deliveries given up after their last attempt.",
    ["channel"],
)
DELIVERY_LAG = Histogram(
    "buurtpeil_delivery_lag_seconds",
    "From queued (or released after quiet hours) to the participant's first device reached.",
    ["channel", "kind"],
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600),
)
OUTCOMES_DISCARDED = Counter(
    "buurtpeil_deliveries_outcome_discarded_total",
    "Outcomes of a batch in flight not recorded: the delivery had been cancelled meanwhile.",
    ["channel", "outcome"],
)
BATCH_SECONDS = Histogram(
    "buurtpeil_delivery_batch_seconds",
    "Time to send and record one batch of deliveries.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


@dataclass(frozen=True)
class Target:
    """One device (or e-mail address) a delivery goes to."""

    endpoint_id: uuid.UUID
    channel: str
    address: str
    p256dh: str | None
    auth: str | None


@dataclass
class Job:
    """A delivery as a batch sends it: the notification, and where it goes. A sender gets one
    Job per target (:meth:`to`), with that target's channel, endpoint and keys."""

    id: int
    kind: str
    ref_id: uuid.UUID
    poll_id: uuid.UUID
    resident_id: uuid.UUID
    channel: str
    endpoint_id: uuid.UUID | None
    address: str | None
    p256dh: str | None
    auth: str | None
    attempts: int
    queued_at: datetime
    language: str
    quiet_hours: dict[str, str] | None
    municipality_code: str
    context: dict[str, Any] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)  # the devices not done with yet
    reached: bool = False  # an earlier attempt reached one of them already

    def to(self, target: Target) -> Job:
        """This notification, for one of its targets."""
        return dataclasses.replace(
            self,
            channel=target.channel,
            endpoint_id=target.endpoint_id,
            address=target.address,
            p256dh=target.p256dh,
            auth=target.auth,
            targets=[],
        )

    def content(self) -> dict[str, Any]:
        """The message: its texts, and what the app opens (the poll or the feedback)."""
        texts = notification(self.kind, self.language, self.context)
        target = f"/polls/{self.poll_id}" if self.kind in POLL_KINDS else f"/feedback/{self.ref_id}"
        return {
            "type": self.kind,
            "poll_id": str(self.poll_id),
            "ref_id": str(self.ref_id),
            "url": target,
            "lang": self.language,
            **texts,
        }

    def payload(self) -> bytes:
        return json.dumps(self.content(), ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Outcome:
    status: str  # sent | gone | retry | failed
    retry_after: float | None = None
    error: str | None = None


Sender = Callable[[Job], Outcome]

# The statuses a batch sends from, and so the only ones its outcomes may replace. The others are
# final (sent, failed, dead, cancelled) or held back (deferred: released by the dispatcher).
WAITING = ("queued", "retrying")


_JOBS = """
SELECT d.id, d.kind, d.ref_id, d.poll_id, d.resident_id, d.channel, d.endpoint_id,
       e.address, e.p256dh, e.auth, d.attempts, d.queued_at, r.language, r.quiet_hours,
       p.municipality_code, p.title AS poll_title, p.estimated_minutes, p.opens_at,
       p.closes_at, n.title AS notice_title, n.status AS notice_status,
       i.link_revoked_at IS NOT NULL AS link_revoked,
       coalesce(i.link_generation, 0) AS link_generation, d.sent_at IS NOT NULL AS reached,
       CAST(d.done_endpoints AS text[]) AS done
FROM deliveries d
LEFT JOIN endpoints e ON e.id = d.endpoint_id
JOIN residents r ON r.id = d.resident_id
JOIN polls p ON p.id = d.poll_id
LEFT JOIN notices n ON n.ref_id = d.ref_id
LEFT JOIN invitations i ON i.poll_id = d.poll_id AND i.resident_id = d.resident_id
WHERE d.id = ANY(:ids) AND d.status = ANY(:waiting)
"""

# The devices of the batch's participants, whichever contact registered them — those of now,
# not of when the delivery was queued. ``<> 'email'`` rather than naming the device channels:
# an indexable condition on channel would lead the planner to endpoints_unique (channel,
# address) and through every device of that channel for each participant.
_DEVICES = """
SELECT resident_id, id, channel, address, p256dh, auth FROM endpoints
WHERE resident_id = ANY(:residents) AND channel <> 'email'
ORDER BY created_at, id
"""


def load_jobs(session: Session, ids: list[int]) -> list[Job]:
    rows = session.execute(sa.text(_JOBS), {"ids": ids, "waiting": list(WAITING)}).mappings()
    found = list(rows)
    participants = {r["resident_id"] for r in found if r["channel"] in DEVICE_CHANNELS}
    devices: dict[Any, list[Target]] = {}
    if participants:
        for row in session.execute(sa.text(_DEVICES), {"residents": list(participants)}).mappings():
            devices.setdefault(str(row["resident_id"]), []).append(
                Target(row["id"], row["channel"], row["address"], row["p256dh"], row["auth"])
            )
    jobs = []
    for row in found:
        done = set(row["done"] or ())
        context = (
            {
                "title": row["poll_title"],
                "minutes": row["estimated_minutes"],
                "opens_at": row["opens_at"],
                "closes_at": row["closes_at"],
                "link_revoked": bool(row["link_revoked"]),
                "link_generation": int(row["link_generation"]),
            }
            if row["kind"] in POLL_KINDS
            else {"title": row["notice_title"] or row["poll_title"], "status": row["notice_status"]}
        )
        if row["channel"] in DEVICE_CHANNELS:
            targets = [
                t
                for t in devices.get(str(row["resident_id"]), [])
                if str(t.endpoint_id) not in done
            ]
        elif row["address"] is not None and str(row["endpoint_id"]) not in done:
            targets = [Target(row["endpoint_id"], row["channel"], row["address"], None, None)]
        else:  # the address was removed (unsubscribed) after the delivery was queued
            targets = []
        jobs.append(
            Job(
                id=row["id"],
                kind=row["kind"],
                ref_id=row["ref_id"],
                poll_id=row["poll_id"],
                resident_id=row["resident_id"],
                channel=row["channel"],
                endpoint_id=row["endpoint_id"],
                address=row["address"],
                p256dh=row["p256dh"],
                auth=row["auth"],
                attempts=row["attempts"],
                queued_at=row["queued_at"],
                language=row["language"],
                quiet_hours=row["quiet_hours"],
                municipality_code=row["municipality_code"],
                context=context,
                targets=targets,
                reached=bool(row["reached"]),
            )
        )
    return jobs


def quiet_until(window: dict[str, str] | None, now: datetime) -> datetime | None:
    """The end of the quiet window (Europe/Amsterdam) if ``now`` lies inside it."""
    if not window:
        return None
    local = now.astimezone(AMSTERDAM)
    start, end = (time.fromisoformat(window["start"]), time.fromisoformat(window["end"]))
    current = local.time()
    inside = (start <= current < end) if start < end else (current >= start or current < end)
    if not inside:
        return None
    until = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if until <= local:
        until += timedelta(days=1)
    return until


@dataclass
class BatchResult:
    sent: int = 0
    deferred: int = 0
    gone: int = 0  # devices found gone (and removed)
    failed: int = 0
    dead: int = 0
    retry: dict[float, list[int]] = field(default_factory=dict)  # delay → delivery ids


def process_batch(
    session_factory: Callable[[], Session],
    ids: list[int],
    *,
    senders: dict[str, Sender],
    now: Callable[[], datetime],
    municipality_quiet_hours: Callable[[str], dict[str, str] | None],
    retry_delay: Callable[[int, float | None], float],
    max_attempts: int,
    concurrency: int = 64,
) -> BatchResult:
    """Send one batch and record it. Safe to run twice on the same ids: only deliveries still
    queued or retrying are sent, and only to the devices they are not done with."""
    started = now()
    with session_factory() as session:
        jobs = load_jobs(session, ids)
    result = BatchResult()
    deferred: list[tuple[int, datetime]] = []
    to_send: list[Job] = []
    for job in jobs:
        until = quiet_until(
            job.quiet_hours or municipality_quiet_hours(job.municipality_code), started
        )
        # Feedback is awaited; a new link was asked for a moment ago.
        if until is not None and job.kind not in ("feedback", "link"):
            deferred.append((job.id, until))
        else:
            to_send.append(job)

    # One request per device, all of the batch's at once (a participant's devices too).
    messages = [(job, job.to(target)) for job in to_send for target in job.targets]
    pool = eventlet.GreenPool(concurrency)
    outcomes = list(pool.imap(lambda pair: _send(senders, pair[1]), messages))
    answered: dict[int, list[tuple[Job, Outcome]]] = {job.id: [] for job in to_send}
    for (job, message), outcome in zip(messages, outcomes, strict=True):
        answered[job.id].append((message, outcome))

    sent_at = now()
    updates: list[Update] = []
    pruned: list[uuid.UUID | None] = []
    retry_delays: dict[int, float] = {}
    for job in to_send:
        update, delay = settle(
            job,
            answered[job.id],
            at=sent_at,
            max_attempts=max_attempts,
            retry_delay=retry_delay,
        )
        updates.append(update)
        pruned.extend(message.endpoint_id for message, o in answered[job.id] if o.status == "gone")
        if delay is not None:
            retry_delays[job.id] = delay
    result.deferred = len(deferred)
    with session_factory() as session, session.begin():
        recorded = record(session, updates, deferred, pruned, sent_at)
    by_id = {job.id: job for job in to_send}
    for update in updates:
        job = by_id[update.id]
        if update.id not in recorded:  # cancelled while in flight: what it answered is moot
            for message, outcome in answered[job.id]:
                OUTCOMES_DISCARDED.labels(message.channel, outcome.status).inc()
            continue
        for message, outcome in answered[job.id]:
            DELIVERIES.labels(message.channel, job.kind, outcome.status).inc()
            if outcome.status == "gone":
                result.gone += 1
        if update.reached and not job.reached:  # the participant's first device reached
            DELIVERY_LAG.labels(job.channel, job.kind).observe(
                (sent_at - job.queued_at).total_seconds()
            )
        if update.status == "sent":
            result.sent += 1
        elif update.status == "retrying":
            result.retry.setdefault(retry_delays[update.id], []).append(update.id)
        elif update.status == "dead":
            DEAD_DELIVERIES.labels(job.channel).inc()
            result.dead += 1
        else:
            result.failed += 1
    BATCH_SECONDS.observe((now() - started).total_seconds())
    return result


def settle(
    job: Job,
    answered: list[tuple[Job, Outcome]],
    *,
    at: datetime,
    max_attempts: int,
    retry_delay: Callable[[int, float | None], float],
) -> tuple[Update, float | None]:
    """What a delivery becomes after this attempt at its devices (each message with what its
    push service answered), and the delay before the next attempt when there is one.

    A device that asks to be tried again keeps the delivery ``retrying`` (``dead`` after the
    last attempt), the devices reached or refused for good are done with (a retry goes to the
    others); otherwise ``sent`` if any device of the participant was reached, now or before,
    and ``failed`` if none was (all gone, refused, or no device left at all)."""
    attempts = job.attempts + 1
    reached = tuple(m.endpoint_id for m, o in answered if o.status == "sent" and m.endpoint_id)
    done = reached + tuple(
        m.endpoint_id for m, o in answered if o.status == "failed" and m.endpoint_id
    )
    problems = [o for _, o in answered if o.status != "sent"]
    retries = [o for o in problems if o.status == "retry"]
    error = problems[0].error if problems else None
    if not answered:
        if job.reached:  # the devices it had not reached yet are gone: nothing left to send
            return Update(job.id, "sent", attempts, None), None
        return Update(job.id, "failed", attempts, "no device or address left to send to"), None
    if retries:
        error = retries[0].error
        if attempts < max_attempts:
            wait = max((o.retry_after or 0.0) for o in retries) or None
            delay = retry_delay(attempts, wait)
            retry_at = at + timedelta(seconds=delay)
            return Update(job.id, "retrying", attempts, error, retry_at, done, reached), delay
        return Update(job.id, "dead", attempts, error, None, done, reached), None
    if reached or job.reached:
        return Update(job.id, "sent", attempts, error, None, done, reached), None
    if all(o.status == "gone" for o in problems):
        error = problems[0].error or "endpoint gone"
    return Update(job.id, "failed", attempts, error, None, done, reached), None


def _send(senders: dict[str, Sender], job: Job) -> Outcome:
    if job.address is None:
        return Outcome("failed", error="the endpoint was removed before sending")
    sender = senders.get(job.channel)
    if sender is None:  # e.g. an FCM token while FCM is not configured: never deliverable
        return Outcome("failed", error=f"channel {job.channel} is not configured")
    try:
        return sender(job)
    except Exception as exc:  # noqa: BLE001 - one broken delivery must not sink the batch
        log.exception("sending delivery %s failed unexpectedly", job.id)
        return Outcome("retry", error=f"{type(exc).__name__}: {exc}"[:500])


@dataclass(frozen=True)
class Update:
    id: int
    status: str
    attempts: int
    error: str | None
    retry_at: datetime | None = None  # when a retrying delivery is due again
    done: tuple[uuid.UUID, ...] = ()  # devices now done with: reached, or refused for good
    reached: tuple[uuid.UUID, ...] = ()  # devices (or the address) reached by this attempt


def record(
    session: Session,
    updates: list[Update],
    deferred: list[tuple[int, datetime]],
    pruned: list[uuid.UUID | None],
    now: datetime,
) -> set[int]:
    """All outcomes of a batch in a few statements, each only on a delivery still waiting to
    be sent (see :data:`WAITING`). Returns the ids whose outcome was recorded."""
    recorded: set[int] = set()
    if updates:
        recorded = set(
            session.execute(
                sa.text("""
                UPDATE deliveries d SET status = u.status, attempts = u.attempts,
                       last_error = u.error, updated_at = :now, not_before = u.retry_at,
                       sent_at = CASE WHEN u.status = 'sent' OR u.reached
                                      THEN coalesce(d.sent_at, :now) ELSE d.sent_at END,
                       done_endpoints = d.done_endpoints
                           || CAST(string_to_array(nullif(u.done, ''), ',') AS uuid[])
                FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS text[]),
                            CAST(:attempts AS int[]), CAST(:errors AS text[]),
                            CAST(:retry_at AS timestamptz[]), CAST(:done AS text[]),
                            CAST(:reached AS boolean[]))
                     AS u(id, status, attempts, error, retry_at, done, reached)
                WHERE d.id = u.id AND d.status = ANY(:waiting)
                RETURNING d.id"""),
                {
                    "now": now,
                    "waiting": list(WAITING),
                    "ids": [u.id for u in updates],
                    "statuses": [u.status for u in updates],
                    "attempts": [u.attempts for u in updates],
                    "errors": [u.error for u in updates],
                    "retry_at": [u.retry_at for u in updates],
                    "done": [",".join(str(e) for e in u.done) for u in updates],
                    "reached": [bool(u.reached) for u in updates],
                },
            ).scalars()
        )
        reached = [e for u in updates if u.id in recorded for e in u.reached]
        if reached:
            session.execute(
                sa.text("UPDATE endpoints SET last_success_at = :now WHERE id = ANY(:ids)"),
                {"now": now, "ids": reached},
            )
    if deferred:
        session.execute(
            sa.text("""
            UPDATE deliveries d SET status = 'deferred', not_before = u.until, updated_at = :now
            FROM unnest(CAST(:ids AS bigint[]), CAST(:untils AS timestamptz[])) AS u(id, until)
            WHERE d.id = u.id AND d.status = ANY(:waiting)"""),
            {
                "now": now,
                "waiting": list(WAITING),
                "ids": [d[0] for d in deferred],
                "untils": [d[1] for d in deferred],
            },
        )
    gone = [p for p in pruned if p is not None]
    if gone:
        session.execute(sa.text("DELETE FROM endpoints WHERE id = ANY(:ids)"), {"ids": gone})
    return recorded
