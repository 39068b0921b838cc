"""What the gateway's processes share through Redis: idempotency records (``intake.py``) and
rate-limit windows (``ratelimit.py``), so that N replicas answer as one gateway would.

Redis makes the answers consistent; it is not needed to accept data. Every call has a short
timeout and is never retried, so a slow or hung Redis costs a request at most ``timeout``
seconds; after a failure the gateway does not try Redis again for ``pause`` seconds
(``REDIS_PAUSE``: it would only wait again). Meanwhile submissions are accepted without an
idempotency record (responses still stores one answer per resident and poll) and each process
limits on its own (docs/api.md, "When Redis is down"). Each request served without Redis counts in
``buurtpeil_gateway_redis_unavailable_total``; an outage is logged once when it starts and
once when it ends.

The client is redis-py over the standard socket module: under ``nameko run`` (eventlet
monkey-patched) its sockets are green, so a request waiting for Redis yields to the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from prometheus_client import Counter
from redis.backoff import NoBackoff
from redis.retry import Retry

from gateway.settings import GatewaySettings

log = logging.getLogger(__name__)
T = TypeVar("T")

REDIS_UNAVAILABLE = Counter(
    "buurtpeil_gateway_redis_unavailable_total",
    "Gateway operations done without Redis (failed, timed out, or skipped during an outage), "
    "by store: idempotency (answered without a record) or ratelimit (limited per process).",
    ["store"],
)


class SharedState:
    """One Redis client per gateway process, with the outage bookkeeping described above."""

    def __init__(self, url: str, *, prefix: str, timeout: float = 0.25, pause: float = 2.0):
        self.url = url
        self.prefix = prefix.rstrip(":")
        self.timeout = timeout
        self.pause = pause
        self.client = redis.Redis.from_url(url, **self.client_options())
        self._retry_at = 0.0
        self._down = False

    def client_options(self) -> dict[str, Any]:
        """No retries (the default retries three times with up to 10 s of backoff) and a
        timeout on connecting and on every reply."""
        return {
            "socket_timeout": self.timeout,
            "socket_connect_timeout": self.timeout,
            "retry": Retry(NoBackoff(), 0),
        }

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> SharedState:
        return cls(
            settings.redis_url,
            prefix=settings.redis_key_prefix,
            timeout=settings.redis_timeout,
            pause=settings.redis_pause,
        )

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def erase(self, subject: str) -> int:
        """Erasure: delete every key of ours that names ``subject`` (a resident who left):
        idempotency records (else kept 24 h) and rate-limit counters. A scan over our keys:
        leaving is rare. Without Redis, nothing (the records expire by themselves)."""

        def delete_all() -> int:
            literal = "".join("\\" + c if c in "*?[]\\" else c for c in subject)
            pattern = self.key(f"*{literal}*")
            keys = list(self.client.scan_iter(match=pattern, count=1000))
            # redis-py types each command for its sync and async clients at once.
            return self.client.delete(*keys) if keys else 0  # type: ignore[return-value]

        return self.call("erasure", delete_all, lambda: 0)

    def call(self, store: str, operation: Callable[[], T], fallback: Callable[[], T]) -> T:
        """``operation()`` against Redis; ``fallback()`` when Redis fails or is resting."""
        if time.monotonic() < self._retry_at:
            REDIS_UNAVAILABLE.labels(store).inc()
            return fallback()
        try:
            result = operation()
        except Exception as exc:  # noqa: BLE001 - any Redis failure: carry on without it
            # limits wraps Redis errors in its StorageError; redis-py raises RedisError.
            self.failed(store, exc)
            return fallback()
        if self._down:
            self._down = False
            log.warning("Redis at %s answers again; shared state restored", self.safe_url)
        return result

    def failed(self, store: str, exc: BaseException) -> None:
        REDIS_UNAVAILABLE.labels(store).inc()
        self._retry_at = time.monotonic() + self.pause
        if not self._down:
            self._down = True
            log.error(
                "Redis at %s failed (%r): idempotency records and rate limits are per process "
                "until it answers again",
                self.safe_url,
                exc,
            )

    @property
    def safe_url(self) -> str:
        """The URL without its password, for logs."""
        kwargs = self.client.connection_pool.connection_kwargs
        where = kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}"
        return f"{where}/{kwargs.get('db', 0)}"

    def close(self) -> None:
        self.client.close()
