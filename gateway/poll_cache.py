"""The gateway's in-memory copy of open polls: residents read polls from here, never through a
call per request. Kept fresh by ``poll_published`` / ``poll_closed`` (broadcast to every gateway
process) and resynchronised from polls.list_open_polls at start, after every reconnection to
the broker (the broadcast queues are exclusive: events published while the connection was down
are never delivered) and every ``CACHE_RESYNC_INTERVAL`` seconds (``gateway/service.py``).

Who was invited to what is notify's (it draws samples and writes the invitations):
``InvitationCache`` asks it, per resident, for the polls at hand.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from services.common.areas import AreaLocator
from services.common.events import audience_kinds


class OpenPollCache:
    def __init__(self) -> None:
        self._polls: dict[str, dict[str, Any]] = {}
        self._closed: set[str] = set()  # closed polls: a late resync must not revive them
        self._lock = threading.Lock()
        # Events seen while a resync's snapshot is being read: the snapshot may predate them.
        self._during: dict[str, dict[str, Any] | None] | None = None
        self.warm = False

    def published(self, poll: dict[str, Any]) -> None:
        with self._lock:
            if poll["poll_id"] not in self._closed:
                self._polls[poll["poll_id"]] = poll
                if self._during is not None:
                    self._during[poll["poll_id"]] = poll

    def closed(self, poll_id: str) -> None:
        with self._lock:
            self._polls.pop(poll_id, None)
            self._closed.add(poll_id)
            if self._during is not None:
                self._during[poll_id] = None

    def begin_resync(self) -> None:
        """Call before reading the snapshot from polls: events from now on are kept aside, so
        ``load`` does not undo what they said."""
        with self._lock:
            self._during = {}

    def load(self, polls: list[dict[str, Any]]) -> None:
        """Replace the cache with a snapshot from the polls service (its ``serialize_poll`` shape):
        polls no longer in it were closed meanwhile (their event lost); events received since
        ``begin_resync`` win over the snapshot."""
        with self._lock:
            fresh = {}
            for poll in polls:
                entry = from_service(poll)
                if entry["poll_id"] not in self._closed:
                    fresh[entry["poll_id"]] = entry
            for poll_id, update in (self._during or {}).items():
                if update is None:
                    fresh.pop(poll_id, None)
                else:
                    fresh[poll_id] = update
            self._polls = fresh
            self._during = None
            self.warm = True

    def abort_resync(self) -> None:
        with self._lock:
            self._during = None

    def get(self, poll_id: str) -> dict[str, Any] | None:
        return self._polls.get(poll_id)

    def for_resident(
        self,
        municipality_code: str,
        wijk: str,
        buurt: str,
        invited: dict[str, Any] | None = None,
        kind: str = "resident",
    ) -> list[dict[str, Any]]:
        """The open polls meant for a resident: by their area and kind of participant, and
        those they were invited to (``invited``: poll id → the area of the invitation, from
        notify)."""
        return sorted(
            (
                p
                for p in list(self._polls.values())
                if eligible(p, municipality_code, wijk, buurt, invited or {}, kind)
            ),
            key=lambda p: p["opens_at"],
            reverse=True,
        )

    def of_municipality(self, municipality_code: str) -> list[dict[str, Any]]:
        return [
            p for p in list(self._polls.values()) if p["municipality_code"] == municipality_code
        ]

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


def eligible(
    poll: dict[str, Any],
    municipality_code: str,
    wijk: str,
    buurt: str,
    invited: dict[str, Any] | None = None,
    kind: str = "resident",
) -> bool:
    """Whether a poll is meant for a participant: of a kind its audience names (``kinds``;
    residents only without it), and they were invited to it (notify's invitations: the only
    way into a sample, which notify draws; an invited resident who moved since still answers,
    counted where invited), or their area is in its audience."""
    if poll["municipality_code"] != municipality_code:
        return False
    if kind not in audience_kinds(poll["audience"]):
        return False
    if poll["poll_id"] in (invited or {}):
        return True
    audience = poll["audience"]
    if audience["kind"] == "municipality":
        return True
    if audience["kind"] == "areas":
        return wijk in audience["area_codes"] or buurt in audience["area_codes"]
    return False  # a sample: only its drawn residents


class InvitationCache:
    """Which open polls a resident was invited to, and in which area: asked of notify
    (``invitation_areas``) and kept a while per process. An invitation does not change once
    written, so a found one is kept 10 minutes; "not invited" only a few seconds, since
    notify may still be writing the invitations of a poll that just opened."""

    FOUND_TTL = 600.0
    MISSING_TTL = 5.0
    MAX_ENTRIES = 100_000

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], tuple[float, dict[str, Any] | None]] = {}

    def forget(self, resident_id: str) -> None:
        """Erasure: this process keeps nothing more on a resident who left."""
        for key in [k for k in list(self._entries) if k[0] == resident_id]:
            self._entries.pop(key, None)

    def lookup(self, resident_id: str, poll_ids: list[str], rpc: Any) -> dict[str, Any]:
        """Poll id → {wijk_code, buurt_code} (None once answered) for the polls of
        ``poll_ids`` the resident was invited to. Raises what ``rpc`` raises (503)."""
        now = time.monotonic()
        found: dict[str, Any] = {}
        ask = []
        for poll_id in poll_ids:
            hit = self._entries.get((resident_id, poll_id))
            if hit is not None and hit[0] > now:
                if hit[1] is not None:
                    found[poll_id] = hit[1]
            else:
                ask.append(poll_id)
        if ask:
            answer = rpc("notify", "invitation_areas", resident_id, ask)
            if len(self._entries) > self.MAX_ENTRIES:
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
                if len(self._entries) > self.MAX_ENTRIES:
                    self._entries.clear()
            for poll_id in ask:
                area = answer.get(poll_id)
                ttl = self.FOUND_TTL if area is not None else self.MISSING_TTL
                self._entries[(resident_id, poll_id)] = (now + ttl, area)
                if area is not None:
                    found[poll_id] = area
        return found


class BoundaryCache:
    """Each municipality's buurt polygons, fetched from panel once per process (an hour), for
    checking that a location answer lies inside the municipality."""

    TTL = 3600.0

    def __init__(self) -> None:
        self._locators: dict[str, tuple[float, Any]] = {}

    def locator(self, municipality_code: str, rpc: Any) -> Any:
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
