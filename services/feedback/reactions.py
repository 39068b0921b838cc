"""Residents' reactions to published feedback ("was this useful?" and an optional comment), and
what staff may see of them.

One reaction per resident per feedback; reacting again replaces it. The resident is stored only
as ``HMAC-SHA256(secret, resident id)`` — one key per resident, not per feedback, so
``resident_left`` can delete every reaction of theirs with one statement; the secret lives in
config, not in the database.

Staff see counts per wijk and buurt under the small-cell rule: an area with fewer than k
reactions is hidden, and where exactly one area under a parent is hidden, the next-smallest
sibling is hidden too (otherwise parent − shown siblings gives it away). Under a hidden wijk
every buurt is hidden (their sum would be the wijk). Comments are shown only for wijken with at
least k reactions that are not hidden, shuffled, without time or resident.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

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
    return session.execute(
        sa.delete(Reaction).where(Reaction.reactor_key == reactor_key(secret, resident_id))
    ).rowcount


# --- what staff see ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AreaCount:
    code: str
    parent: str | None
    n: int
    useful: int


def hidden_areas(areas: list[AreaCount], k: int, *, total_shown: bool) -> set[str]:
    """The codes to hide: primary (n < k), secondary within each parent, and the buurten of a
    hidden wijk. Pure; ``total_shown`` says whether the gemeente's total is shown."""
    hidden = {a.code for a in areas if a.n < k}
    wijken = [a for a in areas if a.code.startswith("WK")]
    if total_shown:
        hidden |= _secondary(wijken, hidden)
    else:
        hidden |= {a.code for a in wijken}
    buurten_by_wijk: dict[str | None, list[AreaCount]] = defaultdict(list)
    for a in areas:
        if a.code.startswith("BU"):
            buurten_by_wijk[a.parent].append(a)
    for wijk, buurten in buurten_by_wijk.items():
        if wijk in hidden or wijk is None:
            hidden |= {b.code for b in buurten}
        else:
            hidden |= _secondary(buurten, hidden)
    return hidden


def _secondary(siblings: list[AreaCount], hidden: set[str]) -> set[str]:
    """If exactly one sibling is hidden, hide the smallest shown one too."""
    if sum(1 for s in siblings if s.code in hidden) != 1:
        return set()
    shown = sorted((s for s in siblings if s.code not in hidden), key=lambda s: (s.n, s.code))
    return {shown[0].code} if shown else set()


def share(useful: int, n: int) -> float | None:
    return round(useful / n, 3) if n else None


def summarize(
    rows: list[tuple[str | None, str | None, bool, str | None]], k: int
) -> dict[str, Any]:
    """``rows`` = (wijk, buurt, useful, comment) per reaction → the staff view. Pure."""
    n = len(rows)
    useful = sum(1 for r in rows if r[2])
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    parents: dict[str, str | None] = {}
    comments: dict[str, list[str]] = defaultdict(list)
    for wijk, buurt, is_useful, comment in rows:
        for code, parent in ((wijk, None), (buurt, wijk)):
            if code:
                per[code][0] += 1
                per[code][1] += int(is_useful)
                parents[code] = parent
        if wijk and comment:
            comments[wijk].append(comment)
    areas = [AreaCount(code, parents[code], c[0], c[1]) for code, c in per.items()]
    total_shown = n >= k
    hidden = hidden_areas(areas, k, total_shown=total_shown)
    per_area = []
    for a in sorted(areas, key=lambda a: (len(a.code), a.code)):
        level = "wijk" if a.code.startswith("WK") else "buurt"
        if a.code in hidden:
            per_area.append({"area_code": a.code, "level": level, "suppressed": True})
        else:
            per_area.append(
                {
                    "area_code": a.code,
                    "level": level,
                    "n": a.n,
                    "useful": a.useful,
                    "share_useful": share(a.useful, a.n),
                }
            )
    shown_comments = [
        {"area_code": wijk, "text": text}
        for wijk, texts in comments.items()
        if wijk not in hidden and per[wijk][0] >= k
        for text in texts
    ]
    _shuffle(shown_comments)
    return {
        "n": n,
        "suppressed": not total_shown,
        "useful": useful if total_shown else None,
        "not_useful": n - useful if total_shown else None,
        "share_useful": share(useful, n) if total_shown else None,
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
    return summarize([tuple(r) for r in rows], k)
