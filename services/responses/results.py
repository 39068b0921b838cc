"""Results of a poll, read from the counters only (never from raw responses): per question and
area (gemeente, wijken, buurten), counts and percentages, means for scales, weighted
percentages with 95% intervals (raking per wijk to its CBS margins, Kish effective n, Wilson),
response rates, and small-cell suppression so that no figure rests on fewer than k
respondents or can be derived from the figures shown.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.common.errors import NotFound
from services.responses import suppression, weighting
from services.responses.models import AreaMargins, Poll

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


OPEN_TEXTS_SHOWN = 100  # per area: a random sample when there are more (``total`` says how many)


@dataclass
class Aggregates:
    """What results are computed from: counters per area and stratum (age band, sex), summed
    over self-selection, and what goes beside them. ``read_aggregates`` reads them from the
    counter tables; the benchmark builds the same from the raw responses to check both agree."""

    base: dict[str, dict[str, dict[weighting.Cell, int]]]  # question ("*": all) → area → cell
    chosen: dict[str, dict[str, dict[tuple[weighting.Cell, str], int]]]  # … → (cell, option)
    self_selected: dict[str, int]  # area → self-selected respondents
    invited: dict[str, int]  # buurt → invited
    margins: dict[str, dict[str, Any]]  # area → CBS name and margins
    texts: dict[str, dict[str, tuple[int, list[str]]]]  # open question → wijk → (n, sample)


def compute(
    session: Session,
    *,
    poll_id: str,
    municipality_code: str,
    k: int,
) -> dict[str, Any]:
    poll = get_poll(session, poll_id, municipality_code)
    return build(poll, read_aggregates(session, poll), k)


COUNTS_SQL = """
SELECT question_id, option, area_code, age_band, sex, sum(n)::int FROM counts
WHERE poll_id = %(poll_id)s GROUP BY question_id, option, area_code, age_band, sex
"""
RESPONDENTS_SQL = """
SELECT question_id, area_code, age_band, sex, sum(n)::int,
       sum(n) FILTER (WHERE self_selected)::int
FROM respondents WHERE poll_id = %(poll_id)s GROUP BY question_id, area_code, age_band, sex
"""
# Open answers per wijk: how many, and a sample in id order (ids are random, so the sample does
# not depend on when a text came in); shuffled after.
TEXTS_SQL = """
SELECT question_id, wijk_code, total, text FROM (
    SELECT question_id, wijk_code, text, count(*) OVER w AS total,
           row_number() OVER (w ORDER BY id) AS rank
    FROM open_texts WHERE poll_id = %(poll_id)s
    WINDOW w AS (PARTITION BY question_id, wijk_code)
) t WHERE rank <= %(shown)s
"""


def read_aggregates(session: Session, poll: Poll) -> Aggregates:
    """Three queries over the counters and a sample of the open answers; plain DB-API cursors,
    because at a million responses the counters are ~10⁵ rows and ORM rows cost more than the
    query (see docs/benchmarks.md, results)."""
    cursor = session.connection().connection.dbapi_connection.cursor()
    params = {"poll_id": str(poll.id), "shown": OPEN_TEXTS_SHOWN}
    base: dict[str, dict[str, dict[weighting.Cell, int]]] = defaultdict(lambda: defaultdict(dict))
    self_selected: dict[str, int] = defaultdict(int)
    cursor.execute(RESPONDENTS_SQL, params)
    for qid, area, age, sex, n, selected in cursor.fetchall():
        base[qid][area][(age, sex)] = n
        if qid == "*" and selected:
            self_selected[area] += selected
    chosen: dict[str, dict[str, dict[tuple[weighting.Cell, str], int]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    cursor.execute(COUNTS_SQL, params)
    for qid, option, area, age, sex, n in cursor.fetchall():
        chosen[qid][area][((age, sex), option)] = n
    texts: dict[str, dict[str, tuple[int, list[str]]]] = defaultdict(dict)
    cursor.execute(TEXTS_SQL, params)
    for qid, wijk, total, text in cursor.fetchall():
        texts[qid].setdefault(wijk, (total, []))[1].append(text)
    cursor.execute("SELECT area_code, n FROM invited WHERE poll_id = %(poll_id)s", params)
    invited = dict(cursor.fetchall())
    cursor.close()
    return Aggregates(
        base=base,
        chosen=chosen,
        self_selected=dict(self_selected),
        invited=invited,
        margins=latest_margins(session, poll.municipality_code),
        texts=texts,
    )


def build(poll: Poll, data: Aggregates, k: int) -> dict[str, Any]:
    """The results document from the aggregates: suppression, weighting, figures."""
    base, chosen, margins = data.base, data.chosen, data.margins
    self_selected, invited = data.self_selected, data.invited
    everyone = base.get("*", {})
    areas = sorted(everyone, key=lambda c: (len(c), c))
    hierarchy = suppression.Hierarchy({c: parent_of(c) for c in areas})
    counted = [q for q in poll.definition["questions"] if q["type"] in COUNTED]
    tables = [
        question_table(q, base.get(q["id"], {}), chosen.get(q["id"], {}), areas) for q in counted
    ]
    # All questions at once, knowing who was asked what (show_if, required), so no figure leaks
    # between tables. safe.areas are hidden whole (respondents, response rate, every question);
    # a question can hide its own row in an area besides (safe.rows: a few skips, say), which
    # question_results shows as suppressed for that question only.
    safe = suppression.suppress_poll(
        tables,
        hierarchy,
        k,
        respondents={c: sum(everyone[c].values()) for c in areas},
        asked=suppression.asked_in(counted),
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
            questions.append(open_answers(poll, q, data.texts.get(q["id"], {}), hidden, k))
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
        if row.total is None:  # a hidden area, or this question's row only: nothing shown
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
    poll: Poll,
    q: dict[str, Any],
    texts: dict[str, tuple[int, list[str]]],
    hidden: set[str],
    k: int,
) -> dict[str, Any]:
    """Open answers per wijk, only where at least k respondents answered; shuffled, no times;
    at most ``OPEN_TEXTS_SHOWN`` of them, with the number there are."""
    per_area = {}
    for wijk, (total, items) in sorted(texts.items()):
        allowed = wijk not in hidden and suppression.open_texts_allowed(total, k)
        per_area[wijk] = (
            {"texts": suppression.shuffle_texts(items, f"{poll.id}:{q['id']}"), "total": total}
            if allowed
            else {"suppressed": True}
        )
    return {"id": q["id"], "type": q["type"], "text": q["text"], "areas": per_area}
