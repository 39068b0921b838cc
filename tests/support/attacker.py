"""A reader with a linear-programming solver (HiGHS through scipy), attacking published results
documents, and random polls to attack — answered respondent by respondent and run through the
project's own results code (services/responses/results.py).

The attacker knows what a staff member knows: the poll definition (question kinds, options,
min/max selections, sole options, required, show_if), the CBS areas of the municipality and
the audience, and every published document (both views: all respondents and the panel). It
writes down every relation those imply — buurt → wijk → gemeente sums of every figure, options
→ totals, selections per answer, asked → answered (skips), the respondents' composition,
all = panel + the others (each part a poll of its own, with every relation), respondents ≤
invited where invitations are shown, at least one respondent in an area listed only because
someone there answered, every published count — and then, for every hidden figure of 1..k-1
people, minimises and maximises it. A figure leaks when the range it gets does not include 0
and does not reach k (it is "proved to lie in 1..k-1"); it is pinned when min = max.

For results over time the same reader takes two released versions of one poll: the figures at
both times and their difference (the respondents added in between, a poll of their own with
every relation), every count ≥ 0, and attacks the small figures of all three.

For waves of a series (``random_wave_pair``, ``attack_waves``) it takes two polls asked of the
same panel, told exactly how their respondents differ (one buurt, a changed answer or a few
more or fewer): both waves with every relation, and wave 2 = wave 1 + added − removed.
"""

from __future__ import annotations

import math
import random
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import coo_array

from services.common.pollspec import validate_answers, validate_definition, visible_questions
from services.responses import results

GM = "GM0344"
AGES = ("15_24", "25_44", "45_64", "65_plus", None)
SEXES = ("man", "vrouw", "anders", None)
KINDS = ("panel", "self_selected", "recently_moved")
VIEWS = ("all", "panel", "rest")  # rest = all − panel: never published, a poll all the same
# Issue 14: who answered and how. "all" and "panel" are residents (the two views); the reader
# also gets every breakdown: per kind of participant, all participants ("everyone") and per
# channel, with everyone = residents + businesses + organisations = app + link + paper.
PARTICIPANTS = ("resident", "ondernemer", "organisatie")
CHANNELS = ("app", "link", "paper")
SETS = (*VIEWS, "ondernemer", "organisatie", "everyone", *CHANNELS)
# Where each breakdown of a results document puts its figures: by_kind / by_channel key → set.
KIND_SET = {"resident": "all", "ondernemer": "ondernemer", "organisatie": "organisatie"}
KIND_SET["all"] = "everyone"
CHOICE = ("single_choice", "multiple_choice", "likert5", "rating10")
ALL_KINDS = (*CHOICE, "ranking", "open_text")
TABLED = ALL_KINDS  # every kind here has figures per area (location has none)


def options_of(q: Mapping[str, Any]) -> list[str]:
    """The options a question's figures are counted under (scales: their values)."""
    if q["type"] == "likert5":
        return [str(v) for v in range(1, 6)] + (["dont_know"] if q.get("dont_know") else [])
    if q["type"] == "rating10":
        return [str(v) for v in range(0, 11)] + (["dont_know"] if q.get("dont_know") else [])
    if q["type"] == "open_text":
        return []
    return [o["id"] for o in q["options"]]


def _parent(code: str) -> str | None:
    if code.startswith("BU"):
        return f"WK{code[2:8]}"
    if code.startswith("WK"):
        return f"GM{code[2:6]}"
    return None


# -- random polls --------------------------------------------------------------------------


def random_definition(rng: random.Random) -> dict[str, Any]:
    """2–6 questions of every kind, with option constraints, optional and follow-up ones."""
    questions: list[dict[str, Any]] = []
    for i in range(rng.randint(2, 6)):
        kind = rng.choice(ALL_KINDS)
        q: dict[str, Any] = {"id": f"q{i}", "type": kind, "text": f"Vraag {i}"}
        if kind in ("single_choice", "multiple_choice", "ranking"):
            n = rng.randint(2, 4)
            q["options"] = [{"id": f"o{j}", "label": f"Optie {j}"} for j in range(n)]
        if kind == "multiple_choice":
            shape = rng.choice(("free", "one", "exact", "range", "sole"))
            n = len(q["options"])
            if shape == "one":
                q["max_selections"] = 1
            elif shape == "exact":
                m = rng.randint(1, n)
                q["min_selections"] = q["max_selections"] = m
            elif shape == "range" and n > 2:
                q["min_selections"], q["max_selections"] = 1, n - 1
            elif shape == "sole":
                q["options"].append({"id": "geen", "label": "Geen", "exclusive": True})
        if kind == "ranking" and rng.random() < 0.5:
            q["rank_count"] = rng.randint(1, len(q["options"]))
        if kind == "likert5":
            q["labels"] = ["a", "b", "c", "d", "e"]
        if kind == "rating10":
            q["low_label"], q["high_label"] = "laag", "hoog"
        if kind in ("likert5", "rating10") and rng.random() < 0.3:
            q["dont_know"] = "Weet niet"
        if rng.random() < 0.35:
            q["required"] = False
        sources = [p for p in questions if p["type"] in CHOICE]
        if sources and rng.random() < 0.35:
            source = rng.choice(sources)
            values = _values(source)
            q["show_if"] = {
                "question": source["id"],
                "any_of": rng.sample(values, rng.randint(1, 2)),
            }
        questions.append(q)
    definition = {
        "schema_version": 1,
        "title": "Aanval",
        "intro": "Een willekeurige peiling.",
        "theme": "veiligheid",
        "estimated_minutes": 3,
        "language": "nl",
        "questions": questions,
    }
    validate_definition(definition)
    return definition


def _values(q: Mapping[str, Any]) -> list[Any]:
    if q["type"] == "likert5":
        return list(range(1, 6))
    if q["type"] == "rating10":
        return list(range(0, 11))
    return [o["id"] for o in q["options"]]


def random_answer(q: Mapping[str, Any], rng: random.Random, lean: float) -> Any:
    kind = q["type"]
    if kind == "single_choice":
        options = [o["id"] for o in q["options"]]
        return options[0] if rng.random() < lean else rng.choice(options)
    if kind == "multiple_choice":
        plain = [o["id"] for o in q["options"] if not o.get("exclusive")]
        sole = [o["id"] for o in q["options"] if o.get("exclusive")]
        if sole and rng.random() < 0.15:
            return [rng.choice(sole)]
        low = q.get("min_selections", 1)
        high = min(q.get("max_selections", len(plain)), len(plain))
        return rng.sample(plain, rng.randint(low, high))
    if kind == "ranking":
        options = [o["id"] for o in q["options"]]
        rng.shuffle(options)
        return options[: q.get("rank_count", len(options))]
    if kind in ("likert5", "rating10"):
        if q.get("dont_know") and rng.random() < 0.1:
            return "dont_know"
        values = _values(q)
        return values[-1] if rng.random() < lean else rng.choice(values)
    return f"tekst {rng.randint(0, 10**6)}"


@dataclass
class Respondent:
    buurt: str
    age: str | None
    sex: str | None
    kind: str
    answers: dict[str, Any]
    participant: str = "resident"
    channel: str = "app"

    def sets(self) -> tuple[str, ...]:
        """The sets of respondents (``SETS``) this one counts in."""
        if self.participant == "resident":
            who: tuple[str, ...] = ("all", "panel" if self.kind == "panel" else "rest")
        else:
            who = (self.participant,)
        return (*who, "everyone", self.channel)


@dataclass
class PollCase:
    """A random poll: its definition, areas, respondents in the order they answered."""

    seed: int
    definition: dict[str, Any]
    buurten: list[str]  # every buurt of the audience (some get nobody)
    respondents: list[Respondent]
    k: int
    margins_known: bool
    invited_extra: dict[str, int] = field(default_factory=dict)
    margins_of: dict[str, dict[str, Any]] | None = None  # CBS figures by area, when given
    regions: dict[str, list[str]] = field(default_factory=dict)  # region code → its buurten

    def poll(self, closed: bool = False) -> SimpleNamespace:
        audience: dict[str, Any] = {"kind": "municipality", "area_codes": []}
        if self.regions:
            audience["regions"] = [
                {"code": code, "name": code, "version": 1, "buurt_codes": members}
                for code, members in self.regions.items()
            ]
        return SimpleNamespace(
            id=uuid.UUID(int=self.seed),
            definition=self.definition,
            municipality_code=GM,
            audience=audience,
            closed_at=None,
        )

    def areas_of(self, buurt: str) -> list[str]:
        """Every area a respondent of this buurt counts in: gemeente, wijk, buurt, regions."""
        regions = [code for code, members in self.regions.items() if buurt in members]
        return [GM, "WK" + buurt[2:8], buurt, *regions]

    def aggregates(self, count: int | None = None) -> Any:
        """The counters intake would hold after the first ``count`` respondents."""
        people = self.respondents if count is None else self.respondents[:count]
        questions = {q["id"]: q for q in self.definition["questions"]}
        base: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
        chosen: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
        texts: dict = defaultdict(lambda: defaultdict(list))
        kind_texts: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
        for r in people:
            composition = r.kind if r.participant == "resident" else r.participant
            stratum: tuple = (r.age or "?", r.sex or "?", composition, r.channel)
            wijk = "WK" + r.buurt[2:8]
            for area in (GM, wijk, r.buurt):
                base["*"][area][stratum] += 1
                for qid, value in r.answers.items():
                    base[qid][area][stratum] += 1
                    for option in _counted(questions[qid], value):
                        chosen[qid][area][(stratum, option)] += 1
            for qid, value in r.answers.items():
                if questions[qid]["type"] == "open_text":
                    into = texts if r.participant == "resident" else kind_texts[r.participant]
                    into[qid][wijk].append(value)
        invited: dict[str, int] = defaultdict(int)
        for r in self.respondents:  # invitations went out before anyone answered
            invited[r.buurt] += 1
        for buurt in self.buurten:
            if self.invited_extra.get(buurt, 0):
                invited[buurt] += self.invited_extra[buurt]
        margins = {}
        if self.margins_of is not None:
            margins = self.margins_of
        elif self.margins_known:
            for code in [GM, *{"WK" + b[2:8] for b in self.buurten}, *self.buurten]:
                margins[code] = {
                    "name": code,
                    "age": {"0_14": 90, "15_24": 110, "25_44": 300, "45_64": 260, "65_plus": 180},
                    "sex": {"man": 480, "vrouw": 520},
                }
        if "self_selected" in results.Aggregates.__dataclass_fields__:
            return _as_before(base, chosen, invited, margins, texts)  # results before issue 15
        return results.Aggregates(
            base={q: {a: dict(c) for a, c in v.items()} for q, v in base.items()},
            chosen={q: {a: dict(c) for a, c in v.items()} for q, v in chosen.items()},
            invited=dict(invited),
            margins=margins,
            texts={
                q: {w: (len(t), sorted(t)[:100]) for w, t in v.items()} for q, v in texts.items()
            },
            margins_year=2024 if self.margins_known else None,
            **(
                {
                    "kind_texts": {
                        kind: {
                            q: {w: (len(t), sorted(t)[:100]) for w, t in v.items()}
                            for q, v in per_q.items()
                        }
                        for kind, per_q in kind_texts.items()
                    }
                }
                if "kind_texts" in results.Aggregates.__dataclass_fields__
                else {}
            ),
        )


def _as_before(base: Any, chosen: Any, invited: Any, margins: Any, texts: Any) -> Any:
    """The same counters in the shape results.py had before issue 15 (strata without the kind
    of respondent, self-selected per area apart), so these attacks run against it too."""
    old_base: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    old_chosen: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    selected: dict[str, int] = defaultdict(int)
    for q, per_area in base.items():
        for a, cells in per_area.items():
            for (age, sex, kind), n in cells.items():
                old_base[q][a][(age, sex)] += n
                if q == "*" and kind == "self_selected":
                    selected[a] += n
    for q, per_area in chosen.items():
        for a, cells in per_area.items():
            for ((age, sex, _), option), n in cells.items():
                old_chosen[q][a][((age, sex), option)] += n
    return results.Aggregates(
        base=old_base,
        chosen=old_chosen,
        self_selected=dict(selected),
        invited=dict(invited),
        margins=margins,
        texts={q: {w: (len(t), sorted(t)[:100]) for w, t in v.items()} for q, v in texts.items()},
    )


def released_documents(case: PollCase, count: int | None = None) -> dict[str, dict[str, Any]]:
    """The first release of the poll (both views), through the project's results code."""
    if not hasattr(results, "next_release"):  # before issue 15: one view, no releases
        return {"all": results.build(case.poll(), case.aggregates(count), case.k)}
    new = results.next_release(case.poll(), case.aggregates(count), case.k, None, closed=False)
    return new.documents


def _counted(q: Mapping[str, Any], value: Any) -> list[str]:
    if q["type"] == "multiple_choice":
        return [str(v) for v in value]
    if q["type"] == "ranking":
        return [str(value[0])] if value else []
    if q["type"] in ("single_choice", "likert5", "rating10"):
        return [str(value)]
    return []


def random_case(seed: int) -> PollCase:
    rng = random.Random(seed)
    definition = random_definition(rng)
    buurten = []
    for w in range(1, rng.randint(2, 4) + 1):
        buurten += [f"BU0344{w:02d}{b:02d}" for b in range(rng.randint(2, 4))]
    weight = {b: rng.choice((0, 1, 1, 2, 4, 8)) for b in buurten}
    if not any(weight.values()):
        weight[buurten[0]] = 1
    n = rng.choice((15, 30, 60, 120, 250))
    lean = {b: rng.random() * 0.6 for b in buurten}
    people = []
    for _ in range(n):
        buurt = rng.choices(buurten, weights=[weight[b] for b in buurten])[0]
        kind = rng.choices(KINDS, weights=(85, 10, 5))[0]
        answers: dict[str, Any] = {}
        for q in definition["questions"]:
            if q["id"] not in visible_questions(definition, answers):
                continue
            if not q.get("required", True) and rng.random() < 0.2:
                continue
            answers[q["id"]] = random_answer(q, rng, lean[buurt])
        answers = validate_answers(definition, answers)
        people.append(Respondent(buurt, rng.choice(AGES), rng.choice(SEXES), kind, answers))
    return PollCase(
        seed=seed,
        definition=definition,
        buurten=buurten,
        respondents=people,
        k=rng.choice((5, 7, 10)),
        margins_known=rng.random() < 0.8,
        invited_extra={b: rng.choice((0, 0, 1, 3, 20)) for b in buurten},
    )


def random_kinds_case(seed: int) -> PollCase:
    """A random poll (``random_case``) answered by residents, businesses and organisations, in
    the app, by e-mail link and on paper (issue 14): some buurten hold a few businesses only
    (the buurt with two shops), some kinds or channels are rare, so the breakdowns have small
    cells everywhere."""
    case = random_case(seed)
    rng = random.Random(seed * 31337 + 7)
    shops = set(rng.sample(case.buurten, max(1, len(case.buurten) // 4)))
    mix = rng.choice(((70, 20, 10), (85, 10, 5), (50, 35, 15)))
    channels = rng.choice(((80, 15, 5), (60, 30, 10), (90, 5, 5)))
    people = []
    for r in case.respondents:
        if r.buurt in shops and rng.random() < 0.5:
            participant = "ondernemer"
        else:
            participant = rng.choices(PARTICIPANTS, weights=mix)[0]
        channel = rng.choices(CHANNELS, weights=channels)[0]
        people.append(Respondent(r.buurt, r.age, r.sex, r.kind, r.answers, participant, channel))
    # A buurt with exactly two shops, and nobody else.
    empty = [b for b in case.buurten if not any(p.buurt == b for p in people)]
    if empty:
        q_answers = people[0].answers
        for _ in range(2):
            people.append(
                Respondent(empty[0], None, None, "panel", dict(q_answers), "ondernemer", "link")
            )
    case.respondents = people
    return case


def random_region_case(seed: int) -> PollCase:
    """A random poll (``random_case``) with the municipality's own regions laid over it, made
    to be differenced: a wijk without its smallest buurt, that region with one more buurt of
    another wijk, two regions that differ by that one small buurt, and one that overlaps
    them without nesting."""
    case = random_case(seed)
    rng = random.Random(seed * 7919 + 1)
    people: dict[str, int] = defaultdict(int)
    for r in case.respondents:
        people[r.buurt] += 1
    wijken: dict[str, list[str]] = defaultdict(list)
    for b in case.buurten:
        wijken["WK" + b[2:8]].append(b)
    first, *others = sorted(wijken)
    members = wijken[first]
    small = min(members, key=lambda b: (people[b] == 0, people[b], b))
    core = [b for b in members if b != small]
    regions = {"RG03440001": core, "RG03440002": [*core, small]}
    if others:
        extra = rng.choice(wijken[others[0]])
        regions["RG03440003"] = [*core, extra]
        regions["RG03440004"] = [*core, small, extra]
        regions["RG03440005"] = [rng.choice(members), *wijken[others[0]]]
    case.regions = regions
    return case


# -- the reader's linear programme ---------------------------------------------------------


Key = tuple  # a figure: (family, view, question, area, option)


class Programme:
    """Unknowns (one per figure per copy), equations and bounds; min/max of a figure."""

    def __init__(self) -> None:
        self.index: dict[Key, int] = {}
        self.rows: list[tuple[dict[int, float], float, float]] = []
        self.low: dict[int, float] = {}

    def var(self, key: Key) -> int:
        if key not in self.index:
            self.index[key] = len(self.index)
        return self.index[key]

    def equal(self, terms: Mapping[Key, float], value: float = 0.0) -> None:
        self.rows.append(({self.var(k): c for k, c in terms.items() if c}, value, value))

    def at_most(self, terms: Mapping[Key, float], value: float = 0.0) -> None:
        self.rows.append(({self.var(k): c for k, c in terms.items() if c}, -math.inf, value))

    def at_least(self, key: Key, value: float) -> None:
        i = self.var(key)
        self.low[i] = max(self.low.get(i, 0.0), value)

    def compile(self) -> None:
        n = len(self.index)
        r, c, d = [], [], []
        for row, (terms, _, _) in enumerate(self.rows):
            for col, v in terms.items():
                r.append(row)
                c.append(col)
                d.append(v)
        self.matrix = coo_array((d, (r, c)), shape=(len(self.rows), n)).tocsr()
        self.lo = np.array([lo for _, lo, _ in self.rows])
        self.hi = np.array([hi for _, _, hi in self.rows])
        self.lower = np.zeros(n)
        for i, v in self.low.items():
            self.lower[i] = v
        eq = self.lo == self.hi
        self.a_eq, self.b_eq = self.matrix[eq], self.lo[eq]
        self.a_ub, self.b_ub = self.matrix[~eq], self.hi[~eq]

    def extreme(self, terms: Mapping[Key, float], sense: int) -> float:
        """min (sense 1) or max (sense -1) of Σ terms over the LP; ±inf when unbounded."""
        n = len(self.index)
        c = np.zeros(n)
        for k, v in terms.items():
            c[self.index[k]] += sense * v
        res = linprog(
            c,
            A_ub=self.a_ub if self.a_ub.shape[0] else None,
            b_ub=self.b_ub if self.a_ub.shape[0] else None,
            A_eq=self.a_eq if self.a_eq.shape[0] else None,
            b_eq=self.b_eq if self.a_eq.shape[0] else None,
            bounds=list(zip(self.lower, [None] * n, strict=True)),
            method="highs",
        )
        if res.status == 3:  # unbounded: only a maximum can be
            return math.inf
        if res.status != 0:
            raise AssertionError(f"the reader's programme failed: {res.message}")
        return sense * res.fun

    def integer_extreme(self, terms: Mapping[Key, float], sense: int, cap: float) -> float:
        """The same over integers (HiGHS MIP); a maximum is capped at ``cap`` (reaching it is
        all the protection interval asks)."""
        n = len(self.index)
        c = np.zeros(n)
        for k, v in terms.items():
            c[self.index[k]] += sense * v
        constraints = [LinearConstraint(self.matrix, self.lo, self.hi)]
        if sense == -1:
            constraints.append(LinearConstraint(coo_array(-c.reshape(1, -1)).tocsr(), -np.inf, cap))
        res = milp(
            c,
            integrality=np.ones(n),
            bounds=Bounds(self.lower, np.full(n, np.inf)),
            constraints=constraints,
            options={"time_limit": 60},
        )
        if res.status != 0 or res.fun is None:
            raise AssertionError(f"the reader's integer programme failed: {res.message}")
        return sense * res.fun


def _witness(prog: Programme, targets: list[int], sense: int, k: int) -> list[int]:
    """An integer solution: minimising Σ targets (sense 1), or maximising Σ min(target, k)."""
    n = len(prog.index)
    extra = len(targets) if sense == -1 else 0
    c = np.zeros(n + extra)
    if sense == 1:
        c[targets] = 1.0
    else:
        c[n:] = -1.0
    from scipy.sparse import hstack

    matrix = prog.matrix
    if extra:
        matrix = hstack([matrix, coo_array((matrix.shape[0], extra))]).tocsr()
    constraints = [LinearConstraint(matrix, prog.lo, prog.hi)]
    if extra:
        rows = np.arange(extra)
        caps = coo_array(
            (
                np.concatenate([np.ones(extra), -np.ones(extra)]),
                (np.concatenate([rows, rows]), np.concatenate([n + rows, np.array(targets)])),
            ),
            shape=(extra, n + extra),
        ).tocsr()
        constraints.append(LinearConstraint(caps, -np.inf, 0.0))
    res = milp(
        c,
        integrality=np.ones(n + extra),
        bounds=Bounds(
            np.concatenate([prog.lower, np.zeros(extra)]),
            np.concatenate([np.full(n, np.inf), np.full(extra, float(k))]),
        ),
        constraints=constraints,
        options={"time_limit": 60},
    )
    if res.x is None:
        raise AssertionError(f"the reader's integer programme failed: {res.message}")
    return [round(v) for v in res.x[:n]]


Programme.witness = _witness  # type: ignore[attr-defined]


def _area_parent(code: str) -> str | None:
    return _parent(code)


def write_poll(
    prog: Programme,
    copy: str,
    definition: Mapping[str, Any],
    areas: list[str],
    *,
    known_min_one: Iterable[str] = (),
    regions: Mapping[str, Iterable[str]] | None = None,
) -> list[Key]:
    """Every relation of one copy of the poll's figures (all three views). Returns the
    figures (keys) written, derived ones (complements, skips) as their own unknowns.
    ``regions``: region code → its buurten; every figure of a region is the sum of its
    buurten's (differences with other areas follow from these and the tree)."""
    figures: list[Key] = []
    questions = [q for q in definition["questions"] if q["type"] in TABLED]
    by_id = {q["id"]: q for q in questions}
    children: dict[str, list[str]] = defaultdict(list)
    for a in areas:
        p = _area_parent(a)
        if p in areas:
            children[p].append(a)
    for region, members in (regions or {}).items():
        if region in areas:
            children[region] = [m for m in dict.fromkeys(members) if m in areas]

    def key(*parts: Any) -> Key:
        k = (copy, *parts)
        prog.var(k)
        return k

    def tree(family: tuple, after: tuple = ()) -> None:
        """parent = Σ children for the figures ``(*family, area, *after)``."""
        for parent, kids in children.items():
            prog.equal(
                {key(*family, parent, *after): 1, **{key(*family, a, *after): -1 for a in kids}}
            )

    for a in areas:
        r = {view: key("R", view, a) for view in SETS}
        s, m = key("S", a), key("M", a)
        prog.equal({r["all"]: 1, r["panel"]: -1, s: -1, m: -1})
        prog.equal({r["rest"]: 1, s: -1, m: -1})
        prog.equal({r["everyone"]: 1, r["all"]: -1, r["ondernemer"]: -1, r["organisatie"]: -1})
        prog.equal({r["everyone"]: 1, **{r[c]: -1 for c in CHANNELS}})
        figures += [*r.values(), s, m]
    for view in SETS:
        tree(("R", view))
    tree(("S",))
    tree(("M",))
    for a in known_min_one:
        prog.at_least(key("R", "everyone", a), 1)
    for q in questions:
        options = options_of(q)
        for view in SETS:
            for a in areas:
                t = key("T", view, q["id"], a)
                cs = {o: key("C", view, q["id"], a, o) for o in options}
                figures += [t, *cs.values()]
                if q["type"] != "multiple_choice":
                    if options:
                        prog.equal({t: 1, **{c: -1 for c in cs.values()}})
                else:
                    sole = [o["id"] for o in q["options"] if o.get("exclusive")]
                    plain = [o for o in options if o not in sole]
                    low = q.get("min_selections", 1)
                    high = q.get("max_selections", len(plain))
                    for o, c in cs.items():
                        comp = key("not", view, q["id"], a, o)
                        prog.equal({t: 1, c: -1, comp: -1})
                        figures.append(comp)
                    # r = total − Σ sole; Σ plain ∈ [low·r, high·r]; plain count ≤ r.
                    rterms = {t: 1.0, **{cs[o]: -1.0 for o in sole}}
                    ticks = {cs[o]: 1.0 for o in plain}
                    prog.at_most(_sum({k: low * v for k, v in rterms.items()}, ticks, -1))
                    prog.at_most(_sum(ticks, {k: high * v for k, v in rterms.items()}, -1))
                    for o in plain:
                        prog.at_most(_sum({cs[o]: 1.0}, rterms, -1))
                # Asked → answered.
                how = q.get("show_if")
                if how is None or how["question"] not in by_id:
                    asked = {key("R", view, a): 1.0}
                    exact = True
                else:
                    source = by_id[how["question"]]
                    picks = [str(v) for v in how["any_of"]]
                    counts = [key("C", view, source["id"], a, o) for o in picks]
                    if source["type"] != "multiple_choice" or len(picks) == 1:
                        asked = dict.fromkeys(counts, 1.0)
                        exact = True
                    else:  # asked ∈ [max counts, min(Σ counts, answered source)]
                        exact = False
                        parent_total = key("T", view, source["id"], a)
                        prog.at_most(_sum({t: 1.0}, dict.fromkeys(counts, 1.0), -1))
                        prog.at_most(_sum({t: 1.0}, {parent_total: 1.0}, -1))
                        if q.get("required", True):
                            for c in counts:
                                prog.at_most(_sum({c: 1.0}, {t: 1.0}, -1))
                if exact:
                    if q.get("required", True):
                        prog.equal(_sum({t: 1.0}, asked, -1))
                    else:
                        skip = key("skip", view, q["id"], a)
                        prog.equal(_sum({t: 1.0, skip: 1.0}, asked, -1))
                        figures.append(skip)
            for family in (("T", view, q["id"]),):
                tree(family)
            for o in options:
                tree(("C", view, q["id"]), (o,))  # a count's key ends in (area, option)
        for a in areas:  # all = panel + rest, everyone = the kinds = the channels, cell by cell
            for parts in [("T", q["id"], a), *[("C", q["id"], a, o) for o in options]]:
                fam, rest = parts[0], parts[1:]
                for whole, split in (
                    ("all", ("panel", "rest")),
                    ("everyone", ("all", "ondernemer", "organisatie")),
                    ("everyone", CHANNELS),
                ):
                    prog.equal(
                        {key(fam, whole, *rest): 1, **{key(fam, p, *rest): -1 for p in split}}
                    )
    return figures


def _sum(a: Mapping[Key, float], b: Mapping[Key, float], sign: int) -> dict[Key, float]:
    out: dict[Key, float] = defaultdict(float)
    for k, v in a.items():
        out[k] += v
    for k, v in b.items():
        out[k] += sign * v
    return dict(out)


def publish(prog: Programme, copy: str, documents: Mapping[str, Mapping[str, Any]]) -> set[Key]:
    """Every published figure of a release (both views) as a known value; returns those keys."""
    known: set[Key] = set()

    def fix(key: Key, value: Any) -> None:
        if value is None:
            return
        k = (copy, *key)
        prog.equal({k: 1}, float(value))
        known.add(k)

    def question(view: str, qid: str, per_area: Mapping[str, Any]) -> None:
        for a, figures in per_area.items():
            if figures.get("suppressed"):
                continue
            # An open question's list showed its length as ``total`` before issue 15.
            fix(("T", view, qid, a), figures.get("respondents", figures.get("total")))
            for o in figures.get("options", []):
                fix(("C", view, qid, a, o["option"]), o["count"])
            if "texts" in figures and figures.get("respondents") is not None:
                assert len(figures["texts"]) == min(figures["respondents"], 100)

    for view, doc in documents.items():
        for area in doc["areas"]:
            a = area["code"]
            # The all view's respondents are every participant's (before issue 14: residents').
            whole = "everyone" if view == "all" and "kinds" in area else view
            fix(("R", whole, a), area["respondents"])
            fix(("S", a), area.get("self_selected"))
            fix(("M", a), area.get("recently_moved"))
            for kind, n in (area.get("kinds") or {}).items():
                fix(("R", KIND_SET[kind], a), n)
            for channel, n in (area.get("channels") or {}).items():
                fix(("R", channel, a), n)
            if area.get("invited") is not None:
                prog.at_most({(copy, "R", whole, a): 1}, float(area["invited"]))
        for q in doc["questions"]:
            question(view, q["id"], q["areas"])
            for kind, per_area in (q.get("by_kind") or {}).items():
                question(KIND_SET[kind], q["id"], per_area)
            for channel, per_area in (q.get("by_channel") or {}).items():
                question(channel, q["id"], per_area)
    return known


def truth(case: PollCase, count: int | None, copy: str) -> dict[Key, int]:
    """The true value of every figure of one copy (first ``count`` respondents)."""
    people = case.respondents if count is None else case.respondents[:count]
    questions = [q for q in case.definition["questions"] if q["type"] in TABLED]
    values: dict[Key, int] = defaultdict(int)
    for r in people:
        views = r.sets()
        resident = r.participant == "resident"
        for a in case.areas_of(r.buurt):
            for view in views:
                values[(copy, "R", view, a)] += 1
            if resident and r.kind == "self_selected":
                values[(copy, "S", a)] += 1
            if resident and r.kind == "recently_moved":
                values[(copy, "M", a)] += 1
            for q in questions:
                shown = q["id"] in visible_questions(case.definition, r.answers)
                answered = q["id"] in r.answers
                for view in views:
                    if shown and not answered:
                        values[(copy, "skip", view, q["id"], a)] += 1
                    if not answered:
                        continue
                    values[(copy, "T", view, q["id"], a)] += 1
                    picked = set(_counted(q, r.answers[q["id"]]))
                    for o in options_of(q):
                        if o in picked:
                            values[(copy, "C", view, q["id"], a, o)] += 1
                        elif q["type"] == "multiple_choice":
                            values[(copy, "not", view, q["id"], a, o)] += 1
    return values


@dataclass
class Verdict:
    hidden: int = 0  # hidden figures of any size
    small: int = 0  # hidden figures of 1..k-1 people
    pinned: list[Key] = field(default_factory=list)  # small ones the reader pins exactly
    proved: list[Key] = field(default_factory=list)  # small ones proved to lie in 1..k-1

    def add(self, other: Verdict) -> None:
        self.hidden += other.hidden
        self.small += other.small
        self.pinned += other.pinned
        self.proved += other.proved


def attack(
    prog: Programme, figures: Iterable[Key], known: set[Key], values: Mapping[Key, int], k: int
) -> Verdict:
    """Decide for every hidden figure of 1..k-1 people whether the reader proves it lies in
    1..k-1 (min ≥ 1 and max ≤ k-1, over integers). Integer solutions that put many figures at
    0, or at k or more, at once clear those figures (their range includes 0 or reaches k); the
    rest get their own minimum and maximum (LP, then integer where the LP bound is not
    enough)."""
    prog.compile()
    verdict = Verdict()
    small = []
    for f in sorted(set(figures) - known, key=str):
        verdict.hidden += 1
        if 0 < values.get(f, 0) < k:
            small.append(f)
    verdict.small = len(small)
    left = list(small)
    for sense in (1, -1):
        while left:
            point = prog.witness([prog.index[f] for f in left], sense, k)
            cleared = [f for f in left if point[prog.index[f]] == 0 or point[prog.index[f]] >= k]
            if not cleared:
                break
            left = [f for f in left if f not in cleared]
    for f in left:
        v = values.get(f, 0)
        low = math.ceil(prog.extreme({f: 1}, 1) - 1e-6)
        high = math.floor(prog.extreme({f: 1}, -1) + 1e-6)
        if low < 1:
            low = max(low, math.ceil(prog.integer_extreme({f: 1}, 1, k) - 1e-6))
        if high >= k:
            high = min(high, math.floor(prog.integer_extreme({f: 1}, -1, k) + 1e-6))
        assert low <= v <= high, f"the true value of {f} lies outside the reader's range"
        if low == high:
            verdict.pinned.append(f)
        if low >= 1 and high <= k - 1:
            verdict.proved.append(f)
    return verdict


def listed_min_one(documents: Mapping[str, Mapping[str, Any]], case: PollCase) -> list[str]:
    """Listed areas the reader knows are listed only because someone answered there: neither
    a CBS area of the audience nor one invitations went to (the reader is assumed to know
    both, though invitations are published only beside shown respondents)."""
    independent = set()
    if case.margins_known:
        independent = {GM, *{"WK" + b[2:8] for b in case.buurten}, *case.buurten}
    independent |= set(case.regions)
    for buurt in case.aggregates().invited:
        independent |= {buurt, "WK" + buurt[2:8], GM}
    listed = [a["code"] for a in documents["all"]["areas"]]
    if not hasattr(results, "next_release"):  # before issue 15 only answered areas were listed
        return listed
    return [a for a in listed if a not in independent]


def attack_release(
    case: PollCase, documents: Mapping[str, Mapping[str, Any]], k: int, count: int | None = None
) -> Verdict:
    """One released version (both views, of the first ``count`` respondents) against
    everything it implies."""
    prog = Programme()
    areas = [a["code"] for a in documents["all"]["areas"]]
    figures = write_poll(
        prog,
        "x",
        case.definition,
        areas,
        known_min_one=listed_min_one(documents, case),
        regions=case.regions,
    )
    known = publish(prog, "x", documents)
    return attack(prog, figures, known, truth(case, count, "x"), k)


def attack_pair(
    case: PollCase,
    first: tuple[int, Mapping[str, Mapping[str, Any]]],
    second: tuple[int, Mapping[str, Mapping[str, Any]]],
    k: int,
) -> Verdict:
    """Two released versions (respondents ``first[0]`` and ``second[0]``) of one poll: the
    figures at both times and the responses added in between, each a poll with every relation,
    later = earlier + added."""
    prog = Programme()
    areas = sorted(
        {a["code"] for _, docs in (first, second) for a in docs["all"]["areas"]},
        key=lambda c: (len(c), c),
    )
    figures: list[Key] = []
    for copy, docs in (("a", first[1]), ("b", second[1])):
        figures += write_poll(
            prog,
            copy,
            case.definition,
            areas,
            known_min_one=listed_min_one(docs, case),
            regions=case.regions,
        )
    figures += write_poll(prog, "d", case.definition, areas, regions=case.regions)
    for key in list(prog.index):
        if key[0] == "a":
            rest = key[1:]
            prog.equal({("b", *rest): 1, ("a", *rest): -1, ("d", *rest): -1})
    known = publish(prog, "a", first[1]) | publish(prog, "b", second[1])
    values = {
        **truth(case, first[0], "a"),
        **truth(case, second[0], "b"),
    }
    for key in list(prog.index):
        if key[0] == "d":
            values[key] = values.get(("b", *key[1:]), 0) - values.get(("a", *key[1:]), 0)
    return attack(prog, figures, known, values, k)


def release_history(case: PollCase) -> tuple[list[tuple[int, dict[str, Any]]], int]:
    """Released versions of one poll read as a dashboard would: a first look at a quarter of
    the respondents, then after +1 response, after k−1 more, with k changed by an admin, at
    half, three quarters and all of them, and the final version once the poll closed. Returns
    the released versions (respondents counted, documents) and how many reads were served the
    previous version."""
    n, k = len(case.respondents), case.k
    start = max(1, n // 4)
    plan = [
        (start, k, False),
        (start + 1, k, False),
        (start + k, k, False),
        (start + k, k + 5, False),  # the municipality raised k: the poll keeps its own
        (n // 2, k, False),
        (3 * n // 4, k, False),
        (n, k, False),
        (n, k, True),
    ]
    previous, released, held, last = None, [], 0, 0
    for count, k_now, closed in plan:
        count = last = max(min(count, n), last)  # answers only come in
        poll = case.poll()
        new = results.next_release(poll, case.aggregates(count), k_now, previous, closed=closed)
        if new is None:
            held += 1
            continue
        if previous is not None and new.tables == previous.tables and not closed:
            continue  # nothing new came in: the same version
        assert new.k == k, "k is frozen per poll at its first release"
        previous = new
        released.append((count, new.documents))
    return released, held


# -- waves of a series ---------------------------------------------------------------------


WAVE_CHANGES = ("changed", "more", "fewer")


@dataclass
class WavePair:
    """Two waves of a series asked of the same panel: the same respondents with the same
    answers, except in one buurt, where one respondent changed one answer (``changed``), or
    1–3 members answered only in the second wave (``more``) or only in the first (``fewer``).
    ``added`` and ``removed``: the answer sets the second wave has that the first has not, and
    the other way round (a changed answer is one of each)."""

    first: PollCase
    second: PollCase
    buurt: str
    change: str
    added: list[Respondent]
    removed: list[Respondent]
    question: str | None = None  # the question whose answer changed (``changed``)


def _changed_answers(
    definition: Mapping[str, Any], answers: Mapping[str, Any], rng: random.Random
) -> tuple[str, dict[str, Any]] | None:
    """The same answer set with one choice question answered differently (follow-up
    questions kept where still asked, answered anew where newly asked); None when no
    question can change."""
    choices = [q for q in definition["questions"] if q["id"] in answers and q["type"] in CHOICE]
    rng.shuffle(choices)
    for target in choices:
        for _ in range(20):
            value = random_answer(target, rng, 0.0)
            if value != answers[target["id"]]:
                break
        else:
            continue
        new: dict[str, Any] = {}
        for q in definition["questions"]:
            if q["id"] not in visible_questions(definition, new):
                continue
            if q["id"] == target["id"]:
                new[q["id"]] = value
            elif q["id"] in answers:
                new[q["id"]] = answers[q["id"]]
            elif q.get("required", True):
                new[q["id"]] = random_answer(q, rng, 0.0)
        return target["id"], validate_answers(definition, new)
    return None


def random_wave_pair(seed: int, make: Any = random_case) -> WavePair:
    """A random poll (``make``) and its next wave, asked of the same panel (see WavePair).
    Invitations are the same in both waves: the panel did not change."""
    first = make(seed)
    rng = random.Random(seed * 104729 + 13)
    answered = sorted({r.buurt for r in first.respondents})
    buurt = rng.choice(answered)
    here = [i for i, r in enumerate(first.respondents) if r.buurt == buurt]
    change = rng.choice(WAVE_CHANGES)
    people = list(first.respondents)
    added: list[Respondent] = []
    removed: list[Respondent] = []
    question = None
    if change == "changed":
        for i in rng.sample(here, len(here)):
            found = _changed_answers(first.definition, people[i].answers, rng)
            if found is not None:
                question, answers = found
                old = people[i]
                people[i] = Respondent(old.buurt, old.age, old.sex, old.kind, answers)
                added, removed = [people[i]], [old]
                break
        else:
            change = "fewer"
    original = dict(first.invited_extra)
    second_extra = dict(original)
    if change == "more":
        for _ in range(rng.randint(1, 3)):
            answers: dict[str, Any] = {}
            for q in first.definition["questions"]:
                if q["id"] in visible_questions(first.definition, answers):
                    answers[q["id"]] = random_answer(q, rng, 0.0)
            answers = validate_answers(first.definition, answers)
            added.append(Respondent(buurt, rng.choice(AGES), rng.choice(SEXES), "panel", answers))
        people += added
        # They were invited to the first wave too, and did not answer it.
        first.invited_extra = {**original, buurt: original.get(buurt, 0) + len(added)}
    if change == "fewer":
        gone = set(rng.sample(here, min(len(here), rng.randint(1, 3))))
        removed = [first.respondents[i] for i in sorted(gone)]
        people = [r for i, r in enumerate(people) if i not in gone]
        # Still invited to the second wave; they did not answer it.
        second_extra[buurt] = original.get(buurt, 0) + len(removed)
    second = PollCase(
        seed=seed + 1_000_000,
        definition=first.definition,
        buurten=first.buurten,
        respondents=people,
        k=first.k,
        margins_known=first.margins_known,
        invited_extra=second_extra,
        margins_of=first.margins_of,
        regions=first.regions,
    )
    return WavePair(first, second, buurt, change, added, removed, question)


@dataclass
class WaveVerdict:
    """What the reader of two waves found: ``verdict`` for the hidden figures of both waves;
    ``exposed``: figures of the change itself (the answers that differ, a group of 1–3
    people) the reader pins, and of those ``exposed_through_hidden``: where the buurt's own
    figure of that question is hidden in a wave (so it is not read off its own row)."""

    verdict: Verdict
    exposed: list[Key] = field(default_factory=list)
    exposed_through_hidden: list[Key] = field(default_factory=list)
    # Hidden small figures the reader got (pinned or proved): ``across``, those whose
    # counterpart in the other wave is published (read off the other wave, up to the change
    # the reader was told); ``outside``, those of an area that does not hold the changed buurt
    # (a neighbour's figure, through the relations of either wave).
    across: list[Key] = field(default_factory=list)
    outside: list[Key] = field(default_factory=list)


def _area_of(key: Key, areas: set[str]) -> str:
    return next(x for x in key[2:] if x in areas)


def attack_waves(pair: WavePair) -> WaveVerdict:
    """Both waves' released documents (both views each) against a reader who assumes what a
    panel makes likely and is told the rest: the second wave is the first plus the answer sets
    ``added`` minus those ``removed`` (each a poll of its own, every relation, every count
    ≥ 0), nothing changed outside the one buurt, and how many answer sets were added and
    removed (for a changed answer: one of each, of the same kind of respondent). Attacks every
    hidden small figure of both waves, and tries to pin the change itself."""
    first, second = pair.first, pair.second
    docs = {"a": released_documents(first), "b": released_documents(second)}
    prog = Programme()
    listed = {a["code"] for d in docs.values() for a in d["all"]["areas"]}
    areas = sorted(listed, key=lambda c: (len(c), c))
    figures: list[Key] = []
    for copy, case in (("a", first), ("b", second)):
        figures += write_poll(
            prog,
            copy,
            first.definition,
            areas,
            known_min_one=listed_min_one(docs[copy], case),
            regions=first.regions,
        )
    changes = write_poll(prog, "p", first.definition, areas, regions=first.regions)
    changes += write_poll(prog, "m", first.definition, areas, regions=first.regions)
    for key in list(prog.index):
        if key[0] == "a":
            rest = key[1:]
            prog.equal({("b", *rest): 1, ("a", *rest): -1, ("p", *rest): -1, ("m", *rest): 1})
    area_set = set(areas)
    holding = {a for a in areas if a in first.areas_of(pair.buurt)}
    for key in changes:
        if _area_of(key, area_set) not in holding:
            prog.equal({key: 1}, 0.0)
    prog.equal({("p", "R", "all", GM): 1}, float(len(pair.added)))
    prog.equal({("m", "R", "all", GM): 1}, float(len(pair.removed)))
    if pair.change == "changed":
        for family in (("R", "panel", GM), ("S", GM), ("M", GM)):
            prog.equal({("p", *family): 1, ("m", *family): -1})
    known = publish(prog, "a", docs["a"]) | publish(prog, "b", docs["b"])
    values = {**truth(first, None, "a"), **truth(second, None, "b")}
    values.update(truth(_with(first, pair.added), None, "p"))
    values.update(truth(_with(first, pair.removed), None, "m"))
    verdict = attack(prog, figures, known, values, first.k)
    out = WaveVerdict(verdict)
    for f in dict.fromkeys(verdict.pinned + verdict.proved):
        if ("b" if f[0] == "a" else "a", *f[1:]) in known:
            out.across.append(f)
        if _area_of(f, area_set) not in holding:
            out.outside.append(f)
    # The change: the counts of the answers that differ, in the buurt (1..3 people each).
    hidden_rows = {
        (copy, q["id"])
        for copy in ("a", "b")
        for q in docs[copy]["all"]["questions"]
        if (q["areas"].get(pair.buurt) or {}).get("suppressed", True)
    }
    for key in changes:
        if key[1] != "C" or key[2] != "all" or key[4] != pair.buurt or values.get(key, 0) < 1:
            continue
        low = prog.extreme({key: 1}, 1)
        high = prog.extreme({key: 1}, -1)
        if math.isclose(low, high, abs_tol=1e-6):
            out.exposed.append(key)
            if any((copy, key[3]) in hidden_rows for copy in ("a", "b")):
                out.exposed_through_hidden.append(key)
    return out


def _with(case: PollCase, people: list[Respondent]) -> PollCase:
    return PollCase(
        seed=case.seed,
        definition=case.definition,
        buurten=case.buurten,
        respondents=people,
        k=case.k,
        margins_known=case.margins_known,
        regions=case.regions,
    )
