"""services/responses/weighting.py: raking to CBS margins, trimming, Kish n, Wilson, shares.

The method is described in docs/methods.md; the worked example there is HAND below.
"""

import csv
import math
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common.events import AGE_BANDS, SEXES
from services.responses.weighting import (
    RAKED_AGE_BANDS,
    UNKNOWN,
    kish_effective_n,
    rake,
    weighted_share,
    wilson_interval,
)

KWB_2024 = Path(__file__).resolve().parents[2] / "data/areas/utrecht_GM0344_kwb2024_areas.csv"
TOL = 1e-6

# --------------------------------------------------------------------------- the hand example
#
# A made-up wijk. CBS margins: age 0_14 150, 15_24 255, 25_44 595 (45_64 and 65_plus 0),
# sex man 450, vrouw 550 (all ages).
# 15+ rule: drop 0_14 -> 15+ population 850 -> age targets 255/850 = 0.30 and 595/850 = 0.70.
# Sex targets: 450/1000 = 0.45 and 550/1000 = 0.55.
# Sample, n = 100:            man   vrouw   total
#                  15_24       10      25      35
#                  25_44       15      50      65
#                  total       25      75     100
# Targets in respondents: 15_24 30, 25_44 70, man 45, vrouw 55.
# In a 2 x 2 table, raking keeps the odds ratio of the sample, (10 * 50) / (25 * 15) = 4/3, and
# fits the margins. Let x be the weighted number of young men; then young women 30 - x, men
# 25-44 45 - x, women 25-44 70 - (45 - x) = 25 + x, and
#     x (25 + x) / ((30 - x)(45 - x)) = 4/3
#     3x^2 + 75x = 4 (1350 - 75x + x^2)
#     x^2 - 375x + 5400 = 0
#     x = (375 - sqrt(375^2 - 4 * 5400)) / 2 = (375 - sqrt(119025)) / 2 = (375 - 345) / 2 = 15.
# Weighted table 15, 15, 30, 40; weight = weighted / sample:
#     15_24 man 15/10 = 1.5    15_24 vrouw 15/25 = 0.6
#     25_44 man 30/15 = 2.0    25_44 vrouw 40/50 = 0.8
# Check: 10*1.5 + 25*0.6 = 30 (15_24); 10*1.5 + 15*2.0 = 45 (man); total 100, so mean weight 1.
# Kish: sum w = 100, sum w^2 = 10*2.25 + 25*0.36 + 15*4 + 50*0.64 = 123.5, n_eff = 10000/123.5.
# Population scale 850 / 100 = 8.5 residents aged 15+ per unit of weight.
HAND_CELLS = {
    ("15_24", "man"): 10,
    ("15_24", "vrouw"): 25,
    ("25_44", "man"): 15,
    ("25_44", "vrouw"): 50,
}
HAND_MARGINS = {
    "age": {"0_14": 150, "15_24": 255, "25_44": 595, "45_64": 0, "65_plus": 0},
    "sex": {"man": 450, "vrouw": 550},
}
HAND_WEIGHTS = {
    ("15_24", "man"): 1.5,
    ("15_24", "vrouw"): 0.6,
    ("25_44", "man"): 2.0,
    ("25_44", "vrouw"): 0.8,
}


def weighted_total(result, cells, keep):
    return math.fsum(k * result.weights[c] for c, k in cells.items() if k and keep(c))


def weighted_shares(result, cells, axis, categories):
    """Weighted share of each category among respondents whose category on the axis is known."""
    totals = {
        c: weighted_total(result, cells, lambda cell, c=c: cell[axis] == c) for c in categories
    }
    known = sum(totals.values())
    return {c: t / known for c, t in totals.items()}


def check_invariants(result, cells, trim=(0.2, 5.0)):
    n = sum(cells.values())
    assert result.n == n
    assert set(result.weights) == {c for c, k in cells.items() if k}
    for w in result.weights.values():
        assert math.isfinite(w) and w > 0
    if n:
        assert math.isclose(weighted_total(result, cells, lambda c: True), n, rel_tol=1e-9)
        assert result.effective_n <= n * (1 + 1e-9)
    if trim is not None:
        low, high = trim
        for w in result.weights.values():
            assert low * (1 - 1e-9) <= w <= high * (1 + 1e-9)


def test_hand_example():
    result = rake(HAND_CELLS, HAND_MARGINS, tolerance=1e-12, max_iter=200)
    assert result.method == "raking" and result.converged and not result.trimmed
    assert result.dimensions == ("age", "sex")
    for cell, expected in HAND_WEIGHTS.items():
        assert result.weights[cell] == pytest.approx(expected, abs=1e-6)
    assert result.effective_n == pytest.approx(10000 / 123.5, abs=1e-6)
    assert result.population == 850 and result.population_scale == pytest.approx(8.5)
    assert result.unmatched == () and result.collapsed == ()
    # the default tolerance stops earlier, but within the stated rule
    default = rake(HAND_CELLS, HAND_MARGINS)
    assert default.converged and default.max_margin_error < TOL
    for cell, expected in HAND_WEIGHTS.items():
        assert default.weights[cell] == pytest.approx(expected, rel=1e-5)


def test_hand_example_weighted_share():
    # "Do you feel safe?" yes / no per cell. Unweighted yes: 60 of 100 = 60%.
    # Weighted yes: 6*1.5 + 10*0.6 + 9*2.0 + 35*0.8 = 9 + 6 + 18 + 28 = 61 of 100 = 61%.
    yes = {("15_24", "man"): 6, ("15_24", "vrouw"): 10, ("25_44", "man"): 9, ("25_44", "vrouw"): 35}
    counts = {(c, "ja"): k for c, k in yes.items()}
    counts.update({(c, "nee"): HAND_CELLS[c] - k for c, k in yes.items()})
    shares = weighted_share(counts, HAND_WEIGHTS, options=["ja", "nee", "weet niet"])
    assert shares.n == 100 and shares.effective_n == pytest.approx(10000 / 123.5)
    ja, nee, dunno = shares.options
    assert (ja.option, ja.count, ja.percent) == ("ja", 60, 60.0)
    assert ja.weighted_percent == pytest.approx(61.0)
    assert nee.weighted_percent == pytest.approx(39.0) and nee.percent == 40.0
    low, high = wilson_interval(0.61, 10000 / 123.5)
    assert (ja.ci_low, ja.ci_high) == (pytest.approx(100 * low), pytest.approx(100 * high))
    assert ja.ci_low < 61.0 < ja.ci_high
    assert (dunno.count, dunno.percent, dunno.weighted_percent) == (0, 0.0, 0.0)
    # multiple choice: the base is the respondents per cell, not the sum of the ticks
    multi = weighted_share(
        {**counts, (("15_24", "man"), "weet niet"): 10}, HAND_WEIGHTS, base=HAND_CELLS
    )
    assert multi.n == 100 and multi.options[2].weighted_percent == pytest.approx(15.0)
    with pytest.raises(ValueError, match="no weight"):
        weighted_share({(("65_plus", "man"), "ja"): 1}, HAND_WEIGHTS)
    empty = weighted_share({}, {}, options=["ja"])
    assert empty.n == 0 and empty.options[0].percent is None


# --------------------------------------------------------------------------- special cases


def test_unknown_sex_and_age_get_the_neutral_factor():
    cells = {
        **HAND_CELLS,
        ("25_44", "onbekend"): 5,
        ("25_44", "anders"): 2,
        (None, "man"): 4,
        (UNKNOWN, UNKNOWN): 3,
    }
    result = rake(cells, HAND_MARGINS, tolerance=1e-12, max_iter=500)
    check_invariants(result, cells)
    assert result.converged
    s_man, s_vrouw = 0.45, 0.55
    s_young, s_old = 0.3, 0.7
    w = result.weights
    # among respondents with a known category, the weighted shares are the targets
    assert weighted_shares(result, cells, 0, ["15_24", "25_44"]) == pytest.approx(
        {"15_24": 0.3, "25_44": 0.7}
    )
    assert weighted_shares(result, cells, 1, ["man", "vrouw"]) == pytest.approx(
        {"man": 0.45, "vrouw": 0.55}
    )
    # "factor 1" on the missing dimension = the population-weighted geometric mean of the others
    geo_sex = w[("25_44", "man")] ** s_man * w[("25_44", "vrouw")] ** s_vrouw
    assert w[("25_44", "onbekend")] == pytest.approx(geo_sex) == w[("25_44", "anders")]
    assert w[(None, "man")] == pytest.approx(
        w[("15_24", "man")] ** s_young * w[("25_44", "man")] ** s_old
    )
    both = math.prod(
        w[(a, s)] ** (sa * ss)
        for a, sa in (("15_24", s_young), ("25_44", s_old))
        for s, ss in (("man", s_man), ("vrouw", s_vrouw))
    )
    assert w[(UNKNOWN, UNKNOWN)] == pytest.approx(both)


def test_margins_missing_gives_unweighted():
    for margins in (
        None,
        {},
        {"age": None, "sex": None},
        {"age": {b: None for b in AGE_BANDS}, "sex": {"man": None, "vrouw": None}},
    ):
        result = rake(HAND_CELLS, margins)
        assert result.method == "unweighted" and result.converged and result.iterations == 0
        assert set(result.weights.values()) == {1.0} and result.effective_n == 100
        assert result.population_scale is None and result.notes
    empty = rake({}, HAND_MARGINS)
    assert empty.weights == {} and empty.n == 0 and empty.method == "unweighted"
    zeros = rake({("15_24", "man"): 0}, HAND_MARGINS)
    assert zeros.weights == {} and zeros.n == 0


def test_one_margin_missing_rakes_on_the_other():
    result = rake(HAND_CELLS, {"age": HAND_MARGINS["age"], "sex": {"man": None, "vrouw": None}})
    assert result.method == "raking" and result.dimensions == ("age",)
    # post-stratification on age alone: 15_24 gets 30/35, 25_44 70/65
    assert result.weights[("15_24", "man")] == pytest.approx(30 / 35)
    assert result.weights[("25_44", "vrouw")] == pytest.approx(70 / 65)
    assert result.iterations == 1


def test_zero_population_with_respondents_collapses_with_neighbour():
    margins = {
        "age": {"0_14": 10, "15_24": 300, "25_44": 500, "45_64": 200, "65_plus": 0},
        "sex": {"man": 500, "vrouw": 510},
    }
    cells = {
        ("15_24", "man"): 10,
        ("15_24", "vrouw"): 10,
        ("25_44", "man"): 20,
        ("25_44", "vrouw"): 20,
        ("45_64", "man"): 5,
        ("45_64", "vrouw"): 5,
        ("65_plus", "vrouw"): 3,
    }
    result = rake(cells, margins)
    check_invariants(result, cells)
    assert result.converged and result.collapsed == (("age", ("45_64", "65_plus")),)
    assert any("merged" in note for note in result.notes)
    # 45_64 and 65_plus together carry the 45_64 share
    merged = weighted_total(result, cells, lambda c: c[0] in ("45_64", "65_plus")) / result.n
    assert merged == pytest.approx(200 / 1000, rel=TOL)
    # the first band has no lower neighbour: it merges upwards
    first = rake(
        {("15_24", "man"): 3, ("25_44", "man"): 5, ("45_64", "vrouw"): 5},
        {"age": {"15_24": 0, "25_44": 10, "45_64": 10}, "sex": None},
    )
    assert first.collapsed == (("age", ("15_24", "25_44")),)
    # sex: man with respondents but no population -> man + vrouw merge -> no sex weighting
    nosex = rake(HAND_CELLS, {"age": HAND_MARGINS["age"], "sex": {"man": 0, "vrouw": 550}})
    assert nosex.dimensions == ("age",) and nosex.collapsed == (("sex", ("man", "vrouw")),)


def test_unknown_population_for_a_category_leaves_its_respondents_unraked_on_it():
    margins = {
        "age": {"15_24": 300, "25_44": None, "45_64": 400, "65_plus": 300},
        "sex": {"man": 50, "vrouw": 50},
    }
    cells = {
        ("15_24", "man"): 10,
        ("25_44", "vrouw"): 30,
        ("45_64", "vrouw"): 10,
        ("65_plus", "man"): 10,
    }
    result = rake(cells, margins)
    check_invariants(result, cells)
    assert result.converged and result.population is None and result.population_scale is None
    shares = weighted_shares(result, cells, 0, ["15_24", "45_64", "65_plus"])
    assert shares == pytest.approx({"15_24": 0.3, "45_64": 0.4, "65_plus": 0.3}, rel=TOL)
    assert any("no CBS figure for age 25_44" in note for note in result.notes)


def test_a_note_about_a_band_without_cbs_figure_does_not_count_its_respondents():
    """Regression: the note said "its 3 respondents are not weighted on age". Notes stand beside
    published figures (results, exports, the overview, feedback's key figures on residents'
    pages) and are not suppressed, so a count of 1..k-1 in a note told a small group."""
    margins = {
        "age": {"0_14": 10, "15_24": 100, "25_44": None, "45_64": 400, "65_plus": 200},
        "sex": {"man": 50, "vrouw": 50},
    }
    cells = {("15_24", "man"): 10, ("25_44", "vrouw"): 3, ("45_64", "vrouw"): 10}
    result = rake(cells, margins)
    note = next(n for n in result.notes if "no CBS figure for age 25_44" in n)
    assert not any(ch.isdigit() for ch in note.split(":", 1)[1]), note


def test_population_without_respondents_is_unmatched_and_the_rest_renormalised():
    margins = {
        "age": {"0_14": 99, "15_24": 100, "25_44": 300, "45_64": 400, "65_plus": 200},
        "sex": {"man": 500, "vrouw": 500},
    }
    cells = {
        ("25_44", "man"): 10,
        ("25_44", "vrouw"): 15,
        ("45_64", "man"): 10,
        ("45_64", "vrouw"): 10,
        ("65_plus", "man"): 5,
        ("65_plus", "vrouw"): 5,
    }
    result = rake(cells, margins)
    check_invariants(result, cells)
    assert result.converged and result.unmatched == (("age", "15_24"),)
    shares = weighted_shares(result, cells, 0, ["25_44", "45_64", "65_plus"])
    assert shares == pytest.approx({"25_44": 3 / 9, "45_64": 4 / 9, "65_plus": 2 / 9}, rel=TOL)
    # no vrouw respondents at all: sex cannot be raked; reported
    only_men = {("25_44", "man"): 10, ("45_64", "man"): 20}
    result = rake(only_men, margins)
    assert result.unmatched == (("age", "15_24"), ("age", "65_plus"), ("sex", "vrouw"))
    assert result.dimensions == ("age",)


def test_respondents_in_0_14_are_not_raked_on_age():
    cells = {**HAND_CELLS, ("0_14", "vrouw"): 2}
    result = rake(cells, HAND_MARGINS)
    check_invariants(result, cells)
    assert result.converged and any("0_14" in note for note in result.notes)


def test_max_iter_reached_is_not_converged():
    # one raking pass, then at most one Newton step: not enough
    result = rake(HAND_CELLS, HAND_MARGINS, max_iter=1, tolerance=1e-12)
    assert result.iterations <= 2 and not result.converged and result.max_margin_error > 1e-12
    check_invariants(result, HAND_CELLS)


def test_trimming_meets_the_margins_inside_the_bounds_when_it_can():
    # Hand example with bounds [0.5, 1.9] x mean. With the margins fixed, the 2 x 2 table has one
    # free number, x (weighted young men): weights x/10, (30 - x)/25, (45 - x)/15, (25 + x)/50.
    # 25_44 man <= 1.9 needs x >= 45 - 28.5 = 16.5; the closest feasible point to the raked
    # x = 15 is x = 16.5: weights 1.65, 0.54, 1.9, 0.83 (all inside [0.5, 1.9], margins exact).
    result = rake(HAND_CELLS, HAND_MARGINS, trim=(0.5, 1.9))
    assert result.trimmed and result.converged and result.max_margin_error < TOL
    check_invariants(result, HAND_CELLS, trim=(0.5, 1.9))
    expected = {
        ("15_24", "man"): 1.65,
        ("15_24", "vrouw"): 0.54,
        ("25_44", "man"): 1.9,
        ("25_44", "vrouw"): 0.83,
    }
    for cell, weight in expected.items():
        assert result.weights[cell] == pytest.approx(weight, abs=1e-6)
    assert result.effective_n > rake(HAND_CELLS, HAND_MARGINS).effective_n


def test_trimming_that_cannot_meet_the_margins_says_so():
    # 2 young respondents cannot carry a 50% share with weights <= 2 x mean
    cells = {
        ("15_24", "man"): 1,
        ("15_24", "vrouw"): 1,
        ("25_44", "man"): 49,
        ("25_44", "vrouw"): 49,
    }
    margins = {"age": {"15_24": 500, "25_44": 500}, "sex": {"man": 1, "vrouw": 1}}
    result = rake(cells, margins, trim=(0.5, 2.0))
    check_invariants(result, cells, trim=(0.5, 2.0))
    assert result.trimmed and not result.converged
    # best possible: young at weight 2 -> 4 of 100 -> share 0.04 instead of 0.5
    assert result.max_margin_error == pytest.approx(1 - 0.04 / 0.5, rel=1e-3)
    assert any("cannot be met" in note for note in result.notes)


def test_trimming_keeps_the_weight_of_the_unknown():
    cells = {**HAND_CELLS, ("25_44", "onbekend"): 5, (None, "man"): 4}
    raked = rake(cells, HAND_MARGINS, trim=None)
    trimmed = rake(cells, HAND_MARGINS, trim=(0.7, 1.9))
    assert trimmed.trimmed and trimmed.converged
    check_invariants(trimmed, cells, trim=(0.7, 1.9))
    for axis, value in ((1, "onbekend"), (0, None)):
        before = weighted_total(raked, cells, lambda c, a=axis, v=value: c[a] == v)
        after = weighted_total(trimmed, cells, lambda c, a=axis, v=value: c[a] == v)
        assert after == pytest.approx(before, rel=1e-5)


@pytest.mark.parametrize(
    ("cells", "margins", "kwargs", "message"),
    [
        ({("15_24", "x"): 1}, HAND_MARGINS, {}, "unknown sex"),
        ({("15_25", "man"): 1}, HAND_MARGINS, {}, "unknown age band"),
        ({("15_24", "man"): -1}, HAND_MARGINS, {}, "whole number"),
        ({("15_24", "man"): 1.5}, HAND_MARGINS, {}, "whole number"),
        ({("15_24", "man"): float("nan")}, HAND_MARGINS, {}, "finite"),
        ({"15_24": 1}, HAND_MARGINS, {}, "a cell is"),
        (HAND_CELLS, {"age": {"15_24": -5}}, {}, "must be >= 0"),
        (HAND_CELLS, {"sex": {"man": "veel"}}, {}, "number or None"),
        (HAND_CELLS, HAND_MARGINS, {"trim": (1.2, 5.0)}, "trim bounds"),
        (HAND_CELLS, HAND_MARGINS, {"trim": (0.0, 5.0)}, "trim bounds"),
        (HAND_CELLS, HAND_MARGINS, {"max_iter": -1}, "max_iter"),
    ],
)
def test_bad_input_is_refused(cells, margins, kwargs, message):
    with pytest.raises(ValueError, match=message):
        rake(cells, margins, **kwargs)


def test_cell_vocabulary_is_the_event_catalogue():
    assert RAKED_AGE_BANDS == tuple(b for b in AGE_BANDS if b != "0_14")
    for sex in SEXES:
        rake({("25_44", sex): 1, ("45_64", "man"): 1}, HAND_MARGINS)


# --------------------------------------------------------------------------- Utrecht


def utrecht_wijken():
    with KWB_2024.open(encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["level"] == "wijk"]
    assert len(rows) == 10

    def num(value):
        return int(value) if value else None

    return [
        (
            r["code"],
            {
                "age": {b: num(r[f"age_{b}"]) for b in AGE_BANDS},
                "sex": {"man": num(r["male"]), "vrouw": num(r["female"])},
            },
        )
        for r in rows
    ]


def skewed_sample(code, margins, *, n=200, over_45_64=2.5, under_15_24=1.0, over_vrouw=1.6):
    """A panel as they come: 45_64 and women over-represented, a few unknowns (seeded)."""
    rnd = random.Random(f"{code}-{over_45_64}-{under_15_24}-{over_vrouw}")
    bands = list(RAKED_AGE_BANDS)
    age_w = [
        margins["age"][b] * {"45_64": over_45_64, "15_24": under_15_24}.get(b, 1.0) for b in bands
    ]
    sex_w = [margins["sex"]["man"], margins["sex"]["vrouw"] * over_vrouw]
    cells = {}
    for _ in range(n):
        age = rnd.choices(bands, age_w)[0] if rnd.random() >= 0.03 else None
        sex = (
            rnd.choices(["man", "vrouw"], sex_w)[0]
            if rnd.random() >= 0.03
            else rnd.choice(["anders", "onbekend"])
        )
        cells[(age, sex)] = cells.get((age, sex), 0) + 1
    return cells


def population_shares(margins):
    age15 = {b: margins["age"][b] for b in RAKED_AGE_BANDS}
    total15 = sum(age15.values())
    sex_total = sum(margins["sex"].values())
    return (
        {b: v / total15 for b, v in age15.items()},
        {s: v / sex_total for s, v in margins["sex"].items()},
    )


# When the bounds and the margins cannot both hold, the margins may miss. This is the bound we
# document (docs/methods.md) for these seeded Utrecht samples; it is not a general guarantee.
LOOSE = 0.15


@pytest.mark.parametrize(
    ("scenario", "sample_kwargs", "trim", "expect_trimmed", "expect_missed"),
    [
        ("typical panel, default bounds", {}, (0.2, 5.0), 0, 0),
        # 4 missed before the weight of respondents of unknown age or sex could move (1d).
        ("typical panel, tight bounds", {}, (0.4, 2.0), 6, 3),
        (
            "harsh panel, default bounds",
            {"over_45_64": 3.0, "under_15_24": 0.5, "over_vrouw": 1.8},
            (0.2, 5.0),
            1,
            0,
        ),
    ],
)
def test_utrecht_wijken(scenario, sample_kwargs, trim, expect_trimmed, expect_missed):
    trimmed = missed = 0
    for code, margins in utrecht_wijken():
        cells = skewed_sample(code, margins, **sample_kwargs)
        result = rake(cells, margins, trim=trim)
        check_invariants(result, cells, trim=trim)
        assert result.method == "raking" and result.dimensions == ("age", "sex")
        assert result.unmatched == () and result.collapsed == ()
        assert result.population == sum(margins["age"][b] for b in RAKED_AGE_BANDS)
        age_target, sex_target = population_shares(margins)
        age_got = weighted_shares(result, cells, 0, RAKED_AGE_BANDS)
        sex_got = weighted_shares(result, cells, 1, ["man", "vrouw"])
        errors = [abs(age_got[b] / age_target[b] - 1) for b in RAKED_AGE_BANDS]
        errors += [abs(sex_got[s] / sex_target[s] - 1) for s in ("man", "vrouw")]
        assert max(errors) == pytest.approx(result.max_margin_error, abs=1e-9)
        assert kish_effective_n((w, cells[c]) for c, w in result.weights.items()) == pytest.approx(
            result.effective_n
        )
        trimmed += result.trimmed
        if result.converged:
            assert max(errors) < TOL, (scenario, code)
        else:
            missed += 1
            assert result.trimmed and max(errors) < LOOSE, (scenario, code, max(errors))
            assert any("cannot be met" in note for note in result.notes)
    assert (trimmed, missed) == (expect_trimmed, expect_missed), scenario


# --------------------------------------------------------------------------- properties

CELL_KEYS = [(a, s) for a in (*AGE_BANDS, None, UNKNOWN) for s in (*SEXES, None, UNKNOWN)]
population = st.one_of(st.none(), st.integers(0, 200_000))
margins_strategy = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {
            "age": st.one_of(st.none(), st.fixed_dictionaries({b: population for b in AGE_BANDS})),
            "sex": st.one_of(
                st.none(), st.fixed_dictionaries({"man": population, "vrouw": population})
            ),
        }
    ),
)
trim_strategy = st.one_of(
    st.none(),
    st.tuples(st.floats(0.05, 1.0), st.floats(1.0, 20.0)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cells=st.dictionaries(st.sampled_from(CELL_KEYS), st.integers(0, 60), max_size=len(CELL_KEYS)),
    margins=margins_strategy,
    trim=trim_strategy,
)
def test_rake_never_fails_and_weights_average_one(cells, margins, trim):
    result = rake(cells, margins, trim=trim)
    check_invariants(result, cells, trim=trim if result.method == "raking" else None)
    assert result.max_margin_error >= 0 and result.iterations >= 0
    assert result.converged == (result.max_margin_error < TOL)


@settings(max_examples=300, deadline=None)
@given(
    counts=st.lists(st.integers(1, 150), min_size=8, max_size=8),
    age=st.lists(st.integers(1, 1_000_000), min_size=4, max_size=4),
    sex=st.lists(st.integers(1, 1_000_000), min_size=2, max_size=2),
)
def test_every_cell_filled_and_no_trimming_matches_the_margins(counts, age, sex):
    cells = {
        (a, s): k
        for (a, s), k in zip(
            [(a, s) for a in RAKED_AGE_BANDS for s in ("man", "vrouw")], counts, strict=True
        )
    }
    margins = {
        "age": dict(zip(RAKED_AGE_BANDS, age, strict=True)),
        "sex": {"man": sex[0], "vrouw": sex[1]},
    }
    # With every cell filled a solution exists; where raking crawls, Newton's method finishes.
    result = rake(cells, margins, trim=None)
    check_invariants(result, cells, trim=None)
    assert result.converged and result.max_margin_error < TOL
    age_got = weighted_shares(result, cells, 0, RAKED_AGE_BANDS)
    for b, p in zip(RAKED_AGE_BANDS, age, strict=True):
        assert age_got[b] == pytest.approx(p / sum(age), rel=2 * TOL)


# --------------------------------------------------------------------------- Kish and Wilson


def test_kish_effective_n():
    assert kish_effective_n([(1.0, 50)]) == 50
    assert kish_effective_n([]) == 0.0
    assert kish_effective_n([(2.0, 1), (1.0, 1)]) == pytest.approx(9 / 5)
    assert kish_effective_n([(0.5, 10), (1.5, 10)]) == pytest.approx(400 / 25)


@pytest.mark.parametrize(
    ("p", "n", "expected"),
    [
        (0.5, 100, (0.4038, 0.5962)),
        (0.1, 50, (0.0435, 0.2136)),
        (0.61, 80.97, (0.5011, 0.7089)),
    ],
)
def test_wilson_known_values(p, n, expected):
    low, high = wilson_interval(p, n)
    assert (low, high) == (
        pytest.approx(expected[0], abs=1e-4),
        pytest.approx(expected[1], abs=1e-4),
    )


def test_wilson_edges():
    low, high = wilson_interval(0.0, 20)
    assert low == 0.0 and high == pytest.approx(3.8415 / (20 + 3.8415), abs=1e-4)
    low, high = wilson_interval(1.0, 20)
    assert high == 1.0 and low == pytest.approx(20 / (20 + 3.8415), abs=1e-4)
    assert wilson_interval(0.5, 0) == (0.0, 1.0)
    assert wilson_interval(0.5, -3) == (0.0, 1.0)
    low, high = wilson_interval(0.5, 0.3)  # tiny fractional n: wide but inside [0, 1]
    assert 0.0 <= low < 0.1 and 0.9 < high <= 1.0
    for p in (0.0, 0.01, 0.3, 0.99, 1.0):
        for n in (0.5, 1, 2.7, 10, 1e6):
            low, high = wilson_interval(p, n)
            assert 0.0 <= low <= p <= high <= 1.0
    for bad in (-0.1, 1.1, float("nan")):
        with pytest.raises(ValueError):
            wilson_interval(bad, 10)


# --- issue 15, item 1d ------------------------------------------------------------------------


def test_unknown_age_or_sex_does_not_block_an_exact_fit_within_the_bounds():
    """Regression: respondents of unknown age or sex kept the total weight raking gave them,
    so trimming found no weights within [0.2, 5] that meet the margins although such weights
    exist (found by a search: 490 of 2,101 random non-converged wijken). Their weight is now
    free when that is what an exact fit takes."""
    cells = {
        ("15_24", "man"): 3,
        ("25_44", "man"): 8,
        ("25_44", None): 2,
        ("45_64", "man"): 5,
        ("45_64", "vrouw"): 3,
        (None, "vrouw"): 2,
        (None, None): 8,
    }
    margins = {
        "age": {"0_14": 100, "15_24": 373, "25_44": 378, "45_64": 198, "65_plus": 254},
        "sex": {"man": 388, "vrouw": 568},
    }
    result = rake(cells, margins)
    assert result.trimmed and result.converged and result.max_margin_error < 1e-6
    assert all(0.2 - 1e-9 <= w <= 5 + 1e-9 for w in result.weights.values())
    known_sex = {c: n for c, n in cells.items() if c[1] is not None}
    man = sum(n * result.weights[c] for c, n in known_sex.items() if c[1] == "man")
    everyone = sum(n * result.weights[c] for c, n in known_sex.items())
    assert man / everyone == pytest.approx(388 / (388 + 568), abs=1e-6)


def test_a_missing_cbs_figure_does_not_wipe_out_the_gemeente_figures():
    """Regression: one missing CBS figure (``.``) in one wijk's 15+ band made every gemeente
    weighted percentage, interval and effective n None. That wijk's 15+ population is now
    estimated from the gemeente's age profile, and a note says so beside every figure it
    affects (and beside every figure whose weights missed the margins)."""
    from tests.support import attacker

    full = {"0_14": 90, "15_24": 110, "25_44": 300, "45_64": 260, "65_plus": 180}
    margins = {
        code: {"name": code, "age": dict(full), "sex": {"man": 480, "vrouw": 520}}
        for code in (
            "GM0344",
            "WK034401",
            "WK034402",
            "BU03440100",
            "BU03440101",
            "BU03440200",
            "BU03440201",
        )
    }
    margins["GM0344"]["age"] = {b: 2 * v for b, v in full.items()}
    margins["WK034402"]["age"]["15_24"] = None  # CBS "."
    people = [
        attacker.Respondent(
            buurt,
            ("25_44", "45_64", "65_plus", "15_24")[i % 4],
            ("man", "vrouw")[i % 2],
            "panel",
            {"q0": ("o0", "o1")[i % 3 == 0]},
        )
        for buurt in ("BU03440100", "BU03440101", "BU03440200", "BU03440201")
        for i in range(25)
    ]
    case = attacker.PollCase(
        seed=3,
        definition={
            "questions": [
                {
                    "id": "q0",
                    "type": "single_choice",
                    "text": "?",
                    "options": [{"id": "o0", "label": "a"}, {"id": "o1", "label": "b"}],
                }
            ]
        },
        buurten=["BU03440100", "BU03440101", "BU03440200", "BU03440201"],
        respondents=people,
        k=10,
        margins_known=True,
        margins_of=margins,
    )
    document = attacker.released_documents(case)["all"]
    gemeente = document["questions"][0]["areas"]["GM0344"]
    assert all(o["weighted_percent"] is not None for o in gemeente["options"])
    assert gemeente["effective_n"] is not None
    assert any("estimated" in note for note in gemeente["weighting_notes"])
