"""A small group in a split (five paper forms in one buurt) is hidden inside its split — the
split of the areas where it is small —, never the residents' main figures of an area
(docs/suppression.md, "What is hidden when a split's group is small").

The case of ``make demo``'s first wave, in small: residents answer in the app in three buurten
of a wijk, five more on paper in one of them, and an optional question that some skip. Left to
the rules, the paper group was protected by the respondents per channel, whose total is the
area's respondents: the gemeente, the wijk and the buurt lost their main figures, so the demo's
trend had nothing to compare."""

from __future__ import annotations

import uuid
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from services.common import suppression
from services.responses import results
from tests.unit.test_breakdowns import MARGINS

DEFINITION = {
    "questions": [
        {
            "id": "veilig",
            "type": "single_choice",
            "text": "Voelt u zich veilig?",
            "options": [{"id": "ja", "label": "Ja"}, {"id": "nee", "label": "Nee"}],
        },
        {"id": "tips", "type": "open_text", "text": "Tips?", "required": False},
    ]
}
BUURTEN = ("BU03440101", "BU03440102", "BU03440103")
MAIN_AREAS = ("GM0344", "WK034401", *BUURTEN)
PAPER_BUURT = BUURTEN[0]

Person = tuple[str, str, str, bool]  # buurt, channel, answer to veilig, answered tips


def aggregates(people: list[Person]) -> results.Aggregates:
    base: Any = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    chosen: Any = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    for i, (buurt, channel, answer, tip) in enumerate(people):
        stratum = (("25_44", "45_64")[i % 2], ("man", "vrouw")[i % 3 % 2], "panel", channel)
        for area in ("GM0344", "WK" + buurt[2:8], buurt):
            base["*"][area][stratum] += 1
            base["veilig"][area][stratum] += 1
            chosen["veilig"][area][(stratum, answer)] += 1
            if tip:
                base["tips"][area][stratum] += 1
    return results.Aggregates(
        base={q: {a: dict(c) for a, c in v.items()} for q, v in base.items()},
        chosen={q: {a: dict(c) for a, c in v.items()} for q, v in chosen.items()},
        invited=dict.fromkeys(BUURTEN, 80),
        margins=MARGINS,
        texts={},
    )


def poll() -> SimpleNamespace:
    return SimpleNamespace(
        id=uuid.UUID(int=1414),
        definition=DEFINITION,
        municipality_code="GM0344",
        audience={"kind": "municipality", "area_codes": []},
        closed_at=None,
    )


def in_app(buurt: str, n: int) -> list[Person]:
    return [(buurt, "app", ("ja", "nee")[i % 3 == 0], i % 2 == 0) for i in range(n)]


def on_paper(n: int, tips: int = 2) -> list[Person]:
    """``n`` paper forms in one buurt, ``tips`` of them with the optional question answered."""
    return [(PAPER_BUURT, "paper", "nee", i < tips) for i in range(n)]


RESIDENTS = in_app(BUURTEN[0], 40) + in_app(BUURTEN[1], 30) + in_app(BUURTEN[2], 25)


def shown(doc: dict[str, Any]) -> dict[str, int | None]:
    q = doc["questions"][0]
    return {code: q["areas"][code].get("respondents") for code in MAIN_AREAS}


def test_five_paper_forms_leave_every_main_figure_shown():
    without = shown(results.build(poll(), aggregates(RESIDENTS), 10))
    assert None not in without.values()
    for forms in (5, 9):
        doc = results.build(poll(), aggregates(RESIDENTS + on_paper(forms)), 10)
        with_paper = shown(doc)
        assert None not in with_paper.values(), (forms, with_paper)
        assert with_paper["GM0344"] == 95 + forms
        # The split goes whole where its paper group is small: app and paper alike.
        by_channel = doc["questions"][0]["by_channel"]
        for code in ("GM0344", "WK034401"):
            for channel in ("app", "paper"):
                assert by_channel[channel][code].get("suppressed"), (channel, code)
        assert PAPER_BUURT not in by_channel["paper"]  # questions are not split per buurt
        areas = {a["code"]: a for a in doc["areas"]}
        for code in ("GM0344", "WK034401", PAPER_BUURT):
            assert areas[code]["channels"]["paper"] is None, code
            assert areas[code]["channels"]["app"] is None, code
        assert areas["WK034401"]["respondents"] == 95 + forms
        # Elsewhere every group is 0 or large enough: the respondents per channel are shown.
        assert areas[BUURTEN[1]]["channels"] == {"app": 30, "link": 0, "paper": 0}


def test_a_large_paper_group_shows_the_split():
    doc = results.build(poll(), aggregates(RESIDENTS + on_paper(12, tips=12)), 10)
    assert None not in shown(doc).values()
    by_channel = doc["questions"][0]["by_channel"]
    assert by_channel["paper"]["WK034401"]["respondents"] == 12
    assert by_channel["app"]["WK034401"]["respondents"] == 95


def test_small_splits_names_every_channel_table_of_the_areas_with_a_small_group():
    data = results.with_regions(poll(), aggregates(RESIDENTS + on_paper(5)))
    areas, at_least_one = results.listed_areas(poll(), data)
    system = results.system_of(poll(), data, areas, at_least_one)
    cells = results.small_splits(system, 10)
    assert {area for _, area, _ in cells} == {"GM0344", "WK034401", PAPER_BUURT}
    assert {table for table, _, _ in cells} == {
        "*~",
        "veilig~app",
        "veilig~paper",
        "tips~app",
        "tips~paper",
    }
    # Nobody on paper, one channel: no split, nothing to hide.
    data = results.with_regions(poll(), aggregates(RESIDENTS))
    system = results.system_of(poll(), data, areas, at_least_one)
    assert results.small_splits(system, 10) == []


def test_the_suppression_of_the_system_keeps_the_main_rows_with_the_split_hidden():
    """At the suppression entry point: the split's cells passed as hidden (and with them those
    who skipped the optional question per channel, figures the reader would otherwise have:
    with the main table's skips they gave the paper group's away) leave no area hidden."""
    data = results.with_regions(poll(), aggregates(RESIDENTS + on_paper(5)))
    areas, at_least_one = results.listed_areas(poll(), data)
    system = results.system_of(poll(), data, areas, at_least_one)
    safe = system.suppress(10, results.small_splits(system, 10))
    main = next(t for t in safe.tables if t.question_id == "tips")
    assert all(main.rows[code].total is not None for code in MAIN_AREAS)
    assert not safe.areas
    assert isinstance(safe, suppression.SuppressedPoll)


def test_two_shops_in_a_buurt_leave_the_residents_figures_shown():
    """The split by kind, like the split by channel: 12 residents and 2 shops in one buurt,
    30 residents and 15 shops in another. The shops' count and the all-participants figure
    of their buurt are hidden (with as much more of the all-participants figures as it takes),
    never the residents' count of a buurt, its wijk or the gemeente, nor the wijk's and the
    gemeente's figures per kind (17 shops, ≥ k)."""
    from tests.unit import test_breakdowns as mixed

    everyone = mixed.people(BUURTEN[0], 12) + mixed.people(BUURTEN[0], 2, "ondernemer", "paper")
    everyone += mixed.people(BUURTEN[1], 30) + mixed.people(BUURTEN[1], 15, "ondernemer", "paper")
    everyone += mixed.people(BUURTEN[2], 25)
    doc = results.build(mixed.poll(), mixed.aggregates(everyone), 10)
    areas = {a["code"]: a for a in doc["areas"]}
    residents = {code: a["kinds"]["resident"] for code, a in areas.items()}
    assert residents == {
        "GM0344": 67,
        "WK034401": 67,
        BUURTEN[0]: 12,
        BUURTEN[1]: 30,
        BUURTEN[2]: 25,
    }
    assert not any(a["suppressed"] for a in areas.values())
    q = doc["questions"][0]
    assert {code: f["respondents"] for code, f in q["areas"].items()} == residents
    shop = areas[BUURTEN[0]]
    assert shop["kinds"]["ondernemer"] is None and shop["respondents"] is None
    for code in ("GM0344", "WK034401"):
        assert areas[code]["kinds"] == {"resident": 67, "ondernemer": 17, "organisatie": 0}
        assert q["by_kind"]["ondernemer"][code]["respondents"] == 17


def test_small_kinds_names_the_all_participants_row_and_the_kind_splits_of_those_areas():
    from tests.unit import test_breakdowns as mixed

    everyone = mixed.people(BUURTEN[0], 40) + mixed.people(BUURTEN[0], 3, "ondernemer", "app")
    everyone += mixed.people(BUURTEN[1], 30) + mixed.people(BUURTEN[1], 12, "ondernemer", "app")
    data = results.with_regions(mixed.poll(), mixed.aggregates(everyone))
    areas, at_least_one = results.listed_areas(mixed.poll(), data)
    system = results.system_of(mixed.poll(), data, areas, at_least_one)
    cells = results.small_kinds(system, 10)
    # 3 shops in the first buurt (small); 15 in the wijk and the gemeente (not): no split per
    # buurt, so only that buurt's all-participants row.
    assert cells == [("*", BUURTEN[0], None)]
    data = results.with_regions(mixed.poll(), mixed.aggregates(mixed.people(BUURTEN[0], 40)))
    system = results.system_of(mixed.poll(), data, areas, at_least_one)
    assert results.small_kinds(system, 10) == []
