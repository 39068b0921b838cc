"""Notification fan-out, end to end, against its ceiling measured in the same run.

    make bench-fanout            (FANOUT_N residents, default 100000; FANOUT_PROCESSES notify
                                  processes, default one per core)

Figure: N residents, each with a Web Push subscription at the fake push service (which checks
VAPID and decrypts every message); one poll published to all of them; the time from publishing
``poll_published`` until every notification has been decrypted by the receiver AND recorded as
sent in notify's database. Ceiling, in the same run through the same receiver: a bare sender
doing only the unavoidable work — encrypt each payload for its subscription (RFC 8291), the
cached VAPID header, POST over keep-alive connections — one process per core
(FANOUT_CEILING_PROCESSES) with FANOUT_CEILING_THREADS connections each, no broker, no
database; timed until the receiver has decrypted every one of its N messages. notify's
resident memory (max over the run, summed over its processes) is printed too, to show it does
not grow with N, and the CPU per push of notify, of the bare sender and of the receiver.

Everything runs on this machine: notify (or the bare sender), the fake push service (in this
process, decrypting), PostgreSQL and RabbitMQ share its cores.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import multiprocessing
import os
import resource
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from services.common import migrate
from services.notify import webpush
from tests.fakes.push_service import FakePushService
from tests.support import infra
from tests.support.notify import poll_payload, publish_event, wait_for_consumer

N = int(os.environ.get("FANOUT_N", "100000"))
PROCESSES = int(os.environ.get("FANOUT_PROCESSES", str(os.cpu_count() or 2)))
CEILING_PROCESSES = int(os.environ.get("FANOUT_CEILING_PROCESSES", str(os.cpu_count() or 2)))
CEILING_THREADS = int(os.environ.get("FANOUT_CEILING_THREADS", "16"))  # connections per process
KEYS = 64  # distinct subscription key pairs, cycled: the per-message cost is the same
PG = os.environ.get("BENCH_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432")
GM = "GM0344"


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def seed(engine: sa.Engine, push: FakePushService) -> list[tuple[str, str, str]]:
    """N residents in notify's projection, each with their own push endpoint; returns the
    subscriptions (endpoint, p256dh, auth) for the bare sender."""
    subscriptions: list[tuple[str, str, str]] = []
    keys = [webpush.generate_subscription_keys() for _ in range(KEYS)]
    residents, endpoints = io.StringIO(), io.StringIO()
    now = datetime.now(UTC).isoformat()
    order = json.dumps(["webpush", "fcm", "email"])
    for i in range(N):
        private_key, p256dh, auth = keys[i % KEYS]
        endpoint = push.register(private_key, base64.urlsafe_b64decode(auth + "=="))
        subscriptions.append((endpoint, p256dh, auth))
        rid = uuid.uuid4()
        wijk = f"WK0344{(i % 10) + 1:02d}"
        residents.write(f"{rid}\t{GM}\t{wijk}\tBU{wijk[2:]}11\tnl\tt\t{order}\t{now}\n")
        endpoints.write(f"{uuid.uuid4()}\t{rid}\twebpush\t{endpoint}\t{p256dh}\t{auth}\t{now}\n")
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        residents.seek(0)
        cursor.copy_expert(
            "COPY residents (id, municipality_code, wijk_code, buurt_code, "
            "language, consent, channel_order, updated_at) FROM STDIN",
            residents,
        )
        endpoints.seek(0)
        cursor.copy_expert(
            "COPY endpoints (id, resident_id, channel, address, p256dh, auth, "
            "created_at) FROM STDIN",
            endpoints,
        )
        raw.commit()
    finally:
        raw.close()
    return subscriptions


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far, from /proc/<pid>/stat (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _bare_sender(
    args: tuple[list[tuple[str, str, str]], str, bytes, str, int, float, Any],
) -> None:
    """One bare sender process: ``threads`` threads, each with its own keep-alive
    connection, each message encrypted for its subscription (RFC 8291) with the cached VAPID
    header and notify's other headers, POSTed and its answer read. Sends (sent, 201s, CPU s)."""
    subscriptions, vapid_pem, payload, topic, threads, start_at, out = args
    vapid = webpush.Vapid(vapid_pem, "mailto:bench@buurtpeil.example")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = usage.ru_utime + usage.ru_stime
    lock = threading.Lock()
    cursor = iter(subscriptions)
    counts = {"sent": 0, "created": 0}

    def worker() -> None:
        conn: http.client.HTTPConnection | None = None
        sent = created = 0
        time.sleep(max(0.0, start_at - time.time()))
        while True:
            with lock:
                item = next(cursor, None)
            if item is None:
                break
            endpoint, p256dh, auth = item
            parts = urlsplit(endpoint)
            body = webpush.encrypt(payload, p256dh=p256dh, auth=auth)
            headers = {
                **vapid.headers(endpoint),
                "TTL": "2419200",
                "Urgency": "normal",
                "Topic": topic,
                "Content-Encoding": "aes128gcm",
                "Content-Type": "application/octet-stream",
            }
            if conn is None:
                conn = http.client.HTTPConnection(parts.netloc, timeout=30)
            conn.request("POST", parts.path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            sent += 1
            created += response.status == 201
        if conn is not None:
            conn.close()
        with lock:
            counts["sent"] += sent
            counts["created"] += created

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out.send((counts["sent"], counts["created"], usage.ru_utime + usage.ru_stime - cpu_before))
    out.close()


def ceiling(
    push: FakePushService,
    subscriptions: list[tuple[str, str, str]],
    vapid_pem: str,
    payload: bytes,
    topic: str,
) -> tuple[float, float, float]:
    """The bare sender through the same receiver: one process per core (CEILING_PROCESSES),
    CEILING_THREADS keep-alive connections each, no broker, no database. Timed from the
    start until the receiver has decrypted every message. Returns (rate, sender CPU per push
    in s, receiver CPU per push in s)."""
    context = multiprocessing.get_context("fork")
    start_at = time.time() + 1.0
    before = push.decrypted_count
    pipes, children = [], []
    for p in range(CEILING_PROCESSES):
        receive, send = context.Pipe(duplex=False)
        child = context.Process(
            target=_bare_sender,
            args=(
                (
                    subscriptions[p::CEILING_PROCESSES],
                    vapid_pem,
                    payload,
                    topic,
                    CEILING_THREADS,
                    start_at,
                    send,
                ),
            ),
            daemon=True,
        )
        child.start()
        send.close()
        pipes.append(receive)
        children.append(child)
    time.sleep(max(0.0, start_at - time.time()))
    started = time.perf_counter()
    receiver_before = _self_cpu()
    results = [receive.recv() for receive in pipes]
    while push.decrypted_count - before < len(subscriptions):
        if time.perf_counter() - started > 1800:
            raise SystemExit("the bare sender's messages were not all decrypted in 30 min")
        time.sleep(0.01)
    seconds = time.perf_counter() - started
    receiver_cpu = _self_cpu() - receiver_before
    for child in children:
        child.join(10)
    sent = sum(r[0] for r in results)
    created = sum(r[1] for r in results)
    assert sent == created == len(subscriptions), f"bare sender: {sent} sent, {created} 201"
    return sent / seconds, sum(r[2] for r in results) / sent, receiver_cpu / sent


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    vhost = f"bp_bench_{os.getpid()}"
    amqp_uri = infra.create_vhost(vhost)
    url = f"{PG}/buurtpeil_bench_notify"
    migrate.drop_database(url)
    migrate.upgrade("notify", url, create=True)
    engine = sa.create_engine(url)
    workdir = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    (workdir / "vapid.pem").write_text(webpush.generate_vapid_key())
    push = FakePushService().start()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        t = time.perf_counter()
        subscriptions = seed(engine, push)
        print(
            f"seeded {N} residents with subscriptions in {time.perf_counter() - t:.1f} s",
            flush=True,
        )
        env = {
            **os.environ,
            "AMQP_URI": amqp_uri,
            "NOTIFY_DATABASE_URL": url,
            "VAPID_PRIVATE_KEY_FILE": str(workdir / "vapid.pem"),
            "NOTIFY_METRICS_PORT": "0",
            "SMTP_URL": "smtp://127.0.0.1:9",
            "LOG_LEVEL": "WARNING",
            "NOTIFY_DISPATCH_POLL_INTERVAL": "0.2",
            "BUURTPEIL_ENV": "development",
            "PUSH_DEVELOPMENT_ORIGINS": push.origin,
        }
        for i in range(PROCESSES):
            processes.append(infra.nameko_run("notify", env, workdir / f"notify-{i}.log"))
        wait_for_consumer(amqp_uri, "evt-polls-poll_published--notify.on_poll_published")
        wait_for_consumer(amqp_uri, "notify.deliveries")
        time.sleep(1)
        peak = {"rss": 0.0}
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.is_set():
                peak["rss"] = max(peak["rss"], sum(rss_mb(p.pid) for p in processes))
                time.sleep(0.2)

        threading.Thread(target=sample, daemon=True).start()
        payload = poll_payload(audience={"kind": "municipality"})
        notify_cpu_before = sum(_cpu_seconds(p.pid) for p in processes)
        receiver_cpu_before = _self_cpu()
        started = time.perf_counter()
        publish_event(amqp_uri, "poll_published", payload)
        last_report = started
        while push.decrypted_count < N:
            time.sleep(0.05)
            if time.perf_counter() - last_report > 5:
                last_report = time.perf_counter()
                print(
                    f"  {push.decrypted_count} decrypted after {last_report - started:.0f} s",
                    flush=True,
                )
            if time.perf_counter() - started > 1800:
                raise SystemExit(f"gave up: {push.decrypted_count} of {N} after 30 min")
        while True:
            with engine.connect() as conn:
                sent = conn.execute(
                    sa.text("SELECT count(*) FROM deliveries WHERE status = 'sent'")
                ).scalar()
            if sent >= N:
                break
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        notify_cpu = sum(_cpu_seconds(p.pid) for p in processes) - notify_cpu_before
        receiver_cpu = _self_cpu() - receiver_cpu_before
        sampling.set()
        rejected = push.stats()["rejected"]
        duplicates = push.stats()["requests"] - N
        stop(processes)
        sample_job = {
            "type": "invitation",
            "poll_id": payload["poll_id"],
            "ref_id": payload["poll_id"],
            "url": f"/polls/{payload['poll_id']}",
            "lang": "nl",
            "title": "Nieuwe peiling: Veilig in de buurt",
            "body": "Uw mening over uw buurt telt. Invullen duurt ongeveer 7 minuten.",
        }
        body = json.dumps(sample_job, ensure_ascii=False, separators=(",", ":")).encode()
        topic = webpush.topic_for(f"{payload['poll_id']}:{uuid.uuid4()}", "invitation")
        top, bare_cpu, bare_receiver_cpu = ceiling(
            push, subscriptions, (workdir / "vapid.pem").read_text(), body, topic
        )
        ceiling_rejected = push.stats()["rejected"]
    finally:
        stop(processes)
        push.stop()
        engine.dispose()
        migrate.drop_database(url)
        infra.delete_vhost(vhost)

    rate = N / seconds
    print(
        f"  processes={PROCESSES} rejected={rejected} extra_requests={duplicates}; "
        f"bare sender: {CEILING_PROCESSES} processes x {CEILING_THREADS} connections, "
        f"rejected={ceiling_rejected}"
    )
    print(
        f"  cpu per push: notify={notify_cpu / N * 1e6:.0f} us "
        f"bare_sender={bare_cpu * 1e6:.0f} us; receiver (this process) "
        f"{receiver_cpu / N * 1e6:.0f} us during notify's run, "
        f"{bare_receiver_cpu * 1e6:.0f} us during the bare sender's"
    )
    print(
        f"fanout: n={N} seconds={seconds:.2f} rate={rate:.0f} ceiling={top:.0f} "
        f"ratio={rate / top:.2f} notify_rss_mb={peak['rss']:.0f} "
        f"notify_cpu_us={notify_cpu / N * 1e6:.0f} bare_cpu_us={bare_cpu * 1e6:.0f}"
    )


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in processes:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()


if __name__ == "__main__":
    main()
