"""Notification fan-out, end to end, against its ceiling measured in the same run.

    make bench-fanout            (FANOUT_N residents, default 100000; FANOUT_PROCESSES notify
                                  processes, default one per core)

Figure: N residents, each with a Web Push subscription at the fake push service (which checks
VAPID and decrypts every message); one poll published to all of them; the time from publishing
``poll_published`` until every notification has been decrypted by the receiver AND recorded as
sent in notify's database. Ceiling: bare aes128gcm encryption (RFC 8291) of the same payloads on
all cores of the machine, nothing else. notify's resident memory (max over the run, summed over
its processes) is printed too, to show it does not grow with N.

Everything runs on this machine: notify, the fake push service (decrypting), PostgreSQL and
RabbitMQ share its cores, so the ratio also says what the receiving side costs.
"""

from __future__ import annotations

import base64
import io
import json
import multiprocessing
import os
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from services.common import migrate
from services.notify import webpush
from tests.fakes.push_service import FakePushService
from tests.support import infra
from tests.support.notify import poll_payload, publish_event, wait_for_consumer

N = int(os.environ.get("FANOUT_N", "100000"))
PROCESSES = int(os.environ.get("FANOUT_PROCESSES", str(os.cpu_count() or 2)))
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


def seed(engine: sa.Engine, push: FakePushService) -> None:
    """N residents in notify's projection, each with their own push endpoint."""
    keys = [webpush.generate_subscription_keys() for _ in range(KEYS)]
    residents, endpoints = io.StringIO(), io.StringIO()
    now = datetime.now(UTC).isoformat()
    order = json.dumps(["webpush", "fcm", "email"])
    for i in range(N):
        private_key, p256dh, auth = keys[i % KEYS]
        endpoint = push.register(private_key, base64.urlsafe_b64decode(auth + "=="))
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


def _encrypt_many(args: tuple[int, str, str, bytes]) -> int:
    count, p256dh, auth, payload = args
    for _ in range(count):
        webpush.encrypt(payload, p256dh=p256dh, auth=auth)
    return count


def ceiling(payload: bytes, p256dh: str, auth: str, seconds: float = 5.0) -> float:
    """aes128gcm encryptions per second on all cores (one process per core)."""
    cores = os.cpu_count() or 1
    probe = time.perf_counter()
    _encrypt_many((200, p256dh, auth, payload))
    per_core = max(1, int(200 / (time.perf_counter() - probe) * seconds))
    with multiprocessing.get_context("spawn").Pool(cores) as pool:
        started = time.perf_counter()
        done = sum(pool.map(_encrypt_many, [(per_core, p256dh, auth, payload)] * cores))
        return done / (time.perf_counter() - started)


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
        seed(engine, push)
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
        sampling.set()
        rejected = push.stats()["rejected"]
        duplicates = push.stats()["requests"] - N
    finally:
        for p in processes:
            p.send_signal(signal.SIGTERM)
        for p in processes:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        push.stop()
        engine.dispose()
        migrate.drop_database(url)
        infra.delete_vhost(vhost)

    sample_job = {
        "type": "invitation",
        "poll_id": payload["poll_id"],
        "ref_id": payload["poll_id"],
        "url": f"/polls/{payload['poll_id']}",
        "lang": "nl",
        "title": "Nieuwe peiling: Veilig in de buurt",
        "body": "Uw mening over uw buurt telt. Invullen duurt ongeveer 7 minuten.",
    }
    _, p256dh, auth = webpush.generate_subscription_keys()
    top = ceiling(json.dumps(sample_job, ensure_ascii=False).encode(), p256dh, auth)
    rate = N / seconds
    print(f"  processes={PROCESSES} rejected={rejected} extra_requests={duplicates}")
    print(
        f"fanout: n={N} seconds={seconds:.2f} rate={rate:.0f} ceiling={top:.0f} "
        f"ratio={rate / top:.2f} notify_rss_mb={peak['rss']:.0f}"
    )


if __name__ == "__main__":
    main()
