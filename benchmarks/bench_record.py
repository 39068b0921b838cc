"""The responses consumer's work per submission, in one process: ``intake.record_batch``.

    python -m benchmarks.bench_record [--batches 20] [--batch 100] [--profile]

Batches of ``--batch`` submissions to one open ``veiligheidsgevoel`` poll (10 wijken, 10
buurten, four age bands, two sexes), each batch recorded in one transaction as the consumer
does (the responses, the counters, the open answers, the receipts, ``response_recorded`` in
the outbox), once with minimal answers (the required questions) and once with full answers
(every shown question, optional ones included, varied over 64 residents). Printed per
submission: the CPU of this process (``time.process_time``) and of its PostgreSQL backend
(``/proc/<pid>/stat``), and the wall time. Figures in CPU, so a busy machine changes them
less than it changes rates; the first two batches of each kind are not counted (warm-up).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.common import migrate
from services.common.outbox import add_events
from services.polls import library
from services.responses import intake
from services.responses.models import Poll
from tests.support.answers import full_answers, minimal_answers

PG = os.environ.get("BENCH_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432")
GM = "GM0344"


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def submissions(poll_id: uuid.UUID, answers: list[dict[str, Any]], n: int, at: int):
    out = []
    for i in range(at, at + n):
        wijk = f"WK0344{i % 10 + 1:02d}"
        out.append(
            {
                "version": 1,
                "receipt_id": str(uuid.uuid4()),
                "poll_id": str(poll_id),
                "answers": answers[i % len(answers)],
                "submitted_at": datetime.now(UTC).isoformat(),
                "channel": "app",
                "resident": {
                    "id": str(uuid.uuid4()),
                    "municipality_code": GM,
                    "wijk_code": wijk,
                    "buurt_code": f"BU{wijk[2:]}11",
                    "age_band": ("15_24", "25_44", "45_64", "65_plus")[i % 4],
                    "sex": ("man", "vrouw")[i % 2],
                    "self_selected": False,
                    "recently_moved": False,
                },
            }
        )
    return out


def run(engine: sa.Engine, kind: str, batches: int, size: int, profile: bool) -> None:
    definition = library.get_template("veiligheidsgevoel")["definition"]
    if kind == "full":
        answers = [full_answers(definition, v) for v in range(64)]
    else:
        answers = [minimal_answers(definition)]
    poll_id = uuid.uuid4()
    with Session(engine) as session, session.begin():
        session.add(
            Poll(
                id=poll_id,
                municipality_code=GM,
                version=1,
                definition=definition,
                audience={"kind": "municipality"},
                opens_at=datetime.now(UTC),
                closes_at=None,
                closed_at=None,
            )
        )
    profiler = cProfile.Profile() if profile else None
    cpu = pg = wall = 0.0
    counted = 0
    with Session(engine) as session:
        pid = session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        session.commit()
        for b in range(batches):
            batch = submissions(poll_id, answers, size, b * size)
            c0, p0, w0 = time.process_time(), backend_cpu(pid), time.perf_counter()
            if profiler and b >= 2:
                profiler.enable()
            with session.begin():
                outcomes = intake.record_batch(
                    session,
                    batch,
                    secret=b"bench",
                    emit_many=add_events,
                    today=lambda: datetime.now(UTC),
                )
            if profiler:
                profiler.disable()
            assert all(o.status == "recorded" for o in outcomes), outcomes[:3]
            if b >= 2:
                cpu += time.process_time() - c0
                pg += backend_cpu(pid) - p0
                wall += time.perf_counter() - w0
                counted += size
    print(
        f"record: answers={kind} batch={size} n={counted} "
        f"cpu_us={cpu / counted * 1e6:.0f} pg_backend_us={pg / counted * 1e6:.0f} "
        f"wall_us={wall / counted * 1e6:.0f} load={os.getloadavg()[0]:.1f}",
        flush=True,
    )
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--answers", default="minimal,full")
    args = parser.parse_args()
    url = f"{PG}/buurtpeil_bench_record_{os.getpid()}"
    migrate.drop_database(url)
    migrate.upgrade("responses", url, create=True)
    engine = sa.create_engine(url)
    try:
        for kind in args.answers.split(","):
            run(engine, kind, args.batches, args.batch, args.profile)
    finally:
        engine.dispose()
        migrate.drop_database(url)


if __name__ == "__main__":
    main()
