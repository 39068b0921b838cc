"""Outbox relay throughput against its ceiling, measured in the same run.

    make bench-outbox          (OUTBOX_N events, default 5000)

Figure: events/s the relay moves from the outbox table to RabbitMQ (read, publish with a
confirm each, mark sent). Ceiling: bare publishes of the same envelopes with a confirm each,
no database. Both publish to a durable queue bound to the exchange, as in production.
The relay is meant for domain events (a few per minute), so the question this answers is how
much the database side costs, not whether it can carry bulk traffic (that has its own queues).
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from kombu import Connection, Queue
from sqlalchemy.orm import Session

from services.common import migrate, outbox
from services.common.amqp import ConfirmingPublisher, events_exchange
from services.common.events import make_envelope

N = int(os.environ.get("OUTBOX_N", "5000"))
PG = os.environ.get("BENCH_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432")
AMQP = os.environ.get("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")


def payload() -> dict:
    return {
        "poll_id": str(uuid.uuid4()),
        "municipality_code": "GM0344",
        "closed_at": datetime.now(UTC).isoformat(),
        "reason": "schedule",
    }


def main() -> None:
    url = f"{PG}/buurtpeil_bench_outbox"
    migrate.drop_database(url)
    migrate.upgrade("polls", url, create=True)
    engine = sa.create_engine(url)
    exchange = events_exchange("polls")
    sink = Queue("bench-outbox-sink", exchange=exchange, routing_key="poll_closed", durable=True)
    with Connection(AMQP) as conn:
        sink(conn.channel()).declare()
    try:
        with Session(engine) as session, session.begin():
            for _ in range(N):
                outbox.add_event(session, "poll_closed", payload())

        publisher = ConfirmingPublisher(AMQP)
        started = time.perf_counter()
        moved = 0
        while batch := outbox.relay_pending(engine, publisher, service="polls"):
            moved += batch
        relay_s = time.perf_counter() - started
        assert moved == N, (moved, N)

        envelopes = [make_envelope("poll_closed", payload()) for _ in range(N)]
        started = time.perf_counter()
        for envelope in envelopes:
            publisher.publish(envelope, exchange=exchange, routing_key="poll_closed")
        ceiling_s = time.perf_counter() - started
        publisher.close()
    finally:
        with Connection(AMQP) as conn:
            sink(conn.channel()).delete()
        engine.dispose()
        migrate.drop_database(url)

    rate, ceiling = N / relay_s, N / ceiling_s
    print(
        f"outbox: n={N} seconds={relay_s:.2f} rate={rate:.0f} ceiling={ceiling:.0f} "
        f"ratio={rate / ceiling:.2f}"
    )


if __name__ == "__main__":
    main()
