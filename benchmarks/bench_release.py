"""Time of one results release (suppression included) of the ``bench_results`` poll.

    PYTHONPATH=. .venv/bin/python -m benchmarks.bench_release N [--profile] [--save FILE]
    PYTHONPATH=. .venv/bin/python -m benchmarks.bench_release --load FILE [--profile]

``--first``: the first release only; ``--hidden FILE``: its hidden cells as JSON.

Seeds N responses as ``make bench-results`` does (the ``veiligheidsgevoel`` template over
Utrecht's 111 buurten) in a fresh database, reads the aggregates and times
``results.next_release``: a first release, then — after ``EXTRA`` more responses — the next
release of a live poll (the path a dashboard read takes) and a final one (after close).
``--save`` keeps the aggregates (pickled) so that ``--load`` times the same poll without a
database.
"""

from __future__ import annotations

import cProfile
import json
import pickle
import pstats
import sys
import time
import uuid
from collections import defaultdict
from types import SimpleNamespace

import sqlalchemy as sa
from sqlalchemy.orm import Session

from benchmarks import bench_results as base
from services.common import migrate
from services.responses import results
from services.responses.models import Poll

EXTRA = 300
K = 10


def _by_area() -> defaultdict:
    return defaultdict(dict)


def picklable(data: results.Aggregates) -> results.Aggregates:
    """The same aggregates with the nested defaultdicts of ``read_aggregates`` rebuilt on a
    module-level factory (a lambda cannot be pickled)."""
    for name in ("base", "chosen"):
        nested = defaultdict(_by_area)
        for key, inner in getattr(data, name).items():
            nested[key] = defaultdict(dict, inner)
        setattr(data, name, nested)
    return data


def seeded(n: int) -> tuple[SimpleNamespace, results.Aggregates, results.Aggregates]:
    url = f"{base.PG}/buurtpeil_time_build_fastsup"
    migrate.drop_database(url)
    migrate.upgrade("responses", url, create=True)
    engine = sa.create_engine(url)
    try:
        records, payload = base.areas()
        poll = base.definition()
        pid = uuid.uuid4()
        started = time.perf_counter()
        with Session(engine) as session, session.begin():
            base.add_poll(session, pid, poll)
            session.execute(
                sa.insert(base.AreaMargins),
                [
                    {"municipality_code": base.GM, "year": payload["year"], **a}
                    for a in payload["areas"]
                ],
            )
        base.copy_responses(engine, pid, base.respondents(n, records, poll, base.SEED))
        with Session(engine) as session, session.begin():
            base.seed_counters(session, pid)
        print(f"seeded {n} in {time.perf_counter() - started:.0f} s", flush=True)
        with Session(engine) as session:
            row = session.get(Poll, pid)
            first = results.read_aggregates(session, row)
            poll_row = SimpleNamespace(
                id=row.id,
                municipality_code=row.municipality_code,
                definition=row.definition,
                k=None,
                closed_at=None,
            )
        base.copy_responses(engine, pid, base.respondents(EXTRA, records, poll, base.SEED + 1), n)
        with Session(engine) as session, session.begin():
            for table in ("counts", "respondents"):
                session.execute(sa.text(f"DELETE FROM {table} WHERE poll_id = :p"), {"p": pid})
            base.seed_counters(session, pid)
        with Session(engine) as session:
            second = results.read_aggregates(session, session.get(Poll, pid))
        return poll_row, first, second
    finally:
        engine.dispose()
        migrate.drop_database(url)


def timed(what: str, profile: bool, call):
    prof = cProfile.Profile() if profile else None
    if prof:
        prof.enable()
    started = time.perf_counter()
    out = call()
    print(f"{what}: {time.perf_counter() - started:.2f} s", flush=True)
    if prof:
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
    return out


def main() -> None:
    args = sys.argv[1:]
    profile = "--profile" in args
    if "--load" in args:
        with open(args[args.index("--load") + 1], "rb") as f:
            poll, first, second = pickle.load(f)
    else:
        poll, first, second = seeded(int(args[0]))
        if "--save" in args:
            with open(args[args.index("--save") + 1], "wb") as f:
                pickle.dump((poll, picklable(first), picklable(second)), f)
    new = timed(
        "first release", profile, lambda: results.next_release(poll, first, K, None, closed=False)
    )
    shown = sum(1 for a in new.documents["all"]["areas"] if not a["suppressed"])
    print(f"  {len(new.hidden)} hidden cells, {shown} areas shown", flush=True)
    if "--hidden" in args:  # the hidden cells, to compare two versions of the code
        with open(args[args.index("--hidden") + 1], "w") as f:
            json.dump(sorted(map(list, new.hidden), key=str), f)
    if "--first" in args:
        return
    live = timed(
        f"next release (+{EXTRA}, open)",
        profile,
        lambda: results.next_release(poll, second, K, new, closed=False),
    )
    print(f"  {'released' if live else 'not released (previous served)'}", flush=True)
    final = timed(
        f"next release (+{EXTRA}, closed)",
        profile,
        lambda: results.next_release(poll, second, K, new, closed=True),
    )
    print(f"  {len(final.hidden)} hidden cells", flush=True)


if __name__ == "__main__":
    main()
