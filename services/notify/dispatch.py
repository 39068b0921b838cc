"""From delivery rows to work: the dispatcher puts queued deliveries on the durable work queue
``notify.deliveries`` in batches, and channel workers consume those batches.

The rows are the truth; a batch message only says "look at these ids". A batch published but
not yet marked dispatched (a crash in between) is published again: workers skip deliveries that
are no longer queued or retrying, so the duplicate sends nothing. A worker that dies mid-batch
leaves the message unacked, RabbitMQ hands it to another worker, and only the deliveries not
yet recorded as sent are sent again (with the same Topic, so a push service replaces rather
than duplicates what it still holds).
"""

from __future__ import annotations

import logging
import threading
import zlib
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from kombu import Queue
from sqlalchemy import Engine

from services.common.amqp import ConfirmingPublisher
from services.common.deadletter import DEFAULT_DELAYS

log = logging.getLogger(__name__)

WORK_QUEUE = "notify.deliveries"
BATCH_SIZE = 250  # ids per message: big enough to amortise a round trip, small for retries


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


class Dispatcher:
    """The dispatch loop of one notify process (like the outbox relay: woken after a fan-out,
    polling as a fallback; one process dispatches at a time, by advisory lock)."""

    def __init__(self, engine: Engine, amqp_uri: str, *, poll_interval: float = 1.0):
        self.engine = engine
        self.publisher = ConfirmingPublisher(amqp_uri)
        self.poll_interval = poll_interval
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
        from datetime import UTC

        release_deferred(self.engine, datetime.now(UTC))
        return dispatch_pending(self.engine, self.publisher)


def retry_delay(attempt: int, retry_after: float | None, delays: Any = DEFAULT_DELAYS) -> float:
    """Exponential levels from the shared retry policy; a push service's Retry-After wins
    when it asks for longer."""
    base = delays[min(attempt - 1, len(delays) - 1)]
    return max(base, retry_after or 0.0)
