"""Paper questionnaires: print runs and the codes on the forms (issue 14, docs/api.md).

Why not the letter codes: a letter code (``invitations.py``) is made per wijk, not per buurt,
kept only as a hash, and spent when its holder joins the panel — after that it belongs to no
one. It cannot be printed again, and it would not say in which buurt a paper answer counts. So a
print run makes codes of its own: staff choose a poll and one buurt of its audience and how many
forms (1..``MAX_RUN``); each form gets a code in the letter codes' format (12 characters of
Crockford base32, grouped by four) that names that poll and that buurt. The municipality hands
the forms out in that buurt (a mailing to addresses there, the community centre, a home visit);
whoever fills one in is that form's participant.

A code is used once: keying a form in marks it (``key_in``, row-locked, so two data-entry
clerks keying the same form at once cannot both succeed); a second entry is refused with the
moment and person of the first. When the answer then cannot be queued, ``release`` takes the
mark back, so the form can be keyed in again.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.common.errors import Conflict, NotFound, invalid
from services.panel.area_store import current_year
from services.panel.invitations import new_code, normalise_code
from services.panel.models import Area, PaperCode, PaperRun

MAX_RUN = 500


def _poll_uuid(poll_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(poll_id))
    except ValueError:
        raise NotFound("no such poll") from None


def create_run(
    session: Session,
    *,
    municipality_code: str,
    poll_id: str,
    buurt_code: str,
    size: int,
    now: datetime,
    created_by: str | None = None,
) -> dict[str, Any]:
    """A print run of ``size`` forms for ``buurt_code`` (a buurt of the municipality; the
    gateway checked that it is in the poll's audience)."""
    if not 1 <= size <= MAX_RUN:
        raise invalid("count", "out_of_range", f"a print run holds 1 to {MAX_RUN} forms")
    year = current_year(session, municipality_code)
    buurt = session.scalars(
        sa.select(Area).where(
            Area.municipality_code == municipality_code,
            Area.year == year,
            Area.level == "buurt",
            Area.code == buurt_code,
        )
    ).first()
    if buurt is None or not buurt.parent_code:
        raise invalid("buurt_code", "unknown_area", f"{buurt_code} is not a buurt of ours")
    run = PaperRun(
        id=uuid.uuid4(),
        municipality_code=municipality_code,
        poll_id=_poll_uuid(poll_id),
        wijk_code=buurt.parent_code,
        buurt_code=buurt.code,
        size=size,
        created_by=created_by,
        created_at=now,
    )
    session.add(run)
    session.flush()
    session.execute(
        sa.insert(PaperCode),
        [{"code": new_code(), "run_id": run.id, "position": i} for i in range(1, size + 1)],
    )
    return get_run(session, municipality_code=municipality_code, poll_id=poll_id, run_id=run.id)


def _run_view(run: PaperRun, keyed: int) -> dict[str, Any]:
    return {
        "run_id": str(run.id),
        "poll_id": str(run.poll_id),
        "wijk_code": run.wijk_code,
        "buurt_code": run.buurt_code,
        "size": run.size,
        "keyed": keyed,
        "created_by": run.created_by,
        "created_at": run.created_at.isoformat(),
    }


def list_runs(session: Session, *, municipality_code: str, poll_id: str) -> list[dict[str, Any]]:
    keyed = sa.func.count(PaperCode.keyed_at)
    rows = session.execute(
        sa.select(PaperRun, keyed)
        .join(PaperCode, PaperCode.run_id == PaperRun.id)
        .where(
            PaperRun.municipality_code == municipality_code,
            PaperRun.poll_id == _poll_uuid(poll_id),
        )
        .group_by(PaperRun.id)
        .order_by(PaperRun.created_at, PaperRun.id)
    ).all()
    return [_run_view(run, n) for run, n in rows]


def get_run(
    session: Session, *, municipality_code: str, poll_id: str, run_id: Any
) -> dict[str, Any]:
    """A run with its codes, in print order (another municipality's or poll's: not found)."""
    try:
        wanted = uuid.UUID(str(run_id))
    except ValueError:
        raise NotFound("no such print run") from None
    run = session.get(PaperRun, wanted)
    if (
        run is None
        or run.municipality_code != municipality_code
        or run.poll_id != _poll_uuid(poll_id)
    ):
        raise NotFound("no such print run")
    codes = session.scalars(
        sa.select(PaperCode).where(PaperCode.run_id == run.id).order_by(PaperCode.position)
    ).all()
    return {
        **_run_view(run, sum(1 for c in codes if c.keyed_at)),
        "forms": [
            {
                "code": c.code,
                "keyed_at": c.keyed_at.isoformat() if c.keyed_at else None,
            }
            for c in codes
        ],
    }


def _find(session: Session, municipality_code: str, code: str, *, lock: bool) -> Any:
    query = (
        sa.select(PaperCode, PaperRun)
        .join(PaperRun, PaperRun.id == PaperCode.run_id)
        .where(PaperCode.code == normalise_code(code))
    )
    if lock:
        query = query.with_for_update(of=PaperCode)
    found = session.execute(query).first()
    if found is None or found[1].municipality_code != municipality_code:
        # Another municipality's code looks like one that does not exist.
        raise invalid(
            "code",
            "unknown_code",
            "this code is not on any of our paper forms: check the 12 characters on the form",
        )
    return found


def look_up(
    session: Session,
    *,
    municipality_code: str,
    poll_id: str,
    code: str,
    refuse_keyed: bool = False,
) -> dict[str, Any]:
    """What a code stands for: its poll, buurt and wijk, and when it was keyed in (or None;
    with ``refuse_keyed`` a form keyed in already is refused as ``key_in`` refuses it). A code
    of another of our polls is refused, naming that poll's id."""
    paper, run = _find(session, municipality_code, code, lock=False)
    view = _code_view(paper, run, poll_id)
    if refuse_keyed and paper.keyed_at is not None:
        raise _keyed_already(paper)
    return view


def _keyed_already(paper: PaperCode) -> Conflict:
    assert paper.keyed_at is not None  # only called for a keyed form
    moment = paper.keyed_at.isoformat()
    return Conflict(
        f"form {paper.code} was keyed in already, at {moment}",
        [
            {
                "field": "code",
                "code": "already_keyed",
                "message": f"keyed in at {moment}",
                "keyed_at": moment,
            }
        ],
    )


def _code_view(paper: PaperCode, run: PaperRun, poll_id: str) -> dict[str, Any]:
    if run.poll_id != _poll_uuid(poll_id):
        raise invalid(
            "code",
            "other_poll",
            f"this code is on a form of another poll ({run.poll_id}): key it in there",
        )
    return {
        "code": paper.code,
        "poll_id": str(run.poll_id),
        "run_id": str(run.id),
        "wijk_code": run.wijk_code,
        "buurt_code": run.buurt_code,
        "keyed_at": paper.keyed_at.isoformat() if paper.keyed_at else None,
        "keyed_by": paper.keyed_by,
        "receipt_id": str(paper.receipt_id) if paper.receipt_id else None,
    }


def key_in(
    session: Session,
    *,
    municipality_code: str,
    poll_id: str,
    code: str,
    now: datetime,
    keyed_by: str | None,
    receipt_id: str | None = None,
) -> dict[str, Any]:
    """Mark the form keyed in, once, with the receipt id its answer will be queued under: a
    second entry is a Conflict saying when the first was."""
    paper, run = _find(session, municipality_code, code, lock=True)
    view = _code_view(paper, run, poll_id)
    if paper.keyed_at is not None:
        raise _keyed_already(paper)
    paper.keyed_at, paper.keyed_by = now, keyed_by
    paper.receipt_id = uuid.UUID(receipt_id) if receipt_id else None
    return {**view, "keyed_at": now.isoformat(), "keyed_by": keyed_by, "receipt_id": receipt_id}


def release(session: Session, *, municipality_code: str, poll_id: str, code: str) -> None:
    """Take a keying back (its answer could not be queued): the form may be keyed in again."""
    paper, run = _find(session, municipality_code, code, lock=True)
    _code_view(paper, run, poll_id)
    paper.keyed_at, paper.keyed_by, paper.receipt_id = None, None, None


def keyed_count(session: Session, *, municipality_code: str) -> int:
    """Forms keyed in, in all of the municipality's polls (the demo's summary)."""
    return int(
        session.scalar(
            sa.select(sa.func.count(PaperCode.keyed_at))
            .join(PaperRun, PaperRun.id == PaperCode.run_id)
            .where(PaperRun.municipality_code == municipality_code)
        )
        or 0
    )
