"""services/responses/suppression.py: small cells, secondary suppression, checked by trying.

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
(multiple choice) the number who did not choose an option.

Run as a script for the timing of a Utrecht-sized table (1 + 10 + 111 areas × 6 options):
    .venv/bin/python -m tests.unit.test_suppression
"""

from __future__ import annotations

import math
from collections import Counter
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.responses.suppression import (
    PRIMARY_AREA,
    PRIMARY_CELL,
    REASONS,
    SECONDARY_AREA,
    SECONDARY_CELL,
    Hierarchy,
    Row,
    Table,
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


def solve_linear(eqs, known):
    """Every unknown the relations fix, by sparse Gauss–Jordan elimination over Fractions."""

    def subtract(row, rhs, factor, other, other_rhs):
        for v, c in other.items():
            value = row.get(v, 0) - factor * c
            if value:
                row[v] = value
            else:
                row.pop(v, None)
        return rhs - factor * other_rhs

    basis = {}  # pivot → (row with coefficient 1 at the pivot and 0 at every other pivot, rhs)
    for eq in eqs:
        row, rhs = {}, Fraction(0)
        for v, c in eq.items():
            if v in known:
                rhs -= c * known[v]
            else:
                row[v] = row.get(v, 0) + Fraction(c)
        row = {v: c for v, c in row.items() if c}
        for p in [v for v in row if v in basis]:
            rhs = subtract(row, rhs, row[p], *basis[p])
        if not row:
            assert rhs == 0
            continue
        p = min(row)
        rhs /= row[p]
        row = {v: c / row[p] for v, c in row.items()}
        for q, (other, other_rhs) in list(basis.items()):
            if p in other:
                other = dict(other)
                basis[q] = (other, subtract(other, other_rhs, other[p], row, rhs))
        basis[p] = (row, rhs)
    found = dict(known)
    for p, (row, rhs) in basis.items():
        if len(row) == 1:
            assert rhs.denominator == 1
            found[p] = int(rhs)
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
    # the hidden figures in it add up to at least k: their sum is a figure too. (A relation whose
    # shown total is 0 holds known zeros only.)
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
            assert sum(truth[v] for v in hidden) >= k


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


def _per_question(q, variable):
    return variable if variable[0] == "T" else (variable[0], q, *variable[1:])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(polls())
def test_a_poll_hides_the_same_areas_everywhere_and_nothing_small_leaks_across_tables(case):
    """The questions share the area totals: the attacker combines all tables of the poll and
    the respondents per area (as the response rates show them)."""
    tables, hierarchy, respondents, k = case
    poll = suppress_poll(tables, hierarchy, k, respondents=respondents)
    eqs, seen, small, truth = [], {}, set(), {}
    for q, (table, result) in enumerate(zip(tables, poll.tables, strict=True)):
        assert set(result.suppressed_areas) == set(poll.areas)
        check_shape(table, k, result)
        check_protected(table, hierarchy, k, result)
        eqs += [
            {_per_question(q, v): c for v, c in eq.items()} for eq in relations(table, hierarchy)
        ]
        seen.update({_per_question(q, v): x for v, x in published(result).items()})
        truth.update({_per_question(q, v): x for v, x in true_values(table).items()})
        small |= {_per_question(q, v) for v in sensitive(table, k)}
    seen.update({("T", a): n for a, n in respondents.items() if a not in poll.areas})
    derived = full_attack(eqs, seen)
    assert all(truth[v] == x for v, x in derived.items())
    assert not small & derived.keys()


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


if __name__ == "__main__":
    main()
