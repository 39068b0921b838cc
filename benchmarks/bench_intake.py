"""Response intake over HTTP, against the ceiling of a bare nameko @http handler.

    make bench-intake        (INTAKE_SECONDS of load, default 20; INTAKE_CLIENTS, default 32)

Figure: concurrent clients submit valid answers to one open poll for a fixed time, each request
as a different resident (a token like the panel issues) with its own Idempotency-Key. Then the
queue drains, and the run checks stored = accepted and counted = stored. Printed: accepted per
second, latency p50/p99, and the aggregation lag p99 (submitted at the gateway → counted, from
responses' histogram). Ceiling, same client, same machine: a nameko @http handler that parses
the JSON body and answers 202 with JSON, in one process, nothing else.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import sqlalchemy as sa
from nameko.standalone.rpc import ClusterRpcProxy

from services.common import migrate, tokens
from services.notify import webpush
from tests.support import infra
from tests.support.answers import minimal_answers
from tests.support.gateway import free_port
from tests.support.notify import wait_for_consumer

ROOT = Path(__file__).resolve().parents[1]
SECONDS = float(os.environ.get("INTAKE_SECONDS", "20"))
CLIENTS = int(os.environ.get("INTAKE_CLIENTS", "32"))
PG = os.environ.get("BENCH_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432")
GM = "GM0344"
ANSWERS = {"veilig_buurt": 4}


def load(
    url: str, bodies: list[tuple[dict[str, str], bytes]], seconds: float, clients: int
) -> tuple[int, list[float], int]:
    """Keep-alive clients in threads; returns (accepted, latencies in s, failures)."""
    parts = urlsplit(url)
    accepted, failures, latencies = [0], [0], []
    lock = threading.Lock()
    cursor = iter(range(len(bodies)))
    deadline = time.monotonic() + seconds

    def client() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        mine: list[float] = []
        ok = bad = 0
        while time.monotonic() < deadline:
            with lock:
                i = next(cursor, None)
            if i is None:
                break
            headers, body = bodies[i]
            started = time.perf_counter()
            try:
                conn.request("POST", parts.path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
                bad += 1
                continue
            mine.append(time.perf_counter() - started)
            if response.status == 202:
                ok += 1
            else:
                bad += 1
        with lock:
            accepted[0] += ok
            failures[0] += bad
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return accepted[0], latencies, failures[0]


CEILING_SERVICE = """
import json
from nameko.web.handlers import http
from werkzeug.wrappers import Response

class Ceiling:
    name = "ceiling"

    @http("POST", "/api/v1/polls/<poll_id>/responses")
    def submit(self, request, poll_id):
        body = json.loads(request.get_data())
        return Response(json.dumps({"receipt_id": "x", "status": "accepted",
                                    "poll_id": poll_id, "n": len(body)}),
                        status=202, mimetype="application/json")
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def lag_p99(metrics_url: str) -> float:
    """p99 of buurtpeil_aggregation_lag_seconds from its histogram buckets (upper bound)."""
    parts = urlsplit(metrics_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    buckets = []
    for line in text.splitlines():
        if line.startswith("buurtpeil_aggregation_lag_seconds_bucket{"):
            le = line.split('le="')[1].split('"')[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.split()[-1])))
    total = buckets[-1][1] if buckets else 0
    for le, count in buckets:
        if total and count >= 0.99 * total:
            return le
    return float("nan")


def main() -> None:
    vhost = f"bp_bench_intake_{os.getpid()}"
    amqp_uri = infra.create_vhost(vhost)
    work = Path(tempfile.mkdtemp(prefix="bench-intake-"))
    private_pem, public_pem = tokens.generate_keypair()
    (work / "jwt_private.pem").write_text(private_pem)
    (work / "jwt_public.pem").write_text(public_pem)
    (work / "vapid.pem").write_text(webpush.generate_vapid_key())
    urls = {
        s: f"{PG}/buurtpeil_bench_intake_{s}" for s in ("polls", "panel", "responses", "notify")
    }
    for service, url in urls.items():
        migrate.drop_database(url)
        migrate.upgrade(service, url, create=True)
    gateway_port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        "AMQP_URI": amqp_uri,
        "LOG_LEVEL": "WARNING",
        "POLLS_DATABASE_URL": urls["polls"],
        "PANEL_DATABASE_URL": urls["panel"],
        "RESPONSES_DATABASE_URL": urls["responses"],
        "NOTIFY_DATABASE_URL": urls["notify"],
        "POLLS_METRICS_PORT": "0",
        "PANEL_METRICS_PORT": "0",
        "RESPONSES_METRICS_PORT": str(metrics_port),
        "GATEWAY_ADDRESS": f"127.0.0.1:{gateway_port}",
        "JWT_PRIVATE_KEY_FILE": str(work / "jwt_private.pem"),
        "JWT_PUBLIC_KEY_FILE": str(work / "jwt_public.pem"),
        "VAPID_PRIVATE_KEY_FILE": str(work / "vapid.pem"),
        "RATE_TOKEN": "100000/min burst 100000",
    }
    commands = {
        "polls": "services/polls/config.yml services.polls.service:PollsService",
        "responses": "services/responses/config.yml services.responses.service:ResponsesService",
        "gateway": "gateway/config.yml gateway.service:GatewayService",
    }
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-m", "nameko", "run", "--config", *command.split()],
            cwd=ROOT,
            env=env,
            stdout=(work / f"{name}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        for name, command in commands.items()
    }
    try:
        wait_for_consumer(amqp_uri, "rpc-polls")
        wait_for_consumer(amqp_uri, "evt-polls-poll_published--responses.on_poll_published")
        with ClusterRpcProxy({"AMQP_URI": amqp_uri}) as rpc:
            poll = rpc.polls.create_poll(GM, {"template_id": "veiligheidsgevoel"})
            rpc.polls.publish_poll(GM, poll["id"])
        url = f"http://127.0.0.1:{gateway_port}/api/v1/polls/{poll['id']}/responses"
        key = tokens.load_private_key(private_pem)
        kid = tokens.key_id(key.public_key())
        answers = json.dumps({"answers": minimal_answers(poll["definition"])}).encode()
        needed = int(SECONDS * 3000)
        bodies = []
        for i in range(needed):
            token = tokens.issue_token(
                key,
                typ=tokens.RESIDENT_ACCESS,
                subject=str(uuid.uuid4()),
                issuer="buurtpeil",
                audience="buurtpeil-app",
                ttl_seconds=900,
                key_id=kid,
                claims={
                    "mun": GM,
                    "wijk": f"WK0344{i % 10 + 1:02d}",
                    "buurt": f"BU0344{i % 10 + 1:02d}11",
                    "lang": "nl",
                    "age_band": ("15_24", "25_44", "45_64", "65_plus")[i % 4],
                    "sex": ("man", "vrouw")[i % 2],
                    "self_selected": False,
                },
            )
            bodies.append(
                (
                    {
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "application/json",
                        "Idempotency-Key": str(uuid.uuid4()),
                    },
                    answers,
                )
            )
        wait_open(url, bodies.pop())
        accepted, latencies, failures = load(url, bodies, SECONDS, CLIENTS)
        accepted += 1  # the probe that found the poll open
        rate = accepted / SECONDS
        engine = sa.create_engine(urls["responses"])
        drained = time.monotonic()
        while True:
            with engine.connect() as conn:
                stored = conn.execute(sa.text("SELECT count(*) FROM responses")).scalar()
            if stored >= accepted or time.monotonic() - drained > 120:
                break
            time.sleep(0.2)
        with engine.connect() as conn:
            counted = conn.execute(
                sa.text(
                    "SELECT coalesce(sum(n), 0) FROM respondents WHERE question_id = '*' "
                    "AND area_code = :gm"
                ),
                {"gm": GM},
            ).scalar()
        engine.dispose()
        lag = lag_p99(f"http://127.0.0.1:{metrics_port}")
    finally:
        for p in processes.values():
            p.send_signal(signal.SIGTERM)
        for p in processes.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        for url_ in urls.values():
            migrate.drop_database(url_)
        infra.delete_vhost(vhost)

    ceiling = measure_ceiling(work, len(bodies))
    print(
        f"  accepted={accepted} failures={failures} stored={stored} counted={counted} "
        f"clients={CLIENTS}"
    )
    assert stored == accepted, f"stored {stored} != accepted {accepted}"
    assert counted == stored, f"counted {counted} != stored {stored}"
    print(
        f"intake: rate={rate:.0f} p50_ms={percentile(latencies, 0.5) * 1000:.1f} "
        f"p99_ms={percentile(latencies, 0.99) * 1000:.1f} ceiling={ceiling:.0f} "
        f"ratio={rate / ceiling:.2f} lag_p99_ms={lag * 1000:.0f}"
    )


def wait_open(url: str, probe: tuple[dict[str, str], bytes], timeout: float = 60) -> None:
    """Until the gateway has the poll in its cache (one real submission is spent on this)."""
    parts = urlsplit(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
            conn.request("POST", parts.path, body=probe[1], headers=probe[0])
            if conn.getresponse().status == 202:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit("the gateway never accepted a submission")


def measure_ceiling(work: Path, n: int) -> float:
    (work / "ceiling.py").write_text(CEILING_SERVICE)
    port = free_port()
    (work / "ceiling.yml").write_text(
        f"WEB_SERVER_ADDRESS: 127.0.0.1:{port}\n"
        "AMQP_URI: amqp://guest:guest@127.0.0.1:5672/\n"
        "max_workers: 50\n"
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nameko",
            "run",
            "--config",
            str(work / "ceiling.yml"),
            "ceiling:Ceiling",
        ],
        cwd=work,
        stdout=(work / "ceiling.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}/api/v1/polls/x/responses"
        body = ({"Content-Type": "application/json"}, json.dumps({"answers": ANSWERS}).encode())
        wait_open(url, body)
        accepted, _, _ = load(url, [body] * max(n, int(SECONDS * 5000)), SECONDS, CLIENTS)
        return accepted / SECONDS
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:  # keep-alive connections hold nameko's shutdown
            process.kill()


if __name__ == "__main__":
    main()
