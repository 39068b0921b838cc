"""The results cache's race with its own background release: a read that was at the database
while the release finished takes that release instead of starting the same computation again
(seen as a second refresh under load in the full suite)."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

from services.responses.results_cache import ResultsCache

POLL = uuid.UUID(int=7)


class Finishing:
    """A session whose query for the stored release is where the background release, started
    by an earlier read, finishes (stored in the cache, no longer refreshing); the read's own
    snapshot is older, so it finds no stored release."""

    def __init__(self, cache: ResultsCache) -> None:
        self.cache = cache
        self.calls = 0

    def execute(self, *_: Any) -> Any:
        self.calls += 1
        if self.calls == 1:  # the poll: version 1, open
            return SimpleNamespace(first=lambda: SimpleNamespace(results_version=1, closed_at=None))
        self.cache.store(POLL, 1, {"all": {"version": {"seq": 1}}})
        self.cache._refreshing.discard(POLL)
        return SimpleNamespace(first=lambda: None)


def test_a_read_that_meets_a_finished_release_takes_it_and_starts_no_other():
    started: list[Any] = []
    cache = ResultsCache(spawn=started.append, wait=0)
    cache._refreshing.add(POLL)  # an earlier read's release, still running
    cache.refreshes = 1
    document = cache.get_or_compute(
        Finishing(cache),
        view="all",
        poll_id=str(POLL),
        municipality_code="GM0344",
        compute=lambda: {"all": {}},
        refresh=lambda: (1, {"all": {}}),
    )
    assert document == {"version": {"seq": 1}}
    assert cache.refreshes == 1 and started == []
