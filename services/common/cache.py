"""A per-process cache for what another service owns and changes rarely (a municipality's
settings and branding from panel): values are kept ``ttl`` seconds, and while the owner does not
answer the last value is used, however old — or ``fallback``'s, if there is none yet."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from typing import Any

log = logging.getLogger(__name__)


class StaleTolerantCache:
    def __init__(self, ttl: float):
        self.ttl = ttl
        self._values: dict[Hashable, tuple[float, Any]] = {}

    def get(
        self,
        key: Hashable,
        fetch: Callable[[], Any],
        fallback: Callable[[], Any] | None = None,
    ) -> Any:
        """The value for ``key``: cached, else ``fetch()``; if that fails, the last value, else
        ``fallback()``, else the error."""
        hit = self._values.get(key)
        if hit and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        try:
            value = fetch()
        except Exception as exc:
            if hit is None and fallback is None:
                raise
            log.warning(
                "could not fetch %s (%r); using the %s",
                key,
                exc,
                "last value" if hit else "fallback",
            )
            value = hit[1] if hit else fallback()  # type: ignore[misc]
        self._values[key] = (time.monotonic(), value)
        return value

    def forget(self, key: Hashable) -> None:
        """Drop ``key``'s value: the next ``get`` fetches it (after the owner changed it)."""
        self._values.pop(key, None)
