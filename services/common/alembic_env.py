"""The body of every service's migrations/env.py (online mode only: we always migrate a live
database)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa


def run_migrations(context: Any, target_metadata: Any) -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
