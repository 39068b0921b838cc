"""PostgreSQL stopped for some seconds under load: submissions keep being accepted, and after
restart stored = accepted = counted.

What is simulated, and why: the PostgreSQL server of this machine is shared with other test
runs, so it must not be stopped. Instead responses (in a process of its own, started with
``nameko run``) reaches its database through the TCP proxy of ``tests/support/tcp_proxy.py``,
itself a separate process. ``cut()`` resets every open connection through it, and every new
one as soon as it arrives; ``restore()`` forwards again. For responses that is the server
gone: established connections die in the middle of a query or a commit, and new ones fail
before the server's greeting. A real ``pg_ctl stop`` does the same to a client — ``-m fast``
terminates the sessions ("terminating connection due to administrator command"), after which
connections are refused — and psycopg2 raises an ``OperationalError`` for each of these cases,
which is all the service sees and reacts to.

The gateway never touches responses' database: it must keep answering 202 throughout (no 5xx),
the submissions wait in the durable intake queue, and once the database is back every one of
them is recorded once, counted once, and nothing is dead-lettered.
"""

from __future__ import annotations

import time
from collections import Counter

from sqlalchemy.engine import make_url

from tests.conftest import wait_for
from tests.support.faults import account_receipts, report
from tests.support.responses import (
    Submitters,
    assert_events_for_each,
    assert_stored_once_and_counted,
    open_poll,
    queue_depth,
    recorded_count,
)
from tests.support.tcp_proxy import ProxyProcess

OUTAGE_SECONDS = 5.0
BATCH = 50


def test_database_outage_under_load_loses_nothing(
    front, responses_process, recorded_events, engines, databases, amqp_uri, service_config
):
    engine = engines["responses"]  # the test's own way in, around the proxy
    url = make_url(databases["responses"])
    proxy = ProxyProcess((url.host or "127.0.0.1", url.port or 5432))
    started = time.monotonic()
    try:
        responses_process.start(
            RESPONSES_DATABASE_URL=proxy.url(databases["responses"]),
            INTAKE_BATCH_SIZE=str(BATCH),
            OUTBOX_POLL_INTERVAL="0.2",
        )
        poll = open_poll(front, service_config, engine)
        # ~80 submissions a second: a few hundred wait out the outage in the queue.
        load = Submitters(front.base, front.private_key, poll, clients=4, pause=0.05).start()
        try:
            wait_for(lambda: recorded_count(engine) >= 50, timeout=60, message="first batches")
            assert proxy.stats()["open"] > 0

            proxy.cut()
            cut_at = time.monotonic()
            before = Counter(load.statuses)
            recorded_at_cut = recorded_count(engine)
            wait_for(
                lambda: (
                    time.monotonic() - cut_at >= OUTAGE_SECONDS
                    and proxy.stats()["refused"] > 0  # responses tried to get back in: no way
                    and load.statuses[202] >= before[202] + 50
                ),
                timeout=60,
                message="an outage of some seconds with residents still answering",
            )
            during = Counter(load.statuses) - before
            recorded_during = recorded_count(engine) - recorded_at_cut
            at_restore = proxy.restore()
            outage = time.monotonic() - cut_at

            wait_for(
                lambda: recorded_count(engine) > recorded_at_cut + recorded_during,
                timeout=60,
                message="recording again after the outage",
            )
        finally:
            load.stop()

        assert at_restore["severed"] > 0  # connections in use were killed, not just new ones
        # The gateway answered every request during the outage, and all of them with 202.
        assert set(during) == {202} and during[202] > 0, during
        assert load.failures() == {}, load.failures()
        # At most the batch whose commit was already on its way when the connections died.
        assert recorded_during <= BATCH, recorded_during

        accepted = load.accepted
        wait_for(
            lambda: recorded_count(engine) >= len(accepted),
            timeout=60,
            message=f"{len(accepted)} submissions recorded",
        )
        assert queue_depth(amqp_uri, "responses.intake") == 0
        assert_stored_once_and_counted(engine, poll, accepted)
        assert queue_depth(amqp_uri, "responses.intake.dlq") == 0
        wait_for(
            lambda: (
                len({(e.payload["poll_id"], e.payload["resident_id"]) for e in recorded_events})
                >= len(accepted)
            ),
            timeout=60,
            message="response_recorded for every response",
        )
        assert_events_for_each(recorded_events, engine)
        numbers = account_receipts(engine, poll, accepted)
        rate = len(accepted) / (time.monotonic() - started)
        report("postgres-connections-cut", numbers, 0.0, rate)
        print(
            f"accepted={len(accepted)} during_outage={during[202]} outage_s={outage:.1f} "
            f"refused={at_restore['refused']} severed={at_restore['severed']} "
            f"seconds={time.monotonic() - started:.1f}"
        )
    finally:
        responses_process.stop_all()  # before its way to the database goes
        proxy.stop()
