"""Answer sets for tests and benchmarks: what a hurried but valid resident would send."""

from __future__ import annotations

from typing import Any

from services.common.pollspec import visible_questions


def minimal_answer(q: dict[str, Any]) -> Any:
    """The simplest valid answer to one question."""
    kind = q["type"]
    if kind == "single_choice":
        return q["options"][0]["id"]
    if kind == "multiple_choice":
        plain = [o["id"] for o in q["options"] if not o.get("exclusive")]
        return plain[: q.get("min_selections", 1)]
    if kind == "likert5":
        return 3
    if kind == "rating10":
        return 7
    if kind == "open_text":
        return "Meer licht bij het fietspad."
    if kind == "ranking":
        return [o["id"] for o in q["options"]][: q.get("rank_count", len(q["options"]))]
    return {"lat": 52.09, "lon": 5.12}


def minimal_answers(definition: dict[str, Any]) -> dict[str, Any]:
    """Every required question that is shown, answered with ``minimal_answer``, in order."""
    answers: dict[str, Any] = {}
    for q in definition["questions"]:
        if q.get("required", True) and q["id"] in visible_questions(definition, answers):
            answers[q["id"]] = minimal_answer(q)
    return answers
