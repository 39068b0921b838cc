"""The gateway's in-memory copies: how a resync merges with events (gateway/poll_cache.py,
gateway/revocations.py)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from gateway.poll_cache import OpenPollCache
from gateway.revocations import RevokedSessions


def service_poll(poll_id: str) -> dict:
    return {
        "id": poll_id,
        "municipality_code": "GM0344",
        "version": 1,
        "content_hash": "0" * 64,
        "definition": {},
        "audience": {"kind": "municipality"},
        "opens_at": "2026-12-01T00:00:00+00:00",
        "closes_at": None,
    }


def event_poll(poll_id: str) -> dict:
    found = service_poll(poll_id)
    return {"poll_id": found.pop("id"), **found}


def test_a_resync_drops_polls_closed_while_events_were_lost():
    cache = OpenPollCache()
    cache.begin_resync()
    cache.load([service_poll("a"), service_poll("b")])
    cache.begin_resync()
    cache.load([service_poll("b"), service_poll("c")])  # a closed, c opened: events lost
    assert {p for p in ("a", "b", "c") if cache.get(p)} == {"b", "c"}


def test_events_during_a_resync_win_over_its_snapshot():
    cache = OpenPollCache()
    cache.begin_resync()
    cache.published(event_poll("new"))  # after the snapshot was read
    cache.closed("old")  # closed after the snapshot was read
    cache.load([service_poll("old")])
    assert cache.get("new") is not None and cache.get("old") is None
    assert cache.warm


def test_a_closed_poll_is_never_revived_by_a_late_snapshot():
    cache = OpenPollCache()
    cache.closed("x")
    cache.begin_resync()
    cache.load([service_poll("x")])
    cache.published(event_poll("x"))
    assert cache.get("x") is None


def test_revoked_sessions_merge_and_expire():
    revoked = RevokedSessions()
    soon = datetime.now(UTC) + timedelta(minutes=16)
    revoked.add(["s1"], soon.isoformat())
    revoked.load([{"session_id": "s2", "expires_at": soon.isoformat()}])
    assert "s1" in revoked and "s2" in revoked  # a resync never undoes an event
    past = datetime.fromtimestamp(time.time() - 5, UTC)
    revoked.add(["old"], past)
    revoked.load([])
    assert "old" not in revoked and len(revoked) == 2
