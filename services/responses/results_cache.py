"""Released results per poll, kept in the process; served without waiting while answers arrive.

A results document at a million responses takes seconds to compute (counters read, suppression,
raking per wijk; docs/benchmarks.md) and is read far more often than it changes while staff
watch a dashboard during a live poll. It is a pure function of what ``polls.results_version``
versions (the counters, open answers, invitations, margins, the definition — each write bumps
it in its own transaction), so a cached document is current while that version is.

When the version has moved on, a reader is not made to wait for the new document: it gets the
last one this process released (or, after a restart, the last one stored in
``result_releases``) and one computation per poll runs in the background — never one per
reader. Serving the previous document is always safe: it is a released version, and what
successive versions show is made safe against differencing where they are released
(``results.next_release``); its ``version.seq`` says which one it is. Only a poll's very first
read, and the first read after the poll closed (the final figures), wait for a computation —
up to ``wait`` seconds (``RESULTS_WAIT``, below the gateway's RPC timeout): a longer one goes
on in the background and the reader is told to come back (``BeingComputed``, an
``Unavailable``: 503 with Retry-After), rather than holding a worker and timing out with
nothing said.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from nameko.extensions import DependencyProvider
from sqlalchemy.orm import Session

from services.common.errors import BeingComputed, NotFound
from services.common.settings import settings_of
from services.responses.models import Poll, ResultRelease
from services.responses.settings import ResponsesSettings

log = logging.getLogger(__name__)
Key = uuid.UUID  # the poll: its k is frozen, its documents (one per view) cached together
# ``refresh()`` → (results version, documents per view): a fresh release in a session of its own.
Refresh = Callable[[], tuple[int, dict[str, Any]]]


@dataclass
class Entry:
    version: int  # the poll's results_version the documents were released at
    documents: dict[str, Any]  # per view
    encoded: dict[str, str] = field(default_factory=dict)  # per view, JSON once per version


class ResultsCache:
    """Least recently used first out; ``size`` polls (about 1 MB a view at 1M responses).

    ``spawn(fn)`` runs a background refresh (the container's managed threads in the service);
    without it every stale read computes while it waits, as a plain cache would.
    """

    def __init__(
        self,
        size: int = 32,
        spawn: Callable[[Callable[[], None]], Any] | None = None,
        wait: float | None = None,
    ):
        self.size = size
        self.spawn = spawn
        self.wait = wait  # seconds a reader waits for a computation it cannot do without
        self._entries: OrderedDict[Key, Entry] = OrderedDict()
        self._refreshing: set[Key] = set()
        self.hits = self.misses = self.stale = self.refreshes = 0

    def get_or_compute(self, session: Session, *, view: str, **kwargs: Any) -> dict[str, Any]:
        """The results document of one view: of the poll's current version, or — while that
        is being computed in the background — of the last version released."""
        return self._entry(session, **kwargs).documents[view]

    def get_or_compute_json(self, session: Session, *, view: str, **kwargs: Any) -> str:
        """The same as JSON text, encoded once per version: at a million responses the document
        is ~1 MB, and encoding it for every RPC reply (and decoding it in the gateway, to encode
        it again for HTTP) costs more than the rest of a cached read (docs/benchmarks.md)."""
        entry = self._entry(session, **kwargs)
        if view not in entry.encoded:
            entry.encoded[view] = json.dumps(
                entry.documents[view], ensure_ascii=False, separators=(",", ":")
            )
        return entry.encoded[view]

    @property
    def refreshing(self) -> int:
        return len(self._refreshing)

    def _entry(
        self,
        session: Session,
        *,
        poll_id: str,
        municipality_code: str,
        compute: Callable[[], dict[str, Any]],
        refresh: Refresh | None = None,
        wait: float | None = None,
    ) -> Entry:
        """``wait``: this read's seconds to wait for a computation instead of ``self.wait``
        (a reader of several polls shares one wait among them)."""
        try:
            pid = uuid.UUID(str(poll_id))
        except ValueError:
            pid = None
        poll = (
            session.execute(
                sa.select(Poll.results_version, Poll.closed_at).where(
                    Poll.id == pid, Poll.municipality_code == municipality_code
                )
            ).first()
            if pid
            else None
        )
        if poll is None or pid is None:
            raise NotFound("no results for this poll (not published, or not yours)")
        current = poll.results_version
        entry = self._entries.get(pid)
        if entry is not None and entry.version == current:
            self._entries.move_to_end(pid)
            self.hits += 1
            return entry
        # Only while the poll is open: after the close, a read waits for the final figures.
        if refresh is not None and self.spawn is not None and poll.closed_at is None:
            last = entry or self._stored(session, pid)
            now = self._entries.get(pid)  # a refresh may have stored it meanwhile
            if now is not None and now.version == current:
                self.hits += 1
                return now
            if last is not None:
                self.stale += 1
                self._refresh_in_background(pid, refresh)
                return last
        self.misses += 1
        if refresh is not None and self.spawn is not None and self.wait is not None:
            return self._wait_for(pid, current, refresh, compute, wait)
        # Read in the same snapshot as the version (``results.begin_snapshot``): the documents
        # are exactly those of this version.
        return self.store(pid, current, compute())

    def _wait_for(
        self,
        pid: Key,
        current: int,
        refresh: Refresh,
        compute: Callable[[], dict[str, Any]],
        wait: float | None = None,
    ) -> Entry:
        """The computation in the background (one per poll, whatever the readers), waited for
        up to ``wait`` seconds (by default ``self.wait``)."""
        # A computation may have finished while this read was at the database (its snapshot
        # older than that release): take it rather than start the same one again.
        entry = self._entries.get(pid)
        if entry is not None and entry.version >= current:
            return entry
        self._refresh_in_background(pid, refresh)
        deadline = time.monotonic() + (wait if wait is not None else (self.wait or 0))
        while pid in self._refreshing and time.monotonic() < deadline:
            time.sleep(0.05)
        entry = self._entries.get(pid)
        if entry is not None and entry.version >= current:
            return entry
        if pid in self._refreshing:
            raise BeingComputed(
                "the results of this poll are being computed (its first release, or the final "
                "one after the close); try again in a few seconds"
            )
        # The background release failed (logged): once more here, its error the reader's.
        return self.store(pid, current, compute())

    def store(self, pid: Key, version: int, documents: dict[str, Any]) -> Entry:
        """Keep ``documents`` as the poll's, unless a newer version is kept already (two
        refreshes, or a refresh and a waiting reader, may finish in either order)."""
        entry = self._entries.get(pid)
        if entry is None or entry.version < version:
            entry = Entry(version, documents)
            self._entries[pid] = entry
        self._entries.move_to_end(pid)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return entry

    def _stored(self, session: Session, pid: Key) -> Entry | None:
        """The last release stored (by this process before a restart, or by another one)."""
        row = session.execute(
            sa.select(ResultRelease.results_version, ResultRelease.document).where(
                ResultRelease.poll_id == pid
            )
        ).first()
        if row is None:
            return None
        return self.store(pid, row.results_version, row.document)

    def _refresh_in_background(self, pid: Key, refresh: Refresh) -> None:
        if pid in self._refreshing:
            return  # one computation per poll at a time, whatever the number of readers
        self._refreshing.add(pid)
        self.refreshes += 1

        def run() -> None:
            try:
                self.store(pid, *refresh())
            except Exception:  # the next stale read tries again; readers keep the last one
                log.exception("results of poll %s: the background release failed", pid)
            finally:
                self._refreshing.discard(pid)

        assert self.spawn is not None
        self.spawn(run)


class Cached(DependencyProvider):
    """One ``ResultsCache`` per service process, shared by its workers; refreshes run as the
    container's managed threads (``RESULTS_REFRESH_IN_BACKGROUND``: on unless ``false``)."""

    def setup(self) -> None:
        settings = settings_of(self.container, ResponsesSettings.load)
        self.cache = ResultsCache(
            settings.results_cache_size,
            spawn=self._spawn if settings.results_refresh_in_background else None,
            wait=settings.results_wait,
        )

    def _spawn(self, run: Callable[[], None]) -> None:
        self.container.spawn_managed_thread(run, identifier="results_refresh")

    def get_dependency(self, worker_ctx: Any) -> ResultsCache:
        return self.cache
