"""The safety overview (issue 13): what it takes from each poll's released results and trend,
which poll's figures an area shows, arrows only for significant changes, hidden figures with
their reason, the export table, and feedback's open measures per area."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from services.feedback import measures
from services.polls import library
from services.responses import overview, trends
from tests.unit.test_exports import DEFINITION as EXPORTED
from tests.unit.test_exports import UNMET, unmet_margins_document

GM, WEST, NORTH, BUURT = "GM0344", "WK034401", "WK034402", "BU03440111"

DEFINITION = {
    "title": "Veilig in de buurt",
    "theme": "veiligheidsgevoel",
    "questions": [
        {
            "id": "vaak_onveilig",
            "type": "single_choice",
            "text": "Hoe vaak voelt u zich onveilig?",
            "options": [{"id": "vaak", "label": "Vaak"}, {"id": "nooit", "label": "Nooit"}],
        },
        {"id": "veilig", "type": "likert5", "text": "Hoe veilig voelt u zich?"},
        {"id": "tips", "type": "open_text", "text": "Tips?"},
    ],
}


def shares(n_eff, vaak):
    return {
        "respondents": 300,
        "effective_n": n_eff,
        "options": [
            {"option": "vaak", "count": 1, "weighted_percent": vaak, "ci_low": 1, "ci_high": 2},
            {
                "option": "nooit",
                "count": 1,
                "weighted_percent": 100 - vaak,
                "ci_low": 1,
                "ci_high": 2,
            },
        ],
    }


def scale(n_eff, percents):
    return {
        "respondents": 300,
        "effective_n": n_eff,
        "options": [
            {"option": v, "count": 1, "weighted_percent": p, "ci_low": 0, "ci_high": 1}
            for v, p in percents.items()
        ],
    }


LIKERT_1 = {"1": 10.0, "2": 20.0, "3": 30.0, "4": 30.0, "5": 10.0}
LIKERT_2 = {"1": 5.0, "2": 15.0, "3": 30.0, "4": 35.0, "5": 15.0}


def document(poll_id, per_area_shares, per_area_scale, names=None):
    codes = sorted(set(per_area_shares) | set(per_area_scale), key=lambda c: (len(c), c))
    return {
        "poll_id": poll_id,
        "areas": [{"code": c, "name": (names or {}).get(c), "suppressed": False} for c in codes],
        "questions": [
            {
                "id": "vaak_onveilig",
                "type": "single_choice",
                "text": "x",
                "options": ["vaak", "nooit"],
                "areas": per_area_shares,
            },
            {
                "id": "veilig",
                "type": "likert5",
                "text": "x",
                "options": list(LIKERT_1),
                "areas": per_area_scale,
            },
            {"id": "tips", "type": "open_text", "text": "x", "areas": {}},
        ],
    }


def poll(poll_id, wave, opened, doc, previous=None, closed=None):
    waves = ([previous] if previous else []) + [
        {"poll_id": poll_id, "wave": wave, "definition": DEFINITION, "document": doc}
    ]
    return {
        "poll_id": poll_id,
        "wave": wave,
        "title": "Veilig in de buurt",
        "theme": "veiligheidsgevoel",
        "opens_at": opened,
        "closed_at": closed,
        "definition": DEFINITION,
        "document": doc,
        "trend": trends.compare(waves),
    }


def two_waves():
    first_doc = document(
        "a",
        {GM: shares(800.0, 30.0), WEST: shares(400.0, 32.0), NORTH: shares(300.0, 20.0)},
        {GM: scale(800.0, LIKERT_1), WEST: scale(200.0, LIKERT_1), NORTH: {"suppressed": True}},
        names={WEST: "West"},
    )
    second_doc = document(
        "b",
        {GM: shares(800.0, 29.0), WEST: shares(450.0, 24.5), BUURT: {"suppressed": True}},
        {GM: scale(800.0, LIKERT_1), WEST: scale(250.0, LIKERT_2), BUURT: {"suppressed": True}},
    )
    first = poll(
        "a",
        1,
        datetime(2025, 3, 1, tzinfo=UTC),
        first_doc,
        closed=datetime(2025, 3, 20, tzinfo=UTC),
    )
    previous = {"poll_id": "a", "wave": 1, "definition": DEFINITION, "document": first_doc}
    second = poll("b", 2, datetime(2026, 3, 1, tzinfo=UTC), second_doc, previous=previous)
    return overview.build(GM, [first, second], {})


def area(found, code):
    return next(a for a in found["areas"] if a["code"] == code)


def question(a, key):
    return next(q for q in a["questions"] if q["key"] == key)


def test_the_only_polls_in_the_overview_are_of_safety_themes_and_of_those_tracked_questions():
    assert overview.is_safety_poll(DEFINITION)
    assert not overview.is_safety_poll({**DEFINITION, "theme": "afval"})
    assert [q["id"] for q in overview.tracked_questions(DEFINITION)] == ["vaak_onveilig", "veilig"]
    # Every safety theme is a template of the library.
    themes = {t["definition"]["theme"] for t in library.library().values()}
    assert set(overview.SAFETY_THEMES) <= themes


def test_an_area_shows_its_latest_poll_with_arrows_only_for_significant_changes():
    found = two_waves()
    assert [a["code"] for a in found["areas"]] == [GM, WEST, NORTH, BUURT]
    west = area(found, WEST)
    assert west["name"] == "West" and west["last_poll_id"] == "b"
    assert west["last_polled"] == "2026-03-01T00:00:00+00:00"  # open: since it opened
    often = question(west, "veiligheidsgevoel.vaak_onveilig")
    assert (often["poll_id"], often["wave"], often["measure"]) == ("b", 2, "share")
    vaak = next(v for v in often["values"] if v["option"] == "vaak")
    assert (vaak["value"], vaak["change"], vaak["significant"], vaak["trend"]) == (
        24.5,
        -7.5,
        True,
        "down",
    )
    assert vaak["label"] == "Vaak"
    mean = question(west, "veiligheidsgevoel.veilig")
    (value,) = mean["values"]
    assert (value["value"], value["ci_low"], value["ci_high"]) == (3.4, 3.27, 3.53)
    assert (value["change"], value["trend"]) == (0.3, "up")
    # The gemeente: a change of one point is not significant: no arrow.
    gemeente = question(area(found, GM), "veiligheidsgevoel.vaak_onveilig")
    assert all(v["trend"] is None for v in gemeente["values"])
    assert gemeente["values"][0]["significant"] is False


def test_an_area_the_latest_poll_left_out_keeps_the_earlier_polls_figures():
    north = area(two_waves(), NORTH)
    assert north["last_poll_id"] == "a" and north["last_polled"] == "2025-03-20T00:00:00+00:00"
    often = question(north, "veiligheidsgevoel.vaak_onveilig")
    assert often["poll_id"] == "a" and often["values"][0]["value"] == 20.0
    assert all(v["trend"] is None and v["change"] is None for v in often["values"])
    # Hidden in that poll's results: hidden here, with the reason.
    assert question(north, "veiligheidsgevoel.veilig") == {
        **question(north, "veiligheidsgevoel.veilig"),
        "suppressed": True,
        "reason": "suppressed",
        "values": [],
    }


def test_hidden_figures_stay_hidden_and_no_figure_comes_from_anywhere_else():
    buurt = area(two_waves(), BUURT)
    assert all(q["suppressed"] and q["values"] == [] for q in buurt["questions"])
    assert {q["reason"] for q in buurt["questions"]} == {"suppressed"}


def test_a_shown_area_without_weighted_figures_says_so():
    doc = document(
        "a",
        {
            WEST: {
                **shares(None, 30.0),
                "options": [
                    {
                        "option": o,
                        "count": 5,
                        "weighted_percent": None,
                        "ci_low": None,
                        "ci_high": None,
                    }
                    for o in ("vaak", "nooit")
                ],
            }
        },
        {WEST: scale(None, LIKERT_1)},
    )
    found = overview.build(GM, [poll("a", 1, datetime(2026, 1, 1, tzinfo=UTC), doc)], {})
    assert {q["reason"] for q in area(found, WEST)["questions"]} == {"not_weighted"}


def test_a_wijks_weighting_note_stands_beside_its_figures_and_export_rows_and_no_other():
    """Regression (issue 15, 1d): the overview copied each area's weighted figures from the
    results but not the note about the weights behind them (margins that cannot be met, an
    estimated population). Now the note stands beside that wijk's figures, in the JSON and in
    each of its export rows — and not beside another wijk's."""
    doc = unmet_margins_document()
    definition = {**EXPORTED, "theme": "veiligheidsgevoel"}
    entry = {
        "poll_id": "a",
        "wave": 1,
        "title": "Veilig",
        "theme": "veiligheidsgevoel",
        "opens_at": datetime(2026, 1, 1, tzinfo=UTC),
        "closed_at": None,
        "definition": definition,
        "document": doc,
        "trend": trends.compare(
            [{"poll_id": "a", "wave": 1, "definition": definition, "document": doc}]
        ),
    }
    found = overview.build(GM, [entry], {})
    unmet = question(area(found, UNMET), "veiligheidsgevoel.vaak")
    assert unmet["values"] and unmet["reason"] is None
    assert (
        unmet["weighting_notes"]
        == next(q for q in doc["questions"] if q["id"] == "vaak")["areas"][UNMET]["weighting_notes"]
    )
    assert any(
        n.startswith(f"{UNMET}: the margins cannot be met") for n in unmet["weighting_notes"]
    )
    other = question(area(found, WEST), "veiligheidsgevoel.vaak")
    assert other["values"] and not any("cannot be met" in n for n in other["weighting_notes"])
    rows = overview.rows(found)
    mine = [r for r in rows if r["area_code"] == UNMET and r["value"] is not None]
    assert mine and all("cannot be met" in r["weighting_note"] for r in mine)
    theirs = [r for r in rows if r["area_code"] == WEST and r["value"] is not None]
    assert theirs and not any("cannot be met" in (r["weighting_note"] or "") for r in theirs)
    assert "weighting_note" in overview.COLUMNS
    assert "weighting_note" in dict(
        overview.metadata(found, municipality="Utrecht", generated_at=datetime.now(UTC))
    )


def test_the_export_has_a_row_per_area_question_and_option_and_hides_what_is_hidden():
    found = two_waves()
    for a in found["areas"]:
        a["open_measures"] = 2 if a["code"] == WEST else 0
    rows = overview.rows(found)
    west_vaak = next(
        r
        for r in rows
        if r["area_code"] == WEST and r["question_id"] == "vaak_onveilig" and r["option"] == "vaak"
    )
    assert west_vaak["trend"] == "gedaald (significant)" and west_vaak["open_measures"] == 2
    west_mean = next(r for r in rows if r["area_code"] == WEST and r["question_id"] == "veilig")
    assert (west_mean["option"], west_mean["value"]) == ("mean", 3.4)
    hidden = [r for r in rows if r["area_code"] == BUURT]
    assert all(r["suppressed"] and r["value"] is None and r["reason"] for r in hidden)
    body = overview.render(
        found, fmt="csv", municipality="Utrecht", generated_at=datetime(2026, 12, 6, tzinfo=UTC)
    )
    text = body.decode("utf-8-sig")
    table = text.split("\r\n\r\n", 1)[1]
    read = list(csv.DictReader(io.StringIO(table), delimiter=";"))
    assert tuple(read[0]) == overview.COLUMNS and len(read) == len(rows)
    assert any(r["value"] == "24,5" for r in read)
    xlsx = overview.render(
        found, fmt="xlsx", municipality="Utrecht", generated_at=datetime(2026, 12, 6, tzinfo=UTC)
    )
    assert xlsx[:2] == b"PK"


def test_open_measures_count_once_per_area_in_the_areas_they_name_and_those_around_them():
    Open = measures.OpenMeasure
    counts = measures.count_by_area(
        [
            Open(["BU03440111", "BU03440112"]),  # two buurten of West: once for West
            Open([], ["WK034402"]),  # no areas of its own: its poll's
            Open([]),  # a poll to the whole municipality
        ],
        GM,
    )
    assert counts == {GM: 3, "BU03440111": 1, "BU03440112": 1, WEST: 1, NORTH: 1}
    assert measures.OPEN_STATUSES == ("planned", "in_progress")


# Regions: sets of buurten beside the CBS tree (RG + the municipality's four digits + four).
OOG_IN_AL, ACROSS, OOST = "RG03440001", "RG03440002", "RG03440003"
REGIONS = {
    OOG_IN_AL: ["BU03440111", "BU03440112"],  # in West
    ACROSS: ["BU03440121", "BU03440211"],  # a buurt of West and one of North
    OOST: ["BU03440312"],  # its newest version; the poll below froze BU03440311
}


def test_a_region_counts_the_open_measures_that_reach_into_it():
    Open = measures.OpenMeasure
    found = {
        "buurt of Oog in Al": Open(["BU03440111"]),
        "North": Open(["WK034402"]),
        "poll to West": Open([], ["WK034401"]),
        "poll to the gemeente": Open([]),
        "poll to Oost region": Open([], ["BU03440311"], [OOST]),
        "a buurt of North in no region": Open(["BU03440222"]),
    }
    where = {
        name: measures.measure_areas(m, GM, REGIONS) & set(REGIONS) for name, m in found.items()
    }
    assert where == {
        # A buurt it names lies in the region.
        "buurt of Oog in Al": {OOG_IN_AL},
        # A wijk it names holds one of the region's buurten (not all of them).
        "North": {ACROSS},
        # Naming no area: where its poll's audience was, by the same rule.
        "poll to West": {OOG_IN_AL, ACROSS},
        # The whole gemeente counts for the gemeente only, as it does for wijken and buurten.
        "poll to the gemeente": set(),
        # The region its poll's audience named, even when a newer version moved its buurten.
        "poll to Oost region": {OOST},
        "a buurt of North in no region": set(),
    }
    counts = measures.count_by_area(found.values(), GM, REGIONS)
    assert (counts[OOG_IN_AL], counts[ACROSS], counts[OOST], counts[GM]) == (2, 2, 1, 6)
    # The CBS tree counts as without regions: a region changes no wijk's or buurt's count.
    without = measures.count_by_area(found.values(), GM)
    assert {c: n for c, n in counts.items() if c not in REGIONS} == {
        c: n for c, n in without.items() if c not in REGIONS
    }
