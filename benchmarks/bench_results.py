"""Results of a poll with a million responses, against the same figures by GROUP BY over the raw
responses, measured in the same run.

    make bench-results       (RESULTS_N responses, default 1,000,000; RESULTS_CALLS, default 100)

Setup: a fresh database for responses, Utrecht's CBS margins (KWB 2024), one poll from the
``veiligheidsgevoel`` template, and RESULTS_N responses spread over Utrecht's 111 buurten by
population, with age band and sex drawn from each buurt's margins (skewed, as panels are: more
45+ and more women; a few unknown), answers varied per buurt. The responses table is loaded by
COPY, and the counters by one INSERT … SELECT over it that is checked, on a sample recorded
through the real ``intake.record_batch``, to give exactly the rows intake writes.

Figure: p95 of the responses service's ``results_json`` RPC (what the gateway's results route
calls and passes on) over the real broker (a ``nameko run`` process, ClusterRpcProxy in this
one), ``RESULTS_CALLS`` calls; the gateway's HTTP hop is not included. Printed beside it: the
p95 of calls that each follow a change to the poll's counters (a fresh computation each time).
Ceiling: "naive", the same figures computed by GROUP BY over the raw responses table (counts
per question, option, area and stratum), then the same weighting and suppression, in this
process (no broker: that favours naive). The run checks that both give the same results.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import signal
import subprocess
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy.orm import Session

from services.common import migrate
from services.panel import areas as cbs
from services.polls import library
from services.responses import intake, results
from services.responses.models import AreaMargins, Poll
from tests.support import infra
from tests.support.notify import wait_for_consumer

N = int(os.environ.get("RESULTS_N", "1000000"))
CALLS = int(os.environ.get("RESULTS_CALLS", "100"))
COLD_CALLS = int(os.environ.get("RESULTS_COLD_CALLS", "10"))
NAIVE_CALLS = int(os.environ.get("RESULTS_NAIVE_CALLS", "3"))
PG = os.environ.get("BENCH_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432")
GM = "GM0344"
K = 10
SEED = 20261125
OPEN_TEXTS = (
    "Slecht verlicht fietspad langs het water",
    "Groepen jongeren bij het winkelcentrum 's avonds",
    "Te hard rijden in de straat",
    "Donkere onderdoorgang bij het station",
    "Geen mensen op straat na tienen",
)

# --------------------------------------------------------------------------- the population


def areas() -> tuple[list[cbs.AreaRecord], dict[str, Any]]:
    records, _ = cbs.load_project_data(2024)
    return records, cbs.margins_payload(records)


def definition() -> dict[str, Any]:
    return library.get_template("veiligheidsgevoel")["definition"]


def draw(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), list(weights.values()))[0]


def answer(rng: random.Random, q: dict[str, Any], lean: float, given: dict[str, Any]) -> Any:
    """A valid answer; ``lean`` (per buurt) moves the scales, so buurten differ."""
    kind = q["type"]
    if kind == "likert5":
        return min(5, max(1, round(rng.gauss(3.2 + lean, 1.0))))
    if kind == "rating10":
        if q.get("dont_know") and rng.random() < 0.04:
            return "dont_know"
        return min(10, max(0, round(rng.gauss(6.8 + 1.5 * lean, 1.6))))
    if kind == "single_choice":
        options = [o["id"] for o in q["options"]]
        return options[min(len(options) - 1, int(abs(rng.gauss(0.8 - lean, 1.0))))]
    if kind == "multiple_choice":
        exclusive = [o["id"] for o in q["options"] if o.get("exclusive")]
        if exclusive and rng.random() < 0.05:
            return exclusive[:1]
        plain = [o["id"] for o in q["options"] if not o.get("exclusive")]
        top = q.get("max_selections", 3)
        return rng.sample(plain[: 6 + int(4 * abs(lean))], rng.randint(1, top))
    if kind == "ranking":
        options = [o["id"] for o in q["options"]]
        first = options[: 4 + int(4 * abs(lean))]
        top = rng.choice(first)
        rest = rng.sample([o for o in options if o != top], q.get("rank_count", 3) - 1)
        return [top, *rest]
    if kind == "location":
        return {
            "lat": round(52.09 + rng.random() / 50, 5),
            "lon": round(5.12 + rng.random() / 50, 5),
        }
    if kind == "open_text":
        return f"{rng.choice(OPEN_TEXTS)} ({rng.randint(1, 99)})"
    raise ValueError(kind)


def respondents(n: int, records: list[cbs.AreaRecord], poll: dict[str, Any], seed: int):
    """(buurt, wijk, age band, sex, self-selected, answers) for n respondents."""
    rng = random.Random(seed)
    buurten = [r for r in records if r.level == "buurt" and r.population]
    lean = {r.code: rng.uniform(-0.6, 0.6) for r in buurten}
    skew_age = {"15_24": 0.6, "25_44": 0.8, "45_64": 1.4, "65_plus": 1.3}
    strata = {}
    for r in buurten:
        age = {b: (r.age.get(b) or 0) * skew_age[b] for b in skew_age}
        sex = {"man": (r.sex.get("man") or 0) * 0.85, "vrouw": (r.sex.get("vrouw") or 0) * 1.1}
        strata[r.code] = (age if sum(age.values()) else {"45_64": 1.0}, sex)
    codes = [r.code for r in buurten]
    picks = rng.choices(codes, [r.population for r in buurten], k=n)
    questions = poll["questions"]
    for buurt in picks:
        age, sex = strata[buurt]
        u = rng.random()
        a = None if u < 0.02 else draw(rng, age)
        s = None if u > 0.985 else ("anders" if u > 0.98 else draw(rng, sex))
        given: dict[str, Any] = {}
        for q in questions:
            show = q.get("show_if")
            if show and given.get(show["question"]) not in show["any_of"]:
                continue
            if not q.get("required", True):
                if q["id"] == "waarom_plek" and "onveilige_plek" not in given:
                    continue
                if rng.random() < (0.6 if q["type"] == "location" else 0.85):
                    continue
            given[q["id"]] = answer(rng, q, lean[buurt], given)
        yield buurt, f"WK{buurt[2:8]}", a, s, rng.random() < 0.2, given


# --------------------------------------------------------------------------- seeding

# Counters as intake writes them (``intake._bump_counters``), from the raw rows: per area
# (gemeente, wijk, buurt) and stratum, the respondents ("*"), those who answered each question
# of the poll, and per option chosen (multiple choice: each; ranking: the first; scales and
# single choice: the value).
QUESTIONS_CTE = """
questions(question_id, type) AS (
    SELECT q->>'id', q->>'type' FROM polls, jsonb_array_elements(definition->'questions') q
    WHERE polls.id = :poll_id
),
base AS (
    SELECT r.answers, r.age_band, r.sex, r.self_selected, area.code AS area_code
    FROM responses r,
         LATERAL (VALUES (:gm), (r.wijk_code), (r.buurt_code)) AS area(code)
    WHERE r.poll_id = :poll_id
),
answered AS (
    SELECT b.*, a.key AS question_id, a.value, q.type
    FROM base b, jsonb_each(b.answers) a JOIN questions q ON q.question_id = a.key
)
"""
COUNTS_SELECT = f"""
WITH {QUESTIONS_CTE}
SELECT question_id, option, area_code, coalesce(age_band, '?') AS age_band,
       coalesce(sex, '?') AS sex, self_selected, count(*) AS n
FROM (
    SELECT a.*, o.option FROM answered a,
    LATERAL (
        SELECT jsonb_array_elements_text(a.value) WHERE a.type = 'multiple_choice'
        UNION ALL SELECT a.value->>0 WHERE a.type = 'ranking' AND jsonb_array_length(a.value) > 0
        UNION ALL SELECT a.value #>> '{{}}'
            WHERE a.type IN ('single_choice', 'likert5', 'rating10')
    ) AS o(option)
) chosen
GROUP BY question_id, option, area_code, age_band, sex, self_selected
"""
RESPONDENTS_SELECT = f"""
WITH {QUESTIONS_CTE}
SELECT '*' AS question_id, area_code, coalesce(age_band, '?') AS age_band,
       coalesce(sex, '?') AS sex, self_selected, count(*) AS n
FROM base GROUP BY area_code, age_band, sex, self_selected
UNION ALL
SELECT question_id, area_code, coalesce(age_band, '?'), coalesce(sex, '?'), self_selected,
       count(*)
FROM answered GROUP BY question_id, area_code, age_band, sex, self_selected
"""


def copy_responses(engine: sa.Engine, poll_id: uuid.UUID, rows, start: int = 0) -> tuple[int, int]:
    """COPY responses (and open texts) in chunks; returns (responses, open texts). ``start``:
    responses already stored for the poll (their respondent keys are taken)."""
    count = texts = 0
    today = date.today().isoformat()
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        buf, tbuf = io.StringIO(), io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        tw = csv.writer(tbuf, lineterminator="\n")

        def flush() -> None:
            buf.seek(0)
            cur.copy_expert(
                "COPY responses (id, poll_id, respondent_key, wijk_code, buurt_code, age_band,"
                " sex, self_selected, answers, recorded_on) FROM STDIN WITH (FORMAT csv)",
                buf,
            )
            tbuf.seek(0)
            cur.copy_expert(
                "COPY open_texts (id, poll_id, question_id, wijk_code, buurt_code, text)"
                " FROM STDIN WITH (FORMAT csv)",
                tbuf,
            )
            for b in (buf, tbuf):
                b.seek(0)
                b.truncate()

        for buurt, wijk, age, sex, self_selected, answers in rows:
            count += 1
            w.writerow(
                (
                    uuid.uuid4(),
                    poll_id,
                    f"{start + count:064x}",
                    wijk,
                    buurt,
                    age or "",
                    sex or "",
                    "t" if self_selected else "f",
                    json.dumps(answers),
                    today,
                )
            )
            for qid in ("waarom_plek", "tips"):
                if qid in answers:
                    texts += 1
                    tw.writerow((uuid.uuid4(), poll_id, qid, wijk, buurt, answers[qid]))
            if count % 50000 == 0:
                flush()
        flush()
        raw.commit()
    finally:
        raw.close()
    return count, texts


def seed_counters(session: Session, poll_id: uuid.UUID) -> None:
    params = {"poll_id": poll_id, "gm": GM}
    session.execute(
        sa.text(
            "INSERT INTO counts (question_id, option, area_code, age_band, sex, self_selected, n,"
            f" poll_id) SELECT *, :poll_id FROM ({COUNTS_SELECT}) c"
        ),
        params,
    )
    session.execute(
        sa.text(
            "INSERT INTO respondents (question_id, area_code, age_band, sex, self_selected, n,"
            f" poll_id) SELECT *, :poll_id FROM ({RESPONDENTS_SELECT}) r"
        ),
        params,
    )


def add_poll(session: Session, poll_id: uuid.UUID, poll: dict[str, Any]) -> None:
    session.add(
        Poll(
            id=poll_id,
            municipality_code=GM,
            version=1,
            definition=poll,
            audience={"kind": "municipality"},
            opens_at=datetime.now(UTC),
            closes_at=None,
            closed_at=None,
        )
    )
    session.flush()


def submission(poll_id: uuid.UUID, person: tuple) -> dict[str, Any]:
    """One respondent of ``respondents`` as the gateway puts it on the intake queue."""
    buurt, wijk, age, sex, self_selected, answers = person
    return {
        "receipt_id": str(uuid.uuid4()),
        "poll_id": str(poll_id),
        "resident": {
            "id": str(uuid.uuid4()),
            "municipality_code": GM,
            "wijk_code": wijk,
            "buurt_code": buurt,
            "age_band": age,
            "sex": sex,
            "self_selected": self_selected,
        },
        "answers": answers,
        "submitted_at": datetime.now(UTC).isoformat(),
    }


def check_seeding_matches_intake(engine: sa.Engine, records, poll: dict[str, Any]) -> None:
    """Record a sample through intake.record_batch; the seeding SQL must give the same rows."""
    recorded, seeded = uuid.uuid4(), uuid.uuid4()
    sample = list(respondents(1000, records, poll, SEED + 1))
    with Session(engine) as session, session.begin():
        add_poll(session, recorded, poll)
        add_poll(session, seeded, poll)
        submissions = [submission(recorded, person) for person in sample]
        for i in range(0, len(submissions), 500):
            intake.record_batch(
                session,
                submissions[i : i + 500],
                secret=b"bench",
                emit_many=lambda *a: None,
                today=lambda: datetime.now(UTC),
            )
    copy_responses(engine, seeded, iter(sample))
    with Session(engine) as session, session.begin():
        seed_counters(session, seeded)
        for table, cols in (
            ("counts", "question_id, option, area_code, age_band, sex, self_selected, n"),
            ("respondents", "question_id, area_code, age_band, sex, self_selected, n"),
        ):
            a, b = (
                set(
                    session.execute(
                        sa.text(f"SELECT {cols} FROM {table} WHERE poll_id = :p"), {"p": p}
                    )
                )
                for p in (recorded, seeded)
            )
            assert a == b, f"{table}: seeding differs from intake in {len(a ^ b)} rows"
        for p in (recorded, seeded):
            for table in ("counts", "respondents", "responses", "open_texts", "receipts", "polls"):
                column = "id" if table == "polls" else "poll_id"
                session.execute(sa.text(f"DELETE FROM {table} WHERE {column} = :p"), {"p": p})


# --------------------------------------------------------------------------- naive


# Naive groups by buurt only (one row per answer, not three) and adds buurten up to their wijk
# and the gemeente in Python: the fair way to do it without counters.
BY_BUURT = (
    "LATERAL (VALUES (:gm), (r.wijk_code), (r.buurt_code))",
    "LATERAL (VALUES (r.buurt_code))",
)


def naive_aggregates(session: Session, poll: Poll) -> results.Aggregates:
    """The aggregates ``results.read_aggregates`` reads from the counters, here by GROUP BY
    over the raw responses (the open answers and invitations are read as ours does)."""
    params = {"poll_id": poll.id, "gm": GM}
    base: dict = defaultdict(lambda: defaultdict(dict))
    for qid, buurt, age, sex, selected, n in session.execute(
        sa.text(RESPONDENTS_SELECT.replace(*BY_BUURT)), params
    ):
        stratum = (age, sex, "self_selected" if selected else "panel")
        for area in (GM, f"WK{buurt[2:8]}", buurt):
            cells = base[qid][area]
            cells[stratum] = cells.get(stratum, 0) + n
    chosen: dict = defaultdict(lambda: defaultdict(dict))
    for qid, option, buurt, age, sex, selected, n in session.execute(
        sa.text(COUNTS_SELECT.replace(*BY_BUURT)), params
    ):
        stratum = (age, sex, "self_selected" if selected else "panel")
        for area in (GM, f"WK{buurt[2:8]}", buurt):
            cells = chosen[qid][area]
            cells[(stratum, option)] = cells.get((stratum, option), 0) + n
    texts: dict = defaultdict(dict)
    for qid, wijk, _kind, total, text in session.execute(
        sa.text(results.TEXTS_SQL.replace("%(poll_id)s", ":p").replace("%(shown)s", ":s")),
        {"p": poll.id, "s": results.OPEN_TEXTS_SHOWN},
    ):
        texts[qid].setdefault(wijk, (total, []))[1].append(text)
    invited = dict(
        session.execute(
            sa.text("SELECT area_code, n FROM invited WHERE poll_id = :p"), {"p": poll.id}
        ).all()
    )
    year, margins = results.latest_margins(session, GM)
    return results.Aggregates(
        base=base,
        chosen=chosen,
        invited=invited,
        margins=margins,
        texts=texts,
        margins_year=year,
    )


def differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Where two results documents differ; rounded floats may differ by one unit of their last
    decimal (sums over the same cells in another order)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{where}: keys {sorted(a.keys() ^ b.keys())}"]
        return [d for key in a for d in differences(a[key], b[key], f"{where}.{key}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} != {len(b)} items"]
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in differences(x, y, f"{where}[{i}]")
        ]
    if isinstance(a, float) and isinstance(b, float | int) and not isinstance(b, bool):
        return [] if abs(a - b) <= 0.1 + 1e-9 else [f"{where}: {a} != {b}"]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# --------------------------------------------------------------------------- the run


def seed(
    engine: sa.Engine, records: list[cbs.AreaRecord], payload: dict[str, Any], poll: dict, n: int
) -> uuid.UUID:
    """A published poll with ``n`` responses and their counters, Utrecht's margins; checked
    against intake first. Returns the poll's id."""
    started = time.perf_counter()
    check_seeding_matches_intake(engine, records, poll)
    poll_id = uuid.uuid4()
    with Session(engine) as session, session.begin():
        add_poll(session, poll_id, poll)
        session.execute(
            sa.insert(AreaMargins),
            [{"municipality_code": GM, "year": payload["year"], **a} for a in payload["areas"]],
        )
    stored, texts = copy_responses(engine, poll_id, respondents(n, records, poll, SEED))
    with Session(engine) as session, session.begin():
        seed_counters(session, poll_id)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("VACUUM ANALYZE"))
        counters = conn.execute(
            sa.text("SELECT (SELECT count(*) FROM counts), (SELECT count(*) FROM respondents)")
        ).one()
    print(
        f"  seeded {stored} responses ({texts} open answers), {counters[0]} count rows and "
        f"{counters[1]} respondent rows in {time.perf_counter() - started:.0f} s"
    )
    return poll_id


def tear_down(process: Any, engine: sa.Engine, url: str, vhost: str) -> None:
    """Stop the responses process, drop the benchmark's database and vhost."""
    if process is not None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
    engine.dispose()
    migrate.drop_database(url)
    infra.delete_vhost(vhost)


def main() -> None:
    url = f"{PG}/buurtpeil_bench_results"
    migrate.drop_database(url)
    migrate.upgrade("responses", url, create=True)
    engine = sa.create_engine(url)
    records, payload = areas()
    poll = definition()
    vhost = f"bp_bench_results_{os.getpid()}"
    amqp_uri = infra.create_vhost(vhost)
    work = Path(tempfile.mkdtemp(prefix="bench-results-"))
    process = None
    try:
        poll_id = seed(engine, records, payload, poll, N)
        process = infra.nameko_run(
            "responses",
            {
                "AMQP_URI": amqp_uri,
                "RESPONSES_DATABASE_URL": url,
                "RESPONSES_METRICS_PORT": "0",
                "LOG_LEVEL": "WARNING",
                # Each "fresh" read below must compute: no previous document served meanwhile
                # (bench_results_live measures reads while answers arrive).
                "RESULTS_REFRESH_IN_BACKGROUND": "false",
            },
            work / "responses.log",
        )
        wait_for_consumer(amqp_uri, "rpc-responses")
        bump = sa.text("UPDATE polls SET results_version = results_version + 1 WHERE id = :p")
        with ClusterRpcProxy({"AMQP_URI": amqp_uri}) as rpc:
            ours = json.loads(rpc.responses.results_json(GM, str(poll_id), K))  # warms up too
            cold = []
            for _ in range(COLD_CALLS):
                with engine.begin() as conn:  # as if a batch had been counted
                    conn.execute(bump, {"p": poll_id})
                t = time.perf_counter()
                rpc.responses.results_json(GM, str(poll_id), K)
                cold.append(time.perf_counter() - t)
            warm = []
            for _ in range(CALLS):
                t = time.perf_counter()
                rpc.responses.results_json(GM, str(poll_id), K)
                warm.append(time.perf_counter() - t)

        naive, naive_doc = [], None
        for _ in range(NAIVE_CALLS):
            t = time.perf_counter()
            with Session(engine) as session:
                row = session.get(Poll, poll_id)
                naive_doc = results.build(row, naive_aggregates(session, row), K)
            naive.append(time.perf_counter() - t)
    finally:
        tear_down(process, engine, url, vhost)

    diff = differences(ours, json.loads(json.dumps(naive_doc)))
    shown = sum(1 for a in ours["areas"] if not a["suppressed"])
    print(
        f"  results: {len(ours['questions'])} questions, {shown} of {len(ours['areas'])} areas "
        f"shown at k={K}, {len(json.dumps(ours)) // 1024} KiB; ours = naive: "
        f"{'yes' if not diff else 'NO'}"
    )
    assert not diff, diff[:10]
    p95, cold_p95, naive_p95 = (percentile(v, 0.95) * 1000 for v in (warm, cold, naive))
    print(
        f"  ours: responses.results_json RPC over RabbitMQ, {CALLS} calls: p50 "
        f"{percentile(warm, 0.5) * 1000:.1f} ms, p95 {p95:.1f} ms; right after a change to "
        f"the counters ({COLD_CALLS} calls, computed afresh): p95 {cold_p95:.0f} ms"
    )
    print(
        f"  naive: GROUP BY over the raw responses, same weighting and suppression, in-process "
        f"(no broker), {NAIVE_CALLS} calls: p95 {naive_p95:.0f} ms; "
        f"speedup when fresh {naive_p95 / cold_p95:.1f}x"
    )
    print(
        f"results: n={N} p95_ms={p95:.1f} naive_p95_ms={naive_p95:.0f} "
        f"speedup={naive_p95 / p95:.0f}"
    )


if __name__ == "__main__":
    main()
