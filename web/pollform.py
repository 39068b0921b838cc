"""A poll as an HTML form, and the form back as answers (docs/pollspec.md).

Field names: ``q.<id>`` for a choice, scale or open question (a checkbox group repeats it),
``q.<id>.<option>`` per option of a ranking (its place, 1…), ``q.<id>.lat`` / ``q.<id>.lon``
for a location. Empty fields are left-out answers. Without JavaScript every question is on the
page, conditional ones with their condition in words; the answers to a conditional question
whose condition is not met are dropped here (the resident could not have known better), and
``pollspec.validate_answers`` — called by the gateway's submission route — decides the rest.
"""

from __future__ import annotations

from typing import Any

from werkzeug.datastructures import MultiDict

from services.common.errors import InvalidInput
from services.common.pollspec import DONT_KNOW, visible_questions

SCALE_DEFAULT_LABELS = {
    "nl": ["Helemaal oneens", "Oneens", "Neutraal", "Eens", "Helemaal eens"],
    "en": ["Strongly disagree", "Disagree", "Neutral", "Agree", "Strongly agree"],
}


def field_name(question_id: str, part: str | None = None) -> str:
    return f"q.{question_id}" + (f".{part}" if part else "")


def answers_from_form(definition: dict[str, Any], form: MultiDict) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    errors = []
    for q in definition["questions"]:
        qid, kind = q["id"], q["type"]
        name = field_name(qid)
        if kind == "multiple_choice":
            chosen = [v for v in form.getlist(name) if v]
            if chosen:
                answers[qid] = chosen
        elif kind in ("likert5", "rating10"):
            value = form.get(name, "").strip()
            if value == DONT_KNOW:
                answers[qid] = DONT_KNOW
            elif value:
                answers[qid] = int(value) if value.lstrip("-").isdigit() else value
        elif kind == "ranking":
            places = {}
            for option in q["options"]:
                value = form.get(field_name(qid, option["id"]), "").strip()
                if value:
                    places[option["id"]] = int(value) if value.isdigit() else 0
            if places:
                if len(set(places.values())) != len(places) or 0 in places.values():
                    errors.append(
                        {
                            "field": f"answers.{qid}",
                            "code": "duplicate_place",
                            "message": "give every place only once",
                        }
                    )
                answers[qid] = [o for o, _ in sorted(places.items(), key=lambda item: item[1])]
        elif kind == "location":
            lat, lon = (form.get(field_name(qid, p), "").strip() for p in ("lat", "lon"))
            if lat or lon:
                try:
                    answers[qid] = {
                        "lat": float(lat.replace(",", ".")),
                        "lon": float(lon.replace(",", ".")),
                    }
                except ValueError:
                    errors.append(
                        {
                            "field": f"answers.{qid}",
                            "code": "invalid_type",
                            "message": "lat and lon must be numbers",
                        }
                    )
        else:
            value = form.get(name, "")
            if value.strip():
                answers[qid] = value
    if errors:
        raise InvalidInput("the answers are not valid", errors)
    shown = set(visible_questions(definition, answers))
    return {qid: value for qid, value in answers.items() if qid in shown}


def questions_view(definition: dict[str, Any], lang: str) -> list[dict[str, Any]]:
    """What a template needs per question: its number, its condition in words, scale steps."""
    by_id = {q["id"]: q for q in definition["questions"]}
    numbers = {q["id"]: i for i, q in enumerate(definition["questions"], start=1)}
    view = []
    for q in definition["questions"]:
        item = {
            "help": None,
            "condition": None,
            "low_label": None,
            "high_label": None,
            "max_length": 1000,
            **q,
            "number": numbers[q["id"]],
            "required": q.get("required", True),
        }
        if q["type"] == "likert5":
            labels = q.get("labels") or SCALE_DEFAULT_LABELS.get(lang, SCALE_DEFAULT_LABELS["nl"])
            item["steps"] = [
                (i + 1, labels[i] if i < len(labels) else str(i + 1)) for i in range(5)
            ]
        elif q["type"] == "rating10":
            item["steps"] = [(i, str(i)) for i in range(11)]
        elif q["type"] == "ranking":
            item["places"] = list(range(1, q.get("rank_count", len(q["options"])) + 1))
        show_if = q.get("show_if")
        if show_if:
            source = by_id.get(show_if["question"], {})
            labels = {str(o["id"]): o["label"] for o in source.get("options", [])}
            item["condition"] = {
                "question": show_if["question"],
                "number": numbers.get(show_if["question"]),
                "text": source.get("text", ""),
                "any_of": [str(v) for v in show_if["any_of"]],
                "labels": [labels.get(str(v), str(v)) for v in show_if["any_of"]],
            }
        view.append(item)
    return view


def dont_know_label(q: dict[str, Any], lang: str) -> str | None:
    if "dont_know" not in q:
        return None
    value = q["dont_know"]
    if isinstance(value, str):
        return value
    return "Weet ik niet" if lang == "nl" else "Don't know"
