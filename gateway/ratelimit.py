"""Rate limits shared by every gateway process: moving windows in Redis, kept by the ``limits``
library (its Redis storage and ``MovingWindowRateLimiter``, one atomic Lua script per hit).

A rule ``"N/min burst B"`` allows B requests in any window of B·60/N seconds: the burst of a
token bucket with that rate and burst, and the same rate in the long run; ``"N/min"`` is N
requests in any minute. When a request is refused, Retry-After says when the oldest request
of the full window leaves it.

When Redis fails, each process keeps the same windows in its own memory (limits'
``MemoryStorage``) until Redis answers again: every limit still holds per process, so N
replicas allow up to N times as much meanwhile (counted in
``buurtpeil_gateway_redis_unavailable_total{store="ratelimit"}``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter

from gateway.sharedstate import SharedState


@dataclass(frozen=True)
class Limit:
    per_minute: float
    burst: int

    @classmethod
    def parse(cls, text: str) -> Limit:
        """``"10/min"`` or ``"10/min burst 20"``."""
        parts = text.split()
        rate = float(parts[0].split("/")[0])
        burst = int(parts[2]) if len(parts) >= 3 and parts[1] == "burst" else max(1, int(rate))
        return cls(rate, burst)

    @property
    def window_seconds(self) -> int:
        return max(1, math.ceil(self.burst * 60 / self.per_minute))

    def item(self, rule: str) -> RateLimitItem:
        return RateLimitItemPerSecond(self.burst, self.window_seconds, namespace=rule)


class RateLimiter:
    STORE = "ratelimit"

    def __init__(self, shared: SharedState, limits: dict[str, Limit]):
        self.shared = shared
        self.limits = limits
        self._items = {rule: limit.item(rule) for rule, limit in limits.items()}
        redis_storage = RedisStorage(
            shared.url,
            connection_pool=shared.client.connection_pool,  # timeouts, no retries
            key_prefix=shared.key("limits"),
            wrap_exceptions=True,
        )
        self._shared = MovingWindowRateLimiter(redis_storage)
        self._local = MovingWindowRateLimiter(MemoryStorage())

    def take(self, rule: str, key: str) -> float | None:
        """Count one request under ``rule`` for ``key``; None when allowed, else the seconds
        until one more would be. Rules without a configured limit are not limited."""
        item = self._items.get(rule)
        if item is None:
            return None
        return self.shared.call(
            self.STORE,
            lambda: self._take(self._shared, item, key),
            lambda: self._take(self._local, item, key),
        )

    @staticmethod
    def _take(limiter: MovingWindowRateLimiter, item: RateLimitItem, key: str) -> float | None:
        if limiter.hit(item, key):
            return None
        reset_at = limiter.get_window_stats(item, key).reset_time
        return max(0.0, reset_at - time.time())


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
