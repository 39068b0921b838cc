"""A fake Web Push service that speaks the real protocol (RFC 8030 §5, RFC 8291, RFC 8292),
for tests, benchmarks and ``make run``. It also plays the browsers: it holds each
subscription's private key and auth secret and decrypts what it accepts.

    push = FakePushService().start()
    private_key, p256dh, auth = webpush.generate_subscription_keys()
    endpoint = push.register(private_key, base64url-decoded auth)
    ... the sender POSTs to endpoint ...
    push.wait_for(1, timeout=5); push.deliveries[0].payload   → the plaintext
    push.fail(endpoint, 410)                                   → answers 410 from now on
    push.hold(endpoint); push.wait_held(1); push.release()     → a request kept in flight
    push.misbehave(endpoint, "drip" | "bloat")                  → a hostile host's replies
    python -m tests.fakes.push_service --port 8089             (standalone; a count per second)

``POST /push/<id>`` (a push resource) checks, in this order, and answers:

- a body over 4096 octets → 413 (RFC 8030 §7.2); no Content-Length (or chunks) → 411;
- unknown id → 404; an id that was ``unregister``-ed → 410 Gone (RFC 8030 §7.3);
- a failure injected with ``fail()`` → that status (with Retry-After if given);
- TTL missing or not 1*DIGIT → 400 (RFC 8030 §5.2); Urgency not one of very-low, low,
  normal, high → 400 (§5.3); Topic not 1–32 characters of the base64url alphabet → 400 (§5.4);
  Content-Encoding other than exactly "aes128gcm" → 400 (RFC 8291 §4);
- no Authorization or another scheme than vapid → 401; a vapid credential that does not
  verify against this service's origin (signature, aud, exp, sub) → 403; for a subscription
  restricted to an applicationServerKey, a credential with another key → 403 (RFC 8292 §4.2);
- the VAPID key equal to the message's ECDH keyid → 400 (RFC 8292 §3.2);
- a body that does not decrypt with the subscription's keys → 400;
- a POST without a body (a push message without payload) needs no Content-Encoding;
- otherwise the delivery is recorded and the answer is 201 Created with a Location (§5).

Verified VAPID credentials are cached by their exact header value, and only their expiry is
checked again on reuse (RFC 8292 §5 invites push services to do so). Test-only helpers are
also on HTTP for other processes (``make run``): ``POST /subscribe`` makes a subscription and
returns it as a browser's PushSubscription.toJSON() would; ``GET /deliveries`` and
``GET /stats`` report what arrived.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import re
import secrets
import socket
import socketserver
import threading
import time
from collections import deque
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives.asymmetric import ec

from services.notify import webpush
from tests.fakes import webpush_receiver as receiver

URGENCIES = ("very-low", "low", "normal", "high")
MAX_BODY = webpush.MAX_BODY  # RFC 8030 §7.2: at least 4096 octets must be accepted
_TTL = re.compile(r"[0-9]{1,10}")
_PUSH_PATH = re.compile(r"/push/([A-Za-z0-9_-]{1,64})")
_VAPID_CACHE_SIZE = 4096
_MAX_LINE = 8192
_MAX_HEADERS = 100
_PHRASES = {s.value: s.phrase for s in HTTPStatus}
_SERVER_HEADER = "Server: buurtpeil-fake-push/1"


@dataclass(frozen=True)
class Delivery:
    subscription_id: str
    payload: bytes
    topic: str | None
    urgency: str
    ttl: int
    received_at: float
    message_id: str = ""
    vapid_key: str = ""


@dataclass
class _Subscription:
    id: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    application_server_key: str | None = None
    gone: bool = False


@dataclass
class _Failure:
    status: int
    remaining: int | None  # None: always
    retry_after: int | None


class FakePushService:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        echo: bool = False,
        origin: str | None = None,
    ) -> None:
        """Listen on ``host:port`` (0: any free port). ``origin`` is the origin senders reach
        it by, if not http://host:port (e.g. a container name): VAPID ``aud`` must match it."""
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._subscriptions: dict[str, _Subscription] = {}
        self._failures: dict[str, _Failure] = {}
        self._holds: dict[str, threading.Event] = {}  # subscription → released
        self._misbehaving: dict[str, str] = {}  # subscription → "drip" | "bloat"
        self._stopped = threading.Event()
        self._held = 0  # requests waiting in a hold now
        self._deliveries: list[Delivery] = []
        self._vapid_ok: dict[str, tuple[str, float]] = {}  # header value → (k, exp)
        self.requests = 0  # every POST to a push resource, whatever the answer
        self.rejected: dict[int, int] = {}  # status → count of non-201 answers
        self.echo = echo
        self._server = _Server((host, port), self)
        self.host, self.port = self._server.server_address[:2]
        self._origin = origin.rstrip("/") if origin else f"http://{self.host}:{self.port}"
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        """What the ``aud`` of a VAPID token for this service must be."""
        return self._origin

    @property
    def url(self) -> str:
        return self.origin

    @property
    def connections(self) -> int:
        """TCP connections accepted so far: with keep-alive, one per sending thread."""
        return self._server.accepted

    def start(self) -> FakePushService:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self.release()
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()

    def __enter__(self) -> FakePushService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- subscriptions ------------------------------------------------------------------------

    def register(
        self,
        private_key: ec.EllipticCurvePrivateKey,
        auth: bytes,
        *,
        application_server_key: str | None = None,
    ) -> str:
        """A new push resource for a subscription with these keys; returns its endpoint URL.
        With ``application_server_key`` the subscription is restricted to that VAPID key."""
        if len(auth) != webpush.AUTH_SECRET_LENGTH:
            raise ValueError("auth must be 16 octets")
        sub = _Subscription(
            secrets.token_urlsafe(16), private_key, bytes(auth), application_server_key
        )
        with self._lock:
            self._subscriptions[sub.id] = sub
        return self.endpoint(sub.id)

    def subscribe(self, application_server_key: str | None = None) -> dict[str, Any]:
        """Be a browser: new keys, a new endpoint; the PushSubscription.toJSON() shape."""
        private_key, p256dh, auth = webpush.generate_subscription_keys()
        endpoint = self.register(
            private_key, _b64decode(auth), application_server_key=application_server_key
        )
        return {
            "endpoint": endpoint,
            "expirationTime": None,
            "keys": {"p256dh": p256dh, "auth": auth},
        }

    def unregister(self, endpoint_or_id: str) -> None:
        """The browser dropped the subscription: its endpoint answers 410 Gone from now on."""
        with self._lock:
            self._subscriptions[self.subscription_id(endpoint_or_id)].gone = True

    def endpoint(self, subscription_id: str) -> str:
        return f"{self.origin}/push/{subscription_id}"

    @staticmethod
    def subscription_id(endpoint_or_id: str) -> str:
        return endpoint_or_id.rstrip("/").rsplit("/", 1)[-1]

    def fail(
        self,
        endpoint_or_id: str,
        status: int,
        times: int | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Answer ``status`` (e.g. 404, 410, 429, 500) to pushes for this subscription, the next
        ``times`` times or (None) always, with ``Retry-After: retry_after`` if given."""
        if not 400 <= status <= 599:
            raise ValueError("status must be a 4xx or 5xx code")
        with self._lock:
            self._failures[self.subscription_id(endpoint_or_id)] = _Failure(
                status, times, retry_after
            )

    def heal(self, endpoint_or_id: str) -> None:
        """Stop the failure injected for this subscription."""
        with self._lock:
            self._failures.pop(self.subscription_id(endpoint_or_id), None)

    def hold(self, endpoint_or_id: str) -> None:
        """Keep pushes for this subscription waiting (in flight, for the sender) until
        ``release``; then they are answered as usual."""
        with self._lock:
            self._holds[self.subscription_id(endpoint_or_id)] = threading.Event()

    def misbehave(self, endpoint_or_id: str, how: str) -> None:
        """Answer pushes for this subscription as a hostile host would: ``drip`` — 201 with a
        body announced as 1 MB, trickled one octet every 50 ms (for about 14 hours); ``bloat``
        — 201 with a 4 MB body at once."""
        if how not in ("drip", "bloat"):
            raise ValueError("how must be drip or bloat")
        with self._lock:
            self._misbehaving[self.subscription_id(endpoint_or_id)] = how

    def wait_held(self, n: int, timeout: float = 10.0) -> bool:
        """Block until ``n`` requests are being held; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while self._held < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._arrived.wait(left)
            return True

    def release(self, endpoint_or_id: str | None = None) -> None:
        """Let held pushes (of one subscription, or all) go on, and hold no more."""
        with self._lock:
            sids = [self.subscription_id(endpoint_or_id)] if endpoint_or_id else list(self._holds)
            for sid in sids:
                event = self._holds.pop(sid, None)
                if event is not None:
                    event.set()

    def _wait_if_held(self, sid: str) -> None:
        with self._arrived:
            event = self._holds.get(sid)
            if event is None:
                return
            self._held += 1
            self._arrived.notify_all()
        try:
            event.wait()
        finally:
            with self._lock:
                self._held -= 1

    # --- what arrived -------------------------------------------------------------------------

    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    @property
    def decrypted_count(self) -> int:
        with self._lock:
            return len(self._deliveries)

    def deliveries_for(self, endpoint_or_id: str) -> list[Delivery]:
        sid = self.subscription_id(endpoint_or_id)
        with self._lock:
            return [d for d in self._deliveries if d.subscription_id == sid]

    def latest_by_topic(self, endpoint_or_id: str) -> list[Delivery]:
        """What the phone would get if it had been offline: per Topic only the last message
        (RFC 8030 §5.4: a new message with a Topic replaces an undelivered one), every message
        without a Topic, in order of arrival."""
        kept: dict[Any, Delivery] = {}
        for i, d in enumerate(self.deliveries_for(endpoint_or_id)):
            key = ("topic", d.topic) if d.topic else ("message", i)
            kept.pop(key, None)  # re-insert so the order is that of the latest arrival
            kept[key] = d
        return list(kept.values())

    def wait_for(self, n: int, timeout: float = 5.0) -> bool:
        """Block until at least ``n`` deliveries were recorded; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self._deliveries) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._arrived.wait(left)
            return True

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "delivered": len(self._deliveries),
                "rejected": {str(k): v for k, v in self.rejected.items()},
                "subscriptions": len(self._subscriptions),
            }

    def clear(self) -> None:
        with self._lock:
            self._deliveries.clear()
            self.rejected.clear()
            self.requests = 0

    # --- the protocol -------------------------------------------------------------------------

    def _push(
        self, sid: str, headers: Any, body: bytes
    ) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        """(status, response headers, JSON body or None) for a POST to /push/<sid>."""
        self._wait_if_held(sid)
        with self._lock:
            self.requests += 1
            sub = self._subscriptions.get(sid)
            if sub is None:
                return 404, {}, {"reason": "no such subscription"}
            if sub.gone:
                return 410, {}, {"reason": "subscription expired"}
            failure = self._failures.get(sid)
            if failure is not None:
                if failure.remaining is not None:
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        del self._failures[sid]
                extra = {}
                if failure.retry_after is not None:
                    extra["Retry-After"] = str(failure.retry_after)
                return failure.status, extra, {"reason": "injected failure"}

        ttl = headers.get("TTL")
        if ttl is None or not _TTL.fullmatch(ttl.strip()):
            return 400, {}, {"reason": "TTL header missing or not a number of seconds"}
        urgency = headers.get("Urgency", "normal").strip()
        if urgency not in URGENCIES or len(headers.get_all("Urgency") or []) > 1:
            return 400, {}, {"reason": "Urgency must be one of " + ", ".join(URGENCIES)}
        topic = headers.get("Topic")
        if topic is not None and not webpush.TOPIC_PATTERN.fullmatch(topic.strip()):
            return 400, {}, {"reason": "Topic must be 1-32 characters of base64url"}
        encoding = (headers.get("Content-Encoding") or "").strip()
        if encoding != "aes128gcm" and (body or encoding):
            # RFC 8291 §4: exactly one value, "aes128gcm". Only a push without a payload (no
            # body) goes without it.
            return 400, {}, {"reason": "Content-Encoding must be aes128gcm"}

        authorization = headers.get("Authorization")
        try:
            vapid_key = self._verify_vapid(authorization)
        except receiver.WebPushError as e:
            status = 401 if e.reason == receiver.MISSING_AUTHORIZATION else 403
            extra = {"WWW-Authenticate": "vapid"} if status == 401 else {}
            return status, extra, {"reason": f"vapid: {e.reason}"}
        if sub.application_server_key and vapid_key != sub.application_server_key:
            return 403, {}, {"reason": "vapid: key differs from the subscription's"}
        if body[21:86] == _b64decode(vapid_key):
            return 400, {}, {"reason": "the VAPID key is the message's ECDH key"}

        try:
            payload = (
                receiver.decrypt(body, private_key=sub.private_key, auth=sub.auth) if body else b""
            )
        except receiver.WebPushError as e:
            return 400, {}, {"reason": f"decryption: {e.reason}"}

        message_id = secrets.token_urlsafe(12)
        delivery = Delivery(
            sid,
            payload,
            topic.strip() if topic else None,
            urgency,
            int(ttl),
            time.time(),
            message_id,
            vapid_key,
        )
        with self._arrived:
            self._deliveries.append(delivery)
            self._arrived.notify_all()
        if self.echo:
            print(f"[push] {sid} {len(payload)} octets topic={topic}", flush=True)
        return 201, {"Location": f"{self.origin}/message/{message_id}", "TTL": str(int(ttl))}, None

    def _verify_vapid(self, authorization: str | None) -> str:
        now = time.time()
        if authorization:
            cached = self._vapid_ok.get(authorization)
            if cached is not None and now < cached[1]:
                return cached[0]
        key = receiver.verify_vapid(authorization, expected_audience=self.origin, now=now)
        exp = receiver.vapid_expiry(authorization or "")
        if exp is not None:
            if len(self._vapid_ok) >= _VAPID_CACHE_SIZE:
                self._vapid_ok.clear()
            self._vapid_ok[authorization or ""] = (key, exp)
        return key

    def _count(self, status: int) -> None:
        if status != 201:
            with self._lock:
                self.rejected[status] = self.rejected.get(status, 0) + 1

    def _report(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        wanted = query.get("subscription", [None])[0]
        out = []
        for d in self.deliveries:
            if wanted and d.subscription_id != self.subscription_id(wanted):
                continue
            try:
                payload: Any = d.payload.decode("utf-8")
            except UnicodeDecodeError:
                payload = {"base64": base64.b64encode(d.payload).decode("ascii")}
            out.append(
                {
                    "subscription": d.subscription_id,
                    "payload": payload,
                    "topic": d.topic,
                    "urgency": d.urgency,
                    "ttl": d.ttl,
                    "received_at": d.received_at,
                }
            )
        return out


class _Headers:
    """Request header fields, names case-insensitive; repeated fields kept apart."""

    __slots__ = ("_fields",)

    def __init__(self) -> None:
        self._fields: dict[str, list[str]] = {}

    def add(self, name: str, value: str) -> None:
        self._fields.setdefault(name.lower(), []).append(value)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The field's value; repeated fields combined with ", " as HTTP allows for lists."""
        values = self._fields.get(name.lower())
        return default if values is None else ", ".join(values)

    def get_all(self, name: str) -> list[str]:
        return self._fields.get(name.lower(), [])


class _Handler(socketserver.StreamRequestHandler):
    """A small HTTP/1.1 server loop: persistent connections, Content-Length bodies, one
    ``sendall`` per response. (http.server's BaseHTTPRequestHandler parses header fields with
    the email package and cost ~250 µs of CPU per request here, more than the cryptography.)"""

    server: _Server
    disable_nagle_algorithm = True
    timeout = 60  # an idle keep-alive connection is closed after this

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def handle(self) -> None:
        try:
            while self._one_request():
                pass
        except (OSError, ValueError):
            pass  # the peer went away, or a timeout: drop the connection

    def _one_request(self) -> bool:
        """Serve one request; False when the connection is to be closed."""
        line = self.rfile.readline(_MAX_LINE + 1)
        while line in (b"\r\n", b"\n"):  # RFC 9112 §2.2: ignore empty lines before a request
            line = self.rfile.readline(_MAX_LINE + 1)
        if not line:
            return False
        parts = line.split()
        if len(line) > _MAX_LINE or len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            return self._send(400, {}, {"reason": "bad request line"}, close=True)
        method, target, version = (p.decode("latin-1") for p in parts)
        headers = _Headers()
        for _ in range(_MAX_HEADERS + 1):
            field = self.rfile.readline(_MAX_LINE + 1)
            if field in (b"\r\n", b"\n", b""):
                break
            name, colon, value = field.partition(b":")
            if not colon or len(field) > _MAX_LINE or name != name.strip():
                return self._send(400, {}, {"reason": "bad header field"}, close=True)
            headers.add(name.decode("latin-1"), value.strip().decode("latin-1"))
        else:
            return self._send(431, {}, {"reason": "too many header fields"}, close=True)
        connection = (headers.get("Connection") or "").lower()
        keep_alive = "close" not in connection and (
            version == "HTTP/1.1" or "keep-alive" in connection
        )

        if headers.get("Transfer-Encoding") is not None:
            return self._send(411, {}, {"reason": "send a Content-Length, not chunks"}, True)
        length = headers.get("Content-Length")
        if length is None:
            if method == "POST":
                return self._send(411, {}, {"reason": "Content-Length required"}, close=True)
            length = "0"
        if not length.isdigit():
            return self._send(400, {}, {"reason": "bad Content-Length"}, close=True)
        size = int(length)
        if size > MAX_BODY:
            self.server.service._count(413)
            # Drain what is cheap to drain so the connection stays usable; else close it.
            drain = size <= 16 * MAX_BODY
            if drain:
                self._continue(headers)
                self.rfile.read(size)
            reason = f"push message bodies are at most {MAX_BODY} octets"
            return self._send(413, {}, {"reason": reason}, close=not (drain and keep_alive))
        if size:
            self._continue(headers)
        body = self.rfile.read(size) if size else b""
        if len(body) != size:
            return False

        match = _PUSH_PATH.fullmatch(urlsplit(target).path) if method == "POST" else None
        how = self.server.service._misbehaving.get(match.group(1)) if match else None
        if how is not None:
            return self._misbehave(how)
        status, reply_headers, payload = self._route(method, target, headers, body)
        return self._send(status, reply_headers, payload, close=not keep_alive)

    def _misbehave(self, how: str) -> bool:
        with self.server.service._lock:
            self.server.service.requests += 1
        size = 1_000_000 if how == "drip" else 4_000_000
        head = f"HTTP/1.1 201 Created\r\n{_SERVER_HEADER}\r\nContent-Length: {size}\r\n\r\n"
        self.connection.sendall(head.encode("latin-1"))
        if how == "bloat":
            self.connection.sendall(b"x" * size)
        else:
            stopped = self.server.service._stopped
            for _ in range(size):  # until the sender hangs up (the write fails) or we stop
                if stopped.wait(0.05):
                    break
                self.connection.sendall(b"x")
        return False

    def _continue(self, headers: _Headers) -> None:
        if (headers.get("Expect") or "").lower() == "100-continue":  # curl sends it
            self.connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _route(
        self, method: str, target: str, headers: _Headers, body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        service = self.server.service
        parts = urlsplit(target)
        if method == "POST":
            match = _PUSH_PATH.fullmatch(parts.path)
            if match:
                status, reply_headers, payload = service._push(match.group(1), headers, body)
                service._count(status)
                return status, reply_headers, payload
            if parts.path == "/subscribe":
                try:
                    options = json.loads(body) if body.strip() else {}
                except ValueError:
                    options = None
                if not isinstance(options, dict):
                    return 400, {}, {"reason": "the body must be a JSON object"}
                subscription = service.subscribe(options.get("applicationServerKey"))
                return 201, {"Location": subscription["endpoint"]}, subscription
        elif method == "GET":
            if parts.path == "/deliveries":
                return 200, {}, service._report(parse_qs(parts.query))
            if parts.path == "/stats":
                return 200, {}, service.stats()
        else:
            return 405, {"Allow": "GET, POST"}, {"reason": "method not allowed"}
        return 404, {}, {"reason": "not found"}

    def _send(
        self, status: int, headers: dict[str, str], payload: Any, close: bool = False
    ) -> bool:
        data = b"" if payload is None else json.dumps(payload).encode("utf-8")
        lines = [f"HTTP/1.1 {status} {_PHRASES.get(status, 'Status')}", _SERVER_HEADER]
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        if data:
            lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(data)}")
        if close:
            lines.append("Connection: close")
        self.connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data)
        return not close


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], service: FakePushService) -> None:
        self.service = service
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self.accepted = 0  # connections accepted so far
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket, is_open: bool) -> None:
        with self._open_lock:
            if is_open:
                self._open.add(connection)
                self.accepted += 1
            else:
                self._open.discard(connection)

    def close_connections(self) -> None:
        with self._open_lock:
            connections, self._open = list(self._open), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return b""


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.push_service")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--echo", action="store_true", help="print every accepted message")
    parser.add_argument("--origin", help="origin senders use, if not http://host:port")
    args = parser.parse_args()
    service = FakePushService(args.host, args.port, echo=args.echo, origin=args.origin).start()
    print(
        f"[push] fake push service on {service.origin} (POST /subscribe for an endpoint)",
        flush=True,
    )
    window: deque[tuple[float, int]] = deque(maxlen=2)
    try:
        while True:
            time.sleep(1.0)
            stats, now = service.stats(), time.monotonic()
            requests, delivered = stats["requests"], stats["delivered"]
            rejected = sum(stats["rejected"].values())
            window.append((now, requests))
            rate = (
                (window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0])
                if len(window) == 2
                else 0.0
            )
            print(
                f"[push] requests={requests} delivered={delivered} rejected={rejected} "
                f"rate={rate:.0f}/s",
                flush=True,
            )
    except KeyboardInterrupt:
        service.stop()


if __name__ == "__main__":
    main()
