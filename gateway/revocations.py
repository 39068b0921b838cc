"""Sessions whose access tokens are refused although their signature and expiry are fine: a
disabled or demoted staff member, a resident who left, a reused refresh token. Panel keeps
the list; every gateway process holds it in memory (checked per request, no call), kept by
the ``sessions_revoked`` broadcast and read again from panel at start, after a reconnection
to the broker and every ``CACHE_RESYNC_INTERVAL`` seconds (``resync.py``). An entry is
dropped once no access token of its session can still be valid.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any


class RevokedSessions:
    def __init__(self) -> None:
        self._until: dict[str, float] = {}  # session id → when it may be forgotten (epoch)

    def add(self, session_ids: list[str], expires_at: str | datetime) -> None:
        until = _epoch(expires_at)
        for sid in session_ids:
            self._until[str(sid)] = max(until, self._until.get(str(sid), 0.0))

    def load(self, entries: list[dict[str, Any]]) -> None:
        """Merge panel's list (revocations are never undone: a union is always right), and
        forget what has expired."""
        for entry in entries:
            self.add([entry["session_id"]], entry["expires_at"])
        now = time.time()
        self._until = {sid: until for sid, until in self._until.items() if until >= now}

    def __contains__(self, sid: object) -> bool:
        return sid in self._until

    def __len__(self) -> int:
        return len(self._until)


def _epoch(value: str | datetime) -> float:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment.timestamp()
