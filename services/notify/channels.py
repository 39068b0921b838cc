"""Channel workers: take a batch of delivery ids, send each on its channel concurrently, and
record every outcome in one transaction.

Outcomes: ``sent``; ``gone`` (404/410, UNREGISTERED: the endpoint is removed and the delivery
failed); ``retry`` (429, 5xx, network: tried again later through the delay queues, after the
push service's Retry-After when it gave one); ``failed`` (a request the service will never
accept). After ``max_attempts`` a delivery is ``dead``: counted, listed for operations and
replayable.

A batch records an outcome only on a delivery that is still waiting to be sent (``queued`` or
``retrying``, :data:`WAITING`): a delivery cancelled meanwhile (the poll closed, the resident
answered) stays cancelled, whatever the request in flight answered, and is not retried.
"""

from __future__ import annotations

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
from services.notify.texts import notification

log = logging.getLogger(__name__)

DELIVERIES = Counter(
    "buurtpeil_deliveries_total",
    "Notification deliveries by outcome.",
    ["channel", "kind", "outcome"],
)
DEAD_DELIVERIES = Counter(
    "buurtpeil_delivery_dead_letters_total",
    "Deliveries given up after their last attempt.",
    ["channel"],
)
DELIVERY_LAG = Histogram(
    "buurtpeil_delivery_lag_seconds",
    "From queued (or released after quiet hours) to sent.",
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


@dataclass
class Job:
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

    def content(self) -> dict[str, Any]:
        """The message: its texts, and what the app opens (the poll or the feedback)."""
        texts = notification(self.kind, self.language, self.context)
        target = (
            f"/polls/{self.poll_id}"
            if self.kind in ("invitation", "reminder")
            else f"/feedback/{self.ref_id}"
        )
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
       i.link_revoked_at IS NOT NULL AS link_revoked
FROM deliveries d
LEFT JOIN endpoints e ON e.id = d.endpoint_id
JOIN residents r ON r.id = d.resident_id
JOIN polls p ON p.id = d.poll_id
LEFT JOIN notices n ON n.ref_id = d.ref_id
LEFT JOIN invitations i ON i.poll_id = d.poll_id AND i.resident_id = d.resident_id
WHERE d.id = ANY(:ids) AND d.status = ANY(:waiting)
"""


def load_jobs(session: Session, ids: list[int]) -> list[Job]:
    jobs = []
    for row in session.execute(sa.text(_JOBS), {"ids": ids, "waiting": list(WAITING)}).mappings():
        context = (
            {
                "title": row["poll_title"],
                "minutes": row["estimated_minutes"],
                "opens_at": row["opens_at"],
                "closes_at": row["closes_at"],
                "link_revoked": bool(row["link_revoked"]),
            }
            if row["kind"] in ("invitation", "reminder")
            else {"title": row["notice_title"] or row["poll_title"], "status": row["notice_status"]}
        )
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
    gone: int = 0
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
    queued or retrying are sent."""
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
        if until is not None and job.kind != "feedback":
            deferred.append((job.id, until))
        else:
            to_send.append(job)

    pool = eventlet.GreenPool(concurrency)
    outcomes = list(pool.imap(lambda job: _send(senders, job), to_send))

    sent_at = now()
    updates: list[Update] = []
    pruned = []
    retry_delays: dict[int, float] = {}
    for job, outcome in zip(to_send, outcomes, strict=True):
        attempts = job.attempts + 1
        if outcome.status == "sent":
            updates.append(Update(job.id, "sent", attempts, None))
        elif outcome.status == "gone":
            updates.append(Update(job.id, "failed", attempts, outcome.error or "endpoint gone"))
            pruned.append(job.endpoint_id)
        elif outcome.status == "retry" and attempts < max_attempts:
            delay = retry_delay(attempts, outcome.retry_after)
            retry_delays[job.id] = delay
            updates.append(
                Update(
                    job.id, "retrying", attempts, outcome.error, sent_at + timedelta(seconds=delay)
                )
            )
        elif outcome.status == "retry":
            updates.append(Update(job.id, "dead", attempts, outcome.error))
        else:
            updates.append(Update(job.id, "failed", attempts, outcome.error))
    result.deferred = len(deferred)
    with session_factory() as session, session.begin():
        recorded = record(session, updates, deferred, pruned, sent_at)
    by_id = {job.id: (job, outcome) for job, outcome in zip(to_send, outcomes, strict=True)}
    for update in updates:
        job, outcome = by_id[update.id]
        if update.id not in recorded:  # cancelled while in flight: what it answered is moot
            OUTCOMES_DISCARDED.labels(job.channel, outcome.status).inc()
            continue
        DELIVERIES.labels(job.channel, job.kind, outcome.status).inc()
        if update.status == "sent":
            DELIVERY_LAG.labels(job.channel, job.kind).observe(
                (sent_at - job.queued_at).total_seconds()
            )
            result.sent += 1
        elif update.status == "retrying":
            result.retry.setdefault(retry_delays[update.id], []).append(update.id)
        elif update.status == "dead":
            DEAD_DELIVERIES.labels(job.channel).inc()
            result.dead += 1
        elif outcome.status == "gone":
            result.gone += 1
        else:
            result.failed += 1
    BATCH_SECONDS.observe((now() - started).total_seconds())
    return result


def _send(senders: dict[str, Sender], job: Job) -> Outcome:
    if job.address is None:
        return Outcome("failed", error="the endpoint was removed before sending")
    try:
        return senders[job.channel](job)
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
                       sent_at = CASE WHEN u.status = 'sent' THEN :now ELSE d.sent_at END
                FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS text[]),
                            CAST(:attempts AS int[]), CAST(:errors AS text[]),
                            CAST(:retry_at AS timestamptz[]))
                     AS u(id, status, attempts, error, retry_at)
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
                },
            ).scalars()
        )
        sent = [u.id for u in updates if u.status == "sent" and u.id in recorded]
        if sent:
            session.execute(
                sa.text(
                    "UPDATE endpoints SET last_success_at = :now WHERE id IN "
                    "(SELECT endpoint_id FROM deliveries WHERE id = ANY(:ids))"
                ),
                {"now": now, "ids": sent},
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
