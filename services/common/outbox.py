"""Transactional outbox and idempotent consumption.

A service never publishes a domain event directly. It writes the event into its own ``outbox``
table in the same transaction as the state change; a relay running inside the service process
publishes pending rows with publisher confirms and then marks them sent. A crash between
publishing and marking means the row is published again: at-least-once, never lost. Consumers
absorb the duplicate with :func:`claim_event`, which records (event id, handler) in
``processed_events`` inside the consumer's own transaction.

Only one relay per service publishes at a time (a PostgreSQL advisory lock), so events leave in
the order they were written even with several replicas running.

Events are published ``mandatory``: one that no queue is bound for (its consumers' queues not
declared yet, or a binding removed) comes back as basic.return. Confirmed but delivered to
nobody, it would be lost; instead its row stays pending, is counted
(``buurtpeil_outbox_returned_total``) and logged, and is published again after a backoff (1 s
doubling to 5 min) while the rows behind it go on: consumers tolerate events out of order.
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

from services.common.amqp import ConfirmingPublisher, PublishReturned, events_exchange
from services.common.db import make_engine, rowcount
from services.common.events import CATALOGUE, DomainEvent, event_type, make_envelope
from services.common.logs import CORRELATION_KEY
from services.common.metrics import (
    OUTBOX_OLDEST_PENDING,
    OUTBOX_PENDING,
    OUTBOX_PUBLISHED,
    OUTBOX_RETURNED,
)
from services.common.settings import common_settings, read_text

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


class Returned:
    """Rows the broker returned as unroutable, held back for a while (per relay process)."""

    FIRST, LONGEST = 1.0, 300.0

    def __init__(self) -> None:
        self._held: dict[int, tuple[float, float]] = {}  # row id → (until, last delay)

    def held(self, now: float) -> list[int]:
        return [i for i, (until, _) in self._held.items() if until > now]

    def hold(self, row_id: int, now: float) -> float:
        _, last = self._held.get(row_id, (0.0, self.FIRST / 2))
        delay = min(last * 2, self.LONGEST)
        self._held[row_id] = (now + delay, delay)
        return delay

    def forget(self, row_ids: list[int]) -> None:
        for row_id in row_ids:
            self._held.pop(row_id, None)


def relay_pending(
    engine: Engine,
    publisher: ConfirmingPublisher,
    *,
    service: str,
    batch_size: int = 200,
    returned: Returned | None = None,
) -> int:
    """Publish up to ``batch_size`` pending rows in order; return how many were published.

    Rows are marked sent in the same transaction that locked them, after every publish in the
    batch was confirmed. If this process dies before the commit, the rows stay pending and are
    published again by the next relay: consumers must be (and are) idempotent. A row the broker
    returns as unroutable stays pending (held back by ``returned`` for a while, if given).
    """
    returned = returned if returned is not None else Returned()
    with engine.begin() as conn:
        if not conn.execute(
            sa.select(sa.func.pg_try_advisory_xact_lock(_lock_key(service)))
        ).scalar():
            return 0  # another replica's relay is publishing
        query = sa.select(outbox.c.id, outbox.c.event, outbox.c.envelope).where(
            outbox.c.sent_at.is_(None)
        )
        held = returned.held(time.monotonic())
        if held:
            query = query.where(outbox.c.id.notin_(held))
        rows = conn.execute(query.order_by(outbox.c.id).limit(batch_size)).all()
        sent = []
        for row in rows:
            try:
                publish_envelope(publisher, row.envelope)
            except PublishReturned as exc:
                OUTBOX_RETURNED.labels(service, row.event).inc()
                delay = returned.hold(row.id, time.monotonic())
                log.warning(
                    "outbox %s: event %s (%s) %s; kept, published again in %.0f s",
                    service,
                    row.envelope.get("event_id"),
                    row.event,
                    exc,
                    delay,
                )
                continue
            sent.append(row)
        if sent:
            mark_sent(conn, [row.id for row in sent])
            returned.forget([row.id for row in sent])
            for row in sent:
                OUTBOX_PUBLISHED.labels(service, row.event).inc()
        return len(sent)


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
        mandatory=True,
    )


FORGET_WHEN_SENT = [e.name for e in CATALOGUE.values() if e.forget_when_sent]


def mark_sent(conn: Any, ids: list[int]) -> None:
    conn.execute(outbox.update().where(outbox.c.id.in_(ids)).values(sent_at=sa.func.now()))
    if FORGET_WHEN_SENT:  # e.g. response_recorded: responses keeps no resident id
        conn.execute(
            outbox.delete().where(outbox.c.id.in_(ids), outbox.c.event.in_(FORGET_WHEN_SENT))
        )


# The events whose payload names a resident (forget_resident looks only at their rows).
NAMES_A_RESIDENT = [e.name for e in CATALOGUE.values() if "resident_id" in e.schema().fields]


def forget_resident(session: Session, resident_id: str) -> int:
    """Erasure: delete this service's outbox rows whose payload names the resident, sent or
    not (an unsent one then never leaves). Call it in the transaction that erases the resident,
    before emitting anything that must still go out."""
    return rowcount(
        session.execute(
            outbox.delete().where(
                outbox.c.event.in_(NAMES_A_RESIDENT),
                outbox.c.envelope["payload"]["resident_id"].astext == str(resident_id),
            )
        )
    )


def forget_email(session: Session, resident_id: str, email: str) -> int:
    """Erasure of one address: delete this service's outbox rows naming the resident whose
    payload carries ``email`` (a contact who left took it with them), sent or not; the caller
    emits the profile without it in the same transaction."""
    return rowcount(
        session.execute(
            outbox.delete().where(
                outbox.c.event.in_(NAMES_A_RESIDENT),
                outbox.c.envelope["payload"]["resident_id"].astext == str(resident_id),
                sa.func.lower(outbox.c.envelope["payload"]["email"].astext) == email.lower(),
            )
        )
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
        self.returned = Returned()

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
                    self.engine,
                    self.publisher,
                    service=self.service,
                    batch_size=self.batch_size,
                    returned=self.returned,
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
        settings = common_settings(self.container)
        if not settings.outbox_relay:
            return
        self.relay = OutboxRelay(
            make_engine(read_text(self.container, "DATABASE_URL"), pool_size=2),
            settings.amqp_uri,
            service=self.container.service_name,
            poll_interval=settings.outbox_poll_interval,
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
