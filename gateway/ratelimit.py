"""Rate limits as token buckets, in the gateway's memory.

Per process: with N gateway replicas behind a load balancer the effective limit is up to N
times higher. That is acceptable for abuse protection (login, code guessing), and the panel
also locks staff accounts after failed logins in its database. A shared store (Redis) can
replace ``BucketStore`` without changing the callers.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass


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


class BucketStore:
    MAX_KEYS = 100_000  # idle buckets are dropped beyond this, oldest first

    def __init__(self, clock=time.monotonic):
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def take(self, name: str, key: str, limit: Limit) -> float | None:
        """Spend one token; None when allowed, else the seconds until one is available."""
        now = self._clock()
        rate = limit.per_minute / 60.0
        with self._lock:
            tokens, stamp = self._buckets.get((name, key), (float(limit.burst), now))
            tokens = min(float(limit.burst), tokens + (now - stamp) * rate)
            if tokens < 1:
                self._buckets[(name, key)] = (tokens, now)
                return (1 - tokens) / rate
            self._buckets[(name, key)] = (tokens - 1, now)
            if len(self._buckets) > self.MAX_KEYS:
                self._evict(now)
        return None

    def _evict(self, now: float) -> None:
        oldest = sorted(self._buckets.items(), key=lambda item: item[1][1])
        for k, _ in oldest[: len(oldest) // 10]:
            del self._buckets[k]


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
