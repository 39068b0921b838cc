"""Database creation and Alembic migrations, per service. Run by ``make migrate``, ``make run``
and the test harness — never by a service at start-up (several replicas would race).

    python -m services.common.migrate [--create] [SERVICE ...]     (default: every service)

Each service keeps its migrations in ``services/<name>/migrations``; the database URL comes
from that service's config.yml (``DATABASE_URL``), so the environment overrides it as usual.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from services.common.config import load_service_config

ROOT = Path(__file__).resolve().parents[2]
SERVICES_WITH_DATABASE = tuple(
    p.parent.parent.name for p in sorted((ROOT / "services").glob("*/migrations/env.py"))
)


def alembic_config(service: str, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "services" / service / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def create_database(url: str) -> bool:
    """Create the database named in ``url`` if it does not exist; True if it was created."""
    target = make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}
            ).first()
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
            return not exists
    finally:
        admin.dispose()


def drop_database(url: str) -> None:
    target = make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    finally:
        admin.dispose()


def service_tables(conn: sa.Connection) -> list[str]:
    """The tables of a service database, Alembic's bookkeeping left out."""
    return list(
        conn.execute(
            sa.text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version' ORDER BY tablename"
            )
        ).scalars()
    )


def empty_tables(conn: sa.Connection) -> None:
    """Empty every table but Alembic's (tests between cases; ``make run`` in development)."""
    tables = service_tables(conn)
    if tables:
        quoted = ", ".join(f'"{t}"' for t in tables)
        conn.execute(sa.text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))


def upgrade(service: str, url: str, *, create: bool = False) -> None:
    if create:
        create_database(url)
    command.upgrade(alembic_config(service, url), "head")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.common.migrate")
    parser.add_argument("services", nargs="*", default=list(SERVICES_WITH_DATABASE))
    parser.add_argument("--create", action="store_true", help="create missing databases first")
    args = parser.parse_args(argv)
    for service in args.services:
        url = load_service_config(service)["DATABASE_URL"]
        upgrade(service, url, create=args.create)
        print(f"migrated {service}: {make_url(url).render_as_string(hide_password=True)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
