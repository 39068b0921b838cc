"""Figures released in versions, safe against differencing (docs/suppression.md, "Results over
time" and "Reactions over time").

Whatever is read again while its counts change — an open poll's results, the reactions to a
feedback item — is published in versions, and the rule is one for all of them: the first
version is suppressed on its own and fixes k; every later version hides at least every cell
the previous one hid; and a new version is released only when the counts added since the
previous version, as a table of their own with every relation, pass the same protection test
with that pattern. Counts that went down since (``Shrunk``) release nothing: the change is then
not a table of additions, and the reader would read the removal off the two versions.

Two pieces are shared: ``minus`` (a table minus a stored ``snapshot`` of it, cell by cell,
``Shrunk`` when anything went down) and ``next_pattern`` (the decision above, over any system
that can be suppressed with a given hidden pattern: a poll's results, ``services/responses``,
or one table with a hierarchy, ``TableSystem``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from services.common.suppression.model import Hierarchy, Row, Table
from services.common.suppression.rules import suppress_poll

Key = tuple[str, str, str | None]  # (table id, area, option or None for the total)


class Shrunk(Exception):
    """A count went down since the last released version: the change is no table of additions,
    so no later version can be proved safe against it; the previous one is served."""


def snapshot(table: Table) -> dict[str, list[int]]:
    """A table's counts as stored with a released version: area → [total, *option counts]."""
    return {
        code: [row.total, *(row.counts.get(o, 0) for o in table.options)]
        for code, row in table.rows.items()
    }


def minus(table: Table, before: Mapping[str, Sequence[int]]) -> Table:
    """The counts added to ``table`` since ``before`` (a ``snapshot``), as a table of their own
    with the same relations. ``Shrunk`` when any count went down or an area of ``before`` is
    gone. A stored row shorter than the table (released before its last options existed)
    counted none of them."""
    for code in before:
        if code not in table.rows and any(before[code]):
            raise Shrunk(f"{table.question_id} {code}: gone since the last release")
    rows = {}
    for code, row in table.rows.items():
        was = list(before.get(code) or [])
        was += [0] * (1 + len(table.options) - len(was))
        counts = {o: row.counts.get(o, 0) - was[1 + i] for i, o in enumerate(table.options)}
        if row.total < was[0] or any(v < 0 for v in counts.values()):
            raise Shrunk(f"{table.question_id} {code}: fewer than in the last release")
        rows[code] = Row(row.total - was[0], counts)
    return replace(table, rows=rows)  # every other field (rank, whole, …) as it was


class Versioned(Protocol):
    """What ``next_pattern`` needs of a system: suppress it with cells forced hidden (or, with
    ``rules=False``, exactly those and what the audit adds), and name the cells a result hides."""

    def suppress(self, k: int, hidden: Iterable[Key] = (), *, rules: bool = True) -> Any: ...

    def hidden_cells(self, safe: Any) -> list[Key]: ...


def next_pattern(
    now: Versioned,
    added: Versioned | None,
    k: int,
    previous_hidden: Iterable[Sequence[Any]] = (),
    *,
    final: bool = False,
    forced: Iterable[Key] = (),
) -> tuple[Any, list[Key]] | None:
    """The suppressed current figures and the cells they hide, or None when no new version may
    be released (serve the previous one).

    ``added`` is None for a first version: ``now`` suppressed on its own. Otherwise ``added``
    is the system of the counts added since the previous version (``minus``): suppressed with
    the previous pattern (and ``forced``), it must need nothing more hidden; then that pattern
    on ``now`` is safe as the sum of safe parts, and the audit checks it once more (anything it
    hid too would be hidden from then on). ``final``: the last version (a poll closed) is
    released whatever the additions need, hiding what they need."""
    forced = list(forced)
    if added is None:
        safe = now.suppress(k, forced)
        return safe, now.hidden_cells(safe)
    previous = [tuple(h) for h in previous_hidden]
    hidden = added.hidden_cells(added.suppress(k, [*previous, *forced]))
    if not final and set(hidden) != set(previous):
        return None
    safe = now.suppress(k, hidden, rules=False)
    return safe, now.hidden_cells(safe)


@dataclass
class TableSystem:
    """One table with a hierarchy (reactions per area: useful / not useful) as a system for
    ``next_pattern``: the table is suppressed as a poll's respondents with their composition
    (its cells are ``("*", area, option)``), ``at_least_one`` its areas listed only because
    something was counted there."""

    table: Table
    hierarchy: Hierarchy
    at_least_one: list[str] = field(default_factory=list)

    def suppress(self, k: int, hidden: Iterable[Key] = (), *, rules: bool = True) -> Any:
        return suppress_poll(
            [],
            self.hierarchy,
            k,
            respondents=self.table,
            at_least_one=self.at_least_one,
            hidden=hidden,
            rules=rules,
        )

    def hidden_cells(self, safe: Any) -> list[Key]:
        reasons = safe.respondents.reasons
        return sorted((("*", area, option) for area, option in reasons), key=_order)

    def snapshot(self) -> dict[str, list[int]]:
        return snapshot(self.table)

    def minus(
        self, before: Mapping[str, Sequence[int]], at_least_one_before: Iterable[str]
    ) -> TableSystem:
        """The counts added since ``before``; the areas newly listed since have at least one."""
        earlier = set(at_least_one_before)
        return TableSystem(
            minus(self.table, before),
            self.hierarchy,
            [c for c in self.at_least_one if c not in earlier],
        )


def _order(key: Key) -> tuple[str, str, str]:
    return (key[0], key[1], key[2] or "")
