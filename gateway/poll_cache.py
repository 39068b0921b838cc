"""The gateway's in-memory copy of open polls: residents read polls from here, never through a
call per request. Kept fresh by ``poll_published`` / ``poll_closed`` (broadcast to every gateway
process) and warmed at start from polls.list_open_polls.
"""

from __future__ import annotations

import threading
from typing import Any


class OpenPollCache:
    def __init__(self) -> None:
        self._polls: dict[str, dict[str, Any]] = {}
        self._closed: set[str] = set()  # closed while warming: a late warm must not revive them
        self._lock = threading.Lock()
        self.warm = False

    def published(self, poll: dict[str, Any]) -> None:
        with self._lock:
            if poll["poll_id"] not in self._closed:
                self._polls[poll["poll_id"]] = poll

    def closed(self, poll_id: str) -> None:
        with self._lock:
            self._polls.pop(poll_id, None)
            self._closed.add(poll_id)

    def load(self, polls: list[dict[str, Any]]) -> None:
        """Warm-up from the polls service (its ``serialize`` shape)."""
        for poll in polls:
            self.published(from_service(poll))
        self.warm = True

    def get(self, poll_id: str) -> dict[str, Any] | None:
        return self._polls.get(poll_id)

    def for_resident(self, municipality_code: str, wijk: str, buurt: str) -> list[dict[str, Any]]:
        return sorted(
            (p for p in list(self._polls.values()) if eligible(p, municipality_code, wijk, buurt)),
            key=lambda p: p["opens_at"],
            reverse=True,
        )

    def __len__(self) -> int:
        return len(self._polls)


def from_service(poll: dict[str, Any]) -> dict[str, Any]:
    return {
        "poll_id": poll["id"],
        "municipality_code": poll["municipality_code"],
        "version": poll["version"],
        "content_hash": poll["content_hash"],
        "definition": poll["definition"],
        "audience": poll["audience"],
        "opens_at": poll["opens_at"],
        "closes_at": poll["closes_at"],
    }


def eligible(poll: dict[str, Any], municipality_code: str, wijk: str, buurt: str) -> bool:
    """Whether a resident's area is in the poll's audience.

    A sample audience is drawn by notify; until the gateway learns who was drawn (the responses
    issue), sample polls are reachable only through their invitation, not listed here.
    """
    if poll["municipality_code"] != municipality_code:
        return False
    audience = poll["audience"]
    if audience["kind"] == "municipality":
        return True
    if audience["kind"] == "areas":
        return wijk in audience["area_codes"] or buurt in audience["area_codes"]
    return False


class BoundaryCache:
    """Each municipality's buurt polygons, fetched from panel once per process (an hour), for
    checking that a location answer lies inside the municipality."""

    TTL = 3600.0

    def __init__(self) -> None:
        self._locators: dict[str, tuple[float, Any]] = {}

    def locator(self, municipality_code: str, rpc: Any) -> Any:
        import time

        from services.panel.areas import AreaLocator

        hit = self._locators.get(municipality_code)
        if hit and time.monotonic() - hit[0] < self.TTL:
            return hit[1]
        found = rpc("panel", "buurt_boundaries", municipality_code)["boundaries"]
        locator = AreaLocator(
            {
                code: [[[tuple(p) for p in ring] for ring in polygon] for polygon in polygons]
                for code, polygons in found.items()
            }
        )
        self._locators[municipality_code] = (time.monotonic(), locator)
        return locator
