"""The results page shows the weighting notes in the reader's language: every note the
responses service writes (made here with its own functions) is recognised by a stable code and
translated through the catalogue; an unknown note is shown as written."""

from __future__ import annotations

import dataclasses

from services.responses import results, weighting
from web import i18n
from web.weighting_notes import NOTES, code_of, translate

AGE = weighting.RAKED_AGE_BANDS


def every_note() -> list[str]:
    """One of each note, as services/responses writes it."""
    dim = weighting._dimension
    notes = []
    notes += dim("age", AGE, None, ["15_24"], [3])[3]  # no margin
    notes += dim(
        "age",
        AGE,
        {"15_24": None, "25_44": 10, "45_64": 10, "65_plus": 10},
        ["15_24", "25_44", "45_64"],
        [2, 3, 4],
    )[3]  # no CBS figure for one band
    notes += dim("age", AGE, {b: None for b in AGE}, ["15_24"], [2])[3]  # no CBS figures
    notes += dim("sex", ("man", "vrouw"), {"man": 0, "vrouw": 0}, ["man"], [2])[3]
    notes += dim(
        "age",
        AGE,
        {"15_24": 0, "25_44": 10, "45_64": 10, "65_plus": 10},
        ["15_24", "25_44", "45_64"],
        [2, 3, 4],
    )[3]  # merged, and 65+ unmatched
    notes += dim("sex", ("man", "vrouw"), {"man": 10, "vrouw": 10}, ["man"], [5])[3]
    notes += weighting.rake({("0_14", "man"): 2, ("15_24", "vrouw"): 3}, {}).notes
    notes += weighting.rake({}, {}).notes
    tight = weighting.rake(
        {("15_24", "man"): 1, ("65_plus", "vrouw"): 100, ("25_44", "vrouw"): 50},
        {"age": {b: 100 for b in AGE}, "sex": {"man": 50, "vrouw": 50}},
        trim=(0.9, 1.1),
    )
    notes += tight.notes
    missed = dataclasses.replace(tight, converged=False, max_margin_error=0.0234)
    notes += results._notes_of(missed)
    wijken = {"WK034401": dataclasses.replace(tight, population=None)}
    wijken["WK034402"] = wijken["WK034401"]
    margins = {
        "GM0344": {"age": {b: 100 for b in AGE}},
        "WK034401": {"age": {"15_24": 10, "25_44": 10, "45_64": 10}},
        "WK034402": {"age": {}},
    }
    for population in results._populations(wijken, margins, ["GM0344"]).values():
        notes.append(population.note)
    return notes


def test_every_note_the_service_writes_has_a_code():
    notes = every_note()
    codes = {code_of(n)[0] for n in notes}
    assert None not in codes, [n for n in notes if code_of(n)[0] is None]
    assert codes == set(NOTES), set(NOTES) - codes


def test_notes_are_dutch_on_the_dutch_page_with_the_figures_kept():
    nl = i18n.translations("nl").gettext
    assert translate(
        "WK034401: no respondents in age 65_plus: the other age groups are weighted", nl, "nl"
    ) == (
        "WK034401: geen respondenten in leeftijd 65+: de andere groepen naar leeftijd zijn gewogen"
    )
    text = translate(
        "weights miss the CBS margins by up to 2.3% (the raking did not converge)", nl, "nl"
    )
    assert "2,3%" in text and "CBS" in text and "weights" not in text
    for note in every_note():
        assert translate(note, nl, "nl") != note, note


def test_english_stays_english_and_an_unknown_note_is_shown_as_written():
    en = i18n.translations("en").gettext
    note = "no respondents in sex vrouw: the other sex groups are weighted"
    assert translate(note, en, "en") == note
    assert translate("something new", en, "en") == "something new"
