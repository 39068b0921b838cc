"""The weighting notes of the results in the reader's language.

services/responses writes each note about the weights behind a figure as one English sentence
(``weighting.py``, ``results.py``), with a wijk's notes prefixed by its code. The API passes
them on as they are. Here each sentence is recognised by its pattern and given a stable code;
the code's text comes from the gettext catalogue, with the values of the sentence (dimension,
category, counts, percentages) filled in. A note no pattern knows is shown as the service wrote
it. ``tests/unit/test_weighting_notes.py`` makes the notes with the service's own functions,
so a changed sentence there fails a test here instead of quietly staying English.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from web.messages import N_

DIMENSIONS = {"age": N_("age"), "sex": N_("sex")}

# code → (pattern of the English sentence, the text in the catalogue)
NOTES: dict[str, tuple[re.Pattern[str], str]] = {
    code: (re.compile(pattern), text)
    for code, pattern, text in [
        (
            "no_margin",
            r"no (?P<dim>\w+) margin: not weighted on \w+",
            N_("no CBS figures for %(dim)s: not weighted on %(dim)s"),
        ),
        (
            "no_cbs_figure",
            r"no CBS figure for (?P<dim>\w+) (?P<cat>\S+): its respondents are not weighted on \w+",
            N_("no CBS figure for %(dim)s %(cat)s: its respondents are not weighted on %(dim)s"),
        ),
        (
            "no_cbs_figures",
            r"no CBS figures for (?P<dim>\w+): not weighted on \w+",
            N_("no CBS figures for %(dim)s: not weighted on %(dim)s"),
        ),
        (
            "no_population",
            r"no population in the (?P<dim>\w+) categories that have respondents",
            N_(
                "no population in the %(dim)s groups that have respondents: not weighted on %(dim)s"
            ),
        ),
        (
            "merged",
            r"(?P<dim>\w+) (?P<cats>.+) merged: a category had respondents but no population",
            N_("%(dim)s %(cats)s taken together: one group had respondents but no population"),
        ),
        (
            "unmatched",
            r"no respondents in (?P<dim>\w+) (?P<cat>\S+): the other \w+ groups are weighted",
            N_("no respondents in %(dim)s %(cat)s: the other %(dim)s groups are weighted"),
        ),
        (
            "too_few_groups",
            r"fewer than two (?P<dim>\w+) groups with respondents: not weighted on \w+",
            N_("fewer than two %(dim)s groups with respondents: not weighted on %(dim)s"),
        ),
        (
            "band_0_14",
            r"respondents in band 0_14 are not weighted on age \(the panel is 15\+\)",
            N_("respondents under 15 are not weighted on age (the panel is 15+)"),
        ),
        ("no_respondents", r"no respondents", N_("no respondents")),
        (
            "outside_trim",
            r"the margins cannot be met with weights in \[(?P<low>[\d.]+), (?P<high>[\d.]+)\] x "
            r"mean: they are off by up to (?P<pct>[\d.]+)%",
            N_(
                "the CBS figures cannot be met with weights between %(low)s and %(high)s times "
                "the mean: they are off by up to %(pct)s%%"
            ),
        ),
        (
            "not_converged",
            r"weights miss the CBS margins by up to (?P<pct>[\d.]+)% \(the raking did not "
            r"converge\)",
            N_(
                "the weights miss the CBS figures by up to %(pct)s%% (the weighting did not "
                "converge)"
            ),
        ),
        (
            "population_estimated",
            r"15\+ population of (?P<wijk>\w+) estimated: no CBS figure for age (?P<cats>.+), "
            r"taken from the gemeente's age profile",
            N_(
                "the 15+ population of %(wijk)s is estimated: no CBS figure for age %(cats)s, "
                "taken from the municipality's age profile"
            ),
        ),
        (
            "no_population_wijk",
            r"no 15\+ population for (?P<wijk>\w+): not in the gemeente figure",
            N_("no 15+ population for %(wijk)s: not in the municipality's figure"),
        ),
    ]
}
WIJK_PREFIX = re.compile(r"^(?P<wijk>WK\d{6}): (?P<rest>.*)$", re.S)
NUMBER_KEYS = ("low", "high", "pct")


def code_of(note: str) -> tuple[str | None, dict[str, str], str | None]:
    """(the note's code, its values, the wijk it is about) — code None when unknown."""
    wijk = None
    found = WIJK_PREFIX.match(note)
    if found:
        wijk, note = found["wijk"], found["rest"]
    for code, (pattern, _) in NOTES.items():
        matched = pattern.fullmatch(note)
        if matched:
            return code, matched.groupdict(), wijk
    return None, {}, wijk


def category(value: str) -> str:
    """An age band or sex as the service names it (``15_24``, ``65_plus``) made readable."""
    return value.replace("_plus", "+").replace("_", "–").replace(" + ", ", ")


def translate(note: str, gettext: Callable[[str], str], lang: str) -> str:
    code, values, wijk = code_of(note)
    if code is None:
        return note
    shown = dict(values)
    if "dim" in shown:
        shown["dim"] = gettext(DIMENSIONS.get(shown["dim"], shown["dim"]))
    for key in ("cat", "cats"):
        if key in shown:
            shown[key] = category(shown[key])
    for key in NUMBER_KEYS:
        if key in shown and lang == "nl":
            shown[key] = shown[key].replace(".", ",")
    text = gettext(NOTES[code][1]) % shown
    return f"{wijk}: {text}" if wijk else text
