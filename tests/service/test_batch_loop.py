"""The intake's batch loop (services.common.batching) when the broker connection dies under it:
a batch whose ack cannot be sent any more is delivered again on a new connection, and nothing
stays unacknowledged. The loop reaches the real broker through the TCP proxy of
tests/support/tcp_proxy.py, whose ``cut()`` kills the connection the way a broker restart or a
missed-heartbeat close does."""

from __future__ import annotations

import threading
import time
from urllib.parse import urlsplit

from services.common.amqp import ConfirmingPublisher
from services.common.batching import BatchLoop
from services.common.db import limit_statements
from services.common.deadletter import RetryPolicy
from services.common.intake import INTAKE_QUEUE, intake_queue
from tests.conftest import wait_for
from tests.support.responses import queue_state
from tests.support.tcp_proxy import ProxyProcess


def ready_and_consumers(amqp_uri: str) -> tuple[int, int]:
    return queue_state(amqp_uri, INTAKE_QUEUE)


def test_a_batch_whose_connection_died_is_acked_on_a_new_connection(amqp_uri):
    host, port = urlsplit(amqp_uri).hostname or "127.0.0.1", urlsplit(amqp_uri).port or 5672
    proxy = ProxyProcess((host, port))
    publisher = ConfirmingPublisher(amqp_uri)
    for i in range(20):
        publisher.publish({"i": i}, exchange="", routing_key=INTAKE_QUEUE, declare=[intake_queue()])
    publisher.close()

    handled: list[list[int]] = []

    def handle(bodies: list[dict]) -> None:
        handled.append([b["i"] for b in bodies])
        if len(handled) == 1:  # the batch is recorded, but its ack will find no connection
            proxy.cut()
            proxy.restore()

    loop = BatchLoop(
        proxy.url(amqp_uri),
        intake_queue(),
        handle,
        validate=lambda body: None,
        retry=RetryPolicy(amqp_uri),
        batch_size=50,
        max_wait=0.05,
    )
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(handled) >= 2, timeout=30, message="the batch handled again")
        wait_for(
            lambda: ready_and_consumers(amqp_uri) == (0, 1),
            timeout=30,
            message="the loop consuming again on a new connection",
        )
    finally:
        loop.stop()
        thread.join(15)
        proxy.stop()
    assert not thread.is_alive()
    assert sorted(handled[0]) == list(range(20))
    assert sorted(i for batch in handled[1:] for i in batch) == list(range(20))
    # Every message acked: nothing came back to the queue when the loop's connection closed.
    assert ready_and_consumers(amqp_uri) == (0, 0)


def test_an_idle_loop_keeps_its_connection(amqp_uri, caplog):
    """Heartbeats are the loop's own job: without them the broker closes an idle consumer's
    connection after two missed intervals (a minute with the default 30 s)."""
    handled: list[list[int]] = []
    loop = BatchLoop(
        amqp_uri,
        intake_queue(),
        lambda bodies: handled.append([b["i"] for b in bodies]),
        validate=lambda body: None,
        retry=RetryPolicy(amqp_uri),
        heartbeat=3,
    )
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: ready_and_consumers(amqp_uri)[1] == 1, message="the loop consuming")
        # Idle for longer than the broker waits without heartbeats (two or three intervals).
        deadline = time.monotonic() + 10
        wait_for(lambda: time.monotonic() > deadline, timeout=15, message="idle time")
        publisher = ConfirmingPublisher(amqp_uri)
        publisher.publish({"i": 1}, exchange="", routing_key=INTAKE_QUEUE, declare=[intake_queue()])
        publisher.close()
        wait_for(lambda: handled == [[1]], message="the message handled")
    finally:
        loop.stop()
        thread.join(15)
    assert not [r for r in caplog.records if "lost its connection" in r.getMessage()]


def test_a_batch_past_its_time_limit_is_split_and_a_slow_message_is_never_dead_lettered(
    amqp_uri, engines
):
    """Issue 12, item 6: the handler sets the batch's time limit in PostgreSQL; a batch that
    exceeds it is split (smaller batches are quicker), and one message that exceeds it alone is
    tried again after a backoff — as when the database is down — never dead-lettered."""
    import sqlalchemy as sa

    from services.common.deadletter import dlq_name

    publisher = ConfirmingPublisher(amqp_uri)
    for i in range(16):
        publisher.publish({"i": i}, exchange="", routing_key=INTAKE_QUEUE, declare=[intake_queue()])
    publisher.close()
    attempts: list[int] = []
    recorded: list[int] = []
    slow_alone = {7: 2}  # message 7 takes too long, also on its own (twice)

    def handle(bodies: list[dict]) -> None:
        attempts.append(len(bodies))
        numbers = [b["i"] for b in bodies]
        with engines["responses"].begin() as conn:
            limit_statements(conn, 0.4)
            # 0.1 s of work per message: batches of more than three are past the limit.
            seconds = 0.1 * len(bodies)
            if 7 in numbers and slow_alone[7] > 0:  # too slow in any batch, until it has
                slow_alone[7] -= len(bodies) == 1  # timed out alone twice
                seconds = 1.0
            conn.execute(sa.text("SELECT pg_sleep(:s)"), {"s": seconds})
        recorded.extend(numbers)

    loop = BatchLoop(
        amqp_uri,
        intake_queue(),
        handle,
        validate=lambda body: None,
        retry=RetryPolicy(amqp_uri),
        batch_size=16,
        max_wait=0.5,
    )
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: sorted(recorded) == list(range(16)), timeout=60, message="all recorded")
    finally:
        loop.stop()
        thread.join(10)
    assert attempts[0] == 16 and max(attempts[1:]) < 16  # the whole batch timed out, then split
    assert slow_alone[7] == 0  # message 7 timed out alone twice and was recorded after all
    assert queue_state(amqp_uri, dlq_name(INTAKE_QUEUE))[0] == 0


def test_the_responses_recorder_limits_every_statement_of_its_batch_transaction(
    service_config, monkeypatch
):
    """The limit the loop relies on above is set by responses' batch handler itself: its
    transaction runs every statement under ``INTAKE_BATCH_TIME_LIMIT``, and only that one."""
    import types
    from datetime import UTC, datetime

    import sqlalchemy as sa

    from services.responses import intake, service

    seen: list[str] = []

    def record_batch(session, bodies, **kwargs):
        seen.append(session.execute(sa.text("SHOW statement_timeout")).scalar_one())
        return []

    monkeypatch.setattr(intake, "record_batch", record_batch)
    config = service_config("responses", INTAKE_BATCH_TIME_LIMIT=0.25)
    container = types.SimpleNamespace(config=config, service_name="responses")
    record = service.recorder(container, lambda: datetime.now(UTC))
    assert record([]) == []
    assert seen == ["250ms"]
    # SET LOCAL: the limit ends with the batch's transaction.
    engine = sa.create_engine(config["DATABASE_URL"])
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SHOW statement_timeout")).scalar_one() == "0"
    finally:
        engine.dispose()
