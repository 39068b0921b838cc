"""SQLAlchemy 2 for nameko workers: one session per worker, a transaction scope, and a retry
when PostgreSQL dropped the connection underneath us (restart, failover, idle timeout).

In the spirit of nameko-sqlalchemy, whose last release predates SQLAlchemy 2.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from nameko.extensions import DependencyProvider
from sqlalchemy import Connection, CursorResult, Engine, Result, create_engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from services.common.settings import common_settings, read_text

log = logging.getLogger(__name__)
T = TypeVar("T")

_green_patched = False


def make_psycopg2_cooperative() -> None:
    """Let psycopg2 yield to other greenthreads while it waits on the server.

    eventlet's monkey patch alone already does this for psycopg2's socket waits in practice,
    but psycogreen's wait callback is the documented way and costs nothing.
    """
    global _green_patched
    if _green_patched:
        return
    from eventlet import patcher

    if patcher.is_monkey_patched("socket"):
        from psycogreen.eventlet import patch_psycopg

        patch_psycopg()
        _green_patched = True


def make_engine(url: str, *, pool_size: int = 10, **kwargs: Any) -> Engine:
    make_psycopg2_cooperative()
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,  # a connection PostgreSQL closed meanwhile is replaced on checkout
        pool_recycle=1800,
        **kwargs,
    )


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE, DELETE or INSERT touched. ``Session.execute`` is typed to return a
    Result; for those statements it is a CursorResult, which has the count."""
    return cast(CursorResult[Any], result).rowcount


def limit_statements(session: Session | Connection, seconds: float) -> None:
    """Each later statement of the current transaction may take at most ``seconds``; PostgreSQL
    cancels one that takes longer (SQLSTATE 57014, ``batching.timed_out``). The limit ends with
    the transaction (``SET LOCAL``)."""
    session.execute(
        text("SELECT set_config('statement_timeout', :limit, true)"),
        {"limit": f"{max(1, round(seconds * 1000))}ms"},
    )


def is_disconnect(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def run_in_transaction(
    sessions: sessionmaker[Session],
    work: Callable[[Session], T],
    *,
    attempts: int = 3,
    backoff: float = 0.2,
) -> T:
    """Run ``work(session)`` in one transaction; rerun it when the connection was dropped.

    ``work`` must be safe to rerun: it is, because a dropped connection rolled everything back.
    """
    for attempt in range(1, attempts + 1):
        session = sessions()
        try:
            with session.begin():
                return work(session)
        except DBAPIError as exc:
            if not is_disconnect(exc) or attempt == attempts:
                raise
            log.warning("database connection dropped, retrying (attempt %d)", attempt)
            time.sleep(backoff * 2 ** (attempt - 1))
        finally:
            session.close()
    raise AssertionError("unreachable")  # pragma: no cover


def after_commit(session: Session, action: Callable[[], Any]) -> None:
    """Run ``action()`` once the session's current transaction has committed; never when it
    rolls back (a rerun after a dropped connection registers it again on its new session).

    For what must see the committed state: waking a loop that reads the rows just written,
    a log line or metric that counts only what really happened."""
    event.listen(session, "after_commit", lambda _session: action(), once=True)


class WorkerDatabase:
    """What a worker sees as ``self.db``."""

    def __init__(self, engine: Engine, sessions: sessionmaker[Session]):
        self.engine = engine
        self._sessions = sessions
        self.session_factory = sessions  # for work that manages its own transactions
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        """A session for reads; closed when the worker ends."""
        if self._session is None:
            self._session = self._sessions()
        return self._session

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One transaction that commits on success and rolls back on any exception."""
        session = self._sessions()
        try:
            with session.begin():
                yield session
        finally:
            session.close()

    def run(self, work: Callable[[Session], T], **kwargs: Any) -> T:
        """``work(session)`` in a transaction, retried when the connection was dropped."""
        return run_in_transaction(self._sessions, work, **kwargs)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


class Database(DependencyProvider):
    """Inject a :class:`WorkerDatabase` bound to the service's own PostgreSQL database.

    Reads ``DATABASE_URL`` (and optionally ``DATABASE_POOL_SIZE``) from the service config.
    """

    def __init__(self, url_key: str = "DATABASE_URL"):
        self.url_key = url_key
        self.engine: Engine | None = None
        self.sessions: sessionmaker[Session] | None = None
        self._handles: dict[Any, WorkerDatabase] = {}

    def setup(self) -> None:
        self.engine = make_engine(
            read_text(self.container, self.url_key),
            pool_size=common_settings(self.container).database_pool_size,
        )
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def stop(self) -> None:
        if self.engine is not None:
            self.engine.dispose()

    kill = stop

    def get_dependency(self, worker_ctx: Any) -> WorkerDatabase:
        assert self.engine is not None and self.sessions is not None
        handle = WorkerDatabase(self.engine, self.sessions)
        self._handles[worker_ctx] = handle
        return handle

    def worker_teardown(self, worker_ctx: Any) -> None:
        handle = self._handles.pop(worker_ctx, None)
        if handle is not None:
            handle.close()
