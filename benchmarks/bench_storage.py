"""Storage per row: what a response, a panel member and a notification cost on disk, for
docs/scaling.md.

    make bench-storage     (STORAGE_RESPONSES, default 20000; STORAGE_MEMBERS, default 5000;
                            STORAGE_RELEASE=0 skips the results release)

Throwaway databases ``bp_scaling_<pid>_<service>`` on the shared PostgreSQL (BENCH_PG_URL),
migrated with the project's migrations and dropped at the end. Every row is written by the
code that writes it in production, in the caller's transaction as the services do:

- responses: Utrecht's CBS margins, one ``veiligheidsgevoel`` poll, and STORAGE_RESPONSES
  submissions spread over Utrecht's 111 buurten (bench-results' respondents) recorded through
  ``intake.record_batch`` in batches of 500 (the consumer's batch size), measured at a quarter
  of them and at all of them: responses, receipts and open texts grow with every response, the
  counters only with the strata and areas a poll reaches. Then one results release through
  ``results.release`` (suppression included) for the size of ``result_releases``.
- panel: Utrecht, its areas imported, an invitation batch of STORAGE_MEMBERS codes, each
  redeemed by ``members.join_with_code`` and given a session (``accounts.start_session``).
- notify: those members as notify's projection (``projection.upsert_resident``, the payload
  panel emits, a third with an e-mail address), a Web Push subscription each
  (``projection.register_device``, endpoint and keys of the lengths browsers give), one poll to
  all of them (``audience.invite``, ``audience.queue_deliveries``), every delivery recorded as
  sent (``channels.record``), and one ``response_recorded`` claim per member.

Figure per table: ``pg_total_relation_size`` (heap, TOAST, indexes, free-space and visibility
maps) after VACUUM ANALYZE, divided by its rows. The outbox is printed apart: its rows are
deleted (``response_recorded``) or purged after OUTBOX_KEEP_DAYS once relayed.
"""

from __future__ import annotations

import os
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from benchmarks import bench_results as seeding
from services.common import migrate
from services.common.events import DomainEvent
from services.common.outbox import add_event, add_events, claim_event
from services.notify import audience, channels, projection
from services.panel import accounts, invitations, members, tenants
from services.panel import area_store as panel_areas
from services.responses import intake, results
from services.responses.models import AreaMargins
from tests.support.panel import utrecht_files

RESPONSES = int(os.environ.get("STORAGE_RESPONSES", "20000"))
MEMBERS = int(os.environ.get("STORAGE_MEMBERS", "5000"))
RELEASE = os.environ.get("STORAGE_RELEASE", "1") != "0"
PG = os.environ.get("BENCH_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432")
BATCH = 500  # INTAKE_BATCH_SIZE
GM = seeding.GM


def database(service: str) -> str:
    return f"{PG}/bp_scaling_{os.getpid()}_{service}"


def sizes(engine: sa.Engine, tables: Iterable[str]) -> dict[str, tuple[int, int]]:
    """table → (rows, bytes on disk incl. indexes and TOAST), after VACUUM ANALYZE."""
    tables = list(tables)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in tables:
            conn.execute(sa.text(f'VACUUM ANALYZE "{table}"'))
        return {
            t: (
                conn.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar_one(),
                conn.execute(sa.text("SELECT pg_total_relation_size(:t)"), {"t": t}).scalar_one(),
            )
            for t in tables
        }


def report(label: str, measured: dict[str, tuple[int, int]], per: int, unit: str) -> int:
    """Print each table and its bytes per ``unit``; return the total bytes."""
    total = 0
    for table, (rows, size) in measured.items():
        total += size
        per_row = f"{size / rows:7.0f} B/row" if rows else "      – B/row"
        print(
            f"  {label:9} {table:18} rows={rows:>8,} {size / 1024:9,.0f} KiB {per_row}"
            f"  {size / per:7.0f} B/{unit}",
            flush=True,
        )
    if len(measured) > 1:
        print(
            f"  {label:9} {'total':18} {'':14} {total / 1024:9,.0f} KiB {'':12}"
            f"  {total / per:7.0f} B/{unit}",
            flush=True,
        )
    return total


def cpu_timed(work: Callable[[], Any]) -> tuple[Any, float]:
    started = time.process_time()
    result = work()
    return result, time.process_time() - started


# --------------------------------------------------------------------------- responses


def measure_responses() -> uuid.UUID:
    url = database("responses")
    migrate.upgrade("responses", url, create=True)
    engine = sa.create_engine(url)
    try:
        records, margins = seeding.areas()
        poll = seeding.definition()
        poll_id = uuid.uuid4()
        with Session(engine) as session, session.begin():
            seeding.add_poll(session, poll_id, poll)
            session.execute(
                sa.insert(AreaMargins),
                [{"municipality_code": GM, "year": margins["year"], **a} for a in margins["areas"]],
            )
        people = list(seeding.respondents(RESPONSES, records, poll, seeding.SEED))
        per_response = ("responses", "receipts", "open_texts")
        per_poll = ("counts", "respondents")
        cpu = 0.0
        done = 0
        for stop in sorted({max(BATCH, RESPONSES // 4), RESPONSES}):
            for i in range(done, stop, BATCH):
                batch = [seeding.submission(poll_id, p) for p in people[i : min(i + BATCH, stop)]]
                with Session(engine) as session, session.begin():
                    _, spent = cpu_timed(
                        lambda s=session, b=batch: intake.record_batch(
                            s,
                            b,
                            secret=b"bench",
                            emit_many=add_events,
                            today=lambda: datetime.now(UTC),
                        )
                    )
                    cpu += spent
            done = stop
            print(f"responses: {done:,} recorded through intake.record_batch", flush=True)
            report("response", sizes(engine, per_response), done, "response")
            report("counters", sizes(engine, per_poll), done, "response")
            report("outbox", sizes(engine, ("outbox",)), done, "response")
        print(f"  record_batch CPU in this process: {1000 * cpu / done:.2f} ms per submission")
        return poll_id
    finally:
        engine.dispose()


def measure_release(poll_id: uuid.UUID) -> None:
    """One results release of the poll (suppression included), as the service stores it."""
    engine = sa.create_engine(database("responses"))
    try:
        with Session(engine) as session, session.begin():
            results.begin_snapshot(session, read_only=False)
            _, spent = cpu_timed(
                lambda: results.release(session, poll_id=str(poll_id), municipality_code=GM, k=10)
            )
        print(f"responses: one release through results.release, {spent:.1f} s CPU", flush=True)
        report("release", sizes(engine, ("result_releases",)), 1, "poll")
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- panel


def measure_panel() -> list[dict[str, Any]]:
    """Returns the members as panel's resident_joined payload (for notify)."""
    url = database("panel")
    migrate.upgrade("panel", url, create=True)
    engine = sa.create_engine(url)
    now = datetime.now(UTC)
    try:
        with Session(engine) as session, session.begin():
            tenants.create_municipality(session, code=GM, name="Utrecht", now=now, emit=add_event)
            files = utrecht_files()
            panel_areas.import_areas(
                session,
                municipality_code=GM,
                kwb_csv=files["kwb_csv"],
                buurt_geojson=files["buurt_geojson"],
                now=now,
                emit=add_event,
            )
        report("areas", sizes(engine, ("areas",)), 1, "municipality")
        with Session(engine) as session, session.begin():
            batch = invitations.create_batch(session, municipality_code=GM, now=now, total=MEMBERS)
            buurten: dict[str, list[str]] = {}
            for code, parent in session.execute(
                sa.text("SELECT code, parent_code FROM areas WHERE level = 'buurt'")
            ):
                buurten.setdefault(parent, []).append(code)
        codes = [line.split(",")[:2] for line in batch["csv"].splitlines()[1:]]
        payloads, cpu = [], 0.0
        for i, (code, wijk) in enumerate(codes):
            profile = {
                "consent": True,
                "buurt_code": buurten[wijk][i % len(buurten[wijk])],
                "birth_year": 1940 + i % 65,
                "sex": ("man", "vrouw")[i % 2],
            }
            with Session(engine) as session, session.begin():

                def join(s=session, c=code, p=profile) -> Any:
                    resident = members.join_with_code(s, code=c, profile=p, now=now, emit=add_event)
                    accounts.start_session(s, resident=resident, now=now)
                    return resident

                resident, spent = cpu_timed(join)
                cpu += spent
                payload = members.resident_payload(resident, now)
                if i % 3 == 0:  # a third gave an e-mail address (sign-up does)
                    payload["email"] = f"bewoner{i}@example.org"
                payloads.append(payload)
        print(f"panel: {MEMBERS:,} joined with a code (join_with_code + start_session)")
        print(f"  join CPU in this process: {1000 * cpu / MEMBERS:.2f} ms per member")
        report(
            "member",
            sizes(engine, ("residents", "invitation_codes", "refresh_tokens", "panel_changes")),
            MEMBERS,
            "member",
        )
        report("outbox", sizes(engine, ("outbox",)), MEMBERS, "member")
        return payloads
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- notify


def measure_notify(payloads: list[dict[str, Any]]) -> None:
    url = database("notify")
    migrate.upgrade("notify", url, create=True)
    engine = sa.create_engine(url)
    now = datetime.now(UTC)
    try:
        with Session(engine) as session, session.begin():
            for p in payloads:
                projection.upsert_resident(session, {**p, "joined_at": now.isoformat()}, now)
                subscription = {
                    "channel": "webpush",
                    # FCM's Web Push endpoints are ~190 characters, keys as browsers give them.
                    "endpoint": "https://fcm.googleapis.com/fcm/send/" + secrets.token_urlsafe(115),
                    "keys": {
                        "p256dh": secrets.token_urlsafe(65),
                        "auth": secrets.token_urlsafe(16),
                    },
                }
                projection.register_device(
                    session, resident_id=p["resident_id"], data=subscription, now=now
                )
        n = len(payloads)
        print(f"notify: {n:,} residents, a Web Push subscription each, a third also e-mail")
        report("member", sizes(engine, ("residents", "endpoints")), n, "member")
        with Session(engine) as session, session.begin():
            poll = audience.store_poll(
                session,
                {
                    "poll_id": str(uuid.uuid4()),
                    "municipality_code": GM,
                    "definition": seeding.definition(),
                    "audience": {"kind": "municipality", "area_codes": []},
                    "opens_at": now.isoformat(),
                    "closes_at": None,
                    "reminder_after_hours": [72],
                },
            )
            poll_id = poll.id
            invited = audience.invite(session, poll=poll, now=now, monthly_cap=4)
            queued = audience.queue_deliveries(
                session, kind="invitation", ref_id=poll.id, poll_id=poll.id, now=now
            )
            ids = session.execute(sa.text("SELECT id FROM deliveries")).scalars().all()
            channels.record(
                session, [channels.Update(i, "sent", 1, None) for i in ids], [], [], now
            )
        print(f"  one poll: {invited:,} invitations, {queued:,} deliveries recorded as sent")
        cpu = 0.0
        for p in payloads:  # every invitee answers: what notify's response_recorded handler does
            event = DomainEvent(uuid.uuid4(), "response_recorded", 1, "responses", now, None, {})
            with Session(engine) as session, session.begin():

                def answered(s=session, e=event, rid=p["resident_id"]) -> None:
                    claim_event(s, e, "notify.response_recorded")
                    audience.mark_answered(s, poll_id=poll_id, resident_id=uuid.UUID(rid), now=now)

                cpu += cpu_timed(answered)[1]
        print(
            f"  response_recorded (claim + mark_answered) CPU in this process: "
            f"{1000 * cpu / n:.2f} ms per event"
        )
        report(
            "per poll",
            sizes(engine, ("invitations", "deliveries", "processed_events")),
            n,
            "invitee",
        )
    finally:
        engine.dispose()


def main() -> None:
    started = time.perf_counter()
    try:
        poll_id = measure_responses()
        payloads = measure_panel()
        measure_notify(payloads)
        if RELEASE:  # last: seconds to minutes of CPU (docs/benchmarks.md)
            measure_release(poll_id)
    finally:
        for service in ("responses", "panel", "notify"):
            migrate.drop_database(database(service))
    print(f"storage: done in {time.perf_counter() - started:.0f} s; databases dropped")


if __name__ == "__main__":
    main()
