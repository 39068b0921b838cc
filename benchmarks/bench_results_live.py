"""Results read during a live poll: readers polling while answers arrive (issue 16, item 3).

    make bench-results-live     (LIVE_N responses first, default 1,000,000; LIVE_RATE 200/s,
                                 LIVE_READERS 20 polling every LIVE_EVERY 2 s for LIVE_SECONDS 60)

Setup as ``make bench-results`` (benchmarks/bench_results.py: the same poll, population and
seeding, checked against intake), then a ``nameko run`` responses process, and — at the same
time, from this process — submissions published to the intake queue at LIVE_RATE a second (the
queue the gateway publishes to; the gateway's HTTP hop is measured by ``make bench-intake``)
and LIVE_READERS readers calling ``responses.results_json`` (what the gateway's results route
calls) every LIVE_EVERY seconds, for LIVE_SECONDS.

Figures: the readers' p95 latency; staleness — for every response recorded during the run, the
time from its count being committed (the gemeente's respondents counter, sampled every 50 ms)
to the first read that shows it, p95; ``fresh_ms``: one fresh computation of the document at
the end (what every read after a change would wait for without serving the last release). The
goals (p95 ≤ 50 ms, staleness p95 ≤ 5 s) are printed beside them. The run checks the last
document read against a fresh computation over the final counters.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import threading
import time
import uuid
from bisect import bisect_left
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from kombu import Connection, Producer
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy.orm import Session

from benchmarks import bench_results as base
from services.common import migrate
from services.common.intake import INTAKE_QUEUE, intake_queue
from services.responses import results
from tests.support import infra
from tests.support.notify import wait_for_consumer

N = int(os.environ.get("LIVE_N", "1000000"))
RATE = float(os.environ.get("LIVE_RATE", "200"))
READERS = int(os.environ.get("LIVE_READERS", "20"))
EVERY = float(os.environ.get("LIVE_EVERY", "2"))
SECONDS = float(os.environ.get("LIVE_SECONDS", "60"))
GOAL_P95_MS, GOAL_STALENESS_S = 50.0, 5.0
GM, K = base.GM, base.K

GEMEENTE_RESPONDENTS = sa.text(
    "SELECT coalesce(sum(n), 0) FROM respondents "
    "WHERE poll_id = :p AND question_id = '*' AND area_code = :gm"
)


def gemeente_respondents(document: dict[str, Any]) -> int:
    return next(a for a in document["areas"] if a["code"] == GM)["respondents"]


class Committed(threading.Thread):
    """(time, respondents counted) every 50 ms: when each response's count was committed."""

    def __init__(self, engine: sa.Engine, poll_id: uuid.UUID):
        super().__init__(daemon=True)
        self.engine, self.poll_id = engine, poll_id
        self.samples: list[tuple[float, int]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        with self.engine.connect() as conn:
            while not self.stopping.wait(0.05):
                n = conn.execute(GEMEENTE_RESPONDENTS, {"p": self.poll_id, "gm": GM}).scalar()
                conn.commit()
                self.samples.append((time.monotonic(), int(n)))


def publish(amqp_uri: str, poll_id: uuid.UUID, records: Any, poll: dict, stop: threading.Event):
    """Submissions as the gateway publishes them, paced at RATE a second; returns how many."""
    people = base.respondents(int(RATE * SECONDS * 2) + 1000, records, poll, base.SEED + 7)
    sent, started = 0, time.monotonic()
    with Connection(amqp_uri) as conn:
        producer = Producer(conn.channel())
        for person in people:
            if stop.is_set():
                break
            producer.publish(
                base.submission(poll_id, person),
                exchange="",
                routing_key=INTAKE_QUEUE,
                serializer="json",
                delivery_mode=2,
                declare=[intake_queue()],
            )
            sent += 1
            pause = started + sent / RATE - time.monotonic()
            if pause > 0:
                time.sleep(pause)
    return sent


def reader(amqp_uri: str, poll_id: str, offset: float, until: float, reads: list) -> None:
    """Reads every EVERY seconds (starting at ``offset``): (done at, respondents shown, latency)."""
    time.sleep(offset)
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}) as rpc:
        next_at = time.monotonic()
        while time.monotonic() < until:
            started = time.monotonic()
            document = json.loads(rpc.responses.results_json(GM, poll_id, K))
            done = time.monotonic()
            reads.append((done, gemeente_respondents(document), done - started))
            next_at += EVERY
            time.sleep(max(0.0, next_at - time.monotonic()))


def staleness(committed: list[tuple[float, int]], reads: list[tuple[float, int, float]]):
    """Per response counted during the run: first read showing it minus its commit, seconds;
    and how many were never shown by a read."""
    shown = sorted((t, n) for t, n, _ in reads)
    best, visible = 0, []  # the most respondents shown by any read up to each time
    for t, n in shown:
        best = max(best, n)
        visible.append((t, best))
    times = [t for t, _ in visible]
    start = committed[0][1]
    ages, never, previous = [], 0, start
    for t_commit, n in committed:
        for i in range(previous + 1, n + 1):  # responses i committed between two samples
            j = bisect_left(times, t_commit)
            while j < len(visible) and visible[j][1] < i:
                j += 1
            if j == len(visible):
                never += 1
            else:
                ages.append(visible[j][0] - t_commit)
        previous = max(previous, n)
    return ages, never


def fresh_computation(engine: sa.Engine, poll_id: uuid.UUID) -> tuple[float, dict[str, Any]]:
    """One computation of the document over the final counters (rolled back): its time and
    the ``all`` view — what the last read must show once the run is over."""
    with Session(engine) as session:
        session.begin()
        results.begin_snapshot(session, read_only=False)
        session.execute(
            sa.text("UPDATE polls SET results_version = results_version + 1 WHERE id = :p"),
            {"p": poll_id},
        )
        started = time.perf_counter()
        documents = results.release(session, poll_id=str(poll_id), municipality_code=GM, k=K)
        took = time.perf_counter() - started
        session.rollback()
    return took, documents["all"]


def without_version(document: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key != "version"}


def main() -> None:
    url = f"{base.PG}/buurtpeil_bench_results_live"
    migrate.drop_database(url)
    migrate.upgrade("responses", url, create=True)
    engine = sa.create_engine(url)
    records, payload = base.areas()
    poll = base.definition()
    vhost = f"bp_bench_live_{os.getpid()}"
    amqp_uri = infra.create_vhost(vhost)
    work = Path(tempfile.mkdtemp(prefix="bench-results-live-"))
    process = None
    try:
        poll_id = base.seed(engine, records, payload, poll, N)
        process = infra.nameko_run(
            "responses",
            {
                "AMQP_URI": amqp_uri,
                "RESPONSES_DATABASE_URL": url,
                "RESPONSES_METRICS_PORT": "0",
                "LOG_LEVEL": "WARNING",
            },
            work / "responses.log",
        )
        wait_for_consumer(amqp_uri, "rpc-responses")
        with ClusterRpcProxy({"AMQP_URI": amqp_uri}) as rpc:
            started = time.perf_counter()
            rpc.responses.results_json(GM, str(poll_id), K)  # the first release, waited for
            first_ms = (time.perf_counter() - started) * 1000

        committed = Committed(engine, poll_id)
        committed.start()
        stop = threading.Event()
        sent: list[int] = []
        publisher = threading.Thread(
            target=lambda: sent.append(publish(amqp_uri, poll_id, records, poll, stop))
        )
        reads: list[tuple[float, int, float]] = []
        until = time.monotonic() + SECONDS
        readers = [
            threading.Thread(
                target=reader,
                args=(amqp_uri, str(poll_id), i * EVERY / READERS, until, reads),
                daemon=True,
            )
            for i in range(READERS)
        ]
        publisher.start()
        for thread in readers:
            thread.start()
        for thread in readers:
            thread.join()
        stop.set()
        publisher.join()
        # Intake drains; then the last read must show every response, and match a fresh run.
        deadline = time.monotonic() + 120
        while committed.samples[-1][1] < N + sent[0] and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.2)
        committed.stopping.set()
        committed.join()
        total = committed.samples[-1][1]
        last: dict[str, Any] = {}
        with ClusterRpcProxy({"AMQP_URI": amqp_uri}) as rpc:
            while time.monotonic() < deadline:
                last = json.loads(rpc.responses.results_json(GM, str(poll_id), K))
                if gemeente_respondents(last) == total:
                    break
                time.sleep(0.5)
        fresh_s, fresh = fresh_computation(engine, poll_id)
    finally:
        base.tear_down(process, engine, url, vhost)

    latencies = [latency for _, _, latency in reads]
    ages, never = staleness(committed.samples, reads)
    p95 = base.percentile(latencies, 0.95) * 1000
    stale_p95 = base.percentile(ages, 0.95)
    counted = total - N
    same = not base.differences(without_version(last), without_version(fresh))
    print(
        f"  {sent[0]} submissions published in {SECONDS:.0f} s ({sent[0] / SECONDS:.0f}/s), "
        f"{counted} counted; {len(reads)} reads by {READERS} readers every {EVERY:.0f} s; "
        f"first release {first_ms:.0f} ms"
    )
    print(
        f"  reads: p50 {base.percentile(latencies, 0.5) * 1000:.1f} ms, p95 {p95:.1f} ms, "
        f"max {max(latencies) * 1000:.0f} ms (goal p95 <= {GOAL_P95_MS:.0f} ms); staleness: "
        f"p50 {base.percentile(ages, 0.5):.2f} s, p95 {stale_p95:.2f} s, "
        f"{never} of {counted} never shown during the run (goal p95 <= {GOAL_STALENESS_S:.0f} s)"
    )
    print(
        f"  last document read = a fresh computation over the final counters: "
        f"{'yes' if same and gemeente_respondents(last) == total else 'NO'}; "
        f"a fresh computation takes {fresh_s * 1000:.0f} ms (each read would wait that long "
        f"without the last release served meanwhile)"
    )
    print(
        f"results-live: n={N} p95_ms={p95:.1f} staleness_p95_s={stale_p95:.2f} "
        f"fresh_ms={fresh_s * 1000:.0f} goal_p95_ms={GOAL_P95_MS:.0f} "
        f"goal_staleness_s={GOAL_STALENESS_S:.0f}"
    )
    assert same and gemeente_respondents(last) == total, "the last read is not the final one"


if __name__ == "__main__":
    random.seed(base.SEED)
    main()
