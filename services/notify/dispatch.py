"""From delivery rows to work: the dispatcher puts queued deliveries on the durable work queue
``notify.deliveries`` in batches, and channel workers consume those batches.

The rows are the truth; a batch message only says "look at these ids". A batch published but
not yet marked dispatched (a crash in between) is published again: workers skip deliveries that
are no longer queued or retrying, so the duplicate sends nothing. A worker that dies mid-batch
leaves the message unacked, RabbitMQ hands it to another worker, and only the deliveries not
yet recorded as sent are sent again (with the same Topic, so a push service replaces rather
than duplicates what it still holds).

A batch can also be lost for good: its worker fails on every attempt and the message ends in
``notify.deliveries.dlq``, or a retry message never comes back. Its deliveries keep
``dispatched_at`` (or wait as ``retrying``) and nothing would ever look at them again, so the
dispatcher sweeps them now and then (:func:`sweep_stale`): a delivery dispatched longer than
``DELIVERY_STALE_AFTER`` ago and still queued, or a retry overdue by as much, is dispatched
again, counting as one attempt; one that has used its attempts becomes ``dead`` — listed for
operations and replayable like any other.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from kombu import Queue
from prometheus_client import Counter
from sqlalchemy import Engine

from services.common.amqp import ConfirmingPublisher
from services.common.deadletter import DEFAULT_DELAYS

log = logging.getLogger(__name__)

WORK_QUEUE = "notify.deliveries"
BATCH_SIZE = 250  # ids per message: big enough to amortise a round trip, small for retries
SWEPT = Counter(
    "buurtpeil_deliveries_swept_total",
    "Deliveries whose batch was lost (dead-lettered, or a retry that never came back): "
    "dispatched again, or given up as dead.",
    ["outcome"],
)
SWEPT_ERROR = "its batch was lost (dead-lettered or never retried)"


def work_queue() -> Queue:
    return Queue(
        WORK_QUEUE,
        exchange="",
        routing_key=WORK_QUEUE,
        durable=True,
        auto_delete=False,
        queue_arguments={"x-queue-type": "quorum"},
    )


def dispatch_pending(
    engine: Engine,
    publisher: ConfirmingPublisher,
    *,
    batch_size: int = BATCH_SIZE,
    limit_batches: int = 40,
) -> int:
    """Publish queued, undispatched deliveries in batches; return how many were dispatched."""
    dispatched = 0
    queue = work_queue()
    for _ in range(limit_batches):
        with engine.begin() as conn:
            ids = (
                conn.execute(
                    sa.text(
                        "SELECT id FROM deliveries "
                        "WHERE status = 'queued' AND dispatched_at IS NULL "
                        "ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED"
                    ),
                    {"n": batch_size},
                )
                .scalars()
                .all()
            )
            if not ids:
                break
            publisher.publish(
                {"delivery_ids": ids}, exchange="", routing_key=WORK_QUEUE, declare=[queue]
            )
            conn.execute(
                sa.text("UPDATE deliveries SET dispatched_at = now() WHERE id = ANY(:ids)"),
                {"ids": ids},
            )
        dispatched += len(ids)
    return dispatched


def release_deferred(engine: Engine, now: datetime) -> int:
    """Deliveries held back by quiet hours become queued again once their time has come."""
    with engine.begin() as conn:
        return conn.execute(
            sa.text(
                "UPDATE deliveries SET status = 'queued', dispatched_at = NULL, not_before = NULL, "
                "queued_at = :now, "
                "updated_at = :now WHERE status = 'deferred' AND not_before <= :now"
            ),
            {"now": now},
        ).rowcount


def sweep_stale(
    engine: Engine, now: datetime, *, stale_after: timedelta, max_attempts: int
) -> tuple[int, int]:
    """Deliveries whose batch is gone: queued and dispatched more than ``stale_after`` ago, or
    retrying and overdue by as much. Each sweep counts as an attempt: dispatched again while
    attempts are left, else ``dead``. Returns (dispatched again, dead)."""
    cutoff = now - stale_after
    with engine.begin() as conn:
        rows = conn.execute(
            sa.text("""
            UPDATE deliveries SET
                   attempts = attempts + 1,
                   status = CASE WHEN attempts + 1 >= :max THEN 'dead' ELSE 'queued' END,
                   dispatched_at = NULL, not_before = NULL, updated_at = :now,
                   last_error = left(:error || coalesce('; before: ' || last_error, ''), 1000)
            WHERE (status = 'queued' AND dispatched_at < :cutoff)
               OR (status = 'retrying' AND coalesce(not_before, updated_at) < :cutoff)
            RETURNING id, status"""),
            {"now": now, "cutoff": cutoff, "max": max_attempts, "error": SWEPT_ERROR},
        ).all()
    dead = [r.id for r in rows if r.status == "dead"]
    again = len(rows) - len(dead)
    if rows:
        SWEPT.labels("dispatched_again").inc(again)
        SWEPT.labels("dead").inc(len(dead))
        log.warning(
            "swept %d deliveries whose batch was lost: %d dispatched again, %d dead",
            len(rows),
            again,
            len(dead),
        )
    return again, len(dead)


class Dispatcher:
    """The dispatch loop of one notify process (like the outbox relay: woken after a fan-out,
    polling as a fallback; one process dispatches at a time, by advisory lock)."""

    def __init__(
        self,
        engine: Engine,
        amqp_uri: str,
        *,
        poll_interval: float = 1.0,
        sweep_interval: float = 300.0,
        stale_after: float = 3600.0,
        max_attempts: int = 6,
    ):
        self.engine = engine
        self.publisher = ConfirmingPublisher(amqp_uri)
        self.poll_interval = poll_interval
        self.sweep_interval = sweep_interval
        self.stale_after = timedelta(seconds=stale_after)
        self.max_attempts = max_attempts
        self._next_sweep = 0.0
        self._wake = threading.Event()
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def run(self) -> None:
        lock = zlib.crc32(b"notify:dispatcher")
        failures = 0
        while not self._stopping:
            try:
                with self.engine.connect() as conn:
                    if conn.execute(sa.select(sa.func.pg_try_advisory_lock(lock))).scalar():
                        try:
                            moved = self._drain()
                        finally:
                            conn.execute(sa.select(sa.func.pg_advisory_unlock(lock)))
                            conn.commit()
                    else:
                        moved = 0
                failures = 0
            except Exception:  # noqa: BLE001 - outlive broker and database outages
                failures += 1
                self.publisher.close()
                log.exception("delivery dispatcher failed (%d in a row)", failures)
                self._wake.wait(min(0.5 * 2**failures, 10.0))
                continue
            if not moved:
                self._wake.wait(self.poll_interval)
                self._wake.clear()
        self.publisher.close()

    def _drain(self) -> int:
        at = datetime.now(UTC)
        if time.monotonic() >= self._next_sweep:
            sweep_stale(
                self.engine, at, stale_after=self.stale_after, max_attempts=self.max_attempts
            )
            self._next_sweep = time.monotonic() + self.sweep_interval
        release_deferred(self.engine, at)
        return dispatch_pending(self.engine, self.publisher)


def retry_delay(attempt: int, retry_after: float | None, delays: Any = DEFAULT_DELAYS) -> float:
    """Exponential levels from the shared retry policy; a push service's Retry-After wins
    when it asks for longer."""
    base = delays[min(attempt - 1, len(delays) - 1)]
    return max(base, retry_after or 0.0)
