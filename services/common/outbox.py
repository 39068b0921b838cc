"""Transactional outbox and idempotent consumption.

A service never publishes a domain event directly. It writes the event into its own ``outbox``
table in the same transaction as the state change; a relay running inside the service process
publishes pending rows with publisher confirms and then marks them sent. A crash between
publishing and marking means the row is published again: at-least-once, never lost. Consumers
absorb the duplicate with :func:`claim_event`, which records (event id, handler) in
``processed_events`` inside the consumer's own transaction.

Only one relay per service publishes at a time (a PostgreSQL advisory lock), so events leave in
the order they were written even with several replicas running.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from typing import Any

import sqlalchemy as sa
from nameko.extensions import DependencyProvider
from sqlalchemy import Engine
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.orm import Session

from services.common.amqp import ConfirmingPublisher, events_exchange
from services.common.db import make_engine
from services.common.events import CATALOGUE, DomainEvent, event_type, make_envelope
from services.common.logs import CORRELATION_KEY
from services.common.metrics import (
    OUTBOX_OLDEST_PENDING,
    OUTBOX_PENDING,
    OUTBOX_PUBLISHED,
)

log = logging.getLogger(__name__)

metadata = sa.MetaData()

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("envelope", JSONB, nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("sent_at", sa.DateTime(timezone=True)),
    sa.Index("outbox_pending", "id", postgresql_where=sa.text("sent_at IS NULL")),
)

processed_events = sa.Table(
    "processed_events",
    metadata,
    sa.Column("event_id", sa.Uuid, primary_key=True),
    sa.Column("handler", sa.Text, primary_key=True),
    sa.Column(
        "processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)


def create_tables(op: Any) -> None:
    """For a service's first Alembic migration: the outbox and processed-event tables."""
    for table in (outbox, processed_events):
        op.create_table(table.name, *[c.copy() for c in table.columns])
    op.create_index("outbox_pending", "outbox", ["id"], postgresql_where=sa.text("sent_at IS NULL"))


def add_event(
    session: Session, name: str, payload: dict[str, Any], *, correlation_id: str | None = None
) -> dict[str, Any]:
    """Validate the payload against the catalogue and queue it in the caller's transaction."""
    envelope = make_envelope(name, payload, correlation_id=correlation_id)
    session.execute(
        outbox.insert().values(event_id=envelope["event_id"], event=name, envelope=envelope)
    )
    return envelope


def add_events(
    session: Session,
    name: str,
    payloads: list[dict[str, Any]],
    *,
    correlation_id: str | None = None,
) -> list[dict[str, Any]]:
    """:func:`add_event` for many events of one type: one statement (executemany, compiled
    once) instead of one per event — the intake writes one per response it records."""
    envelopes = [make_envelope(name, p, correlation_id=correlation_id) for p in payloads]
    if envelopes:
        session.execute(
            outbox.insert(),
            [{"event_id": e["event_id"], "event": name, "envelope": e} for e in envelopes],
        )
    return envelopes


def claim_event(session: Session, event: DomainEvent, handler: str) -> bool:
    """True the first time ``handler`` sees ``event``; False for a redelivery.

    Call it inside the transaction that applies the event, so the claim and the effect commit
    (or roll back) together.
    """
    claimed = session.execute(
        insert(processed_events)
        .values(event_id=event.id, handler=handler)
        .on_conflict_do_nothing()
        .returning(processed_events.c.event_id)
    ).first()
    return claimed is not None


# --- the relay --------------------------------------------------------------------------------


def _lock_key(service: str) -> int:
    return zlib.crc32(f"outbox:{service}".encode())


def relay_pending(
    engine: Engine, publisher: ConfirmingPublisher, *, service: str, batch_size: int = 200
) -> int:
    """Publish up to ``batch_size`` pending rows in order; return how many were published.

    Rows are marked sent in the same transaction that locked them, after every publish in the
    batch was confirmed. If this process dies before the commit, the rows stay pending and are
    published again by the next relay: consumers must be (and are) idempotent.
    """
    with engine.begin() as conn:
        if not conn.execute(
            sa.select(sa.func.pg_try_advisory_xact_lock(_lock_key(service)))
        ).scalar():
            return 0  # another replica's relay is publishing
        rows = conn.execute(
            sa.select(outbox.c.id, outbox.c.event, outbox.c.envelope)
            .where(outbox.c.sent_at.is_(None))
            .order_by(outbox.c.id)
            .limit(batch_size)
        ).all()
        for row in rows:
            publish_envelope(publisher, row.envelope)
        if rows:
            mark_sent(conn, [row.id for row in rows])
            for row in rows:
                OUTBOX_PUBLISHED.labels(service, row.event).inc()
        return len(rows)


def publish_envelope(publisher: ConfirmingPublisher, envelope: dict[str, Any]) -> None:
    spec = event_type(envelope["event"])
    exchange = events_exchange(spec.source)
    headers = {"nameko.event_id": envelope["event_id"]}
    if envelope.get("correlation_id"):
        headers[f"nameko.{CORRELATION_KEY}"] = envelope["correlation_id"]
    publisher.publish(
        envelope,
        exchange=exchange,
        routing_key=spec.name,
        headers=headers,
        declare=[exchange],
        message_id=envelope["event_id"],
    )


FORGET_WHEN_SENT = [e.name for e in CATALOGUE.values() if e.forget_when_sent]


def mark_sent(conn: Any, ids: list[int]) -> None:
    conn.execute(outbox.update().where(outbox.c.id.in_(ids)).values(sent_at=sa.func.now()))
    if FORGET_WHEN_SENT:  # e.g. response_recorded: responses keeps no resident id
        conn.execute(
            outbox.delete().where(outbox.c.id.in_(ids), outbox.c.event.in_(FORGET_WHEN_SENT))
        )


def measure_backlog(engine: Engine, service: str) -> tuple[int, float]:
    with engine.connect() as conn:
        count, oldest = conn.execute(
            sa.select(sa.func.count(), sa.func.min(outbox.c.created_at)).where(
                outbox.c.sent_at.is_(None)
            )
        ).one()
        age = 0.0
        if oldest is not None:
            age = conn.execute(
                sa.select(sa.func.extract("epoch", sa.func.now() - oldest))
            ).scalar_one()
    OUTBOX_PENDING.labels(service).set(count)
    OUTBOX_OLDEST_PENDING.labels(service).set(float(age))
    return count, float(age)


def purge_sent(engine: Engine, *, keep_days: int) -> None:
    """Sent rows and old processed-event claims are only needed for a while."""
    with engine.begin() as conn:
        conn.execute(
            outbox.delete().where(
                outbox.c.sent_at < sa.func.now() - sa.text(f"interval '{int(keep_days)} days'")
            )
        )
        conn.execute(
            processed_events.delete().where(
                processed_events.c.processed_at
                < sa.func.now() - sa.text(f"interval '{int(keep_days)} days'")
            )
        )


class OutboxRelay:
    """The relay loop of one service process: publish when woken, and poll as a fallback."""

    def __init__(
        self,
        engine: Engine,
        amqp_uri: str,
        *,
        service: str,
        poll_interval: float = 0.5,
        batch_size: int = 200,
        keep_days: int = 30,
    ):
        self.engine = engine
        self.publisher = ConfirmingPublisher(amqp_uri)
        self.service = service
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.keep_days = keep_days
        self._wake = threading.Event()
        self._stopping = False
        self._last_purge = 0.0

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def run(self) -> None:
        failures = 0
        while not self._stopping:
            try:
                published = relay_pending(
                    self.engine, self.publisher, service=self.service, batch_size=self.batch_size
                )
                self._housekeeping()
                failures = 0
            except Exception:  # noqa: BLE001 - the relay must outlive broker and database outages
                failures += 1
                self.publisher.close()
                log.exception("outbox relay failed (%d in a row); will retry", failures)
                self._wake.wait(min(0.5 * 2**failures, 10.0))
                continue
            if published < self.batch_size:
                self._wake.wait(self.poll_interval)
                self._wake.clear()
        self.publisher.close()

    def _housekeeping(self) -> None:
        measure_backlog(self.engine, self.service)
        now = time.monotonic()
        if now - self._last_purge > 3600:
            purge_sent(self.engine, keep_days=self.keep_days)
            self._last_purge = now


class Outbox(DependencyProvider):
    """Inject ``add(session, event, payload)``; run the service's outbox relay alongside.

    Config: ``DATABASE_URL``, ``AMQP_URI``, optional ``OUTBOX_POLL_INTERVAL`` (seconds) and
    ``OUTBOX_RELAY`` (false to run no relay in this process).
    """

    def __init__(self) -> None:
        self.relay: OutboxRelay | None = None
        self._wrote: set[Any] = set()

    def setup(self) -> None:
        config = self.container.config
        if str(config.get("OUTBOX_RELAY", True)).lower() in ("false", "0", "no"):
            return
        self.relay = OutboxRelay(
            make_engine(config["DATABASE_URL"], pool_size=2),
            config["AMQP_URI"],
            service=self.container.service_name,
            poll_interval=float(config.get("OUTBOX_POLL_INTERVAL", 0.5)),
        )

    def start(self) -> None:
        if self.relay is not None:
            self.container.spawn_managed_thread(self.relay.run, identifier="outbox_relay")

    def stop(self) -> None:
        if self.relay is not None:
            self.relay.stop()
            self.relay.engine.dispose()

    kill = stop

    def get_dependency(self, worker_ctx: Any) -> Any:
        def add(session: Session, name: str, payload: dict[str, Any]) -> dict[str, Any]:
            self._wrote.add(worker_ctx)
            return add_event(
                session, name, payload, correlation_id=worker_ctx.data.get(CORRELATION_KEY)
            )

        return add

    def worker_teardown(self, worker_ctx: Any) -> None:
        # By now the worker's transaction has committed (or rolled back: a spurious wake is
        # harmless), so the relay can publish without waiting for its next poll.
        if worker_ctx in self._wrote:
            self._wrote.discard(worker_ctx)
            if self.relay is not None:
                self.relay.wake()
