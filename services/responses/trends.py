"""Trends over a series of polls (issue 13): a poll published as the next wave of an earlier
one, and per question and area the weighted share of each option per wave with its 95%
interval, and the change between consecutive waves with its 95% interval and whether it is
significant. For scale questions (likert5, rating10) also the weighted mean per wave with its
95% interval, and the change of the mean between waves with its interval and significance.
docs/methods.md, "Trends", has the methods and a worked example of each.

The gateway calls ``compare`` with each wave's released results document (like the exports,
made from the same documents). Built from those documents only (each suppressed as always): a
wave's figure that is hidden stays hidden, and a change is shown only where both of its waves
show the weighted share and the effective sample size. The change is computed from the
figures as published (rounded to one decimal), so anyone can check it from the documents.
Each wave's shown figures keep the notes about their weights (``weighting_notes``, as in the
results: weights that miss the CBS margins, an estimated population) beside them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

Z95 = 1.959964  # two-sided 95%
SCALES = ("likert5", "rating10")
DONT_KNOW = "dont_know"


def change(p1: float, n1: float, p2: float, n2: float) -> tuple[float, float, float, bool]:
    """The change between two independent weighted shares (in percent), with effective sample
    sizes n1 and n2: (change, ci_low, ci_high, significant), in percentage points, unrounded.
    SE = √(p1(1−p1)/n1 + p2(1−p2)/n2) with shares as fractions; the 95% interval is
    change ± 1.96·SE; significant when it does not include 0."""
    a, b = p1 / 100, p2 / 100
    se = math.sqrt(a * (1 - a) / n1 + b * (1 - b) / n2)
    delta = b - a
    low, high = delta - Z95 * se, delta + Z95 * se
    significant = low > 0 or high < 0
    return 100 * delta, 100 * low, 100 * high, significant


def mean_of(
    percents: Mapping[str, float | None], effective_n: float | None
) -> tuple[float, float, float, float, float] | None:
    """The weighted mean of a scale question from its published weighted percentages per value
    (option ids "1".."5" or "0".."10"; "dont_know" left out) and the effective n of the
    question's respondents: (mean, ci_low, ci_high, variance, n), unrounded, or None when a
    value's percentage is hidden or nobody gave a value. The answers that are a value have
    shares w_v = percent_v/100 with P = Σ w_v; mean m = Σ v·w_v / P; variance
    s² = Σ w_v·(v − m)² / P; n = n_eff·P (the effective n of those who gave a value);
    SE = √(s²/n); the 95% interval m ± 1.96·SE."""
    values = {v: p for v, p in percents.items() if v != DONT_KNOW}
    if not values or not effective_n or any(p is None for p in values.values()):
        return None
    shares = {int(v): p / 100 for v, p in values.items() if p is not None}
    total = sum(shares.values())
    if total <= 0:
        return None
    mean = sum(v * w for v, w in shares.items()) / total
    variance = sum(w * (v - mean) ** 2 for v, w in shares.items()) / total
    n = effective_n * total
    se = math.sqrt(variance / n)
    return mean, mean - Z95 * se, mean + Z95 * se, variance, n


def mean_change(
    m1: float, var1: float, n1: float, m2: float, var2: float, n2: float
) -> tuple[float, float, float, bool]:
    """The change between two independent weighted means, each with the variance of the
    answers and the effective n of those who gave a value (``mean_of``): (change, ci_low,
    ci_high, significant), unrounded. SE = √(s1²/n1 + s2²/n2); the 95% interval is
    change ± 1.96·SE; significant when it does not include 0."""
    se = math.sqrt(var1 / n1 + var2 / n2)
    delta = m2 - m1
    low, high = delta - Z95 * se, delta + Z95 * se
    return delta, low, high, low > 0 or high < 0


def _mean_figures(figures: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A wave's weighted mean as shown (two decimals), with what its change needs."""
    if not figures:
        return None
    found = mean_of(
        {o["option"]: o["weighted_percent"] for o in figures["options"]}, figures["effective_n"]
    )
    if found is None:
        return None
    mean, low, high, variance, n = found
    return {
        "mean": round(mean, 2),
        "ci_low": round(low, 2),
        "ci_high": round(high, 2),
        "effective_n": round(n, 1),
        "_exact": (mean, variance, n),
    }


def _mean_change(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> dict[str, Any]:
    entry: dict[str, Any] = {"change": None, "ci_low": None, "ci_high": None, "significant": None}
    if before and after and before.get("mean") and after.get("mean"):
        m1, var1, n1 = before["mean"]["_exact"]
        m2, var2, n2 = after["mean"]["_exact"]
        d, low, high, significant = mean_change(m1, var1, n1, m2, var2, n2)
        entry.update(
            change=round(d, 2),
            ci_low=round(low, 2),
            ci_high=round(high, 2),
            significant=significant,
        )
    return entry


def _without_exact(figures: dict[str, Any]) -> dict[str, Any]:
    mean = figures.get("mean")
    if mean is None:
        return figures
    return {**figures, "mean": {k: v for k, v in mean.items() if k != "_exact"}}


def _shares(figures: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """One wave's published figures of one question and area, or None when hidden."""
    if not figures or figures.get("suppressed"):
        return None
    return {
        "respondents": figures.get("respondents"),
        "effective_n": figures.get("effective_n"),
        "options": [
            {
                "option": o["option"],
                "weighted_percent": o.get("weighted_percent"),
                "ci_low": o.get("ci_low"),
                "ci_high": o.get("ci_high"),
            }
            for o in figures.get("options", [])
        ],
        # What a reader of these weighted figures must know about their weights, beside them.
        "weighting_notes": list(figures.get("weighting_notes") or []),
    }


def _change(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, options: Sequence[str]
) -> list[dict[str, Any]]:
    out = []
    for option in options:
        entry: dict[str, Any] = {
            "option": option,
            "change": None,
            "ci_low": None,
            "ci_high": None,
            "significant": None,
        }
        if before and after and before["effective_n"] and after["effective_n"]:
            p1 = next((o for o in before["options"] if o["option"] == option), None)
            p2 = next((o for o in after["options"] if o["option"] == option), None)
            if p1 and p2 and None not in (p1["weighted_percent"], p2["weighted_percent"]):
                d, low, high, significant = change(
                    p1["weighted_percent"],
                    before["effective_n"],
                    p2["weighted_percent"],
                    after["effective_n"],
                )
                entry.update(
                    change=round(d, 1),
                    ci_low=round(low, 1),
                    ci_high=round(high, 1),
                    significant=significant,
                )
        out.append(entry)
    return out


def compare(waves: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``waves``: oldest first, each ``{poll_id, wave, definition, document}`` (a released
    results document, one view). Questions are compared across consecutive waves where both
    have a question with the same id, type and option ids (wording may differ); open
    questions are left out."""
    questions = []
    latest = waves[-1]["definition"]["questions"] if waves else []
    for q in latest:
        if q["type"] in ("open_text", "location"):
            continue
        per_wave = []
        for wave in waves:
            found = next((x for x in wave["document"]["questions"] if x["id"] == q["id"]), None)
            same = found is not None and found["type"] == q["type"]
            per_wave.append(found if same else None)
        options = per_wave[-1]["options"] if per_wave[-1] else []
        areas: dict[str, Any] = {}
        codes: list[str] = []
        for found in per_wave:
            for code in (found or {}).get("areas", {}):
                if code not in codes:
                    codes.append(code)
        scale = q["type"] in SCALES
        for code in codes:
            figures = [_shares(found["areas"].get(code)) if found else None for found in per_wave]
            if scale:  # the weighted mean beside the shares, from the same published figures
                figures = [f and {**f, "mean": _mean_figures(f)} for f in figures]
            changes = []
            for i in range(1, len(waves)):
                before, after = per_wave[i - 1], per_wave[i]
                comparable = (
                    before is not None
                    and after is not None
                    and before["options"] == after["options"]
                )
                changes.append(
                    {
                        "from_wave": waves[i - 1]["wave"],
                        "to_wave": waves[i]["wave"],
                        "comparable": comparable,
                        "options": _change(figures[i - 1], figures[i], options)
                        if comparable
                        else [],
                        **(
                            {
                                "mean": _mean_change(figures[i - 1], figures[i])
                                if comparable
                                else None
                            }
                            if scale
                            else {}
                        ),
                    }
                )
            areas[code] = {
                "waves": [
                    {
                        "wave": w["wave"],
                        "poll_id": w["poll_id"],
                        **(_without_exact(f) if f else {"suppressed": True}),
                    }
                    for w, f in zip(waves, figures, strict=True)
                ],
                "changes": changes,
            }
        questions.append(
            {
                "id": q["id"],
                "type": q["type"],
                "text": q["text"],
                "options": options,
                "areas": areas,
            }
        )
    return {
        "waves": [
            {"wave": w["wave"], "poll_id": w["poll_id"], "title": w["definition"].get("title")}
            for w in waves
        ],
        "questions": questions,
    }
