"""kill -9 of the responses process while residents keep answering over HTTP, twice, at the
two moments that matter; then a third process drains the queue. In the end every accepted
submission is stored exactly once and counted exactly once, its receipt says "recorded", and
response_recorded went out for each (at least once: consumers absorb the duplicates).

Kill 1 — inside an intake transaction and, in the same instant, inside an outbox relay run.
The test holds ``LOCK TABLE outbox IN EXCLUSIVE MODE`` (reads pass, writes wait). The next
intake batch stops at its first outbox insert — responses inserted and counters bumped, not
committed, its messages not acked — and the relay, which reads pending rows freely, has
published them with confirms and stops at marking them sent. Both are seen waiting in
``pg_stat_activity`` before the SIGKILL. Expected: the batch rolls back and comes again; the
relay's run is published a second time.

Kill 2 — after commits whose acks never reached the broker (the at-least-once case that could
count twice). responses talks to RabbitMQ through tests/support/tcp_proxy.py; ``swallow()``
drops what the process sends from then on, so batches committed afterwards stay unacked at the
broker; the SIGKILL follows once some have committed, and they are all back in the queue.
Expected: delivered again, recognised by their receipts, stored and counted once.
"""

from __future__ import annotations

import re
import signal
import time
from urllib.parse import urlsplit

import sqlalchemy as sa

from services.common.intake import INTAKE_QUEUE
from tests.conftest import wait_for
from tests.support.faults import account_receipts, report
from tests.support.responses import (
    Submitters,
    assert_events_for_each,
    assert_stored_once_and_counted,
    open_poll,
    queue_depth,
    queue_state,
    recorded_count,
)
from tests.support.tcp_proxy import ProxyProcess

ENV = {"INTAKE_BATCH_SIZE": "50", "OUTBOX_POLL_INTERVAL": "0.5"}


def waiting_on_locks(engine: sa.Engine) -> dict[str, str]:
    """What responses' sessions wait for: first words of each statement stuck on a lock → the
    statement (as pg_stat_activity shows it, possibly cut short)."""
    with engine.connect() as conn:
        queries = conn.execute(
            sa.text(
                "SELECT query FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
        ).scalars()
        return {" ".join(q.split()[:3]): q for q in queries}


def both_stuck(engine: sa.Engine) -> dict[str, str] | None:
    """The intake batch and the relay run both waiting on the outbox lock (else None)."""
    waiting = waiting_on_locks(engine)
    return waiting if {"INSERT INTO outbox", "UPDATE outbox SET"} <= waiting.keys() else None


def relayed_unmarked(update: str) -> int:
    """How many outbox ids the relay's stuck ``UPDATE … WHERE id IN (…)`` names (at least):
    rows it has published, and will publish again after the kill."""
    return len(re.findall(r"\d+", update.partition(" IN (")[2]))


def hold_outbox(conn: sa.Connection) -> int:
    """Lock the outbox against writes at a moment some rows are still pending; return how
    many (rows already pending cannot be marked sent while the lock is held)."""

    def attempt() -> int:
        conn.execute(sa.text("LOCK TABLE outbox IN EXCLUSIVE MODE"))
        pending = conn.execute(
            sa.text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        ).scalar_one()
        if not pending:
            conn.rollback()
        return pending

    return wait_for(attempt, timeout=30, interval=0.02, message="pending outbox rows to lock")


def test_kill_9_mid_batch_mid_relay_and_before_ack_loses_and_doubles_nothing(
    front, responses_process, recorded_events, engines, amqp_uri, service_config
):
    engine = engines["responses"]
    # responses talks to the broker through a proxy, so that its acks can be lost (kill 2).
    parts = urlsplit(amqp_uri)
    broker = ProxyProcess((parts.hostname or "127.0.0.1", parts.port or 5672))
    env = {**ENV, "AMQP_URI": broker.url(amqp_uri)}
    started = time.monotonic()
    try:
        first = responses_process.start(**env)
        poll = open_poll(front, service_config, engine)
        load = Submitters(front.base, front.private_key, poll, clients=4).start()
        try:
            # Kill 1: inside an intake transaction and inside a relay run.
            wait_for(lambda: recorded_count(engine) >= 50, timeout=60, message="first batches")
            with engine.connect() as lock:
                pending = hold_outbox(lock)
                stuck = wait_for(
                    lambda: both_stuck(engine),
                    timeout=30,
                    message="an intake batch and a relay run both stuck in their transaction",
                )
                relayed = relayed_unmarked(stuck["UPDATE outbox SET"])
                first.send_signal(signal.SIGKILL)
                first.wait(10)
                recorded_at_kill = recorded_count(engine)
                accepted_at_kill = len(load.accepted)
                lock.rollback()
            assert 0 < recorded_at_kill < accepted_at_kill, (recorded_at_kill, accepted_at_kill)
            # Residents keep answering while no responses process runs.
            wait_for(
                lambda: len(load.accepted) >= accepted_at_kill + 50,
                timeout=60,
                message="submissions accepted while responses is down",
            )

            # Kill 2: after commits whose acks never reached the broker.
            second = responses_process.start(**env)
            wait_for(
                lambda: recorded_count(engine) > recorded_at_kill,
                timeout=60,
                message="the second process recording",
            )
            broker.swallow()
            before_swallow = recorded_count(engine)
            wait_for(
                lambda: recorded_count(engine) >= before_swallow + 20,
                timeout=60,
                message="batches committed, their acks lost",
            )
            second.send_signal(signal.SIGKILL)
            second.wait(10)
            committed_unacked = recorded_count(engine) - before_swallow
            wait_for(
                lambda: queue_state(amqp_uri, INTAKE_QUEUE)[1] == 0,
                timeout=30,
                message="the broker to see the consumer gone",
            )
            # Everything committed after the acks were lost is back in the queue.
            assert queue_depth(amqp_uri, INTAKE_QUEUE) >= committed_unacked
            broker.restore()

            responses_process.start(**env)
            wait_for(
                lambda: recorded_count(engine) > before_swallow + committed_unacked,
                timeout=60,
                message="the third process recording",
            )
        finally:
            load.stop()

        assert load.failures() == {}, load.failures()
        accepted = load.accepted
        wait_for(
            lambda: recorded_count(engine) >= len(accepted),
            timeout=60,
            message=f"{len(accepted)} submissions recorded",
        )
        assert queue_depth(amqp_uri, INTAKE_QUEUE) == 0
        assert_stored_once_and_counted(engine, poll, accepted)

        def all_relayed() -> bool:
            with engine.connect() as conn:
                left = conn.execute(
                    sa.text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
                ).scalar_one()
            events = {(e.payload["poll_id"], e.payload["resident_id"]) for e in recorded_events}
            return left == 0 and len(events) >= len(accepted)

        wait_for(all_relayed, timeout=60, message="response_recorded for every response")
        duplicates = assert_events_for_each(recorded_events, engine)
        # The relay's interrupted run went out twice: once before kill 1, once after.
        assert duplicates >= relayed >= 1, (duplicates, relayed)
        assert queue_depth(amqp_uri, f"{INTAKE_QUEUE}.dlq") == 0
        numbers = account_receipts(engine, poll, accepted)
        report("responses-kill-9", numbers, 0.0, len(accepted) / (time.monotonic() - started))
    finally:
        responses_process.stop_all()  # before its way to the broker goes
        broker.stop()
    print(
        f"accepted={len(accepted)} recorded_at_kill1={recorded_at_kill} relay_pending={pending} "
        f"relayed_at_kill1={relayed} "
        f"committed_unacked_at_kill2={committed_unacked} duplicate_events={duplicates} "
        f"seconds={time.monotonic() - started:.1f}"
    )
