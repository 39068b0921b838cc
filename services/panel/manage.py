"""Operator commands for the panel database (run where the panel's config.yml applies).

    python -m services.panel.manage create-platform-admin --email E --password P
    python -m services.panel.manage create-municipality --code GM0344 --name Utrecht
    python -m services.panel.manage import-areas --municipality GM0344 --kwb F.csv --geojson F
    python -m services.panel.manage create-staff --municipality GM0344 --email E --role admin \
        --password P

Each is idempotent, so seeding scripts can run them again. Area imports publish
``areas_imported`` through the outbox like the RPC does; the panel service's relay sends it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session

from services.common.config import load_service_config
from services.common.db import make_engine
from services.common.errors import BuurtpeilError, Conflict
from services.common.outbox import add_event
from services.panel import accounts, area_store, tenants


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.panel.manage")
    commands = parser.add_subparsers(dest="command", required=True)
    admin = commands.add_parser("create-platform-admin")
    admin.add_argument("--email", required=True)
    admin.add_argument("--password", required=True)
    municipality = commands.add_parser("create-municipality")
    municipality.add_argument("--code", required=True)
    municipality.add_argument("--name", required=True)
    areas = commands.add_parser("import-areas")
    areas.add_argument("--municipality", required=True)
    areas.add_argument("--kwb", required=True, type=Path)
    areas.add_argument("--geojson", required=True, type=Path)
    staff = commands.add_parser("create-staff")
    staff.add_argument("--municipality", required=True)
    staff.add_argument("--email", required=True)
    staff.add_argument("--role", required=True, choices=accounts.ROLES)
    staff.add_argument("--password", required=True)
    args = parser.parse_args(argv)

    engine = make_engine(load_service_config("panel")["DATABASE_URL"], pool_size=1)
    now = datetime.now(UTC)
    try:
        with Session(engine) as session, session.begin():
            print(run(session, args, now))
    except BuurtpeilError as exc:
        print(f"refused: {exc.message} {exc.errors or ''}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


def run(session: Session, args: argparse.Namespace, now: datetime) -> str:
    if args.command == "create-platform-admin":
        staff = accounts.create_platform_admin(
            session, email=args.email, password=args.password, now=now
        )
        return f"platform admin {staff.email}"
    if args.command == "create-municipality":
        try:
            tenants.create_municipality(session, code=args.code, name=args.name, now=now)
        except Conflict:
            return f"municipality {args.code} exists"
        return f"municipality {args.code} created"
    if args.command == "import-areas":
        result = area_store.import_areas(
            session,
            municipality_code=args.municipality,
            kwb_csv=args.kwb.read_text(encoding="utf-8"),
            buurt_geojson=args.geojson.read_text(encoding="utf-8"),
            now=now,
            emit=add_event,
        )
        return (
            f"areas {args.municipality} {result['year']}: {result['counts']} "
            f"({'imported' if result['changed'] else 'unchanged'})"
        )
    staff = accounts.create_staff(
        session,
        municipality_code=args.municipality,
        email=args.email,
        role=args.role,
        password=args.password,
        now=now,
    )
    return f"staff {staff.email} ({staff.role}, {staff.municipality_code})"


if __name__ == "__main__":
    sys.exit(main())
