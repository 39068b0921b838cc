"""Web Push: encryption, VAPID and the fake push service, each against its ceiling.

    python -m benchmarks.bench_webpush [--seconds 3] [--threads 2,4] [--payload 200]

1. ``encrypt()`` per second on one core (~200-octet payload), against its ceiling: the one ECDH
   that every message needs (it depends on the subscription's key, so nothing can skip it).
2. VAPID ``headers()`` per second: cached (the normal case) and signing every time.
3. ``verify_vapid()`` and ``decrypt()`` per second: what the push-service side costs.
4. The fake push service (its own process) under 2–4 keep-alive client threads
   (requests.Session), pre-encrypted bodies, against the same HTTP stack answering 201
   without any checks (the ceiling of http.server + requests on this machine); each with
   requests' default ``trust_env=True`` and with ``trust_env=False``.
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives.asymmetric import ec

from services.notify import webpush
from tests.fakes import webpush_receiver as receiver


def rate(fn: Callable[[], Any], seconds: float) -> float:
    """Calls per second of ``fn`` in this thread, over about ``seconds``."""
    n, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(50):
            fn()
        n += 50
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


def crypto_figures(seconds: float, payload_size: int) -> None:
    ua_key, p256dh, auth = webpush.generate_subscription_keys()
    payload = b"x" * payload_size
    ua_point = ec.EllipticCurvePublicKey.from_encoded_point(
        ec.SECP256R1(), webpush._b64decode(p256dh)
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    ecdh = rate(lambda: server_key.exchange(ec.ECDH(), ua_point), seconds)
    keygen_ecdh = rate(
        lambda: ec.generate_private_key(ec.SECP256R1()).exchange(ec.ECDH(), ua_point), seconds
    )
    enc = rate(lambda: webpush.encrypt(payload, p256dh=p256dh, auth=auth), seconds)
    print(f"encrypt() {payload_size} B, one core      {enc:8.0f} /s")
    print(f"  ceiling: ECDH alone                {ecdh:8.0f} /s")
    print(f"  ceiling: key generation + ECDH     {keygen_ecdh:8.0f} /s")

    vapid = webpush.Vapid(webpush.generate_vapid_key(), "mailto:bench@buurtpeil.example")
    endpoint = "https://push.example.net/push/abc"
    cached = rate(lambda: vapid.headers(endpoint), seconds)
    counter = iter(range(10**9))
    uncached = rate(lambda: vapid.headers(f"https://p{next(counter)}.example/x"), seconds)
    print(f"VAPID headers(), cached             {cached:8.0f} /s")
    print(f"VAPID headers(), signing each time  {uncached:8.0f} /s")

    header = vapid.headers(endpoint)["Authorization"]
    verify = rate(
        lambda: receiver.verify_vapid(header, expected_audience="https://push.example.net"),
        seconds,
    )
    print(f"verify_vapid()                      {verify:8.0f} /s")
    body = webpush.encrypt(payload, p256dh=p256dh, auth=auth)
    auth_bytes = webpush._b64decode(auth)
    dec = rate(lambda: receiver.decrypt(body, private_key=ua_key, auth=auth_bytes), seconds)
    print(f"decrypt()                           {dec:8.0f} /s")


# --- the fake push service under load --------------------------------------------------------


def _serve_fake(port_out: Any, stop: Any) -> None:
    from tests.fakes.push_service import FakePushService

    service = FakePushService().start()
    port_out.send(service.port)
    stop.wait()
    service.stop()


class _NullHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # the ceiling: read the body, answer 201
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(201)
        self.send_header("Location", "/message/x")
        self.send_header("Content-Length", "0")
        self.end_headers()


def _serve_null(port_out: Any, stop: Any) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NullHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port_out.send(server.server_address[1])
    stop.wait()
    server.shutdown()


def _cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (Linux /proc), to get the server's CPU cost per request."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _load_http_client(threads: int, seconds: float, bodies: list[tuple[str, bytes]]) -> float:
    """The same load with bare http.client keep-alive connections (a lighter client)."""
    vapid = webpush.Vapid(webpush.generate_vapid_key(), "mailto:bench@buurtpeil.example")
    counts = [0] * threads
    deadline = time.perf_counter() + seconds

    def client(i: int) -> None:
        mine = bodies[i::threads] or bodies
        parts = urlsplit(mine[0][0])
        connection = http.client.HTTPConnection(parts.hostname, parts.port)
        headers = {"TTL": "60", "Content-Encoding": "aes128gcm", **vapid.headers(mine[0][0])}
        n = 0
        while time.perf_counter() < deadline:
            endpoint, body = mine[n % len(mine)]
            connection.request("POST", urlsplit(endpoint).path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 201:
                raise SystemExit(f"push failed: HTTP {response.status}")
            n += 1
        counts[i] = n

    began = time.perf_counter()
    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(counts) / (time.perf_counter() - began)


Target = tuple[str, bytes, dict[str, str]]  # endpoint, a pre-encrypted body, its keys


def _load(
    threads: int,
    seconds: float,
    targets: list[Target],
    *,
    trust_env: bool,
    encrypt_each: bool = False,
) -> float:
    """Pushes per second from ``threads`` requests.Session threads. With ``encrypt_each`` every
    message is encrypted as it is sent (the sender's real work); otherwise bodies are reused."""
    vapid = webpush.Vapid(webpush.generate_vapid_key(), "mailto:bench@buurtpeil.example")
    headers_for = {
        endpoint: {"TTL": "60", "Content-Encoding": "aes128gcm", **vapid.headers(endpoint)}
        for endpoint, _, _ in targets
    }
    payload = b"x" * 200
    counts = [0] * threads
    failures: list[int] = []
    start_line = threading.Barrier(threads + 1)
    deadline = [0.0]

    def client(i: int) -> None:
        session = requests.Session()
        # trust_env=True (the default) re-reads proxy and netrc settings from the environment
        # on every request: ~0.7 ms of scanning os.environ each time on our machines.
        session.trust_env = trust_env
        mine = targets[i::threads] or targets
        session.post(mine[0][0], data=mine[0][1], headers=headers_for[mine[0][0]])  # warm up
        start_line.wait()
        n = 0
        while time.perf_counter() < deadline[0]:
            endpoint, body, keys = mine[n % len(mine)]
            if encrypt_each:
                body = webpush.encrypt(payload, **keys)
            status = session.post(endpoint, data=body, headers=headers_for[endpoint]).status_code
            if status != 201:
                failures.append(status)
            n += 1
        counts[i] = n

    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    deadline[0] = time.perf_counter() + seconds + 0.05
    start_line.wait()
    began = time.perf_counter()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - began
    if failures:
        raise SystemExit(f"{len(failures)} pushes failed, e.g. HTTP {failures[0]}")
    return sum(counts) / elapsed


def _runs(seconds: float, targets: list[Target], fake: bool) -> list[tuple[str, Any]]:
    runs: list[tuple[str, Any]] = [
        (
            "requests (trust_env=True)     ",
            partial(_load, seconds=seconds, targets=targets, trust_env=True),
        ),
        (
            "requests (trust_env=False)    ",
            partial(_load, seconds=seconds, targets=targets, trust_env=False),
        ),
        (
            "http.client                   ",
            partial(_load_http_client, seconds=seconds, bodies=[(e, b) for e, b, _ in targets]),
        ),
    ]
    if fake:
        runs.append(
            (
                "sender: encrypt + requests(F) ",
                partial(
                    _load, seconds=seconds, targets=targets, trust_env=False, encrypt_each=True
                ),
            )
        )
    return runs


def service_figures(seconds: float, thread_counts: list[int], payload_size: int) -> None:
    context = multiprocessing.get_context("spawn")
    for name, target in (("fake push service", _serve_fake), ("ceiling: null 201", _serve_null)):
        receive, send = context.Pipe(duplex=False)
        stop = context.Event()
        process = context.Process(target=target, args=(send, stop), daemon=True)
        process.start()
        port = receive.recv()
        origin = f"http://127.0.0.1:{port}"
        fake = target is _serve_fake
        try:
            targets: list[Target] = []
            for _ in range(32):
                if fake:
                    sub = requests.post(f"{origin}/subscribe", json={}).json()
                    endpoint, keys = sub["endpoint"], sub["keys"]
                else:
                    _, p256dh, auth = webpush.generate_subscription_keys()
                    endpoint, keys = f"{origin}/push/x", {"p256dh": p256dh, "auth": auth}
                body = webpush.encrypt(b"x" * payload_size, **keys)
                targets.append((endpoint, body, keys))
            for client, run in _runs(seconds, targets, fake):
                for threads in thread_counts:
                    cpu_before = _cpu_seconds(process.pid)
                    began = time.perf_counter()
                    figure = run(threads)
                    cpu_after = _cpu_seconds(process.pid)
                    served = figure * (time.perf_counter() - began)
                    cost = ""
                    if cpu_before is not None and cpu_after is not None and served:
                        per_request = (cpu_after - cpu_before) / served
                        cost = f"  server {per_request * 1e6:4.0f} µs CPU/req"
                    print(f"{name:18s} {client} {threads} thr {figure:6.0f} req/s{cost}")
        finally:
            stop.set()
            process.join(5)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_webpush")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", default="2,3,4")
    parser.add_argument("--payload", type=int, default=200)
    parser.add_argument("--skip-service", action="store_true")
    args = parser.parse_args()
    print(f"# {os.cpu_count()} CPUs; payload {args.payload} octets; {args.seconds:.0f} s each")
    crypto_figures(args.seconds, args.payload)
    if not args.skip_service:
        service_figures(args.seconds, [int(t) for t in args.threads.split(",")], args.payload)


if __name__ == "__main__":
    main()
