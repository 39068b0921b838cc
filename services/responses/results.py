"""Results of a poll, read from the counters only (never from raw responses): per question and
area (gemeente, wijken, buurten), counts and percentages, means for scales, weighted
percentages with 95% intervals (raking per wijk to its CBS margins, Kish effective n, Wilson),
response rates, and small-cell suppression so that no figure rests on fewer than k
respondents or can be derived from the figures shown.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.common.errors import NotFound
from services.responses import suppression, weighting
from services.responses.models import AreaMargins, Count, Invited, OpenText, Poll, Respondents

SCALES = ("likert5", "rating10")
EXCLUSIVE = ("single_choice", "likert5", "rating10", "ranking")  # ranking: first choice only
COUNTED = (*EXCLUSIVE, "multiple_choice")


def parent_of(code: str) -> str | None:
    """CBS codes nest: BU0344NNMM ⊂ WK0344NN ⊂ GM0344."""
    if code.startswith("BU"):
        return f"WK{code[2:8]}"
    if code.startswith("WK"):
        return f"GM{code[2:6]}"
    return None


def level_of(code: str) -> str:
    return {"GM": "gemeente", "WK": "wijk", "BU": "buurt"}[code[:2]]


def get_poll(session: Session, poll_id: str, municipality_code: str) -> Poll:
    try:
        poll = session.get(Poll, uuid.UUID(str(poll_id)))
    except ValueError:
        poll = None
    if poll is None or poll.municipality_code != municipality_code:
        raise NotFound("no results for this poll (not published, or not yours)")
    return poll


def compute(
    session: Session,
    *,
    poll_id: str,
    municipality_code: str,
    k: int,
) -> dict[str, Any]:
    poll = get_poll(session, poll_id, municipality_code)
    margins = latest_margins(session, municipality_code)
    respondents = session.execute(
        sa.select(
            Respondents.question_id,
            Respondents.area_code,
            Respondents.age_band,
            Respondents.sex,
            sa.func.sum(Respondents.n),
        )
        .where(Respondents.poll_id == poll.id)
        .group_by(
            Respondents.question_id, Respondents.area_code, Respondents.age_band, Respondents.sex
        )
    ).all()
    counts = session.execute(
        sa.select(
            Count.question_id,
            Count.option,
            Count.area_code,
            Count.age_band,
            Count.sex,
            sa.func.sum(Count.n),
        )
        .where(Count.poll_id == poll.id)
        .group_by(Count.question_id, Count.option, Count.area_code, Count.age_band, Count.sex)
    ).all()
    self_selected = dict(
        session.execute(
            sa.select(Respondents.area_code, sa.func.sum(Respondents.n))
            .where(
                Respondents.poll_id == poll.id,
                Respondents.question_id == "*",
                Respondents.self_selected.is_(True),
            )
            .group_by(Respondents.area_code)
        ).all()
    )
    invited = dict(
        session.execute(
            sa.select(Invited.area_code, Invited.n).where(Invited.poll_id == poll.id)
        ).all()
    )

    base: dict[str, dict[str, dict[weighting.Cell, int]]] = defaultdict(lambda: defaultdict(dict))
    for qid, area, age, sex, n in respondents:
        base[qid][area][(age, sex)] = int(n)
    chosen: dict[str, dict[str, dict[tuple[weighting.Cell, str], int]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for qid, option, area, age, sex, n in counts:
        chosen[qid][area][((age, sex), option)] = int(n)

    everyone = base.get("*", {})
    areas = sorted(everyone, key=lambda c: (len(c), c))
    hierarchy = suppression.Hierarchy({c: parent_of(c) for c in areas})
    counted = [q for q in poll.definition["questions"] if q["type"] in COUNTED]
    tables = [
        question_table(q, base.get(q["id"], {}), chosen.get(q["id"], {}), areas) for q in counted
    ]
    # Every table hides the same areas, so no area total leaks from one question to another.
    safe = suppression.suppress_poll(
        tables, hierarchy, k, respondents={c: sum(everyone[c].values()) for c in areas}
    )
    hidden = set(safe.areas)
    safe_tables = {t.question_id: t for t in safe.tables}
    weights = {
        wijk: weighting.rake(everyone[wijk], margins.get(wijk))
        for wijk in areas
        if wijk.startswith("WK")
    }

    invited_total: dict[str, int] = defaultdict(int)
    for buurt, n in invited.items():
        code: str | None = buurt
        while code is not None:
            invited_total[code] += n
            code = parent_of(code)

    area_rows = []
    for code in areas:
        shown = code not in hidden
        n = sum(everyone[code].values())
        area_rows.append(
            {
                "code": code,
                "level": level_of(code),
                "parent_code": parent_of(code),
                "name": (margins.get(code) or {}).get("name"),
                "respondents": n if shown else None,
                # Members who joined by open sign-up; hidden when it is a small group.
                "self_selected": visible_count(self_selected.get(code, 0), k) if shown else None,
                "invited": invited_total.get(code),
                "response_rate": (
                    round(100 * n / invited_total[code], 1)
                    if shown and invited_total.get(code)
                    else None
                ),
                "suppressed": not shown,
            }
        )

    questions = []
    for q in poll.definition["questions"]:
        if q["type"] in COUNTED:
            questions.append(
                question_results(
                    q,
                    safe_tables[q["id"]],
                    base.get(q["id"], {}),
                    chosen.get(q["id"], {}),
                    areas,
                    weights,
                )
            )
        elif q["type"] == "open_text":
            questions.append(
                open_answers(session, poll, q, base.get(q["id"], {}), hierarchy, hidden, k)
            )
    return {
        "poll_id": str(poll.id),
        "k": k,
        "areas": area_rows,
        "questions": questions,
        "weighting": {
            wijk: weighting_summary(result)
            for wijk, result in weights.items()
            if wijk not in hidden
        },
    }


def latest_margins(session: Session, municipality_code: str) -> dict[str, dict[str, Any]]:
    year = session.scalar(
        sa.select(sa.func.max(AreaMargins.year)).where(
            AreaMargins.municipality_code == municipality_code
        )
    )
    if year is None:
        return {}
    rows = session.scalars(
        sa.select(AreaMargins).where(
            AreaMargins.municipality_code == municipality_code, AreaMargins.year == year
        )
    )
    return {r.code: {"name": r.name, "sex": r.sex, "age": r.age} for r in rows}


def options_of(q: dict[str, Any]) -> list[str]:
    if q["type"] == "likert5":
        return [str(v) for v in range(1, 6)] + (["dont_know"] if q.get("dont_know") else [])
    if q["type"] == "rating10":
        return [str(v) for v in range(0, 11)] + (["dont_know"] if q.get("dont_know") else [])
    return [o["id"] for o in q["options"]]


def question_table(
    q: dict[str, Any], base: dict, chosen: dict, areas: list[str]
) -> suppression.Table:
    return suppression.Table(
        q["id"],
        q["type"] in EXCLUSIVE,
        options_of(q),
        {
            code: suppression.Row(
                sum(base.get(code, {}).values()), _per_option(chosen.get(code, {}))
            )
            for code in areas
        },
    )


def visible_count(n: int, k: int) -> int | None:
    """A count shown beside results: 0 or at least k, never a small group."""
    return n if n == 0 or n >= k else None


def question_results(
    q: dict[str, Any],
    safe: suppression.SuppressedTable,
    base: dict,
    chosen: dict,
    areas: list[str],
    weights: dict[str, weighting.RakeResult],
) -> dict[str, Any]:
    options = list(safe.options)
    per_area = {}
    for code in areas:
        row = safe.rows[code]
        if row.total is None:
            per_area[code] = {"suppressed": True}
            continue
        shares = _weighted(code, base, chosen, weights, options)
        per_area[code] = {
            "respondents": row.total,
            "effective_n": round(shares.effective_n, 1) if shares else None,
            "options": [
                {
                    "option": opt,
                    "count": row.counts.get(opt),
                    "percent": (
                        round(100 * row.counts[opt] / row.total, 1)
                        if row.counts.get(opt) is not None and row.total
                        else None
                    ),
                    **_weighted_figures(shares, opt, row.counts.get(opt) is None),
                }
                for opt in options
            ],
            **({"mean": _mean(row.counts, row.total)} if q["type"] in SCALES else {}),
        }
    return {
        "id": q["id"],
        "type": q["type"],
        "text": q["text"],
        "options": options,
        "areas": per_area,
    }


def _per_option(cells: dict[tuple[weighting.Cell, str], int]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for (_, option), n in cells.items():
        out[option] += n
    return dict(out)


def _weights_for(
    code: str, weights: dict[str, weighting.RakeResult]
) -> dict[weighting.Cell, float] | None:
    """A buurt uses its wijk's weights; the gemeente is handled by combining wijken."""
    wijk = code if code.startswith("WK") else parent_of(code) if code.startswith("BU") else None
    result = weights.get(wijk) if wijk else None
    return result.weights if result else None


def _weighted(
    code: str,
    base: dict,
    chosen: dict,
    weights: dict[str, weighting.RakeResult],
    options: list[str],
) -> weighting.Shares | None:
    if code.startswith("GM"):
        return _gemeente_shares(code, base, chosen, weights, options)
    cell_weights = _weights_for(code, weights)
    cells = base.get(code, {})
    if not cell_weights or any(c not in cell_weights for c in cells):
        return None
    return weighting.weighted_share(chosen.get(code, {}), cell_weights, base=cells, options=options)


def _gemeente_shares(
    code: str,
    base: dict,
    chosen: dict,
    weights: dict[str, weighting.RakeResult],
    options: list[str],
) -> weighting.Shares | None:
    """Wijk by wijk: each wijk's respondents stand for its 15+ population."""
    combined_counts: dict[tuple[Any, str], int] = {}
    combined_base: dict[Any, int] = {}
    combined_weights: dict[Any, float] = {}
    for wijk, result in weights.items():
        if not wijk.startswith("WK" + code[2:6]) or result.population_scale is None:
            return None
        for cell, n in base.get(wijk, {}).items():
            key = (wijk, cell)
            if cell not in result.weights:
                return None
            combined_base[key] = n
            combined_weights[key] = result.weights[cell] * result.population_scale
        for (cell, opt), n in chosen.get(wijk, {}).items():
            combined_counts[((wijk, cell), opt)] = n
    if not combined_base:
        return None
    return weighting.weighted_share(
        combined_counts, combined_weights, base=combined_base, options=options
    )


def _weighted_figures(shares: weighting.Shares | None, option: str, hidden: bool) -> dict[str, Any]:
    if shares is None or hidden:
        return {"weighted_percent": None, "ci_low": None, "ci_high": None}
    share = next((s for s in shares.options if s.option == option), None)
    if share is None or share.weighted_percent is None:
        return {"weighted_percent": None, "ci_low": None, "ci_high": None}
    return {
        "weighted_percent": round(share.weighted_percent, 1),
        "ci_low": round(share.ci_low, 1),
        "ci_high": round(share.ci_high, 1),
    }


def _mean(counts: dict[str, int | None], total: int) -> float | None:
    """Mean of the numeric answers, when none of their counts is hidden."""
    numeric = {opt: n for opt, n in counts.items() if opt != "dont_know"}
    if any(n is None for n in numeric.values()):
        return None
    n = sum(numeric.values())
    return round(sum(int(opt) * c for opt, c in numeric.items()) / n, 2) if n else None


def weighting_summary(result: weighting.RakeResult) -> dict[str, Any]:
    return {
        "method": result.method,
        "converged": result.converged,
        "iterations": result.iterations,
        "max_margin_error": round(result.max_margin_error, 8),
        "trimmed": result.trimmed,
        "effective_n": round(result.effective_n, 1),
        "dimensions": list(result.dimensions),
        "notes": list(result.notes),
    }


def open_answers(
    session: Session,
    poll: Poll,
    q: dict[str, Any],
    base: dict,
    hierarchy: suppression.Hierarchy,
    hidden: set[str],
    k: int,
) -> dict[str, Any]:
    """Open answers per wijk, only where at least k respondents answered; shuffled, no times."""
    texts: dict[str, list[str]] = defaultdict(list)
    for wijk, text in session.execute(
        sa.select(OpenText.wijk_code, OpenText.text).where(
            OpenText.poll_id == poll.id, OpenText.question_id == q["id"]
        )
    ):
        texts[wijk].append(text)
    per_area = {}
    for wijk, items in sorted(texts.items()):
        allowed = wijk not in hidden and suppression.open_texts_allowed(len(items), k)
        per_area[wijk] = (
            {"texts": suppression.shuffle_texts(items, f"{poll.id}:{q['id']}")}
            if allowed
            else {"suppressed": True}
        )
    return {"id": q["id"], "type": q["type"], "text": q["text"], "areas": per_area}
