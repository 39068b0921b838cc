"""A small group in a split (five paper forms in one buurt, two shops in one buurt) is hidden
inside its split — the split of the areas where it is small —, never the residents' main
figures of an area (docs/suppression.md, "What is hidden when a split's group is small").

The case of ``make demo``'s first wave, in small: residents answer in the app in three buurten
of a wijk, five more on paper in one of them, and an optional question that some skip. Left to
the rules, the paper group was protected by the respondents per channel, whose total is the
area's respondents: the gemeente, the wijk and the buurt lost their main figures, so the demo's
trend had nothing to compare.

The same for kinds of participant: two ondernemers in one buurt made the all-participants
figures (the area's respondents, and the total of every question for all participants) differ
from the residents' by two, and the rules hid the residents' figures of the buurt, its wijk, the
gemeente and most other areas with them."""

from __future__ import annotations

import uuid
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from services.common import suppression
from services.responses import results
from tests.support import attacker
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
        for code in ("GM0344", "WK034401", PAPER_BUURT):
            for channel in ("app", "paper"):
                assert by_channel[channel][code].get("suppressed"), (channel, code)
        # Elsewhere every group is 0 or large enough: the split is shown.
        assert by_channel["paper"][BUURTEN[1]]["respondents"] == 0
        assert by_channel["app"][BUURTEN[1]]["respondents"] == 30
        area = next(a for a in doc["areas"] if a["code"] == "WK034401")
        assert area["respondents"] == 95 + forms
        assert area["channels"]["paper"] is None and area["channels"]["app"] is None


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


# -- kinds of participant: two shops in one buurt -------------------------------------------

KIND_DEFINITION = {
    "schema_version": 1,
    "title": "Veiligheid",
    "intro": "x",
    "theme": "veiligheid",
    "estimated_minutes": 2,
    "language": "nl",
    "questions": DEFINITION["questions"],
}
# Residents in three wijken; the shops answer in the first buurt, beside 40 residents.
RESIDENTS_PER_BUURT = {
    "BU03440101": 40,
    "BU03440102": 30,
    "BU03440103": 25,
    "BU03440201": 35,
    "BU03440202": 20,
    "BU03440301": 30,
    "BU03440302": 45,
}
SHOP_BUURT = "BU03440101"
SHOP_AREAS = ("GM0344", "WK034401", SHOP_BUURT)  # where the two shops are a small group
KIND_AREAS = ("GM0344", "WK034401", "WK034402", "WK034403", *RESIDENTS_PER_BUURT)


def shops_case(shops: int = 2, channel: str = "app") -> attacker.PollCase:
    """Residents in the app everywhere, ``shops`` ondernemers in ``SHOP_BUURT`` answering
    through ``channel`` (the app: no split by channel; the link: a split by channel too)."""
    people = []
    for buurt, n in RESIDENTS_PER_BUURT.items():
        for i in range(n):
            answers = {"veilig": ("ja", "nee")[i % 3 == 0]}
            if i % 2:
                answers["tips"] = f"tip {i}"
            age, sex = ("25_44", "45_64")[i % 2], ("man", "vrouw")[i % 3 % 2]
            people.append(attacker.Respondent(buurt, age, sex, "panel", answers))
    for i in range(shops):
        answers = {"veilig": "nee", **({"tips": f"winkel {i}"} if i == 0 else {})}
        people.append(
            attacker.Respondent(SHOP_BUURT, None, None, "panel", answers, "ondernemer", channel)
        )
    return attacker.PollCase(
        seed=1415,
        definition=KIND_DEFINITION,
        buurten=list(RESIDENTS_PER_BUURT),
        respondents=people,
        k=10,
        margins_known=True,
    )


def main_figures(doc: dict[str, Any]) -> dict[tuple[str, str], int | None]:
    """Every question's residents' respondents per area: the area's main figures."""
    return {
        (q["id"], code): q["areas"][code].get("respondents")
        for q in doc["questions"]
        for code in KIND_AREAS
    }


def test_two_shops_in_a_buurt_leave_every_main_figure_shown():
    for channel in ("app", "link"):
        documents = attacker.released_documents(shops_case(2, channel))
        for view, doc in documents.items():
            figures = main_figures(doc)
            assert None not in figures.values(), (channel, view, figures)
            areas = {a["code"]: a for a in doc["areas"]}
            assert not any(a["suppressed"] for a in areas.values()), (channel, view)
        doc = documents["all"]
        areas = {a["code"]: a for a in doc["areas"]}
        veilig = doc["questions"][0]
        assert veilig["areas"]["GM0344"]["respondents"] == 225  # residents only
        for code in SHOP_AREAS:
            # All participants minus the residents would be the two shops: the all-participants
            # figures go, with the rest of the split by kind (and by channel) there.
            assert areas[code]["respondents"] is None, code
            assert areas[code]["kinds"]["resident"] is not None
            assert areas[code]["kinds"]["ondernemer"] is None
            assert areas[code]["invited"] is None and areas[code]["response_rate"] is None
            for kind in ("ondernemer", "all"):
                assert veilig["by_kind"][kind][code].get("suppressed"), (kind, code)
            assert veilig["by_kind"]["resident"][code]["respondents"] is not None
            for group in veilig["by_channel"].values():
                assert group[code].get("suppressed"), code
        # Elsewhere the split is shown: no business, all participants are the residents.
        for code in ("WK034402", "BU03440102"):
            assert areas[code]["respondents"] == areas[code]["kinds"]["resident"]
            assert areas[code]["kinds"]["ondernemer"] == 0
            assert veilig["by_kind"]["ondernemer"][code]["respondents"] == 0
            assert veilig["by_kind"]["all"][code]["respondents"] == areas[code]["respondents"]


def test_the_reader_gets_nothing_of_the_two_shops():
    """The linear-programming reader (tests/support/attacker.py), with all participants =
    residents + businesses + organisations = app + link + paper in every figure."""
    for channel in ("app", "link"):
        case = shops_case(2, channel)
        verdict = attacker.attack_release(case, attacker.released_documents(case), case.k)
        assert verdict.small > 0
        assert (verdict.pinned, verdict.proved) == ([], []), channel


def test_shops_answering_after_the_residents_keep_the_main_figures_of_later_versions():
    """A first version of residents only, then the final one with the two shops in (the kind
    tables appear then): the residents' figures stay, and the two versions together give the
    reader nothing."""
    case = shops_case(2, "link")
    residents = sum(RESIDENTS_PER_BUURT.values())
    first = results.next_release(case.poll(), case.aggregates(residents), 10, None, closed=False)
    assert first is not None
    final = results.next_release(case.poll(), case.aggregates(), 10, first, closed=True)
    assert final is not None
    for doc in final.documents.values():
        assert None not in main_figures(doc).values()
    verdict = attacker.attack_pair(
        case, (residents, first.documents), (len(case.respondents), final.documents), 10
    )
    assert (verdict.pinned, verdict.proved) == ([], [])


def test_small_splits_names_the_split_by_kind_of_the_areas_with_a_small_group():
    case = shops_case(2, "link")
    data = results.with_regions(case.poll(), case.aggregates())
    areas, at_least_one = results.listed_areas(case.poll(), data)
    system = results.system_of(case.poll(), data, areas, at_least_one)
    cells = set(results.small_splits(system, 10))
    assert {area for _, area, _ in cells} == set(SHOP_AREAS)
    for code in SHOP_AREAS:
        # All participants and the businesses, never the residents' figures ...
        assert {("*", code, None), ("*", code, "ondernemer")} <= cells
        assert {(t, code, None) for t in ("veilig#all", "veilig#ondernemer", "tips#all")} <= cells
        # ... and the split by channel, whose groups add up to all participants.
        assert {("*~", code, None), ("veilig~app", code, None), ("tips~link", code, None)} <= cells
    assert not {t for t, _, _ in cells} & {"veilig", "veilig@panel", "tips", "*#resident"}
    assert not {o for t, _, o in cells if t == "*"} & {"panel", "self_selected", "recently_moved"}
    # Twelve shops are no small group: nothing to hide up front.
    case = shops_case(12, "link")
    data = results.with_regions(case.poll(), case.aggregates())
    system = results.system_of(case.poll(), data, areas, at_least_one)
    assert results.small_splits(system, 10) == []
