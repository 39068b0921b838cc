"""Each municipality's minimum cell size (k) and name, as panel announces them
(``municipality_changed``): a results read needs nothing from panel.

A municipality responses has not heard of yet (created before the event existed, or the event
still on its way) is asked of panel once and remembered; a later event replaces what was asked.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.responses.models import Municipality

ASKED = datetime(1970, 1, 1, tzinfo=UTC)  # what was asked counts as older than any event
# panel's answer for a municipality not known here: (name, min_cell_size).
AskPanel = Callable[[str], tuple[str, int]]


def k_and_name(session: Session, code: str, ask_panel: AskPanel) -> tuple[int, str]:
    found = session.get(Municipality, code)
    if found is not None:
        return found.min_cell_size, found.name
    name, k = ask_panel(code)
    remember_asked(session, code, name, k)
    return k, name


def apply_changed(session: Session, payload: dict[str, Any]) -> None:
    """A ``municipality_changed`` event; an older one than what is held changes nothing."""
    values = {
        "name": payload["name"],
        "min_cell_size": payload["min_cell_size"],
        "changed_at": datetime.fromisoformat(payload["changed_at"]),
    }
    stmt = insert(Municipality).values(code=payload["municipality_code"], **values)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["code"],
            set_=values,
            where=Municipality.changed_at <= stmt.excluded.changed_at,
        )
    )


def remember_asked(session: Session, code: str, name: str, min_cell_size: int) -> None:
    """What panel answered, unless an event got here first (events are newer or as new)."""
    session.execute(
        insert(Municipality)
        .values(code=code, name=name, min_cell_size=min_cell_size, changed_at=ASKED)
        .on_conflict_do_nothing(index_elements=["code"])
    )
