"""Response intake over HTTP, against the ceiling of a bare nameko @http handler.

    make bench-intake        (INTAKE_SECONDS of load, default 20; INTAKE_CLIENTS, default 32)

    INTAKE_CLIENT_PROCESSES  load processes the clients are spread over (default 2)
    INTAKE_RATE              open loop: requests per second in all (default: closed loop)
    INTAKE_PROFILE           a folder: py-spy profiles of gateway, responses, notify (load)
    INTAKE_IDLE_SECONDS      the stack's idle CPU measured first, for the net figures (5)
    INTAKE_ANSWERS           minimal (default: the required questions, simplest answers) or
                             full (every shown question of the template answered, optional
                             ones and the location included, varied over 64 residents; panel
                             then runs too, with Utrecht's boundaries for the location check)

Figure: concurrent clients submit valid answers to one open poll for a fixed time, each request
as a different resident (a token like the panel issues) with its own Idempotency-Key. Then the
queue drains, and the run checks stored = accepted and counted = stored. Printed: accepted per
second, latency p50/p99, and the aggregation lag p99 (submitted at the gateway → counted, from
responses' histogram). Ceiling, same client, same machine: a nameko @http handler that parses
the JSON body and answers 202 with JSON, in one process, nothing else.

Also printed, because the machine is small and shared: CPU per process during the load (the
stack, the load processes, RabbitMQ, PostgreSQL, everything else on the machine) and per
accepted submission, and the intake queue's backlog — so a run says where the cores went.
``cpu_ratio``: the CPU of the whole path per accepted submission — the stack's processes,
RabbitMQ, the PostgreSQL backends of the run's databases, Redis (idempotency records) — over
the bare handler's CPU per request. RabbitMQ and Redis are shared with anything else running
on the machine, so on a busy machine the ratio is an upper bound.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from nameko.standalone.rpc import ClusterRpcProxy

from services.common import migrate, tokens
from services.notify import webpush
from tests.support import infra
from tests.support.answers import full_answers, minimal_answers
from tests.support.gateway import free_port, issue_resident_token
from tests.support.notify import wait_for_consumer
from tests.support.panel import seed_utrecht

SECONDS = float(os.environ.get("INTAKE_SECONDS", "20"))
CLIENTS = int(os.environ.get("INTAKE_CLIENTS", "32"))
CLIENT_PROCESSES = int(os.environ.get("INTAKE_CLIENT_PROCESSES", "2"))
RATE = float(os.environ.get("INTAKE_RATE", "0"))  # > 0: open loop at this rate (per second)
PROFILE = os.environ.get("INTAKE_PROFILE", "")  # a folder: py-spy profiles of the load
FULL = os.environ.get("INTAKE_ANSWERS", "minimal") == "full"
IDLE_SECONDS = float(os.environ.get("INTAKE_IDLE_SECONDS", "5"))
PG = os.environ.get("BENCH_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432")
GM = "GM0344"


def _raw_request(path: str, host: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _client_process(
    url: str,
    requests: list[bytes],
    threads: int,
    start_at: float,
    seconds: float,
    rate: float,
    out: Any,
) -> None:
    """One load process: ``threads`` keep-alive clients on raw sockets (no http.client, no
    header parsing beyond Content-Length), so the load generator costs little CPU."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = usage.ru_utime + usage.ru_stime
    parts = urlsplit(url)
    lock = threading.Lock()
    cursor = iter(range(len(requests)))
    results: list[tuple[int, int, list[float]]] = []

    def connect() -> socket.socket:
        sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def exchange(sock: socket.socket, request: bytes) -> int:
        sock.sendall(request)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise OSError("closed")
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise OSError("closed")
            rest += chunk
        return int(head[9:12])

    def client() -> None:
        mine: list[float] = []
        ok = bad = 0
        sock = connect()
        time.sleep(max(0.0, start_at - time.time()))
        deadline = time.monotonic() + seconds
        interval = threads / rate if rate else 0.0  # this client's share of an open-loop rate
        due = time.perf_counter() + random.random() * interval
        while time.monotonic() < deadline:
            with lock:
                i = next(cursor, None)
            if i is None:
                break
            if interval:
                # Latency counts from when the request was due, not from when it went out:
                # a slow answer that delays the next request is not hidden (coordinated
                # omission).
                time.sleep(max(0.0, due - time.perf_counter()))
                started, due = due, due + interval
            else:
                started = time.perf_counter()
            try:
                status = exchange(sock, requests[i])
            except OSError:
                sock.close()
                sock = connect()
                bad += 1
                continue
            mine.append(time.perf_counter() - started)
            if status == 202:
                ok += 1
            else:
                bad += 1
        sock.close()
        with lock:
            results.append((ok, bad, mine))

    pool = [threading.Thread(target=client) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out.send(
        (
            sum(r[0] for r in results),
            sum(r[1] for r in results),
            [x for r in results for x in r[2]],
            usage.ru_utime + usage.ru_stime - cpu_before,
        )
    )
    out.close()


def load(
    url: str,
    bodies: list[tuple[dict[str, str], bytes]],
    seconds: float,
    clients: int,
    processes: int = 0,
    during: Any = None,
    rate: float = 0.0,
) -> tuple[int, list[float], int]:
    """``clients`` keep-alive clients spread over ``processes`` load processes (forked, so
    the clients' CPU is not the measured process's and no GIL is shared with it); returns
    (accepted, latencies in s, failures). ``rate`` > 0: open loop, that many requests per
    second in all (paced); else each client sends its next request when its answer came.
    ``during()`` is called as the load starts and may return an object whose
    ``finish(extra)`` is called when it ends (the CPU accounting)."""
    processes = processes or CLIENT_PROCESSES
    parts = urlsplit(url)
    host = f"{parts.hostname}:{parts.port}"
    requests = [_raw_request(parts.path, host, h, b) for h, b in bodies]
    context = multiprocessing.get_context("fork")
    start_at = time.time() + 1.0
    pipes, children = [], []
    for p in range(processes):
        share = clients // processes + (1 if p < clients % processes else 0)
        receive, send = context.Pipe(duplex=False)
        child = context.Process(
            target=_client_process,
            args=(url, requests[p::processes], share, start_at, seconds, rate / processes, send),
            daemon=True,
        )
        child.start()
        send.close()
        pipes.append(receive)
        children.append(child)
    time.sleep(max(0.0, start_at - time.time()))
    observed = during() if during is not None else None
    accepted, failures, latencies, client_cpu = 0, 0, [], 0.0
    for receive in pipes:
        ok, bad, mine, cpu = receive.recv()
        accepted, failures, client_cpu = accepted + ok, failures + bad, client_cpu + cpu
        latencies.extend(mine)
    if observed is not None:
        observed.finish({"load": client_cpu})
    for child in children:
        child.join(10)
    return accepted, latencies, failures


class CpuWatch:
    """CPU used per process during the load, from /proc: the measured stack, the load
    processes, RabbitMQ, PostgreSQL (every database: other users of this machine included)
    and the whole machine, so that a run on a busy machine says so."""

    def __init__(self, groups: dict[str, list[int]], seconds: float, databases: str | None = None):
        self.groups = groups
        self.databases = databases  # a LIKE pattern: their backends are "postgres_ours"
        self.ours = self._backends()
        self.seconds = seconds
        self.hz = os.sysconf("SC_CLK_TCK")
        self.before = self._sample()
        self.started = time.monotonic()
        self.result: dict[str, float] = {}

    def _pids(self) -> dict[str, list[int]]:
        pids = {k: list(v) for k, v in self.groups.items()}
        pids["rabbitmq"], pids["postgres"], pids["redis"] = [], [], []
        if self.databases:
            pids["postgres_ours"] = self.ours
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if b"beam.smp" in cmd and b"/var/lib/rabbitmq" in cmd:  # the shared node only
                pids["rabbitmq"].append(int(entry))
            elif cmd.startswith(b"postgres"):
                pids["postgres"].append(int(entry))
            elif cmd.startswith(b"redis-server") and b":6379" in cmd:  # the shared server
                pids["redis"].append(int(entry))
        return pids

    def _backends(self) -> list[int]:
        """The PostgreSQL backends connected to the run's databases (the services' pools are
        open before the load starts and stay open)."""
        if not self.databases:
            return []
        engine = sa.create_engine(f"{PG}/postgres")
        try:
            with engine.connect() as conn:
                return list(
                    conn.execute(
                        sa.text("SELECT pid FROM pg_stat_activity WHERE datname LIKE :p"),
                        {"p": self.databases},
                    ).scalars()
                )
        finally:
            engine.dispose()

    def _cpu(self, pid: int) -> float | None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / self.hz

    def _machine(self) -> tuple[float, float]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        idle = values[3] + values[4]
        return (sum(values[:8]) - idle) / self.hz, sum(values[:8]) / self.hz

    def _sample(self) -> dict[str, Any]:
        return {
            "pids": {k: {p: self._cpu(p) for p in v} for k, v in self._pids().items()},
            "machine": self._machine(),
        }

    def finish(self, extra: dict[str, float] | None = None) -> None:
        """``extra``: CPU seconds reported by processes that have exited (the load)."""
        after = self._sample()
        elapsed = time.monotonic() - self.started
        for group, pids in after["pids"].items():
            before = self.before["pids"].get(group, {})
            used = sum(
                cpu - (before.get(pid) or 0.0) for pid, cpu in pids.items() if cpu is not None
            )
            self.result[group] = used / elapsed
        for group, used in (extra or {}).items():
            self.result[group] = used / elapsed
        busy = after["machine"][0] - self.before["machine"][0]
        self.result["machine"] = busy / elapsed
        self.result["others"] = self.result["machine"] - sum(
            v for k, v in self.result.items() if k not in ("machine", "others", "postgres_ours")
        )

    def line(self) -> str:
        return " ".join(f"{k}={v * 100:.0f}%" for k, v in self.result.items())


class BacklogWatch(threading.Thread):
    """The intake queue's ready messages, sampled twice a second (passive declare)."""

    def __init__(self, amqp_uri: str):
        super().__init__(daemon=True)
        self.amqp_uri = amqp_uri
        self.samples: list[int] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        from kombu import Connection

        with Connection(self.amqp_uri) as conn:
            channel = conn.channel()
            while not self.stopping.wait(0.5):
                try:
                    ok = channel.queue_declare(queue="responses.intake", passive=True)
                    self.samples.append(ok.message_count)
                except Exception:  # noqa: BLE001 - a diagnostic only
                    return


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
        "LINK_PUBLIC_KEY_FILE": "",  # no personal links in this benchmark
        "RATE_TOKEN": "100000/min burst 100000",
        "NOTIFY_METRICS_PORT": "0",
        "SMTP_URL": "smtp://127.0.0.1:9",
    }
    # notify answers the gateway's invitation_areas call, one per submission of a resident
    # it has not seen (without it each submission waits for a failing RPC that reconnects).
    # panel answers the gateway's resync of revoked sessions (and with full answers the
    # buurt boundaries for the location check).
    names = ("polls", "panel", "responses", "notify", "gateway")
    processes = {name: infra.nameko_run(name, env, work / f"{name}.log") for name in names}
    try:
        wait_for_consumer(amqp_uri, "rpc-polls")
        wait_for_consumer(amqp_uri, "rpc-notify")
        wait_for_consumer(amqp_uri, "evt-polls-poll_published--responses.on_poll_published")
        with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=300) as rpc:
            wait_for_consumer(amqp_uri, "rpc-panel")
            if FULL:  # the location answer is checked against the municipality's buurten
                seed_utrecht(rpc.panel)
            poll = rpc.polls.create_poll(GM, {"template_id": "veiligheidsgevoel"})
            rpc.polls.publish_poll(GM, poll["id"])
        url = f"http://127.0.0.1:{gateway_port}/api/v1/polls/{poll['id']}/responses"
        key = tokens.load_private_key(private_pem)
        kid = tokens.key_id(key.public_key())
        if FULL:
            variants = [
                json.dumps({"answers": full_answers(poll["definition"], v)}).encode()
                for v in range(64)
            ]
        else:
            variants = [json.dumps({"answers": minimal_answers(poll["definition"])}).encode()]
        needed = int(SECONDS * 3000)
        bodies = []
        for i in range(needed):
            token = issue_resident_token(
                key,
                municipality=GM,
                buurt=f"BU0344{i % 10 + 1:02d}11",
                age_band=("15_24", "25_44", "45_64", "65_plus")[i % 4],
                sex=("man", "vrouw")[i % 2],
                key_id=kid,
            )
            bodies.append(
                (
                    {
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "application/json",
                        "Idempotency-Key": str(uuid.uuid4()),
                    },
                    variants[i % len(variants)],
                )
            )
        wait_open(url, bodies.pop())
        backlog = BacklogWatch(amqp_uri)
        backlog.start()
        stack = {name: [p.pid] for name, p in processes.items()}
        # The same processes idle for IDLE_SECONDS first: what they use without load (timers,
        # pollers, heartbeats; on RabbitMQ and Redis also what others use) is subtracted for
        # the net figures, which matter when a busy machine leaves the stack a low rate.
        idle = CpuWatch(stack, IDLE_SECONDS, databases="buurtpeil_bench_intake_%")
        time.sleep(IDLE_SECONDS)
        idle.finish()
        watch: list[CpuWatch] = []

        def during() -> CpuWatch:
            watch.append(CpuWatch(stack, SECONDS, databases="buurtpeil_bench_intake_%"))
            if PROFILE:  # py-spy on the stack while the load runs (it costs some CPU itself)
                Path(PROFILE).mkdir(parents=True, exist_ok=True)
                for name in ("gateway", "responses", "notify"):
                    subprocess.Popen(
                        [
                            str(Path(sys.executable).parent / "py-spy"),
                            "record",
                            "--pid",
                            str(processes[name].pid),
                            "--duration",
                            str(max(1, int(SECONDS) - 2)),
                            "--rate",
                            "200",
                            "--nonblocking",
                            "--format",
                            "raw",
                            "-o",
                            str(Path(PROFILE) / f"{name}.txt"),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
            return watch[0]

        accepted, latencies, failures = load(
            url, bodies, SECONDS, CLIENTS, during=during, rate=RATE
        )
        backlog.stopping.set()
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

    ceiling, ceiling_cpu = measure_ceiling(work, len(bodies), variants[0])
    print(
        f"  accepted={accepted} failures={failures} stored={stored} counted={counted} "
        f"clients={CLIENTS} in {CLIENT_PROCESSES} load processes "
        f"({f'open loop at {RATE:.0f}/s' if RATE else 'closed loop'})"
    )
    cpu = watch[0].result
    path = [*names, "rabbitmq", "postgres_ours", "redis"]
    path_us = sum(cpu[k] for k in path) / rate * 1e6
    net = {k: max(0.0, cpu[k] - idle.result[k]) for k in path}
    net_us = sum(net.values()) / rate * 1e6
    bare_us = ceiling_cpu.result["ceiling"] / ceiling * 1e6
    print(f"  cpu during the load (100% = one core of {os.cpu_count()}): {watch[0].line()}")
    print(
        "  cpu per accepted submission: "
        + " ".join(f"{k}={cpu[k] / rate * 1e6:.0f} us" for k in path)
        + f" — path {path_us:.0f} us; ceiling handler={bare_us:.0f} us per request "
        f"(its run: {ceiling_cpu.line()})"
    )
    print(
        f"  net of the idle {IDLE_SECONDS:.0f} s before (idle: {idle.line()}): "
        + " ".join(f"{k}={net[k] / rate * 1e6:.0f} us" for k in path)
        + f" — path {net_us:.0f} us"
    )
    print(
        f"  intake queue ready messages during the load: max={max(backlog.samples, default=0)} "
        f"last={backlog.samples[-1] if backlog.samples else 0}"
    )
    assert stored == accepted, f"stored {stored} != accepted {accepted}"
    assert counted == stored, f"counted {counted} != stored {stored}"
    print(
        f"intake: rate={rate:.0f} p50_ms={percentile(latencies, 0.5) * 1000:.1f} "
        f"p99_ms={percentile(latencies, 0.99) * 1000:.1f} ceiling={ceiling:.0f} "
        f"ratio={rate / ceiling:.2f} cpu_ratio={path_us / bare_us:.1f} "
        f"cpu_ratio_net={net_us / bare_us:.1f} "
        f"lag_p99_ms={lag * 1000:.0f} answers={'full' if FULL else 'minimal'}"
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


def measure_ceiling(work: Path, n: int, answers: bytes) -> tuple[float, CpuWatch]:
    """The bare handler's rate and CPU, with the same body as the stack was sent."""
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
        body = ({"Content-Type": "application/json"}, answers)
        wait_open(url, body)
        watch: list[CpuWatch] = []

        def during() -> CpuWatch:
            watch.append(CpuWatch({"ceiling": [process.pid]}, SECONDS))
            return watch[0]

        accepted, _, _ = load(
            url, [body] * max(n, int(SECONDS * 5000)), SECONDS, CLIENTS, during=during
        )
        return accepted / SECONDS, watch[0]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:  # keep-alive connections hold nameko's shutdown
            process.kill()


if __name__ == "__main__":
    main()
