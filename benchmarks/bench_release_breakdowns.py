"""Time of a first results release of a poll whose respondents differ in kind and channel,
next to the same respondents all as residents answering in the app (the poll without
breakdowns: the ceiling this measures the breakdowns' cost against).

    make bench-release-breakdowns [RELEASE_N="160 400 1000"]
    PYTHONPATH=. .venv/bin/python -m benchmarks.bench_release_breakdowns [N ...] [--seed S]
                                                                         [--profile]

Each N is one poll (default: 160 400 1000): the ``veiligheidsgevoel`` template over the
buurten of three of Utrecht's wijken (West, Overvecht, Binnenstad: the size of ``make demo``'s
first wave, whose ten businesses are in the Binnenstad), N residents spread by population with
answers as ``bench-results`` draws them, 8% of them through the e-mail link, five more on
paper in one buurt, and ten businesses in the Binnenstad. The counters are built in memory
exactly as intake builds them (``intake.answer_options`` per area and stratum), so no database
is needed. Prints, per poll, the CPU seconds of ``results.next_release`` with breakdowns and
without (the ceiling), the load average, the areas whose main figures are shown and the
residents' option counts shown.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import random
import sys
import time
import uuid
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from benchmarks import bench_results as base
from services.responses import intake, results

K = 10
WIJKEN = ("WK034401", "WK034403", "WK034406")  # West, Overvecht, Binnenstad
BUSINESS_WIJK = "WK034406"
BUSINESSES, PAPER, LINK_SHARE = 10, 5, 0.08

Person = tuple[str, str | None, str | None, str, str, dict[str, Any]]  # buurt, age, sex,
# composition, channel, answers


def people(n: int, records: list[Any], poll: dict[str, Any], seed: int) -> list[Person]:
    rng = random.Random(seed)
    buurten = [
        r
        for r in records
        if r.level == "buurt" and r.population and r.code[2:8] in {w[2:8] for w in WIJKEN}
    ]
    lean = {r.code: rng.uniform(-0.6, 0.6) for r in buurten}
    codes = [r.code for r in buurten]

    def answers(buurt: str) -> dict[str, Any]:
        given: dict[str, Any] = {}
        for q in poll["questions"]:
            show = q.get("show_if")
            if show and given.get(show["question"]) not in show["any_of"]:
                continue
            if not q.get("required", True) and rng.random() < 0.7:
                continue
            given[q["id"]] = base.answer(rng, q, lean[buurt], given)
        return given

    out: list[Person] = []
    for buurt in rng.choices(codes, [r.population for r in buurten], k=n):
        age = rng.choice(("15_24", "25_44", "45_64", "65_plus"))
        sex = rng.choice(("man", "vrouw"))
        channel = "link" if rng.random() < LINK_SHARE else "app"
        out.append((buurt, age, sex, "panel", channel, answers(buurt)))
    paper_buurt = rng.choice(codes)
    out += [
        (
            paper_buurt,
            rng.choice(("45_64", "65_plus")),
            "vrouw",
            "panel",
            "paper",
            answers(paper_buurt),
        )
        for _ in range(PAPER)
    ]
    centre = [c for c in codes if c[2:8] == BUSINESS_WIJK[2:8]]
    for _ in range(BUSINESSES):
        buurt = rng.choice(centre)
        out.append((buurt, "?", "?", "ondernemer", "app", answers(buurt)))
    return out


def aggregates(crowd: list[Person], poll: dict[str, Any], margins: Any) -> results.Aggregates:
    questions = {q["id"]: q for q in poll["questions"]}
    base_counts: Any = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    chosen: Any = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    invited: dict[str, int] = defaultdict(int)
    for buurt, age, sex, kind, channel, answers in crowd:
        stratum = (age, sex, kind, channel)
        invited[buurt] += 2
        for area in (base.GM, "WK" + buurt[2:8], buurt):
            base_counts["*"][area][stratum] += 1
            for qid, value in answers.items():
                base_counts[qid][area][stratum] += 1
                for option in intake.answer_options(questions[qid], value):
                    chosen[qid][area][(stratum, option)] += 1
    return results.Aggregates(
        base={q: {a: dict(c) for a, c in v.items()} for q, v in base_counts.items()},
        chosen={q: {a: dict(c) for a, c in v.items()} for q, v in chosen.items()},
        invited=dict(invited),
        margins=margins,
        texts={},
    )


def as_residents_in_app(crowd: list[Person]) -> list[Person]:
    return [
        (b, a if k == "panel" else "45_64", s if k == "panel" else "man", "panel", "app", x)
        for b, a, s, k, _c, x in crowd
    ]


def timed(call: Any, profile: bool) -> tuple[float, Any]:
    prof = cProfile.Profile() if profile else None
    if prof:
        prof.enable()
    started = time.process_time()
    out = call()
    spent = time.process_time() - started
    if prof:
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
    return spent, out


def shown(release: Any) -> str:
    """Areas whose main figures are shown, and the residents' counts shown over every
    question and area (the main figures a municipality reads)."""
    doc = release.documents["all"]
    areas = doc["areas"]
    cells = [
        o["count"]
        for q in doc["questions"]
        for figures in q["areas"].values()
        for o in figures.get("options", [])
    ]
    return (
        f"{sum(1 for a in areas if not a['suppressed'])}/{len(areas)} areas shown, "
        f"{sum(c is not None for c in cells)}/{len(cells)} main counts shown"
    )


def main() -> None:
    args = sys.argv[1:]
    profile = "--profile" in args
    seed = int(args[args.index("--seed") + 1]) if "--seed" in args else base.SEED
    sizes = [
        int(a)
        for a in args
        if a.isdigit() and (args.index(a) == 0 or args[args.index(a) - 1] != "--seed")
    ]
    records, payload = base.areas()
    margins = {
        a["code"]: {"name": a["name"], "sex": a["sex"], "age": a["age"]} for a in payload["areas"]
    }
    definition = base.definition()
    poll = SimpleNamespace(
        id=uuid.UUID(int=14),
        definition=definition,
        municipality_code=base.GM,
        audience={"kind": "areas", "area_codes": list(WIJKEN)},
        closed_at=None,
        k=None,
    )
    for n in sizes or (160, 400, 1000):
        crowd = people(n, records, definition, seed + n)
        load = os.getloadavg()[0]
        with_splits = aggregates(crowd, definition, margins)
        residents_only = aggregates(as_residents_in_app(crowd), definition, margins)
        split_s, split = timed(
            lambda data=with_splits: results.next_release(poll, data, K, None, closed=False),
            profile,
        )
        plain_s, plain = timed(
            lambda data=residents_only: results.next_release(poll, data, K, None, closed=False),
            profile,
        )
        print(
            f"release_breakdowns n={len(crowd)} with_breakdowns_cpu_s={split_s:.1f} "
            f"({shown(split)}, {len(split.hidden)} hidden) ceiling_residents_in_app_cpu_s="
            f"{plain_s:.1f} ({shown(plain)}, {len(plain.hidden)} hidden) "
            f"ratio={split_s / max(plain_s, 0.01):.1f} load={load:.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
