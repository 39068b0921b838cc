"""Results per kind of participant and per channel (issue 14): the pure parts — which sets get
tables, the unweighted shares with their Wilson interval (docs/methods.md, "Businesses and
organisations"), residents-only weighting, the n-part differences of the suppression system,
releases from before the breakdowns — and the suppression of a buurt with two shops."""

from __future__ import annotations

import uuid
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import pytest

from services.common import suppression
from services.responses import results

DEFINITION = {
    "questions": [
        {
            "id": "veilig",
            "type": "single_choice",
            "text": "Voelt u zich veilig?",
            "options": [{"id": "ja", "label": "Ja"}, {"id": "nee", "label": "Nee"}],
        }
    ]
}
MARGINS = {
    code: {
        "name": code,
        "age": {"0_14": 90, "15_24": 110, "25_44": 300, "45_64": 260, "65_plus": 180},
        "sex": {"man": 480, "vrouw": 520},
    }
    for code in ("GM0344", "WK034401", "BU03440101", "BU03440102", "BU03440103")
}


def aggregates(people: list[tuple[str, str, str, str]]) -> results.Aggregates:
    """Counters of (buurt, composition, channel, answer) respondents."""
    base: Any = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    chosen: Any = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    for i, (buurt, composition, channel, answer) in enumerate(people):
        stratum = (("25_44", "45_64")[i % 2], ("man", "vrouw")[i % 3 % 2], composition, channel)
        for area in ("GM0344", "WK" + buurt[2:8], buurt):
            base["*"][area][stratum] += 1
            base["veilig"][area][stratum] += 1
            chosen["veilig"][area][(stratum, answer)] += 1
    return results.Aggregates(
        base={q: {a: dict(c) for a, c in v.items()} for q, v in base.items()},
        chosen={q: {a: dict(c) for a, c in v.items()} for q, v in chosen.items()},
        invited={b: 50 for b in ("BU03440101", "BU03440102", "BU03440103")},
        margins=MARGINS,
        texts={},
    )


def poll() -> SimpleNamespace:
    return SimpleNamespace(
        id=uuid.UUID(int=14),
        definition=DEFINITION,
        municipality_code="GM0344",
        audience={"kind": "municipality", "area_codes": []},
        closed_at=None,
    )


def people(buurt: str, n: int, composition: str = "panel", channel: str = "app") -> list:
    return [(buurt, composition, channel, ("ja", "nee")[i % 3 == 0]) for i in range(n)]


def test_share_figures_are_the_wilson_interval_of_the_worked_example():
    """docs/methods.md: 7 of 20 ondernemers → 35.0%, 95% interval 18.1% – 56.7%."""
    assert results.share_figures(7, 20) == {
        "count": 7,
        "percent": 35.0,
        "ci_low": 18.1,
        "ci_high": 56.7,
    }
    assert results.share_figures(0, 12)["ci_low"] == 0.0
    assert results.share_figures(0, 12)["ci_high"] == 24.2
    assert results.share_figures(None, 12) == {
        "count": None,
        "percent": None,
        "ci_low": None,
        "ci_high": None,
    }
    assert results.share_figures(0, 0)["percent"] is None


def test_sets_nobody_belongs_to_get_no_tables_and_aliases_stand_in():
    residents = aggregates(people("BU03440101", 30))
    real, aliases, zeros = results.split_sets(residents)
    assert real == ["all", "panel", "rest"]
    assert aliases == {"everyone": "all", "app": "all"}
    assert zeros == {"ondernemer", "organisatie", "link", "paper"}
    mixed = aggregates(people("BU03440101", 30) + people("BU03440102", 12, "ondernemer", "paper"))
    real, aliases, zeros = results.split_sets(mixed)
    assert real == ["all", "panel", "rest", "ondernemer", "everyone", "app", "paper"]
    assert aliases == {} and zeros == {"organisatie", "link"}


def test_strata_of_three_elements_are_residents_in_the_app():
    assert results.channel_of(("25_44", "man", "panel")) == "app"
    assert results.in_set(("25_44", "man", "panel"), "app")
    assert results.in_set(("25_44", "man", "ondernemer", "link"), "everyone")
    assert not results.in_set(("25_44", "man", "ondernemer", "link"), "all")
    assert results.in_set(("25_44", "man", "self_selected", "paper"), "rest")


def test_a_difference_needs_parts_of_the_same_shape_that_add_up():
    areas = {"GM0344": None}
    whole = suppression.Table("q", True, ["a"], {"GM0344": suppression.Row(10, {"a": 10})})
    part = suppression.Table("q#x", True, ["a"], {"GM0344": suppression.Row(4, {"a": 4})})
    other = suppression.Table("q#y", True, ["a"], {"GM0344": suppression.Row(5, {"a": 5})})
    hierarchy = suppression.Hierarchy(areas)
    with pytest.raises(ValueError, match="is not 'q#x' \\+ 'q#y'"):
        suppression.suppress_poll(
            [whole, part, other], hierarchy, 5, differences=[("q", "q#x", "q#y")]
        )
    with pytest.raises(ValueError, match="at least two parts"):
        suppression.suppress_poll([whole, part], hierarchy, 5, differences=[("q", "q#x")])


def test_the_area_figure_is_residents_weighted_and_businesses_are_their_own_rows():
    everyone = people("BU03440101", 40) + people("BU03440102", 30)
    everyone += people("BU03440101", 30, "ondernemer", "link")
    doc = results.build(poll(), aggregates(everyone), 10)
    q = doc["questions"][0]
    gm = q["areas"]["GM0344"]
    assert gm["respondents"] == 70  # residents only
    assert gm["options"][0]["weighted_percent"] is not None
    business = q["by_kind"]["ondernemer"]["GM0344"]
    assert business["respondents"] == 30
    assert "weighted_percent" not in business["options"][0]
    assert business["options"][0]["ci_low"] is not None
    assert q["by_kind"]["all"]["GM0344"]["respondents"] == 100
    assert q["by_kind"]["resident"]["GM0344"]["respondents"] == 70
    assert q["by_channel"]["link"]["GM0344"]["respondents"] == 30
    assert set(q["by_channel"]) == {"app", "link"}  # nobody on paper: no group
    assert set(q["by_kind"]) == {"resident", "ondernemer", "all"}
    gm_area = next(a for a in doc["areas"] if a["code"] == "GM0344")
    assert gm_area["respondents"] == 100
    assert gm_area["kinds"] == {"resident": 70, "ondernemer": 30, "organisatie": 0}
    assert gm_area["channels"] == {"app": 70, "link": 30, "paper": 0}
    # Weighting is the residents': the same as without the businesses.
    alone = results.build(poll(), aggregates(everyone[:70]), 10)
    assert alone["questions"][0]["areas"]["GM0344"]["options"] == gm["options"]
    assert alone["weighting"] == doc["weighting"]
    # Residents in the app only: no split repeats the area's figures.
    assert alone["questions"][0]["by_kind"] == alone["questions"][0]["by_channel"] == {}


def test_a_buurt_with_two_shops_shows_neither_and_no_difference_gives_them_away():
    """12 residents and 2 shops in one buurt, 30 residents and 15 shops in another: the
    buurt's all-participants figure minus its residents' would be the two shops. Questions are
    split by kind and channel in the gemeente and its wijken only (``results.split_areas``),
    so no split of a buurt is there to give them away; the respondents per kind are."""
    everyone = people("BU03440101", 12) + people("BU03440101", 2, "ondernemer", "paper")
    everyone += people("BU03440102", 30) + people("BU03440102", 15, "ondernemer", "paper")
    everyone += people("BU03440103", 25)
    doc = results.build(poll(), aggregates(everyone), 10)
    q = doc["questions"][0]
    for group in [*q["by_kind"].values(), *q["by_channel"].values()]:
        assert set(group) == {"GM0344", "WK034401"}  # no buurt
    assert q["by_kind"]["ondernemer"]["WK034401"]["respondents"] == 17
    areas = {a["code"]: a for a in doc["areas"]}
    assert areas["BU03440101"]["kinds"]["ondernemer"] is None
    assert areas["BU03440101"]["channels"]["paper"] is None
    # The wijk's 17 shops minus the buurten's shown counts do not give the two shops either.
    shown = [areas[b]["kinds"]["ondernemer"] for b in ("BU03440102", "BU03440103")]
    assert None in shown


def test_a_release_from_before_the_breakdowns_is_continued():
    """A release stored before issue 14 (respondents with three options, no breakdown
    tables) is the previous version of the first release with businesses: the new tables
    count from 0, and the figures it hid stay hidden."""
    before = aggregates(people("BU03440101", 20) + people("BU03440102", 20))
    first = results.next_release(poll(), before, 10, None, closed=False)
    assert first is not None
    assert len(first.tables["*"]["GM0344"]) == 4  # total and the three kinds of respondent
    # As stored before issue 14: no breakdown tables in the snapshot.
    first.tables = {k: v for k, v in first.tables.items() if not any(m in k for m in "#~")}
    assert set(first.tables) == {"*", "veilig", "veilig@panel", "veilig@rest"}
    later = aggregates(
        people("BU03440101", 20)
        + people("BU03440102", 20)
        + people("BU03440102", 11, "ondernemer", "link")
        + people("BU03440101", 10, "organisatie", "paper")
    )
    second = results.next_release(poll(), later, 10, first, closed=True)
    assert second is not None and second.seq == 2
    assert len(second.tables["*"]["GM0344"]) == 6
    assert {tuple(h) for h in first.hidden} <= {tuple(h) for h in second.hidden}
    q = second.documents["all"]["questions"][0]
    assert q["by_kind"]["ondernemer"]["GM0344"]["respondents"] == 11


def test_a_poll_released_with_splits_per_buurt_keeps_them_and_one_without_goes_on_without():
    """Releases made before questions were split only in the gemeente and its wijken: one
    that published no split per buurt (residents in the app: the split tables were aliases of
    theirs, stored with their buurten) goes on without buurt splits once businesses answer;
    one that published splits per buurt keeps them, so its versions stay comparable."""
    residents = people("BU03440101", 20) + people("BU03440102", 20)
    first = results.next_release(poll(), aggregates(residents), 10, None, closed=False)
    assert first is not None
    assert set(first.tables["veilig#all"]) == {"GM0344", "WK034401"}
    # As the release before stored it: the aliases with every area of the residents' table.
    first.tables["veilig#all"] = first.tables["veilig~app"] = first.tables["veilig"]
    later = residents + people("BU03440102", 11, "ondernemer", "link")
    later += people("BU03440101", 10, "organisatie", "paper")
    held: list[str] = []
    second = results.next_release(poll(), aggregates(later), 10, first, closed=True, held=held)
    assert second is not None and held == []
    q = second.documents["all"]["questions"][0]
    assert set(q["by_kind"]["ondernemer"]) == {"GM0344", "WK034401"}

    # The same history, as if the first release had published a split per buurt.
    first.documents["all"]["questions"][0]["by_channel"] = {"app": {"BU03440101": {}}}
    kept = results.next_release(poll(), aggregates(later), 10, first, closed=True)
    assert kept is not None
    q = kept.documents["all"]["questions"][0]
    assert "BU03440101" in q["by_kind"]["ondernemer"]
    assert "BU03440101" in kept.tables["veilig#ondernemer"]
