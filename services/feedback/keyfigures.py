"""Key figures: a snapshot of a few results that staff pick to show beside their feedback.

Staff name a question and an area; the figures are taken from the responses service's results
(the one place that weights and suppresses), never typed in. What responses hides stays hidden
here: an area it suppresses becomes ``{"suppressed": true}``, an option count it hides becomes
``{"option", "suppressed": true}``. The notes about the weights behind a shown figure (weights
that miss the CBS margins, a population estimated for a missing CBS figure: results'
``weighting_notes``) go with it, and are frozen with it at publication.
"""

from __future__ import annotations

from typing import Any

from services.common.areas import in_municipality, level_of
from services.common.errors import InvalidInput

NO_FIGURES = ("open_text", "location")


def check_areas(requests: list[dict[str, Any]], municipality_code: str) -> list[dict[str, Any]]:
    """Default the area to the gemeente; refuse an area of another municipality."""
    out, errors = [], []
    for i, request in enumerate(requests):
        area = request.get("area_code") or municipality_code
        if not in_municipality(area, municipality_code):
            errors.append(
                {
                    "field": f"key_figures[{i}].area_code",
                    "code": "other_municipality",
                    "message": f"{area} is not an area of {municipality_code}",
                }
            )
        out.append({"question_id": request["question_id"], "area_code": area})
    if errors:
        raise InvalidInput("a key figure names an area of another municipality", errors)
    return out


def snapshot(requests: list[dict[str, Any]], results: dict[str, Any]) -> list[dict[str, Any]]:
    """The figures for each request, from a ``responses.results`` answer."""
    questions = {q["id"]: q for q in results.get("questions", [])}
    errors = []
    for i, request in enumerate(requests):
        q = questions.get(request["question_id"])
        if q is None:
            errors.append(
                {
                    "field": f"key_figures[{i}].question_id",
                    "code": "unknown_question",
                    "message": f"the poll has no question {request['question_id']!r}",
                }
            )
        elif q["type"] in NO_FIGURES or "options" not in q:
            errors.append(
                {
                    "field": f"key_figures[{i}].question_id",
                    "code": "no_figures",
                    "message": "this question has no figures (open or location answers)",
                }
            )
    if errors:
        raise InvalidInput("a key figure names a question without figures", errors)
    return [figure(questions[r["question_id"]], r["area_code"]) for r in requests]


def figure(q: dict[str, Any], area_code: str) -> dict[str, Any]:
    head = {
        "question_id": q["id"],
        "question": q["text"],
        "type": q["type"],
        "area_code": area_code,
        "level": level_of(area_code),
    }
    area = q["areas"].get(area_code)
    if area is None:  # nobody in this area answered
        return {**head, "suppressed": False, "n": 0, "options": [], "weighting_notes": []}
    if area.get("suppressed"):
        return {**head, "suppressed": True}
    options = []
    for o in area["options"]:
        if o.get("count") is None:
            options.append({"option": o["option"], "suppressed": True})
            continue
        options.append(
            {
                "option": o["option"],
                "percent": o.get("percent"),
                "weighted_percent": o.get("weighted_percent"),
                "ci_low": o.get("ci_low"),
                "ci_high": o.get("ci_high"),
            }
        )
    return {
        **head,
        "suppressed": False,
        "n": area["respondents"],
        "options": options,
        "weighting_notes": list(area.get("weighting_notes") or []),
    }
