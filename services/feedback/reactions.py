"""Residents' reactions to published feedback ("was this useful?" and an optional comment), and
what staff may see of them.

One reaction per resident per feedback; reacting again replaces it. The resident is stored only
as ``HMAC-SHA256(secret, resident id)`` — one key per resident, not per feedback, so
``resident_left`` can delete every reaction of theirs with one statement; the secret lives in
config, not in the database.

Staff see, for the gemeente and per wijk and buurt, the number of reactions and how many found
the feedback useful (and not useful), through the one suppression mechanism every published
figure goes through (services/common/suppression, docs/suppression.md): a table with the
options useful / not useful, gemeente ⊃ wijken ⊃ buurten, small cells hidden and whatever would
give them away by subtraction or bounds. Reactions without a wijk or buurt are a child area of
their own that is never shown (the reader is modelled as knowing it: the safe side). Comments
are shown only for wijken whose count is shown (so at least k), shuffled, without time or
resident.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.common import suppression
from services.common.db import rowcount
from services.feedback.lifecycle import get_feedback, get_published
from services.feedback.models import Reaction

_shuffle = random.SystemRandom().shuffle


def reactor_key(secret: bytes, resident_id: str) -> str:
    return hmac.new(secret, str(resident_id).encode(), hashlib.sha256).hexdigest()


def react(
    session: Session,
    *,
    municipality_code: str,
    feedback_id: str,
    resident_id: str,
    buurt_code: str | None,
    wijk_code: str | None,
    useful: bool,
    comment: str | None,
    secret: bytes,
) -> dict[str, Any]:
    feedback = get_published(session, municipality_code=municipality_code, feedback_id=feedback_id)
    values = {
        "municipality_code": municipality_code,
        "wijk_code": wijk_code,
        "buurt_code": buurt_code,
        "useful": useful,
        "comment": comment,
    }
    stmt = insert(Reaction).values(
        feedback_id=feedback.id, reactor_key=reactor_key(secret, resident_id), **values
    )
    session.execute(
        stmt.on_conflict_do_update(index_elements=["feedback_id", "reactor_key"], set_=values)
    )
    return {"useful": useful, "comment": comment}


def my_reaction(
    session: Session, *, feedback_id: Any, resident_id: str, secret: bytes
) -> dict[str, Any] | None:
    found = session.get(Reaction, (feedback_id, reactor_key(secret, resident_id)))
    return {"useful": found.useful, "comment": found.comment} if found else None


def erase_resident(session: Session, *, resident_id: str, secret: bytes) -> int:
    return rowcount(
        session.execute(
            sa.delete(Reaction).where(Reaction.reactor_key == reactor_key(secret, resident_id))
        )
    )


# --- what staff see ---------------------------------------------------------------------------

USEFUL, NOT_USEFUL = "useful", "not_useful"
UNKNOWN_AREA = "?"  # suffix of the never-shown child area of reactions without a wijk/buurt


def share(useful: int, n: int) -> float | None:
    return round(useful / n, 3) if n else None


def reaction_table(
    rows: list[tuple[str | None, str | None, bool, str | None]], municipality_code: str
) -> tuple[suppression.Table, suppression.Hierarchy]:
    """Reactions per area as a suppression table (useful / not useful), exact over the
    hierarchy: a reaction without a wijk or buurt counts in a never-shown child area."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    parent: dict[str, str | None] = {municipality_code: None}
    for wijk, buurt, is_useful, _ in rows:
        w = wijk or municipality_code + UNKNOWN_AREA
        b = buurt or w + UNKNOWN_AREA
        parent.setdefault(w, municipality_code)
        parent.setdefault(b, w)
        for code in (municipality_code, w, b):
            counts[code][0 if is_useful else 1] += 1
    counts.setdefault(municipality_code, [0, 0])
    table = suppression.Table(
        "reactions",
        True,
        (USEFUL, NOT_USEFUL),
        {
            code: suppression.Row(u + nu, {USEFUL: u, NOT_USEFUL: nu})
            for code, (u, nu) in sorted(counts.items(), key=lambda kv: (len(kv[0]), kv[0]))
        },
    )
    return table, suppression.Hierarchy(parent)


def summarize(
    rows: list[tuple[str | None, str | None, bool, str | None]],
    k: int,
    municipality_code: str = "GM0000",
) -> dict[str, Any]:
    """``rows`` = (wijk, buurt, useful, comment) per reaction → the staff view. Pure."""
    table, hierarchy = reaction_table(rows, municipality_code)
    # Areas are listed because someone there reacted: a reader knows each has at least one.
    listed = [c for c in table.rows if c != municipality_code]
    safe = suppression.suppress(table, hierarchy, k, at_least_one=listed)
    total = safe.rows[municipality_code]
    per_area = []
    for code, row in safe.rows.items():
        if code == municipality_code or code.endswith(UNKNOWN_AREA):
            continue
        level = "wijk" if code.startswith("WK") else "buurt"
        if row.total is None:
            per_area.append({"area_code": code, "level": level, "suppressed": True})
            continue
        useful = row.counts[USEFUL]
        per_area.append(
            {
                "area_code": code,
                "level": level,
                "n": row.total,
                "useful": useful,
                "not_useful": row.counts[NOT_USEFUL],
                "share_useful": share(useful, row.total) if useful is not None else None,
            }
        )
    comments: dict[str, list[str]] = defaultdict(list)
    for wijk, _, _, comment in rows:
        if wijk and comment:
            comments[wijk].append(comment)
    shown_comments = [
        {"area_code": wijk, "text": text}
        for wijk, texts in comments.items()
        if safe.rows.get(wijk) and safe.rows[wijk].total
        for text in texts
    ]
    _shuffle(shown_comments)
    useful = total.counts[USEFUL]
    return {
        "n": total.total,
        "suppressed": total.total is None,
        "useful": useful,
        "not_useful": total.counts[NOT_USEFUL],
        "share_useful": share(useful, total.total) if useful is not None and total.total else None,
        "per_area": per_area,
        "comments": shown_comments,
    }


def reactions_for_staff(
    session: Session, *, municipality_code: str, poll_id: str, k: int
) -> dict[str, Any]:
    feedback = get_feedback(session, municipality_code=municipality_code, poll_id=poll_id)
    rows = session.execute(
        sa.select(Reaction.wijk_code, Reaction.buurt_code, Reaction.useful, Reaction.comment).where(
            Reaction.feedback_id == feedback.id
        )
    ).all()
    return summarize([(w, b, u, c) for w, b, u, c in rows], k, municipality_code)
