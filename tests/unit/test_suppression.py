"""services/common/suppression: small cells, secondary suppression, checked by trying.

The attackers below are written here, independently of the module: they see only what a reader
of the results sees (the shown figures, the options, the area hierarchy, whether the question is
single choice) and try to recover suppressed figures by

* peeling: whenever a relation (parent = Σ children per column; total = Σ options for single
  choice; total = chosen + not chosen for multiple choice) has one unknown left, solve it,
  and repeat until nothing moves;
* exact linear algebra over the rationals on all relations at once (finds what peeling misses,
  e.g. two suppressed rectangles joined by one cell);
* bounds: every count is ≥ 0, so totals bound what they contain; a cell whose lower and upper
  bound meet is known; alternated with the linear algebra until nothing moves.

No figure resting on 1..k-1 respondents may become known: an area total, an option count, or
(multiple choice) the number who did not choose an option. For a whole poll (simulate_poll:
answered respondent by respondent, with optional questions and questions shown only after an
answer) the attackers also use the relations between its tables (poll_relations): the
respondents per area, the number asked each question and the number who skipped it are figures
too, and must not come out either.

Run as a script for the timing of a Utrecht-sized table (1 + 10 + 111 areas × 6 options), and
what a Utrecht-sized poll with optional and follow-up questions hides (areas, question rows):
    .venv/bin/python -m tests.unit.test_suppression
"""

from __future__ import annotations

import math
import random
from collections import Counter
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common.suppression import (
    PRIMARY_AREA,
    PRIMARY_CELL,
    REASONS,
    SECONDARY_AREA,
    SECONDARY_CELL,
    Asked,
    Hierarchy,
    Row,
    Table,
    asked_in,
    open_texts_allowed,
    shuffle_texts,
    suppress,
    suppress_areas,
    suppress_poll,
)

GM = "GM0344"

# --- building tables -----------------------------------------------------------------------


def build(buurten, options, exclusive=True, question="q1"):
    """A table from buurt rows {buurt: (wijk, total, {option: count})}: wijk and gemeente rows
    are the sums, as the aggregate counters produce them."""
    parent = {GM: None}
    leaf = {}
    for buurt, (wijk, total, counts) in buurten.items():
        parent[wijk] = GM
        parent[buurt] = wijk
        leaf[buurt] = Row(total, dict(counts))

    def add_up(codes):
        return Row(
            sum(leaf_or_row[c].total for c in codes),
            {o: sum(leaf_or_row[c].counts.get(o, 0) for c in codes) for o in options},
        )

    leaf_or_row = dict(leaf)
    wijken = sorted({w for w, _, _ in buurten.values()})
    for wijk in wijken:
        leaf_or_row[wijk] = add_up([b for b in buurten if parent[b] == wijk])
    leaf_or_row[GM] = add_up(wijken)
    order = [GM, *wijken, *buurten]
    return Table(question, exclusive, list(options), {a: leaf_or_row[a] for a in order}), Hierarchy(
        parent
    )


@st.composite
def tables(draw):
    """Realistic hierarchies (1 gemeente, 3–6 wijken of 2–6 buurten) with small counts."""
    k = draw(st.sampled_from([5, 7, 10]))
    exclusive = draw(st.booleans())
    options = [f"opt{i}" for i in range(draw(st.integers(2, 5)))]
    size = st.one_of(st.integers(0, 4), st.integers(0, 14), st.integers(5, 40))
    buurten = {}
    for w in range(draw(st.integers(3, 6))):
        wijk = f"WK{w:02d}"
        for b in range(draw(st.integers(2, 6))):
            if exclusive:
                counts = {o: draw(size) for o in options}
                total = sum(counts.values())
            else:
                total = draw(size)
                counts = {o: draw(st.integers(0, total)) for o in options}
            buurten[f"BU{w:02d}{b:02d}"] = (wijk, total, counts)
    table, hierarchy = build(buurten, options, exclusive)
    return table, hierarchy, k


# --- the attackers -------------------------------------------------------------------------


def relations(table, hierarchy):
    """Every exact relation a reader knows, as {variable: coefficient} summing to 0.

    Variables: ("T", area), ("o", area, option), and for multiple choice ("n", area, option),
    the number who did not choose the option.
    """
    areas = list(table.rows)
    columns = [("T",)] + [("o", o) for o in table.options]
    if not table.exclusive:
        columns += [("n", o) for o in table.options]

    def var(column, area):
        return (column[0], area, *column[1:])

    eqs = []
    for area in areas:
        if table.exclusive and table.options:
            eq = {("T", area): 1}
            eq.update({("o", area, o): -1 for o in table.options})
            eqs.append(eq)
        elif not table.exclusive:
            for o in table.options:
                eqs.append({("T", area): 1, ("o", area, o): -1, ("n", area, o): -1})
    for area in areas:
        kids = [a for a in areas if hierarchy.parent.get(a) == area]
        if kids:
            for column in columns:
                eq = {var(column, area): 1}
                eq.update({var(column, kid): -1 for kid in kids})
                eqs.append(eq)
    return eqs


def true_values(table):
    values = {}
    for area, row in table.rows.items():
        values[("T", area)] = row.total
        for o in table.options:
            values[("o", area, o)] = row.counts.get(o, 0)
            if not table.exclusive:
                values[("n", area, o)] = row.total - row.counts.get(o, 0)
    return values


def published(result):
    """What a reader sees: the shown figures."""
    known = {}
    for area, row in result.rows.items():
        if row.total is not None:
            known[("T", area)] = row.total
        for o, count in row.counts.items():
            if count is not None:
                known[("o", area, o)] = count
    return known


def peel(eqs, known):
    """Solve relations with exactly one unknown, repeatedly."""
    known = dict(known)
    progress = True
    while progress:
        progress = False
        for eq in eqs:
            unknown = [v for v in eq if v not in known]
            if len(unknown) == 1:
                (u,) = unknown
                rest = sum(c * known[v] for v, c in eq.items() if v != u)
                value = Fraction(-rest, eq[u])
                assert value.denominator == 1
                known[u] = int(value)
                progress = True
    return known


_PRIME = 2**61 - 1


def solve_linear(eqs, known):
    """Every unknown the relations fix, by sparse Gauss–Jordan elimination over the integers
    modulo a large prime (a faster stand-in for the rationals: it fixes the same unknowns
    unless the prime divides one of the system's minors, which for coefficients ±1 on a few
    hundred unknowns it does not; every value it derives is checked against the truth)."""

    def subtract(row, rhs, factor, other, other_rhs):
        for v, c in other.items():
            value = (row.get(v, 0) - factor * c) % _PRIME
            if value:
                row[v] = value
            else:
                row.pop(v, None)
        return (rhs - factor * other_rhs) % _PRIME

    basis = {}  # pivot → (row with coefficient 1 at the pivot and 0 at every other pivot, rhs)
    for eq in eqs:
        row, rhs = {}, 0
        for v, c in eq.items():
            if v in known:
                rhs -= c * known[v]
            else:
                row[v] = row.get(v, 0) + c
        rhs %= _PRIME
        row = {v: c % _PRIME for v, c in row.items() if c % _PRIME}
        for p in [v for v in row if v in basis]:
            rhs = subtract(row, rhs, row[p], *basis[p])
        if not row:
            assert rhs == 0
            continue
        p = min(row)
        inverse = pow(row[p], -1, _PRIME)
        rhs = rhs * inverse % _PRIME
        row = {v: c * inverse % _PRIME for v, c in row.items()}
        for q, (other, other_rhs) in list(basis.items()):
            if p in other:
                other = dict(other)
                basis[q] = (other, subtract(other, other_rhs, other[p], row, rhs))
        basis[p] = (row, rhs)
    found = dict(known)
    for p, (row, rhs) in basis.items():
        if len(row) == 1:
            assert rhs < 10**9  # a count, not a residue of a fraction or a negative number
            found[p] = rhs
    return found


def tighten(eqs, known):
    """Interval propagation with every variable ≥ 0; returns known plus the pinned ones."""
    variables = {v for eq in eqs for v in eq}
    lo = {v: known.get(v, 0) for v in variables}
    hi = {v: known.get(v, math.inf) for v in variables}
    eqs_of = {v: [] for v in variables}
    for i, eq in enumerate(eqs):
        for v in eq:
            eqs_of[v].append(i)

    def low_term(v, c):  # lower bound of c·v: finite or -inf
        return c * (lo[v] if c > 0 else hi[v])

    def high_term(v, c):  # upper bound of c·v: finite or +inf
        return c * (hi[v] if c > 0 else lo[v])

    def split(terms):  # (sum of the finite terms, number of infinite ones)
        finite = [t for t in terms if not math.isinf(t)]
        return sum(finite), len(terms) - len(finite)

    queue, queued, steps = list(range(len(eqs))), set(range(len(eqs))), 0
    while queue and steps < 200 * len(eqs):
        steps += 1
        i = queue.pop()
        queued.discard(i)
        eq = eqs[i]
        low_sum, low_inf = split([low_term(v, c) for v, c in eq.items()])
        high_sum, high_inf = split([high_term(v, c) for v, c in eq.items()])
        changed = []
        for u, cu in eq.items():
            # cu·u = −Σ others; bounds of Σ others = totals minus u's own term
            tl, th = low_term(u, cu), high_term(u, cu)
            s_lo = (
                -math.inf if low_inf - math.isinf(tl) else low_sum - (0 if math.isinf(tl) else tl)
            )
            s_hi = (
                math.inf if high_inf - math.isinf(th) else high_sum - (0 if math.isinf(th) else th)
            )
            new_lo, new_hi = (-s_hi, -s_lo) if cu > 0 else (s_lo, s_hi)
            if new_lo > lo[u]:
                lo[u] = new_lo
                changed.append(u)
            if new_hi < hi[u]:
                hi[u] = new_hi
                changed.append(u)
        for u in changed:
            for j in eqs_of[u]:
                if j not in queued:
                    queued.add(j)
                    queue.append(j)
    found = dict(known)
    for v in variables:
        assert lo[v] <= hi[v]
        if lo[v] == hi[v]:
            found[v] = int(lo[v])
    return found


def full_attack(eqs, known):
    """Bounds and linear algebra, alternated until neither finds anything new."""
    while True:
        before = len(known)
        known = solve_linear(eqs, tighten(eqs, known))
        if len(known) == before:
            return known


def sensitive(table, k):
    """Variables resting on 1..k-1 respondents."""
    return {v for v, value in true_values(table).items() if 0 < value < k}


def check_protected(table, hierarchy, k, result):
    eqs = relations(table, hierarchy)
    truth = true_values(table)
    seen = published(result)
    small = sensitive(table, k)
    assert all(truth[v] == value for v, value in seen.items())
    # nothing small is shown, nothing small follows by peeling or by the full attack
    assert not small & seen.keys()
    for attack in (peel, full_attack):
        derived = attack(eqs, seen)
        assert all(truth[v] == value for v, value in derived.items())
        leaked = small & derived.keys()
        assert not leaked, f"{attack.__name__} recovers {sorted(leaked)[:5]}"
    return eqs, seen


def check_shape(table, k, result):
    """Output mirrors input; reasons are exactly the hidden cells; suppressed areas are whole."""
    assert list(result.rows) == list(table.rows)
    assert result.k == k and result.options == tuple(table.options)
    hidden = set()
    for area, row in result.rows.items():
        assert list(row.counts) == list(table.options)
        if row.total is None:
            hidden.add((area, None))
            assert all(c is None for c in row.counts.values())
        hidden |= {(area, o) for o, c in row.counts.items() if c is None}
    assert set(result.reasons) == hidden
    assert set(result.reasons.values()) <= set(REASONS)
    assert set(result.suppressed_areas) == {a for a, r in result.rows.items() if r.total is None}
    for (area, option), reason in result.reasons.items():
        total = table.rows[area].total
        if reason == PRIMARY_AREA:
            assert 0 < total < k
        elif reason == PRIMARY_CELL:
            count = table.rows[area].counts.get(option, 0)
            assert 0 < count < k or (not table.exclusive and 0 < total - count < k)


# --- the property: nothing small can be recovered -------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables())
def test_no_small_figure_can_be_recovered(case):
    table, hierarchy, k = case
    result = suppress(table, hierarchy, k)
    check_shape(table, k, result)
    eqs, seen = check_protected(table, hierarchy, k, result)
    # Line rule: no relation has exactly one hidden figure, and where a relation's total is shown
    # the hidden figures in it add up to at least k: their sum is a figure too — or to 0: then
    # they are known zeros, which rest on nobody (rule 3). (A relation whose shown total is 0
    # holds known zeros only.)
    truth = true_values(table)
    for eq in eqs:
        (head,) = [v for v, c in eq.items() if c == 1]
        if seen.get(head) == 0:
            continue
        hidden = [v for v in eq if v not in seen and v[0] != "n"]
        if not table.exclusive:
            hidden += [v for v in eq if v[0] == "n" and ("o", *v[1:]) not in seen]
        assert len(hidden) != 1
        if head in seen and hidden:
            assert sum(truth[v] for v in hidden) >= k or sum(truth[v] for v in hidden) == 0


@settings(max_examples=100, deadline=None)
@given(tables(), st.data())
def test_forced_areas_stay_hidden_and_safe(case, data):
    table, hierarchy, k = case
    forced = data.draw(st.lists(st.sampled_from(list(table.rows)), max_size=3, unique=True))
    result = suppress(table, hierarchy, k, forced_areas=forced)
    assert set(forced) <= set(result.suppressed_areas)
    check_shape(table, k, result)
    check_protected(table, hierarchy, k, result)


@st.composite
def polls(draw):
    """A poll: 2–3 questions that every respondent answered, over one realistic hierarchy."""
    k = draw(st.sampled_from([5, 7, 10]))
    size = st.one_of(st.integers(0, 4), st.integers(0, 14), st.integers(5, 40))
    totals = {}
    for w in range(draw(st.integers(3, 5))):
        for b in range(draw(st.integers(2, 5))):
            totals[f"BU{w:02d}{b:02d}"] = (f"WK{w:02d}", draw(size))
    questions = []
    for q in range(draw(st.integers(2, 3))):
        exclusive = draw(st.booleans())
        options = [f"opt{i}" for i in range(draw(st.integers(2, 4)))]
        buurten = {}
        for buurt, (wijk, total) in totals.items():
            counts, left = {}, total
            for o in options:
                if exclusive:
                    counts[o] = left if o == options[-1] else draw(st.integers(0, left))
                    left -= counts[o]
                else:
                    counts[o] = draw(st.integers(0, total))
            buurten[buurt] = (wijk, total, counts)
        questions.append(build(buurten, options, exclusive, question=f"q{q}"))
    hierarchy = questions[0][1]
    tables = [t for t, _ in questions]
    respondents = {area: row.total for area, row in tables[0].rows.items()}
    return tables, hierarchy, respondents, k


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(polls())
def test_a_poll_hides_the_same_areas_everywhere_and_nothing_small_leaks_across_tables(case):
    """The questions share the area totals: the attacker combines all tables of the poll and
    the respondents per area (as the response rates show them)."""
    tables, hierarchy, respondents, k = case
    asked = {t.question_id: Asked() for t in tables}
    poll = suppress_poll(tables, hierarchy, k, respondents=respondents, asked=asked)
    check_poll_shape(tables, asked, poll)
    assert poll.rows == {t.question_id: () for t in tables}  # every total is the respondents
    for table, result in zip(tables, poll.tables, strict=True):
        check_shape(table, k, result)
        check_protected(table, hierarchy, k, result)
    asked_counts = {(t.question_id, a): n for t in tables for a, n in respondents.items()}
    attack_poll(tables, hierarchy, respondents, asked, asked_counts, k, poll)


def check_poll_shape(tables, asked, poll):
    """Whole areas are hidden in every table; a question's own hidden rows are listed apart,
    and only a question whose total is not the respondents (optional, or shown after an
    answer) has any."""
    assert list(poll.rows) == [t.question_id for t in tables]
    assert list(poll.areas) == sorted(poll.areas)
    for table, result in zip(tables, poll.tables, strict=True):
        own = poll.rows[table.question_id]
        assert not set(own) & set(poll.areas)
        assert set(result.suppressed_areas) == set(poll.areas) | set(own)
        how = asked.get(table.question_id)
        if how is None or (how.required and how.after is None):
            assert own == ()


# --- polls with optional and conditional questions ------------------------------------------


def simulate_poll(seed):
    """A poll answered respondent by respondent, so every relation between its tables holds as
    it does for real answers: a conditional question is asked exactly of those who gave the
    answer it follows, an optional one is skipped by some of those asked.

    Question 0 is required single choice for everyone; 1–3 more are drawn from: single or
    multiple choice, for everyone or after one or two answers to an earlier question (single
    or multiple choice), required or optional with a random skip rate.
    Returns (tables, hierarchy, respondents, asked, asked_counts, k), asked_counts the true
    number asked per (question, area).
    """
    rnd = random.Random(seed)
    k = rnd.choice([5, 7, 10])
    sizes = [(0, 4), (0, 14), (5, 40), (10, 80)]
    buurten, people = {}, []  # buurt → wijk; (wijk, buurt) per respondent
    for w in range(rnd.randint(3, 5)):
        for b in range(rnd.randint(2, 5)):
            buurten[f"BU{w:02d}{b:02d}"] = f"WK{w:02d}"
            low, high = rnd.choice(sizes)
            people += [(f"WK{w:02d}", f"BU{w:02d}{b:02d}")] * rnd.randint(low, high)
    specs = [("q0", True, [f"a{i}" for i in range(rnd.randint(2, 4))], None, True)]
    for q in range(1, rnd.randint(2, 4)):
        exclusive = rnd.random() < 0.6
        options = [f"a{i}" for i in range(rnd.randint(2, 4))]
        after = None
        if rnd.random() < 0.6:
            parent = rnd.choice(specs)
            chosen = rnd.sample(parent[2], rnd.randint(1, min(2, len(parent[2]) - 1)))
            after = (parent[0], tuple(chosen))
        specs.append((f"q{q}", exclusive, options, after, rnd.random() < 0.5))
    skip_rate = {spec[0]: rnd.choice([0.02, 0.1, 0.3]) for spec in specs}
    weights = {spec[0]: [rnd.random() + 0.05 for _ in spec[2]] for spec in specs}
    answers, shown = [], Counter()  # shown: (question, buurt) → respondents asked
    for _, buurt in people:
        given = {}
        for qid, exclusive, options, after, required in specs:
            if after is not None and not set(given.get(after[0], ())) & set(after[1]):
                continue
            shown[(qid, buurt)] += 1
            if not required and rnd.random() < skip_rate[qid]:
                continue
            if exclusive:
                given[qid] = rnd.choices(options, weights[qid])
            else:
                chosen = [o for o, p in zip(options, weights[qid], strict=True) if rnd.random() < p]
                given[qid] = chosen or [rnd.choice(options)]
        answers.append(given)
    tables, hierarchy = [], None
    for qid, exclusive, options, _, _ in specs:
        rows = {buurt: (wijk, 0, Counter()) for buurt, wijk in buurten.items()}
        for (wijk, buurt), given in zip(people, answers, strict=True):
            if qid in given:
                rows[buurt] = (wijk, rows[buurt][1] + 1, rows[buurt][2] + Counter(given[qid]))
        table, hierarchy = build(rows, options, exclusive, question=qid)
        tables.append(table)
    respondents = {area: row.total for area, row in tables[0].rows.items()}  # q0: required
    asked = {qid: Asked(required, after) for qid, _, _, after, required in specs}
    asked_counts = {}
    for qid, *_ in specs:
        for area in tables[0].rows:
            inside = [b for b in buurten if area in (b, buurten[b], GM)]
            asked_counts[(qid, area)] = sum(shown[(qid, b)] for b in inside)
    return tables, hierarchy, respondents, asked, asked_counts, k


def _per_question(q, variable):
    return (variable[0], q, *variable[1:])


def poll_relations(tables, hierarchy, asked):
    """The relations of every table of a poll (variables tagged with their question), the
    respondents ("R", area) and, per question in ``asked``, the number asked ("V", q, area)
    and skipped ("S", q, area):

    * asked of everyone: V = R; after answers A to a single-choice question, or one answer to
      a multiple-choice one: V = Σ counts of A; after several answers to a multiple-choice
      question V is not a sum, but each count of A is at most V, V at most their sum and at
      most the other question's total: V = count_a + X_a, Σ counts = V + Y and T_other = V + N
      with X ("X", q, a, area), Y and N (ticked none of A) ≥ 0 unknowns;
    * required: T = V; optional: T + S = V;
    * every derived column adds up over the areas like the tables do.
    """
    eqs = []
    for t in tables:
        eqs += [
            {_per_question(t.question_id, v): c for v, c in eq.items()}
            for eq in relations(t, hierarchy)
        ]
    areas = list(tables[0].rows)
    kids = {a: [b for b in areas if hierarchy.parent.get(b) == a] for a in areas}

    def add_up(var):
        for a in areas:
            if kids[a]:
                eqs.append({var(a): 1, **{var(b): -1 for b in kids[a]}})

    add_up(lambda a: ("R", a))
    by_id = {t.question_id: t for t in tables}
    for qid, how in asked.items():
        for a in areas:
            asked_n = ("V", qid, a)
            if how.after is None:
                eqs.append({asked_n: 1, ("R", a): -1})
            elif by_id[how.after[0]].exclusive or len(how.after[1]) == 1:
                eqs.append({asked_n: 1, **{("o", how.after[0], a, o): -1 for o in how.after[1]}})
            else:
                parent, chosen = how.after
                for o in chosen:
                    eqs.append({asked_n: 1, ("o", parent, a, o): -1, ("X", qid, o, a): -1})
                eqs.append(
                    {("Y", qid, a): -1, asked_n: -1, **{("o", parent, a, o): 1 for o in chosen}}
                )
                eqs.append({("T", parent, a): 1, asked_n: -1, ("N", qid, a): -1})
            if how.required:
                eqs.append({asked_n: 1, ("T", qid, a): -1})
            else:
                eqs.append({asked_n: 1, ("T", qid, a): -1, ("S", qid, a): -1})
        add_up(lambda a, qid=qid: ("V", qid, a))
        if not how.required:
            add_up(lambda a, qid=qid: ("S", qid, a))
    return eqs


def poll_truth(tables, respondents, asked, asked_counts):
    truth = {("R", a): n for a, n in respondents.items()}
    by_id = {t.question_id: t for t in tables}
    for t in tables:
        truth.update({_per_question(t.question_id, v): x for v, x in true_values(t).items()})
    for qid, how in asked.items():
        for a in tables[0].rows:
            asked_n = asked_counts[(qid, a)]
            truth[("V", qid, a)] = asked_n
            truth[("S", qid, a)] = asked_n - by_id[qid].rows[a].total
            if how.after is not None:
                parent, chosen = how.after
                counts = [by_id[parent].rows[a].counts.get(o, 0) for o in chosen]
                truth[("Y", qid, a)] = sum(counts) - asked_n
                truth[("N", qid, a)] = by_id[parent].rows[a].total - asked_n
                for o, count in zip(chosen, counts, strict=True):
                    truth[("X", qid, o, a)] = asked_n - count
    return truth


def attack_poll(tables, hierarchy, respondents, asked, asked_counts, k, poll):
    """Peel and the full attack over every relation of the poll at once: no figure on 1..k-1
    respondents comes out (Y, a number of answers rather than of people, may)."""
    eqs = poll_relations(tables, hierarchy, asked)
    truth = poll_truth(tables, respondents, asked, asked_counts)
    variables = {v for eq in eqs for v in eq}
    assert all(sum(c * truth[v] for v, c in eq.items()) == 0 for eq in eqs)
    seen = {("R", a): n for a, n in respondents.items() if a not in poll.areas}
    for t, result in zip(tables, poll.tables, strict=True):
        seen.update({_per_question(t.question_id, v): x for v, x in published(result).items()})
    small = {v for v in variables if v[0] != "Y" and 0 < truth[v] < k}
    assert not small & seen.keys()
    for attack in (peel, full_attack):
        derived = attack(eqs, seen)
        assert all(truth[v] == x for v, x in derived.items())
        leaked = small & derived.keys()
        assert not leaked, f"{attack.__name__} recovers {sorted(leaked)[:5]}"


POLL_SEEDS = range(1200)  # ~40 s; run more with a larger range when changing the module


@pytest.mark.parametrize("chunk", range(4))
def test_optional_and_conditional_questions_leak_nothing_across_tables(chunk):
    for seed in POLL_SEEDS[chunk::4]:
        tables, hierarchy, respondents, asked, asked_counts, k = simulate_poll(seed)
        poll = suppress_poll(tables, hierarchy, k, respondents=respondents, asked=asked)
        check_poll_shape(tables, asked, poll)
        for table, result in zip(tables, poll.tables, strict=True):
            check_shape(table, k, result)
        try:
            attack_poll(tables, hierarchy, respondents, asked, asked_counts, k, poll)
        except AssertionError as error:
            raise AssertionError(f"seed {seed}: {error}") from error


# --- the local demo: wijk figures before buurt detail --------------------------------------

DEMO_OFTEN = ("vaak", "soms", "bijna_nooit")
DEMO_CAUSES = tuple(f"oorzaak{i}" for i in range(13))


def demo_poll(seed):
    """A poll like the local demo's (deploy/walkthrough.py, template veiligheidsgevoel), answered
    respondent by respondent: 1 gemeente, 3 wijken of 8–12 buurten, 2–40 respondents per buurt
    (about half fewer than 10); "vaak_onveilig" (required single choice, shares 25/35/40 %) and
    "oorzaken" (required multiple choice, 13 options, 1–3 ticked), asked after vaak or soms.
    Returns (tables, hierarchy, respondents, asked, asked_counts)."""
    rnd = random.Random(seed)
    people = []  # (wijk, buurt) per respondent
    for w in range(3):
        for b in range(rnd.randint(8, 12)):
            n = rnd.choice([rnd.randint(2, 9), rnd.randint(10, 40)])
            people += [(f"WK{w:02d}", f"BU{w:02d}{b:02d}")] * n
    buurten = dict((buurt, wijk) for wijk, buurt in people)
    often = {buurt: (wijk, 0, Counter()) for buurt, wijk in buurten.items()}
    causes = {buurt: (wijk, 0, Counter()) for buurt, wijk in buurten.items()}
    for wijk, buurt in people:
        answer = rnd.choices(DEMO_OFTEN, weights=(25, 35, 40))
        often[buurt] = (wijk, often[buurt][1] + 1, often[buurt][2] + Counter(answer))
        if answer[0] != "bijna_nooit":
            ticked = rnd.sample(DEMO_CAUSES, rnd.randint(1, 3))
            causes[buurt] = (wijk, causes[buurt][1] + 1, causes[buurt][2] + Counter(ticked))
    often_table, hierarchy = build(often, DEMO_OFTEN, question="vaak_onveilig")
    causes_table, _ = build(causes, DEMO_CAUSES, exclusive=False, question="oorzaken")
    tables = [often_table, causes_table]
    respondents = {area: row.total for area, row in often_table.rows.items()}
    asked = {
        "vaak_onveilig": Asked(),
        "oorzaken": Asked(True, ("vaak_onveilig", ("vaak", "soms"))),
    }
    asked_counts = {("vaak_onveilig", a): n for a, n in respondents.items()}
    asked_counts |= {("oorzaken", a): row.total for a, row in causes_table.rows.items()}
    return tables, hierarchy, respondents, asked, asked_counts


def demo_counts(poll, respondents):
    """In a suppressed demo poll: "vaak_onveilig" cells hidden in the wijk rows (total and
    options) and in the gemeente row, buurten shown, option cells hidden in shown buurten."""
    often = poll.tables[0]
    wijken = [a for a in respondents if a.startswith("WK")]
    shown = [a for a in respondents if a.startswith("BU") and a not in poll.areas]
    cells = (None, *DEMO_OFTEN)
    return Counter(
        {
            "wijk cells": len(wijken) * len(cells),
            "wijk cells hidden": sum(often.is_suppressed(w, c) for w in wijken for c in cells),
            "gemeente cells hidden": sum(often.is_suppressed(GM, c) for c in cells),
            "buurten": sum(1 for a in respondents if a.startswith("BU")),
            "buurten shown": len(shown),
            "buurt cells hidden in shown buurten": sum(
                often.is_suppressed(b, o) for b in shown for o in DEMO_OFTEN
            ),
        }
    )


def demo_report(suppress_poll=suppress_poll, seeds=range(20)):
    """``demo_counts`` summed over demo polls; ``suppress_poll`` may be another version of the
    function, to compare."""
    out = Counter()
    for seed in seeds:
        tables, hierarchy, respondents, asked, _ = demo_poll(seed)
        poll = suppress_poll(tables, hierarchy, 10, respondents=respondents, asked=asked)
        out += demo_counts(poll, respondents)
    return dict(out)


def test_the_demo_keeps_its_wijk_figures_and_buurt_detail_gives_way():
    """The follow-up question's line (oorzaken total = vaak + soms) and the many small cells
    of its 13 options pinned buurt counts whose relations had no shown buurt cell left; the
    repair then took the wijk count, and the gemeente line and the wijk row took more wijk
    cells with them: 66 of the 96 wijk cells of these 8 polls were hidden (162 of 240 over
    20), with the same buurten and buurt cells shown as now. Now a buurt cell goes first and
    the wijk rows are shown whole; the attack still finds nothing."""
    counts = Counter()
    for seed in range(8):
        tables, hierarchy, respondents, asked, asked_counts = demo_poll(seed)
        poll = suppress_poll(tables, hierarchy, 10, respondents=respondents, asked=asked)
        check_poll_shape(tables, asked, poll)
        for table, result in zip(tables, poll.tables, strict=True):
            check_shape(table, 10, result)
        try:
            attack_poll(tables, hierarchy, respondents, asked, asked_counts, 10, poll)
        except AssertionError as error:
            raise AssertionError(f"seed {seed}: {error}") from error
        counts += demo_counts(poll, respondents)
    assert counts["wijk cells hidden"] == 0 and counts["gemeente cells hidden"] == 0, counts


# --- the attackers are not toothless --------------------------------------------------------


def _four_buurten(cells):
    """One wijk of buurten b1..b4, options A..D, single choice: {buurt: [A, B, C, D]}."""
    return build(
        {
            b: ("WK01", sum(counts), dict(zip("ABCD", counts, strict=True)))
            for b, counts in cells.items()
        },
        list("ABCD"),
    )


def test_peeling_finds_what_primary_suppression_alone_leaves():
    table, hierarchy = build(
        {
            "BU0100": ("WK01", 4, {"ja": 1, "nee": 3}),
            "BU0101": ("WK01", 30, {"ja": 10, "nee": 20}),
            "BU0102": ("WK01", 20, {"ja": 10, "nee": 10}),
        },
        ["ja", "nee"],
    )
    eqs = relations(table, hierarchy)
    seen = {v: x for v, x in true_values(table).items() if v[1] != "BU0100"}
    derived = peel(eqs, seen)
    assert derived[("T", "BU0100")] == 4 and derived[("o", "BU0100", "ja")] == 1


def test_linear_algebra_finds_what_peeling_misses():
    """Two hidden rectangles joined by one cell (b1·C): every relation has ≥ 2 unknowns, yet
    b3 + b4 − column D gives b3·C + b4·C, and column C then gives b1·C."""
    table, hierarchy = _four_buurten(
        {
            "b1": [12, 11, 3, 20],
            "b2": [10, 14, 20, 20],
            "b3": [20, 20, 12, 10],
            "b4": [20, 20, 11, 13],
        }
    )
    hidden = {("b1", "A"), ("b1", "B"), ("b1", "C"), ("b2", "A"), ("b2", "B")}
    hidden |= {("b3", "C"), ("b3", "D"), ("b4", "C"), ("b4", "D")}
    eqs = relations(table, hierarchy)
    seen = {v: x for v, x in true_values(table).items() if v[0] != "o" or v[1:] not in hidden}
    assert ("o", "b1", "C") not in peel(eqs, seen)
    derived = solve_linear(eqs, seen)
    assert derived[("o", "b1", "C")] == 3
    assert ("o", "b1", "A") not in derived


def test_bounds_find_what_linear_algebra_misses():
    """A hidden rectangle whose other corners are 0: b2 hides 0 + 0 = 0, so both are 0."""
    table, hierarchy = _four_buurten(
        {"b1": [3, 12, 15, 10], "b2": [0, 0, 20, 10], "b3": [20, 20, 20, 20]}
    )
    hidden = {("b1", "A"), ("b1", "B"), ("b2", "A"), ("b2", "B")}
    eqs = relations(table, hierarchy)
    seen = {v: x for v, x in true_values(table).items() if v[0] != "o" or v[1:] not in hidden}
    assert ("o", "b1", "A") not in solve_linear(eqs, seen)
    assert full_attack(eqs, seen)[("o", "b1", "A")] == 3


def test_cross_table_relations_find_what_per_table_suppression_leaves():
    """Poll seed 1 (k = 5), suppressed table by table as before: buurt BU0000 has 12
    respondents, 4 answered q0 = a0 (hidden, and a1 = 8 with it), but q1, asked only after
    q0 = a1 and required, shows its total 8 there: 12 − 8 = 4. The cross-table attack finds it;
    with the relations passed to suppress_poll nothing comes out."""
    tables, hierarchy, respondents, asked, asked_counts, k = simulate_poll(1)
    poll = suppress_poll(tables, hierarchy, k, respondents=respondents)  # relations unknown
    assert poll.tables[0].rows["BU0000"].counts["a0"] is None
    assert poll.tables[1].rows["BU0000"].total == 8
    eqs = poll_relations(tables, hierarchy, asked)
    seen = {("R", a): n for a, n in respondents.items() if a not in poll.areas}
    for t, result in zip(tables, poll.tables, strict=True):
        seen.update({_per_question(t.question_id, v): x for v, x in published(result).items()})
    assert peel(eqs, seen)[("o", "q0", "BU0000", "a0")] == 4
    with pytest.raises(AssertionError, match="recovers"):
        attack_poll(tables, hierarchy, respondents, asked, asked_counts, k, poll)
    poll = suppress_poll(tables, hierarchy, k, respondents=respondents, asked=asked)
    assert "BU0000" in poll.rows["q1"] and "BU0000" not in poll.areas  # q1's row, not the area
    attack_poll(tables, hierarchy, respondents, asked, asked_counts, k, poll)


def _two_buurten(buurten):
    """q0 single choice ja/nee for everyone, q1 after q0 = ja: {buurt: (q0 ja, nee, q1 total)}."""
    rows0 = {b: ("WK01", ja + nee, {"ja": ja, "nee": nee}) for b, (ja, nee, _) in buurten.items()}
    rows1 = {b: ("WK01", n, {"x": n}) for b, (_, _, n) in buurten.items()}
    q0, hierarchy = build(rows0, ["ja", "nee"], question="q0")
    q1, _ = build(rows1, ["x", "y"], question="q1")
    respondents = {a: row.total for a, row in q0.rows.items()}
    return [q0, q1], hierarchy, respondents


def _attack_two_buurten(tables, hierarchy, respondents, asked, poll, k=10):
    """attack_poll for a _two_buurten poll: q0 is asked of everyone, q1 after q0 = ja or of
    everyone (the number asked is then q0's ja count or the respondents)."""
    asked_counts = {}
    for area, n in respondents.items():
        asked_counts[("q0", area)] = n
        ja = tables[0].rows[area].counts["ja"]
        asked_counts[("q1", area)] = n if asked["q1"].after is None else ja
    attack_poll(tables, hierarchy, respondents, asked, asked_counts, k, poll)


def test_a_small_skip_count_hides_only_that_questions_row():
    """30 respondents in BU0100, 27 answered the optional q1: "3 skipped it" is a small figure.
    q1's row in BU0100 goes, and one more buurt's q1 row, or the wijk's q1 total minus the
    shown buurten gives it back: the one with the fewest skips that still lifts the hidden skips
    to k or more (BU0102: 3 + 10; "13 skipped in these two buurten" is no small figure). The
    areas stay: their respondents, and q0, are all shown."""
    tables, hierarchy, respondents = _two_buurten(
        {"BU0100": (10, 20, 27), "BU0101": (20, 20, 28), "BU0102": (25, 25, 40)}
    )
    asked = {"q0": Asked(), "q1": Asked(required=False)}
    poll = suppress_poll(tables, hierarchy, 10, respondents=respondents, asked=asked)
    assert poll.areas == ()
    assert poll.rows == {"q0": (), "q1": ("BU0100", "BU0102")}
    q0, q1 = poll.tables
    assert q0.reasons == {} and q0.suppressed_areas == ()
    assert q1.suppressed_areas == ("BU0100", "BU0102")
    assert q1.rows["BU0100"].total is None and set(q1.rows["BU0100"].counts.values()) == {None}
    assert q1.reasons[("BU0100", None)] == SECONDARY_AREA  # the 3 is no cell of the table
    assert q1.rows["WK01"].total == 95 and q1.rows["BU0101"].total == 28
    check_poll_shape(tables, asked, poll)
    _attack_two_buurten(tables, hierarchy, respondents, asked, poll)
    without = suppress_poll(tables, hierarchy, 10, respondents=respondents)
    assert without.areas == () and without.rows == {"q0": (), "q1": ()}  # per table: no small


def test_small_skip_counts_everywhere_hide_the_question_not_the_areas():
    """3 of the 120 respondents skipped q1, all in BU0100: the wijk's and the gemeente's "3
    skipped" are small too, so q1's rows there go (the buurten's own rows can then stay: the
    totals above them are hidden); no area is hidden."""
    tables, hierarchy, respondents = _two_buurten(
        {"BU0100": (10, 20, 27), "BU0101": (20, 20, 40), "BU0102": (25, 25, 50)}
    )
    asked = {"q0": Asked(), "q1": Asked(required=False)}
    poll = suppress_poll(tables, hierarchy, 10, respondents=respondents, asked=asked)
    assert poll.areas == ()
    assert poll.rows == {"q0": (), "q1": (GM, "WK01", "BU0100")}
    assert poll.tables[0].reasons == {}
    _attack_two_buurten(tables, hierarchy, respondents, asked, poll)


def test_a_small_follow_up_hides_its_row_and_the_parent_count():
    """q1 is asked only after q0 = ja and required: its total is q0's ja count. In BU0100 3 said
    ja: the 3 is hidden in q0 (with nee, or 30 − nee gives it), q1's row there is hidden (its
    total is that 3), and BU0101 partners both (the wijk's figures minus the shown buurt would
    give them back). Nothing else: no area is hidden."""
    tables, hierarchy, respondents = _two_buurten(
        {"BU0100": (3, 27, 3), "BU0101": (20, 20, 20), "BU0102": (25, 25, 25)}
    )
    asked = {"q0": Asked(), "q1": Asked(after=("q0", ("ja",)))}
    poll = suppress_poll(tables, hierarchy, 10, respondents=respondents, asked=asked)
    assert poll.areas == ()
    assert poll.rows == {"q0": (), "q1": ("BU0100", "BU0101")}
    q0, q1 = poll.tables
    assert q0.reasons[("BU0100", "ja")] == PRIMARY_CELL
    assert set(q0.reasons) == {(b, o) for b in ("BU0100", "BU0101") for o in ("ja", "nee")}
    assert all(q0.rows[a].total == respondents[a] for a in respondents)  # totals all shown
    assert q1.reasons[("BU0100", None)] == PRIMARY_AREA
    _attack_two_buurten(tables, hierarchy, respondents, asked, poll)


def test_a_small_area_is_still_hidden_whole_in_every_question():
    """4 respondents in BU0100: the area goes, in every question (optional ones too) and in
    the respondents, with the smallest sibling that does the job."""
    tables, hierarchy, respondents = _two_buurten(
        {"BU0100": (2, 2, 4), "BU0101": (20, 20, 40), "BU0102": (25, 25, 50)}
    )
    asked = {"q0": Asked(), "q1": Asked(required=False)}
    poll = suppress_poll(tables, hierarchy, 10, respondents=respondents, asked=asked)
    assert poll.areas == ("BU0100", "BU0101")
    assert poll.rows == {"q0": (), "q1": ()}
    for result in poll.tables:
        assert result.suppressed_areas == ("BU0100", "BU0101")
    assert poll.tables[1].reasons[("BU0100", None)] == PRIMARY_AREA  # 4 answered q1 there
    _attack_two_buurten(tables, hierarchy, respondents, asked, poll)


def test_a_question_without_known_relations_hides_areas_whole():
    """A question left out of ``asked`` may have the respondents as its total: a row hidden
    there hides the area in every question, as before rule 6 knew better."""
    tables, hierarchy, respondents = _two_buurten(
        {"BU0100": (10, 20, 7), "BU0101": (20, 20, 40), "BU0102": (25, 25, 50)}
    )
    known = {"q0": Asked(), "q1": Asked(required=False)}
    poll = suppress_poll(tables, hierarchy, 10, respondents=respondents, asked=known)
    assert poll.areas == () and "BU0100" in poll.rows["q1"]
    poll = suppress_poll(tables, hierarchy, 10, respondents=respondents, asked={"q0": Asked()})
    assert "BU0100" in poll.areas and poll.rows == {"q0": (), "q1": ()}


@pytest.mark.parametrize("respondents", [5_000, 50_000])
def test_a_utrecht_sized_poll_hides_question_rows_not_areas(respondents):
    """Utrecht's 122 areas, 8% skips on the optional questions and a follow-up asked of about 1
    in 4 (``UTRECHT_POLL``): the areas hidden are exactly those the respondents per area need
    by themselves; skips and the follow-up hide rows of their own questions; nothing leaks."""
    tables, hierarchy, people, asked = _utrecht_poll(respondents, seed=0)
    poll = suppress_poll(tables, hierarchy, 10, respondents=people, asked=asked)
    assert poll.areas == suppress_areas(people, hierarchy, 10)
    check_poll_shape(tables, asked, poll)
    assert poll.rows["q0"] == poll.rows["q2"] == ()  # required, for everyone: the respondents
    assert all(poll.rows[q] for q in ("q1", "q3", "q4"))
    by_id = {t.question_id: t for t in tables}
    asked_counts = {
        (q, a): n if how.after is None else by_id["q2"].rows[a].counts["ja"]
        for q, how in asked.items()
        for a, n in people.items()
    }
    attack_poll(tables, hierarchy, people, asked, asked_counts, 10, poll)


def test_results_show_a_hidden_row_in_that_question_only():
    """services/responses/results.py: a question's own hidden row is {"suppressed": true} in
    that question and area only; the area, its respondents and its other questions are shown."""
    import uuid
    from types import SimpleNamespace

    from services.responses import results

    buurten = {"BU03440100": (30, 27), "BU03440101": (40, 28), "BU03440102": (50, 40)}
    cell = ("25_44", "vrouw", "panel")
    base: dict = {"*": {}, "veilig": {}, "vaak": {}}
    chosen: dict = {"veilig": {}, "vaak": {}}
    for code, (n, answered) in buurten.items():
        for area in (GM, "WK034401", code):
            for qid, m, option in (("*", n, None), ("veilig", n, "4"), ("vaak", answered, "ja")):
                counts = base[qid].setdefault(area, {})
                counts[cell] = counts.get(cell, 0) + m
                if option is not None:
                    per = chosen[qid].setdefault(area, {})
                    per[(cell, option)] = per.get((cell, option), 0) + m
    definition = {
        "questions": [
            {"id": "veilig", "type": "likert5", "text": "Veilig?"},
            {
                "id": "vaak",
                "type": "single_choice",
                "text": "Vaak?",
                "required": False,
                "options": [{"id": "ja"}, {"id": "nee"}],
            },
        ]
    }
    data = results.Aggregates(base, chosen, {b: 100 for b in buurten}, {}, {})
    poll = SimpleNamespace(
        id=uuid.uuid4(), definition=definition, municipality_code=GM, audience={}
    )
    doc = results.build(poll, data, 10)
    assert not any(a["suppressed"] for a in doc["areas"])
    assert {a["code"]: a["respondents"] for a in doc["areas"]}["BU03440100"] == 30
    veilig, vaak = doc["questions"]
    for hidden in ("BU03440100", "BU03440102"):  # 3 skipped; and 10, the partner
        assert vaak["areas"][hidden] == {"suppressed": True}  # no total, count, %, weighted
        assert veilig["areas"][hidden]["respondents"] == buurten[hidden][0]
        assert veilig["areas"][hidden]["mean"] == 4.0
    assert vaak["areas"]["BU03440101"]["respondents"] == 28
    assert vaak["areas"]["WK034401"]["options"][0]["percent"] == 100.0


def test_relations_that_do_not_hold_are_refused():
    tables, hierarchy, respondents = _two_buurten({"BU0100": (10, 20, 9), "BU0101": (20, 20, 20)})
    with pytest.raises(ValueError, match="required"):
        suppress_poll(
            tables, hierarchy, respondents=respondents, asked={"q1": Asked(after=("q0", ("ja",)))}
        )
    with pytest.raises(ValueError, match="respondents"):
        suppress_poll(tables, hierarchy, asked={"q0": Asked()})
    with pytest.raises(ValueError, match="condition"):
        suppress_poll(
            tables,
            hierarchy,
            respondents=respondents,
            asked={"q1": Asked(after=("q0", ("misschien",)))},
        )
    with pytest.raises(ValueError, match="no table"):
        suppress_poll(tables, hierarchy, respondents=respondents, asked={"q9": Asked()})


def test_asked_in_reads_required_and_show_if_from_the_definition():
    questions = [
        {"id": "q0", "type": "likert5"},
        {"id": "q1", "type": "single_choice", "required": False},
        {"id": "q2", "type": "single_choice", "show_if": {"question": "q0", "any_of": [4, 5]}},
        {
            "id": "q3",
            "type": "multiple_choice",
            "required": False,
            "show_if": {"question": "q1", "any_of": ["ja"]},
        },
        {"id": "q4", "type": "single_choice", "show_if": {"question": "elders", "any_of": ["x"]}},
    ]
    assert asked_in(questions) == {
        "q0": Asked(),
        "q1": Asked(required=False),
        "q2": Asked(after=("q0", ("4", "5"))),
        "q3": Asked(required=False, after=("q1", ("ja",))),
    }


# --- examples ------------------------------------------------------------------------------


def test_all_cells_at_least_k_nothing_suppressed():
    table, hierarchy = build(
        {
            "BU0100": ("WK01", 30, {"ja": 10, "nee": 20}),
            "BU0101": ("WK01", 25, {"ja": 12, "nee": 13}),
            "BU0200": ("WK02", 40, {"ja": 20, "nee": 20}),
            "BU0201": ("WK02", 22, {"ja": 11, "nee": 11}),
        },
        ["ja", "nee"],
    )
    result = suppress(table, hierarchy)
    assert result.reasons == {}
    assert result.suppressed_areas == ()
    for area, row in table.rows.items():
        assert result.rows[area].total == row.total
        assert result.rows[area].counts == dict(row.counts)


def test_zeros_are_shown():
    """An area with no respondents, and a 0 count, rest on nobody: they are shown."""
    table, hierarchy = build(
        {
            "BU0100": ("WK01", 30, {"ja": 0, "nee": 30}),
            "BU0101": ("WK01", 0, {"ja": 0, "nee": 0}),
            "BU0102": ("WK01", 25, {"ja": 12, "nee": 13}),
        },
        ["ja", "nee"],
    )
    result = suppress(table, hierarchy)
    assert result.reasons == {}
    assert result.rows["BU0101"].total == 0
    assert result.rows["BU0100"].counts == {"ja": 0, "nee": 30}


def test_area_below_k_is_suppressed_with_a_sibling():
    table, hierarchy = build(
        {
            "BU0100": ("WK01", 4, {"ja": 2, "nee": 2}),
            "BU0101": ("WK01", 30, {"ja": 10, "nee": 20}),
            "BU0102": ("WK01", 20, {"ja": 10, "nee": 10}),
            "BU0103": ("WK01", 50, {"ja": 25, "nee": 25}),
        },
        ["ja", "nee"],
    )
    result = suppress(table, hierarchy)
    assert result.reasons[("BU0100", None)] == PRIMARY_AREA
    assert result.reasons[("BU0100", "ja")] == PRIMARY_AREA
    assert result.rows["BU0100"] == type(result.rows["BU0100"])(None, {"ja": None, "nee": None})
    # The smallest sibling goes with it (20 lifts the hidden sum to 24 ≥ 10).
    assert result.suppressed_areas == ("BU0100", "BU0102")
    assert result.reasons[("BU0102", None)] == SECONDARY_AREA
    assert result.rows["WK01"].total == 104 and result.rows[GM].total == 104
    check_protected(table, hierarchy, 10, result)


def test_hidden_siblings_must_add_up_to_k():
    """Two small buurten hide each other by subtraction, but their sum (3 + 2) would still be a
    figure for fewer than k respondents: a third buurt goes too."""
    table, hierarchy = build(
        {
            "BU0100": ("WK01", 3, {"ja": 3, "nee": 0}),
            "BU0101": ("WK01", 2, {"ja": 1, "nee": 1}),
            "BU0102": ("WK01", 40, {"ja": 20, "nee": 20}),
            "BU0103": ("WK01", 60, {"ja": 30, "nee": 30}),
        },
        ["ja", "nee"],
    )
    result = suppress(table, hierarchy)
    assert result.suppressed_areas == ("BU0100", "BU0101", "BU0102")
    assert result.reasons[("BU0102", None)] == SECONDARY_AREA
    check_protected(table, hierarchy, 10, result)


def test_single_choice_row_gets_a_second_option_hidden():
    """One area, no hierarchy: total − shown options would give the small option away."""
    table = Table("q1", True, ["a", "b", "c"], {GM: Row(50, {"a": 3, "b": 20, "c": 27})})
    result = suppress(table, Hierarchy({GM: None}))
    assert result.reasons == {(GM, "a"): PRIMARY_CELL, (GM, "b"): SECONDARY_CELL}
    assert result.rows[GM].total == 50
    assert result.rows[GM].counts == {"a": None, "b": None, "c": 27}
    assert result.is_suppressed(GM, "b") and not result.is_suppressed(GM)


def test_multiple_choice_has_no_row_rule_but_the_column_rule():
    alone = Table("q2", False, ["a", "b", "c"], {GM: Row(50, {"a": 3, "b": 20, "c": 27})})
    result = suppress(alone, Hierarchy({GM: None}))
    assert result.reasons == {(GM, "a"): PRIMARY_CELL}
    assert result.rows[GM].counts == {"a": None, "b": 20, "c": 27}

    table, hierarchy = build(
        {
            "BU0100": ("WK01", 30, {"a": 3, "b": 20}),
            "BU0101": ("WK01", 30, {"a": 12, "b": 20}),
            "BU0102": ("WK01", 40, {"a": 30, "b": 20}),
        },
        ["a", "b"],
        exclusive=False,
    )
    result = suppress(table, hierarchy)
    assert result.reasons == {("BU0100", "a"): PRIMARY_CELL, ("BU0101", "a"): SECONDARY_CELL}
    assert result.rows["BU0100"].counts == {"a": None, "b": 20}
    check_protected(table, hierarchy, 10, result)


def test_multiple_choice_few_not_choosing_is_small_too():
    """17 of 20 chose "a": that says 3 did not."""
    table = Table("q2", False, ["a", "b"], {GM: Row(20, {"a": 17, "b": 10})})
    result = suppress(table, Hierarchy({GM: None}))
    assert result.reasons == {(GM, "a"): PRIMARY_CELL}
    # ... and all 20 choosing "b" would be shown, like a 0.
    table = Table("q2", False, ["a", "b"], {GM: Row(20, {"a": 20, "b": 0})})
    assert suppress(table, Hierarchy({GM: None})).reasons == {}


def test_wijk_with_a_single_buurt():
    """A wijk with one buurt is that buurt: hiding the buurt hides the wijk."""
    table, hierarchy = build(
        {
            "BU0100": ("WK01", 6, {"ja": 3, "nee": 3}),
            "BU0200": ("WK02", 30, {"ja": 15, "nee": 15}),
            "BU0201": ("WK02", 30, {"ja": 15, "nee": 15}),
        },
        ["ja", "nee"],
    )
    result = suppress(table, hierarchy)
    assert "WK01" in result.suppressed_areas
    check_protected(table, hierarchy, 10, result)


def test_skipped_level_is_still_a_relation():
    """A table with the gemeente and buurten but no wijken: gemeente = Σ buurten still holds."""
    table, hierarchy = build(
        {
            "BU0100": ("WK01", 4, {"ja": 2, "nee": 2}),
            "BU0101": ("WK01", 30, {"ja": 15, "nee": 15}),
            "BU0200": ("WK02", 30, {"ja": 15, "nee": 15}),
        },
        ["ja", "nee"],
    )
    rows = {a: r for a, r in table.rows.items() if not a.startswith("WK")}
    result = suppress(Table("q1", True, ["ja", "nee"], rows), hierarchy)
    assert len(result.suppressed_areas) == 2


def test_reasons_keep_the_first_reason():
    """A primary cell inside an area later hidden whole keeps "primary_cell"."""
    table, hierarchy = build(
        {
            "BU0100": ("WK01", 5, {"ja": 5, "nee": 0}),
            "BU0101": ("WK01", 20, {"ja": 3, "nee": 17}),
            "BU0102": ("WK01", 60, {"ja": 30, "nee": 30}),
        },
        ["ja", "nee"],
    )
    result = suppress(table, hierarchy)
    assert "BU0101" in result.suppressed_areas
    assert result.reasons[("BU0101", "ja")] == PRIMARY_CELL
    assert result.reasons[("BU0101", None)] == SECONDARY_AREA
    check_protected(table, hierarchy, 10, result)


def test_suppress_areas_for_a_whole_poll():
    hierarchy = Hierarchy({GM: None, "WK01": GM, "BU0100": "WK01", "BU0101": "WK01"})
    hidden = suppress_areas({GM: 34, "WK01": 34, "BU0100": 4, "BU0101": 30}, hierarchy)
    assert hidden == ("BU0100", "BU0101")


@pytest.mark.parametrize("k", [4, 0, -1, 4.0, "10", True, None])
def test_k_below_five_or_not_an_integer_is_refused(k):
    table = Table("q1", True, ["a"], {GM: Row(50, {"a": 50})})
    with pytest.raises(ValueError):
        suppress(table, Hierarchy({GM: None}), k)
    with pytest.raises(ValueError):
        open_texts_allowed(50, k)


def test_k_five_is_the_floor_and_the_default_is_ten():
    table = Table("q1", True, ["a", "b"], {GM: Row(12, {"a": 6, "b": 6})})
    assert suppress(table, Hierarchy({GM: None}), 5).reasons == {}
    assert suppress(table, Hierarchy({GM: None})).k == 10
    assert suppress(table, Hierarchy({GM: None})).suppressed_areas == ()


@pytest.mark.parametrize(
    "rows, exclusive",
    [
        ({GM: Row(10, {"a": 5, "b": 4})}, True),  # single choice not summing to the total
        ({GM: Row(10, {"a": 11, "b": 4})}, False),  # more than the total
        ({GM: Row(10, {"a": -1, "b": 11})}, True),  # negative
        ({GM: Row(10, {"a": 5, "x": 5})}, True),  # unknown option
        ({GM: Row(30, {"a": 15, "b": 15}), "WK01": Row(20, {"a": 10, "b": 10})}, True),
    ],
)
def test_inconsistent_tables_are_refused(rows, exclusive):
    hierarchy = Hierarchy({GM: None, "WK01": GM})
    with pytest.raises(ValueError):
        suppress(Table("q1", exclusive, ["a", "b"], rows), hierarchy)


def test_unknown_area_or_forced_area_is_refused():
    table = Table("q1", True, ["a"], {GM: Row(50, {"a": 50})})
    with pytest.raises(ValueError):
        suppress(table, Hierarchy({}))
    with pytest.raises(ValueError):
        suppress(table, Hierarchy({GM: None}), forced_areas=["WK99"])


# --- open texts ----------------------------------------------------------------------------


def test_open_texts_need_k_respondents_and_a_shown_area():
    assert open_texts_allowed(10, 10)
    assert not open_texts_allowed(9, 10)
    assert open_texts_allowed(5, 5)
    assert not open_texts_allowed(50, 10, area_suppressed=True)
    assert open_texts_allowed(10)  # default k = 10


def test_shuffle_texts_is_a_seeded_permutation_independent_of_input_order():
    texts = [f"tekst {i}" for i in range(30)]
    once = shuffle_texts(texts, seed="poll-1/q3/BU0100")
    assert Counter(once) == Counter(texts)
    assert once != sorted(texts)
    assert shuffle_texts(list(reversed(texts)), seed="poll-1/q3/BU0100") == once
    assert shuffle_texts(texts, seed="poll-2/q3/BU0100") != once
    assert shuffle_texts(["a", "a", "b"], seed=1).count("a") == 2
    assert texts == [f"tekst {i}" for i in range(30)]  # input untouched


def test_shuffle_texts_takes_bare_strings_only():
    with pytest.raises(TypeError):
        shuffle_texts([("2024-05-01T10:00", "te donker")], seed=1)
    with pytest.raises(TypeError):
        shuffle_texts([{"text": "te donker", "at": 1}], seed=1)


# --- timing (not a test: run this file as a script) ---------------------------------------


def _utrecht_table(respondents, options, exclusive, seed):
    import random

    from services.panel.areas import DATA_DIR, parse_kwb_csv

    (csv,) = DATA_DIR.glob("*_kwb2024_areas.csv")
    records = parse_kwb_csv(csv.read_text(encoding="utf-8"))
    buurten = [r for r in records if r.level == "buurt"]
    rnd = random.Random(seed)
    weights = [r.population or 0 for r in buurten]
    per_buurt = Counter(rnd.choices(range(len(buurten)), weights=weights, k=respondents))
    rows = {}
    for i, r in enumerate(buurten):
        n = per_buurt[i]
        if exclusive:
            counts = Counter(rnd.choices(options, weights=range(1, len(options) + 1), k=n))
        else:
            counts = {
                o: sum(rnd.random() < 0.1 + 0.12 * j for _ in range(n))
                for j, o in enumerate(options)
            }
        rows[r.code] = (r.parent_code, n, {o: counts.get(o, 0) for o in options})
    return build(rows, options, exclusive)


# A Utrecht-sized poll: (id, single choice, options, shown after, required). Optional questions
# are skipped by ``skip`` of those asked; q3 is asked of those who said ja to q2 (about 1 in 4).
UTRECHT_POLL = (
    ("q0", True, ("1", "2", "3", "4", "5"), None, True),
    ("q1", True, ("a", "b", "c", "d"), None, False),
    ("q2", True, ("ja", "nee"), None, True),
    ("q3", False, ("w", "x", "y", "z"), ("q2", ("ja",)), False),
    ("q4", False, ("m", "n", "o", "p", "q"), None, False),
)


def _utrecht_poll(respondents, seed, skip=0.08):
    """``UTRECHT_POLL`` answered respondent by respondent over Utrecht's 1 + 10 + 111 areas
    (respondents spread over the buurten by population). Returns (tables, hierarchy,
    respondents per area, asked)."""
    from services.panel.areas import DATA_DIR, parse_kwb_csv

    (csv,) = DATA_DIR.glob("*_kwb2024_areas.csv")
    records = parse_kwb_csv(csv.read_text(encoding="utf-8"))
    (gemeente,) = [r.code for r in records if r.level == "gemeente"]
    wijken = [r.code for r in records if r.level == "wijk"]
    buurten = [r for r in records if r.level == "buurt"]
    parent = {gemeente: None, **dict.fromkeys(wijken, gemeente)}
    parent.update({b.code: b.parent_code for b in buurten})
    rnd = random.Random(seed)
    where = rnd.choices(buurten, weights=[b.population or 0 for b in buurten], k=respondents)
    weights = {q: [rnd.random() + 0.2 for _ in options] for q, _, options, _, _ in UTRECHT_POLL}
    weights["q2"] = [1, 3]
    totals = {q: Counter() for q, *_ in UTRECHT_POLL}
    counts = {q: Counter() for q, *_ in UTRECHT_POLL}
    people = Counter()
    for buurt in where:
        chain = (buurt.code, buurt.parent_code, gemeente)
        people.update(chain)
        given = {}
        for qid, exclusive, options, after, required in UTRECHT_POLL:
            if after is not None and not set(given.get(after[0], ())) & set(after[1]):
                continue
            if not required and rnd.random() < skip:
                continue
            if exclusive:
                answer = rnd.choices(options, weights[qid])
            else:
                answer = [
                    o for o, w in zip(options, weights[qid], strict=True) if rnd.random() < w / 1.5
                ]
                answer = answer or [rnd.choice(options)]
            given[qid] = answer
            totals[qid].update(chain)
            counts[qid].update((area, o) for area in chain for o in answer)
    order = [gemeente, *wijken, *(b.code for b in buurten)]
    tables = [
        Table(
            qid,
            exclusive,
            list(options),
            {a: Row(totals[qid][a], {o: counts[qid][(a, o)] for o in options}) for a in order},
        )
        for qid, exclusive, options, _, _ in UTRECHT_POLL
    ]
    asked = {qid: Asked(required, after) for qid, _, _, after, required in UTRECHT_POLL}
    return tables, Hierarchy(parent), {a: people[a] for a in order}, asked


def poll_report(suppress_poll=suppress_poll, sizes=(5_000, 50_000), seeds=range(5), skip=0.08):
    """Per simulated Utrecht poll: areas hidden whole, and rows hidden in one question only.
    ``suppress_poll`` may be another version of the function, to compare."""
    import time

    for respondents in sizes:
        for seed in seeds:
            tables, hierarchy, people, asked = _utrecht_poll(respondents, seed, skip)
            start = time.perf_counter()
            poll = suppress_poll(tables, hierarchy, 10, respondents=people, asked=asked)
            took = time.perf_counter() - start
            rows = {
                t.question_id: sum(1 for a in t.suppressed_areas if a not in poll.areas)
                for t in poll.tables
            }
            print(
                f"poll n={respondents:>6,} seed {seed}, {skip:.0%} skips: areas hidden "
                f"{len(poll.areas)} of {len(people)}, question rows hidden "
                f"{sum(rows.values())} {rows}, {took * 1000:.0f} ms"
            )


def main():
    import time

    options = [f"opt{i}" for i in range(6)]
    for respondents in (1_000, 5_000, 50_000, 1_000_000):
        for exclusive in (True, False):
            table, hierarchy = _utrecht_table(respondents, options, exclusive, seed=respondents)
            times = []
            for _ in range(20):
                start = time.perf_counter()
                result = suppress(table, hierarchy, 10)
                times.append(time.perf_counter() - start)
            times.sort()
            print(
                f"{len(table.rows)} areas × {len(options)} options, n={respondents:>9,}, "
                f"{'single' if exclusive else 'multiple'} choice: median "
                f"{times[len(times) // 2] * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms; "
                f"hidden areas {len(result.suppressed_areas)}, hidden cells {len(result.reasons)} "
                f"{dict(Counter(result.reasons.values()))}"
            )
    poll_report()


if __name__ == "__main__":
    main()
