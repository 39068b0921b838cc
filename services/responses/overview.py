"""The safety overview (issue 13): per area of a municipality (gemeente, wijken, buurten, its
regions) the latest figure of each tracked question of the safety polls, a trend arrow only
where the change from the previous wave is significant at 95%, and when the area was last
polled. The gateway adds the open measures per area (feedback's ``open_measures_by_area``).

What is tracked: the closed questions with one answer per respondent — ``single_choice`` (the
weighted share of each option) and the scales ``likert5`` and ``rating10`` (the weighted mean)
— of every poll whose theme is a safety theme (``SAFETY_THEMES``: the themes of the safety
templates of the library). A question is known by its theme and id (a next wave keeps both).

Built from the released (suppressed) results documents and the trend between a poll and its
previous wave (``trends.compare`` on those documents) only, never from counts: a figure hidden
there is hidden here, with the reason. The notes about the weights behind an area's figures
(results' ``weighting_notes``: weights that miss the CBS margins, an estimated population, a
dimension not weighted on) stand beside them here and in the export's ``weighting_note``.
docs/methods.md, "Safety overview", says the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from services.common.areas import level_of, parent_of
from services.responses import exports

# The safety templates of the library (services/polls/templates): their polls' theme.
SAFETY_THEMES = (
    "veiligheidsgevoel",
    "verkeersveiligheid",
    "verlichting",
    "buurtpreventie",
    "cameratoezicht",
    "overlast",
    "woninginbraak",
    "jaarwisseling",
)
TRACKED_TYPES = ("single_choice", "likert5", "rating10")
SCALES = ("likert5", "rating10")

# Why a figure is not shown.
SUPPRESSED = "suppressed"  # fewer than k respondents, or it would reveal a small group
NOT_WEIGHTED = "not_weighted"  # shown counts but no weighted figure (no CBS margins)
NO_RESPONDENTS = "no_respondents"  # not hidden: nobody there answered the question

LEVEL_ORDER = {"gemeente": 0, "wijk": 1, "buurt": 2, "regio": 3}


def is_safety_poll(definition: Mapping[str, Any]) -> bool:
    return definition.get("theme") in SAFETY_THEMES


def tracked_questions(definition: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [q for q in definition.get("questions", []) if q["type"] in TRACKED_TYPES]


def _arrow(change: Mapping[str, Any] | None) -> str | None:
    """ "up" or "down" only for a significant change; None otherwise."""
    if not change or not change.get("significant") or change.get("change") is None:
        return None
    return "up" if change["change"] > 0 else "down"


def _labels(q: Mapping[str, Any]) -> dict[str, str]:
    return {o["id"]: o.get("label", o["id"]) for o in q.get("options") or []}


def _figures(
    q: Mapping[str, Any], figures: Mapping[str, Any] | None, trend: Mapping[str, Any] | None
) -> dict[str, Any]:
    """One question's latest figures in one area: ``values`` (a mean, or a share per option)
    with intervals and arrows, or hidden with the reason."""
    if not figures or figures.get("suppressed"):
        return {"suppressed": True, "reason": SUPPRESSED, "values": [], "weighting_notes": []}
    if figures.get("respondents") == 0:
        return {
            "suppressed": False,
            "reason": NO_RESPONDENTS,
            "respondents": 0,
            "values": [],
            "weighting_notes": [],
        }
    # The weights behind this area's figures (or why there are none): beside them.
    notes = list(figures.get("weighting_notes") or [])
    steps = (trend or {}).get("changes") or []
    step = steps[-1] if steps and steps[-1].get("comparable") else None
    if q["type"] in SCALES:
        mean = _latest_mean(trend)
        if mean is None:
            return {
                "suppressed": False,
                "reason": NOT_WEIGHTED,
                "values": [],
                "weighting_notes": notes,
            }
        change = (step or {}).get("mean")
        return {
            "suppressed": False,
            "reason": None,
            "respondents": figures.get("respondents"),
            "effective_n": mean["effective_n"],
            "weighting_notes": notes,
            "values": [
                {
                    "option": None,
                    "label": None,
                    "value": mean["mean"],
                    "ci_low": mean["ci_low"],
                    "ci_high": mean["ci_high"],
                    "change": (change or {}).get("change"),
                    "significant": (change or {}).get("significant"),
                    "trend": _arrow(change),
                }
            ],
        }
    labels = _labels(q)
    changes = {c["option"]: c for c in (step or {}).get("options", [])}
    values = []
    for o in figures.get("options", []):
        change = changes.get(o["option"])
        values.append(
            {
                "option": o["option"],
                "label": labels.get(o["option"], o["option"]),
                "value": o.get("weighted_percent"),
                "ci_low": o.get("ci_low"),
                "ci_high": o.get("ci_high"),
                "change": (change or {}).get("change"),
                "significant": (change or {}).get("significant"),
                "trend": _arrow(change),
            }
        )
    if all(v["value"] is None for v in values):
        return {"suppressed": False, "reason": NOT_WEIGHTED, "values": [], "weighting_notes": notes}
    return {
        "suppressed": False,
        "reason": None,
        "respondents": figures.get("respondents"),
        "effective_n": figures.get("effective_n"),
        "weighting_notes": notes,
        "values": values,
    }


def _latest_mean(trend: Mapping[str, Any] | None) -> dict[str, Any] | None:
    waves = (trend or {}).get("waves") or []
    return waves[-1].get("mean") if waves else None


def _last_polled(poll: Mapping[str, Any]) -> datetime:
    """When a poll last polled: its close, or while open its opening."""
    return poll["closed_at"] or poll["opens_at"]


def build(
    municipality_code: str, polls: Sequence[Mapping[str, Any]], region_names: Mapping[str, str]
) -> dict[str, Any]:
    """``polls``: the municipality's safety polls that opened, each ``{poll_id, wave, title,
    theme, opens_at, closed_at, definition, document, trend}`` — ``document`` its released
    results document, ``trend`` ``trends.compare`` of its previous wave and itself (or of
    itself alone in a series of one). ``region_names``: names of regions (not in CBS margins).
    Per area, per tracked question: the figures of the latest poll that lists the area."""
    latest_first = sorted(polls, key=lambda p: (p["opens_at"], p["wave"]), reverse=True)
    areas: dict[str, dict[str, Any]] = {}
    for poll in latest_first:
        rows = {a["code"]: a for a in poll["document"].get("areas", [])}
        trend_questions = {q["id"]: q for q in (poll["trend"] or {}).get("questions", [])}
        documented = {q["id"]: q for q in poll["document"].get("questions", [])}
        for code, row in rows.items():
            if code[2:6] != municipality_code[2:6]:
                continue
            area = areas.setdefault(
                code,
                {
                    "code": code,
                    "level": level_of(code),
                    "parent_code": parent_of(code),
                    "name": row.get("name") or region_names.get(code),
                    "last_polled": None,
                    "last_poll_id": None,
                    "questions": {},
                },
            )
            area["name"] = area["name"] or row.get("name")
            polled = _last_polled(poll)
            if area["last_polled"] is None or polled > area["last_polled"]:
                area["last_polled"], area["last_poll_id"] = polled, poll["poll_id"]
            for position, q in enumerate(tracked_questions(poll["definition"])):
                key = f"{poll['theme']}.{q['id']}"
                if key in area["questions"] or q["id"] not in documented:
                    continue  # a later poll already gave it
                figures = documented[q["id"]]["areas"].get(code)
                trend = (trend_questions.get(q["id"]) or {}).get("areas", {}).get(code)
                area["questions"][key] = {
                    "key": key,
                    "theme": poll["theme"],
                    "question_id": q["id"],
                    "type": q["type"],
                    "text": q["text"],
                    "measure": "mean" if q["type"] in SCALES else "share",
                    "poll_id": poll["poll_id"],
                    "poll_title": poll["title"],
                    "wave": poll["wave"],
                    "k": poll["document"].get("k"),  # the minimum cell size it is hidden by
                    "polled": polled.isoformat(),
                    "position": position,
                    **_figures(q, figures, trend),
                }
    ordered = sorted(areas.values(), key=lambda a: (LEVEL_ORDER.get(a["level"], 9), a["code"]))
    return {
        "municipality_code": municipality_code,
        "themes": list(SAFETY_THEMES),
        "areas": [
            {
                **a,
                "last_polled": a["last_polled"].isoformat() if a["last_polled"] else None,
                "questions": sorted(a["questions"].values(), key=_question_order),
            }
            for a in ordered
        ],
    }


def _question_order(q: Mapping[str, Any]) -> tuple[int, int]:
    """By theme as ``SAFETY_THEMES`` lists them, then as the poll asks them."""
    theme = q["theme"]
    return (SAFETY_THEMES.index(theme) if theme in SAFETY_THEMES else 99, q["position"])


# --- the export: one tidy table, like the results exports (exports.py) -----------------------

COLUMNS: tuple[str, ...] = (
    "area_code",
    "area_level",
    "area_name",
    "last_polled",
    "open_measures",
    "theme",
    "question_id",
    "question",
    "measure",
    "option",
    "option_label",
    "value",
    "ci_low",
    "ci_high",
    "change",
    "significant",
    "trend",
    "poll_id",
    "wave",
    "respondents",
    "n_effective",
    "suppressed",
    "reason",
    "weighting_note",
)
NUMBERS = (
    "open_measures",
    "value",
    "ci_low",
    "ci_high",
    "change",
    "wave",
    "respondents",
    "n_effective",
)
FIGURES = ("option", "option_label", "value", "ci_low", "ci_high", "change", "significant", "trend")
TREND_TEXT = {"up": "gestegen (significant)", "down": "gedaald (significant)"}


def rows(overview: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A row per area × tracked question × option (a scale: one row, its mean); a hidden
    figure is an empty cell with ``suppressed`` true and its reason."""
    table = []
    for area in overview["areas"]:
        common = {
            "area_code": area["code"],
            "area_level": area["level"],
            "area_name": area.get("name"),
            "last_polled": (area.get("last_polled") or "")[:10] or None,
            "open_measures": area.get("open_measures"),
        }
        for q in area["questions"]:
            about = {
                **common,
                "theme": q["theme"],
                "question_id": q["question_id"],
                "question": q["text"],
                "measure": q["measure"],
                "poll_id": q["poll_id"],
                "wave": q["wave"],
                "respondents": q.get("respondents"),
                "n_effective": q.get("effective_n"),
                "suppressed": q["suppressed"],
                "reason": q.get("reason"),
                "weighting_note": " | ".join(q.get("weighting_notes") or []) or None,
            }
            if not q["values"]:  # hidden, or nobody answered: the reason says which
                table.append({**about, **dict.fromkeys(FIGURES)})
                continue
            for v in q["values"]:
                table.append(
                    {
                        **about,
                        "option": v["option"] if v["option"] is not None else "mean",
                        "option_label": v["label"] if v["label"] is not None else "Gemiddelde",
                        "value": v["value"],
                        "ci_low": v["ci_low"],
                        "ci_high": v["ci_high"],
                        "change": v["change"],
                        "significant": v["significant"],
                        "trend": TREND_TEXT.get(v["trend"] or ""),
                    }
                )
    return table


def metadata(
    overview: Mapping[str, Any], *, municipality: str, generated_at: datetime
) -> list[tuple[str, str]]:
    return [
        ("overview", "Veiligheid per gebied"),
        ("municipality", municipality),
        ("generated_at", generated_at.isoformat(timespec="seconds")),
        ("themes", ", ".join(overview["themes"])),
        (
            "values",
            "Per area the latest poll that listed it: share questions the weighted percentage "
            "per option, scale questions the weighted mean, each with its 95% interval. "
            "See docs/methods.md, Safety overview.",
        ),
        (
            "trend",
            "Change from the previous wave of the same series; 'gestegen'/'gedaald' only when "
            "the change is significant at 95%.",
        ),
        (
            "suppression",
            "Figures hidden in the poll's results are empty here with suppressed = true and a "
            "reason (suppressed: too few respondents or it would reveal a small group; "
            "not_weighted: no weighted figure); no_respondents: nobody there answered. See "
            "docs/suppression.md.",
        ),
        (
            "weighting_note",
            "The notes about the weights behind a row's figures, as in the poll's results "
            "(weights that miss the CBS margins, a population estimated for a missing CBS "
            "figure, a dimension not weighted on), separated by ' | '. See docs/methods.md.",
        ),
        ("open_measures", "Measures planned or in progress in published feedback on the area."),
    ]


def render(
    overview: Mapping[str, Any], *, fmt: str, municipality: str, generated_at: datetime
) -> bytes:
    if fmt not in exports.FORMATS:
        raise ValueError(f"no export as {fmt!r}: one of {', '.join(exports.FORMATS)}")
    table = rows(overview)
    meta = metadata(overview, municipality=municipality, generated_at=generated_at)
    if fmt == "csv":
        return exports.to_csv(table, meta, columns=COLUMNS)
    return exports.to_xlsx(table, meta, columns=COLUMNS, numbers=NUMBERS, title="Veiligheid")
