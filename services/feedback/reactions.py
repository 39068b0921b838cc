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

Staff read the figures while reactions come in, so they are released in versions by the rule
of results over time (``suppression.versions``; docs/suppression.md, "Reactions over time"): a
read serves the last released version (``ReactionRelease``) until the reactions since pass the
protection test as a table of their own; a replaced or erased reaction (a count that went down)
holds the version until new reactions make up for it. The comments served are those of the
reactions in the version, as they were then (each reaction's ``released_*`` columns). The
loop figures (``figures.py``) count reactions only from these released versions, never live.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.common import suppression
from services.common.db import rowcount
from services.common.suppression import versions
from services.feedback.lifecycle import get_feedback, get_published
from services.feedback.models import Reaction, ReactionRelease

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


Rows = list[tuple[str | None, str | None, bool, str | None]]  # (wijk, buurt, useful, comment)


def reaction_table(
    rows: Rows, municipality_code: str
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


def figures(safe: suppression.SuppressedTable, municipality_code: str) -> dict[str, Any]:
    """The staff view's figures (without comments) from the suppressed table."""
    total = safe.rows[municipality_code]
    per_area: list[dict[str, Any]] = []
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
    useful = total.counts[USEFUL]
    return {
        "n": total.total,
        "suppressed": total.total is None,
        "useful": useful,
        "not_useful": total.counts[NOT_USEFUL],
        "share_useful": share(useful, total.total) if useful is not None and total.total else None,
        "per_area": per_area,
    }


def with_comments(document: dict[str, Any], comments: list[tuple[str | None, str | None]]) -> dict:
    """The served view: a released version's figures and the comments (wijk, text) of the
    reactions in it, for the wijken that version shows with at least one reaction (so at
    least k), shuffled, without time or resident."""
    shown = {
        a["area_code"]
        for a in document["per_area"]
        if a["level"] == "wijk" and not a.get("suppressed") and a.get("n")
    }
    listed = [{"area_code": w, "text": t} for w, t in comments if w in shown and t]
    _shuffle(listed)
    return {**document, "comments": listed}


@dataclass
class Version:
    """A released version of one feedback item's reaction figures and what the next one must
    respect (``ReactionRelease``)."""

    seq: int
    k: int
    counts: dict[str, list[int]]
    hidden: list[tuple[str, str, str | None]]
    at_least_one: list[str]
    document: dict[str, Any]


def next_version(
    rows: Rows, k: int, previous: Version | None, municipality_code: str = "GM0000"
) -> Version | None:
    """The next version of the reaction figures, or None when the previous one must be served
    (docs/suppression.md, "Reactions over time"). Pure.

    The rule of results over time (``suppression.versions``): the first version fixes k; a
    later one hides at least what the previous one hid, and the reactions added since, as a
    table of their own with every relation, pass the protection test with that pattern. A
    count that went down since the previous version — a reaction replaced (useful ↔ not
    useful, or another area), a resident who left — is no table of additions: the two versions
    would show the removal, a figure of one resident, so the previous version is served until
    the counts since have made up for it and pass the test."""
    table, hierarchy = reaction_table(rows, municipality_code)
    # Areas are listed because someone there reacted: a reader knows each has at least one.
    listed = [c for c in table.rows if c != municipality_code]
    now = versions.TableSystem(table, hierarchy, listed)
    added = None
    if previous is not None:
        k = previous.k
        try:
            added = now.minus(previous.counts, previous.at_least_one)
        except versions.Shrunk:
            return None
    released = versions.next_pattern(now, added, k, previous.hidden if previous else ())
    if released is None:
        return None
    safe, hidden = released
    seq = 1 if previous is None else previous.seq + 1
    document = figures(safe.respondents, municipality_code)
    document["version"] = {"seq": seq}
    return Version(seq, k, now.snapshot(), hidden, listed, document)


def summarize(rows: Rows, k: int, municipality_code: str = "GM0000") -> dict[str, Any]:
    """``rows`` = (wijk, buurt, useful, comment) per reaction → the staff view of a first
    version. Pure."""
    first = next_version(rows, k, None, municipality_code)
    assert first is not None  # a first version is always released
    return with_comments(first.document, [(w, c) for w, _, _, c in rows])


def _version_of(row: ReactionRelease | None) -> Version | None:
    if row is None:
        return None
    return Version(
        row.seq,
        row.k,
        row.counts,
        [(t, a, o) for t, a, o in row.hidden],
        list(row.at_least_one),
        row.document,
    )


def reactions_for_staff(
    session: Session, *, municipality_code: str, poll_id: str, k: int
) -> dict[str, Any]:
    """The served version of a feedback item's reaction figures, releasing a new one when the
    reactions changed and the rule allows. The feedback row is locked, so two readers release
    one version, not two."""
    feedback = get_feedback(
        session, municipality_code=municipality_code, poll_id=poll_id, lock=True
    )
    reactions = session.scalars(
        sa.select(Reaction).where(Reaction.feedback_id == feedback.id)
    ).all()
    stored = session.get(ReactionRelease, feedback.id)
    previous = _version_of(stored)
    rows = [(r.wijk_code, r.buurt_code, r.useful, r.comment) for r in reactions]
    pending = (
        previous is None
        or any(
            not r.in_release or r.released_wijk != r.wijk_code or r.released_comment != r.comment
            for r in reactions
        )
        or versions.snapshot(reaction_table(rows, municipality_code)[0]) != previous.counts
    )
    new = next_version(rows, k, previous, municipality_code) if pending else None
    if new is not None:
        values = {
            "seq": new.seq,
            "k": new.k,
            "released_at": datetime.now().astimezone(),
            "counts": new.counts,
            "hidden": [list(h) for h in new.hidden],
            "at_least_one": new.at_least_one,
            "document": new.document,
        }
        session.execute(
            insert(ReactionRelease)
            .values(feedback_id=feedback.id, **values)
            .on_conflict_do_update(index_elements=["feedback_id"], set_=values)
        )
        # The reactions as this version counted them: one changed or added since the read
        # (another transaction) keeps its state until a version includes it as it is then.
        table = Reaction.__table__
        assert isinstance(table, sa.Table)
        if reactions:
            session.connection().execute(
                sa.update(table)
                .where(
                    table.c.feedback_id == feedback.id,
                    table.c.reactor_key == sa.bindparam("b_key"),
                )
                .values(
                    in_release=True,
                    released_wijk=sa.bindparam("b_wijk"),
                    released_comment=sa.bindparam("b_comment"),
                ),
                [
                    {"b_key": r.reactor_key, "b_wijk": r.wijk_code, "b_comment": r.comment}
                    for r in reactions
                ],
            )
        document = new.document
        comments = [(r.wijk_code, r.comment) for r in reactions]
    else:
        assert stored is not None  # a first version is always released
        document = stored.document
        comments = [(r.released_wijk, r.released_comment) for r in reactions if r.in_release]
    return with_comments(document, comments)
