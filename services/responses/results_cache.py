"""Computed results per poll, kept in the process until the poll's counters change.

A results document at a million responses takes about a second to compute (counters read,
suppression, raking per wijk; docs/benchmarks.md) and is read far more often than it changes
while staff watch a dashboard. It is a pure function of what ``polls.results_version`` versions
(the counters, open answers, invitations, margins, the definition — each write bumps it in its
own transaction), so a cached document is served while the version it was computed at is the
current one, and never after.
"""

from __future__ import annotations

import json
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from nameko.extensions import DependencyProvider
from sqlalchemy.orm import Session

from services.common.errors import NotFound
from services.responses.models import Poll

Key = tuple[uuid.UUID, int]  # poll, k


class ResultsCache:
    """Least recently used first out; ``size`` documents (about 1 MB each at 1M responses)."""

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._entries: OrderedDict[Key, tuple[int, dict[str, Any], list[str]]] = OrderedDict()
        self.hits = self.misses = 0

    def get_or_compute(self, session: Session, **kwargs: Any) -> dict[str, Any]:
        """The results document of the poll's current version."""
        return self._entry(session, **kwargs)[1]

    def get_or_compute_json(self, session: Session, **kwargs: Any) -> str:
        """The same as JSON text, encoded once per version: at a million responses the document
        is ~1 MB, and encoding it for every RPC reply (and decoding it in the gateway, to encode
        it again for HTTP) costs more than the rest of a cached read (docs/benchmarks.md)."""
        entry = self._entry(session, **kwargs)
        if not entry[2]:
            entry[2].append(json.dumps(entry[1], ensure_ascii=False, separators=(",", ":")))
        return entry[2][0]

    def _entry(
        self,
        session: Session,
        *,
        poll_id: str,
        municipality_code: str,
        k: int,
        compute: Callable[[], dict[str, Any]],
    ) -> tuple[int, dict[str, Any], list[str]]:
        try:
            pid = uuid.UUID(str(poll_id))
        except ValueError:
            pid = None
        current = (
            session.execute(
                sa.select(Poll.results_version).where(
                    Poll.id == pid, Poll.municipality_code == municipality_code
                )
            ).scalar()
            if pid
            else None
        )
        if current is None:
            raise NotFound("no results for this poll (not published, or not yours)")
        key = (pid, k)
        entry = self._entries.get(key)
        if entry is not None and entry[0] == current:
            self._entries.move_to_end(key)
            self.hits += 1
            return entry
        self.misses += 1
        # Read after the version: a commit in between makes the document newer than its key,
        # which only costs a recomputation; it can never be older than the version it is under.
        entry = (current, compute(), [])
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return entry


class Cached(DependencyProvider):
    """One ``ResultsCache`` per service process, shared by its workers."""

    def __init__(self, size: int = 32) -> None:
        self.size = size

    def setup(self) -> None:
        self.cache = ResultsCache(int(self.container.config.get("RESULTS_CACHE_SIZE", self.size)))

    def get_dependency(self, worker_ctx: Any) -> ResultsCache:
        return self.cache
