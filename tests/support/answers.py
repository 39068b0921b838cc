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


def full_answer(q: dict[str, Any], variant: int) -> Any:
    """A valid answer to one question, ``variant`` choosing among the options (so a set of
    residents spreads over them as real answers do)."""
    kind = q["type"]
    options = [o["id"] for o in q.get("options", [])]
    if kind == "single_choice":
        return options[variant % len(options)]
    if kind == "multiple_choice":
        plain = [o["id"] for o in q["options"] if not o.get("exclusive")]
        most = min(q.get("max_selections", len(plain)), len(plain))
        take = max(q.get("min_selections", 1), 1 + variant % most)
        return [plain[(variant + i * 3) % len(plain)] for i in range(take)]
    if kind == "likert5":
        return 1 + variant % 5
    if kind == "rating10":
        return 1 + variant % 10
    if kind == "open_text":
        return ("Meer licht bij het fietspad.", "Te hard rijden in de straat.")[variant % 2]
    if kind == "ranking":
        count = q.get("rank_count", len(options))
        return [options[(variant + i) % len(options)] for i in range(count)]
    return {"lat": 52.0907 + (variant % 7) * 0.001, "lon": 5.1214 + (variant % 5) * 0.001}


def full_answers(definition: dict[str, Any], variant: int = 0) -> dict[str, Any]:
    """Every question that is shown answered, optional ones included, as a thorough resident
    does; ``variant`` varies the answers (and so which follow-up questions are shown)."""
    answers: dict[str, Any] = {}
    for i, q in enumerate(definition["questions"]):
        if q["id"] in visible_questions(definition, answers):
            answers[q["id"]] = full_answer(q, variant + i)
    return answers
