"""The database provider against the real PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker

from services.common.db import make_engine, run_in_transaction


@pytest.fixture
def sessions(databases):
    engine = make_engine(databases["polls"], pool_size=1)
    yield sessionmaker(engine)
    engine.dispose()


def test_work_is_rerun_when_the_connection_is_dropped(sessions, clean_databases):
    calls = []

    def work(session):
        calls.append(1)
        if len(calls) == 1:
            # The server ends this very connection, as a restart or failover would.
            session.execute(sa.text("SELECT pg_terminate_backend(pg_backend_pid())"))
        session.execute(
            sa.text(
                "INSERT INTO processed_events (event_id, handler) "
                "VALUES ('00000000-0000-0000-0000-000000000001', 'db-test')"
            )
        )
        return "done"

    assert run_in_transaction(sessions, work, backoff=0.01) == "done"
    assert len(calls) == 2
    with sessions() as s:
        assert s.execute(sa.text("SELECT count(*) FROM processed_events")).scalar() == 1


def test_other_database_errors_are_not_retried(sessions):
    calls = []

    def work(session):
        calls.append(1)
        session.execute(sa.text("SELECT * FROM no_such_table"))

    with pytest.raises(DBAPIError):
        run_in_transaction(sessions, work)
    assert len(calls) == 1
