"""Small-cell suppression of results tables: primary and secondary (complementary) suppression.

Pure functions, standard library only. The rules are explained for municipal researchers in
docs/suppression.md; this module is their reference.

Model
-----
A results table for one question has one row per area (gemeente ⊃ wijk ⊃ buurt) and one column
per answer option, plus the row total: the respondents who answered the question in that area.
The hierarchy is *exact*: a parent's total and each option count equal the sums over its
children in the table (``suppress`` checks this and raises ``ValueError`` otherwise; respondents
without a buurt must be modelled as an explicit child area, e.g. ``"<wijk>-onbekend"``).
Single choice (``exclusive=True``): options sum to the total. Multiple choice
(``exclusive=False``): each option count lies between 0 and the total.

Every figure shown is a *cell*; everything a reader can compute from shown cells by the
table's exact relations is public too. The relations are

* hierarchy, per column (total and each option): parent = Σ children;
* row, single choice: total = Σ options;
* row, multiple choice, per option: total = chosen + not chosen. "Not chosen" is never shown, but
  it is a figure a reader can compute, so it is modelled as a hidden *complement* cell that is
  shown exactly when the option count is.

Rules (k = the municipality's minimum, default 10, never below 5)
-----------------------------------------------------------------
1. Primary, area: an area with 1..k-1 respondents is suppressed entirely ("primary_area").
2. Primary, cell: in a shown area, an option count in 1..k-1 is suppressed ("primary_cell"); for
   multiple choice also when its complement (total − count, those who did not choose it) is in
   1..k-1 ("17 of 20 chose X" says "3 did not").
3. Zeros are shown: an area with 0 respondents, a count of 0 and (multiple choice) a count equal
   to the total. A 0 rests on no respondent and singles nobody out; what it says about a group
   ("nobody here chose X", "all chose X") is the finding itself, and the group has at least k
   members because smaller areas are suppressed as a whole.
4. Secondary, per relation ("line": total = Σ body cells): a line must not have exactly one
   unknown (suppressed) cell, and when its total is shown and not 0 the suppressed body cells
   must add up to at least k: a reader gets their sum as total − shown cells, and that sum is a
   figure too (two suppressed buurten with 3 and 2 respondents would otherwise publish "5
   respondents in these two buurten"; a suppressed 3 next to a suppressed 0 would publish the 3,
   since counts are never negative). A violated line gets one more body cell suppressed: the
   smallest that lifts the sum to k or more, or, when none does, the largest (and the line is
   looked at again); on a line whose total is suppressed, the smallest cell; non-zero cells
   first (a hidden 0 next to a known total of 0 protects nothing). A line whose shown total is 0
   holds known zeros only and is left alone. A row total is only ever suppressed with its whole
   row ("secondary_area"); other cells one by one ("secondary_cell"); a multiple-choice option
   and its complement together.
5. Audit. Line rules stop subtraction along one line, but relations combined can still pin a
   cell: two suppressed "rectangles" joined by one cell (exact elimination over all relations
   finds it), or a rectangle whose other corners are 0 (bounds find it: counts are ≥ 0). The
   audit plays that reader: it alternates bound propagation and exact integer Gauss–Jordan
   elimination until neither learns anything new. Any suppressed cell in 1..k-1 it pins down
   gets one more cell suppressed on a relation through it (the smallest shown non-zero cell
   there, or on the nearest relation that has a shown cell), rule 4 runs again, and so does
   the audit.

Termination: every step of 4 and 5 suppresses at least one cell that was shown, and there are
finitely many cells. A cell can only be pinned to a non-zero value through relations that reach
a shown cell (with nothing shown, every bound is 0..∞ and the homogeneous relations fix nothing
but zeros), so a repair always finds a cell to add. The loop ends, at worst with everything
suppressed; in practice after no or a few repairs.

What this does not protect against (see docs/suppression.md): a reader with a linear-programming
solver may still narrow a suppressed cell to a range (never, as far as bounds and elimination
go, to one value); a reader who replays this algorithm can reason about which shown cell was
*not* picked; and relations with figures outside this table. In particular:

* The *reasons* reveal values (a "primary_cell" is in 1..k-1, a "secondary_cell" is 0 or ≥ k,
  and with the line sum that can pin a value). They are for logs, audits and tests. Never show
  them in results or exports: show "suppressed" only.
* Every question of a poll shows the respondents per area (and the response rate shows it
  again). Suppress those areas once per poll and pass them as ``forced_areas`` to every
  question, or the same area total shown in one table and hidden in another gives the game away.
* Every figure derived from a suppressed cell (percentage, weighted percentage, interval) is
  suppressed with it, and a scale mean is shown only for an area with no suppressed cell (a
  mean is one more linear relation over the counts).
"""

from __future__ import annotations

import random
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from math import gcd

DEFAULT_K = 10
MIN_K = 5

PRIMARY_AREA = "primary_area"
PRIMARY_CELL = "primary_cell"
SECONDARY_AREA = "secondary_area"
SECONDARY_CELL = "secondary_cell"
REASONS = (PRIMARY_AREA, PRIMARY_CELL, SECONDARY_AREA, SECONDARY_CELL)

# A cell of the output: (area code, option), with option None for the row total.
Cell = tuple[str, str | None]


@dataclass(frozen=True)
class Row:
    """One area: respondents who answered the question, and the count per option (missing = 0)."""

    total: int
    counts: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Table:
    question_id: str
    exclusive: bool  # True: single choice, options sum to the total
    options: Sequence[str]
    rows: Mapping[str, Row]  # area code → row


@dataclass(frozen=True)
class Hierarchy:
    """Area code → parent area code (None for the gemeente). May hold areas not in a table."""

    parent: Mapping[str, str | None]


@dataclass(frozen=True)
class SuppressedRow:
    total: int | None  # None when suppressed
    counts: dict[str, int | None]


@dataclass(frozen=True)
class SuppressedTable:
    question_id: str
    exclusive: bool
    options: tuple[str, ...]
    k: int
    rows: dict[str, SuppressedRow]  # same areas, same order as the input
    reasons: dict[Cell, str]  # every suppressed cell → one of REASONS; NEVER publish these
    suppressed_areas: tuple[str, ...]  # areas whose whole row is suppressed, in table order

    def is_suppressed(self, area: str, option: str | None = None) -> bool:
        return (area, option) in self.reasons


def check_k(k: int) -> int:
    """The minimum cell size, refused below MIN_K (and when it is not an integer)."""
    if isinstance(k, bool) or not isinstance(k, int):
        raise ValueError(f"k must be an integer, not {k!r}")
    if k < MIN_K:
        raise ValueError(f"k must be at least {MIN_K}, not {k}")
    return k


def suppress(
    table: Table,
    hierarchy: Hierarchy,
    k: int = DEFAULT_K,
    *,
    forced_areas: Iterable[str] = (),
) -> SuppressedTable:
    """The table with every figure that rests on fewer than k respondents, or that could be
    derived from the shown figures, replaced by None. See the module docstring for the rules.

    ``forced_areas`` are suppressed entirely whatever their size ("secondary_area"): the areas
    suppressed in the poll's respondents-per-area table, so that every question hides the same
    area totals.
    """
    check_k(k)
    forced_areas = list(forced_areas)
    grid = _Grid(table, hierarchy, k)
    for code in forced_areas:
        if code not in grid.index:
            raise ValueError(f"forced area {code!r} is not in the table")
    grid.primary()
    for code in forced_areas:
        grid.add(grid.index[code] * grid.width, SECONDARY_AREA)
    grid.settle(range(len(grid.lines)))
    for _ in range(len(grid.values) + 1):
        exposed = grid.exposed()
        if not exposed:
            break
        touched: set[int] = set()
        for cell in exposed:
            if touched.isdisjoint(grid.lines_of[cell]):
                touched |= grid.repair(cell)
        grid.settle(grid.pending_lines())
    else:  # pragma: no cover - the loop provably ends (module docstring)
        raise AssertionError("suppression did not reach a fixed point")
    return grid.result()


def suppress_areas(
    totals: Mapping[str, int],
    hierarchy: Hierarchy,
    k: int = DEFAULT_K,
    *,
    forced_areas: Iterable[str] = (),
) -> tuple[str, ...]:
    """Areas to hide from respondents per area (primary + secondary), in the order given."""
    table = Table("*", False, (), {code: Row(total) for code, total in totals.items()})
    return suppress(table, hierarchy, k, forced_areas=forced_areas).suppressed_areas


@dataclass(frozen=True)
class SuppressedPoll:
    areas: tuple[str, ...]  # hidden in every table (and so are their response rates), sorted
    tables: list[SuppressedTable]  # in the order given


def suppress_poll(
    tables: Sequence[Table],
    hierarchy: Hierarchy,
    k: int = DEFAULT_K,
    *,
    respondents: Mapping[str, int] | None = None,
) -> SuppressedPoll:
    """Every question of a poll, hiding the same areas everywhere.

    The questions share their area totals (``respondents`` per area, shown with the response
    rates, and the totals of every question everyone answered), so an area hidden in one table
    must be hidden in all: start from the areas hidden in ``respondents``, suppress every table
    with them forced, and repeat with the union of all hidden areas until it stops growing. It
    only grows, so this ends.
    """
    forced = set(suppress_areas(respondents, hierarchy, k)) if respondents is not None else set()
    while True:
        hidden = set(forced)
        if respondents is not None:
            inside = [c for c in forced if c in respondents]
            hidden.update(suppress_areas(respondents, hierarchy, k, forced_areas=inside))
        results = [
            suppress(t, hierarchy, k, forced_areas=[c for c in hidden if c in t.rows])
            for t in tables
        ]
        hidden = hidden.union(*(r.suppressed_areas for r in results))
        if hidden == forced:
            return SuppressedPoll(tuple(sorted(forced)), results)
        forced = hidden


def open_texts_allowed(
    area_total: int, k: int = DEFAULT_K, *, area_suppressed: bool = False
) -> bool:
    """Whether an area's open-text answers may be listed.

    ``area_total`` is the number of texts the list would show, and ``area_suppressed`` whether
    that area is suppressed in ``suppress`` of the open question's table (texts per area): a
    list shows its length, and texts shown for a wijk and for all but one of its buurten give
    away the texts of the remaining buurt, so the secondary rule matters here too.
    """
    check_k(k)
    return area_total >= k and not area_suppressed


def shuffle_texts(texts: Iterable[str], seed: int | str | bytes) -> list[str]:
    """The texts in a random order that depends only on the texts and the seed.

    Pass bare strings: never timestamps, ids or anything else per text (anything that is not a
    string is refused). The input is sorted before it is shuffled, so the order in which the
    caller read the texts (often submission order) cannot be recovered even by someone who knows
    the seed; the same seed gives the same order on every page load.
    """
    items = list(texts)
    for item in items:
        if not isinstance(item, str):
            raise TypeError("shuffle_texts takes the texts only, as strings")
    items.sort()
    random.Random(seed).shuffle(items)
    return items


class _Grid:
    """Cells as a flat list (row = area, column 0 = total, then options, then complements),
    relations as lines (total cell, body cells): total = Σ body."""

    def __init__(self, table: Table, hierarchy: Hierarchy, k: int) -> None:
        self.k = k
        self.table = table
        self.areas = list(table.rows)
        self.index = {code: i for i, code in enumerate(self.areas)}
        self.options = tuple(table.options)
        if len(set(self.options)) != len(self.options):
            raise ValueError("options must be distinct")
        n = len(self.options)
        self.n = n
        self.exclusive = table.exclusive
        self.width = 1 + n if self.exclusive else 1 + 2 * n
        self.values = self._values()
        self.suppressed = [False] * len(self.values)
        self.reason: list[str | None] = [None] * len(self.values)
        self.lines = self._lines(hierarchy)
        self.lines_of: list[list[int]] = [[] for _ in self.values]
        for number, (total, body) in enumerate(self.lines):
            self.lines_of[total].append(number)
            for cell in body:
                self.lines_of[cell].append(number)
        self.changed: set[int] = set()

    # -- building -------------------------------------------------------------------------

    def _values(self) -> list[int]:
        known = set(self.options)
        values: list[int] = []
        for code in self.areas:
            row = self.table.rows[code]
            total = _count(row.total, code, "total")
            extra = set(row.counts) - known
            if extra:
                raise ValueError(f"area {code!r}: unknown options {sorted(extra)}")
            counts = [_count(row.counts.get(o, 0), code, o) for o in self.options]
            if self.exclusive and self.options and sum(counts) != total:
                raise ValueError(f"area {code!r}: single-choice counts do not sum to the total")
            if any(c > total for c in counts):
                raise ValueError(f"area {code!r}: an option count exceeds the total")
            values.append(total)
            values.extend(counts)
            if not self.exclusive:
                values.extend(total - c for c in counts)
        return values

    def _lines(self, hierarchy: Hierarchy) -> list[tuple[int, list[int]]]:
        w = self.width
        lines: list[tuple[int, list[int]]] = []
        for a in range(len(self.areas)):
            base = a * w
            if self.exclusive and self.n:
                lines.append((base, [base + 1 + i for i in range(self.n)]))
            elif not self.exclusive:
                for i in range(self.n):
                    lines.append((base, [base + 1 + i, base + 1 + self.n + i]))
        children: dict[int, list[int]] = defaultdict(list)
        for a, code in enumerate(self.areas):
            up = _table_ancestor(code, hierarchy, self.index)
            if up is not None:
                children[up].append(a)
        for p, kids in children.items():
            for c in range(w):
                parent = self.values[p * w + c]
                if parent != sum(self.values[a * w + c] for a in kids):
                    what = "total" if c == 0 else self.options[(c - 1) % self.n]
                    raise ValueError(
                        f"area {self.areas[p]!r}: {what} is not the sum over its child areas "
                        "(model respondents without a sub-area as an explicit child area)"
                    )
                lines.append((p * w + c, [a * w + c for a in kids]))
        return lines

    # -- suppression ----------------------------------------------------------------------

    def unit(self, cell: int) -> list[int]:
        """The cells hidden together with this one."""
        w = self.width
        a, c = divmod(cell, w)
        if c == 0:
            return list(range(a * w, a * w + w))
        if self.exclusive:
            return [cell]
        i = (c - 1) % self.n
        return [a * w + 1 + i, a * w + 1 + self.n + i]

    def add(self, cell: int, reason: str) -> None:
        for member in self.unit(cell):
            if not self.suppressed[member]:
                self.suppressed[member] = True
                self.reason[member] = reason
                self.changed.add(member)

    def primary(self) -> None:
        k, w, n = self.k, self.width, self.n
        for a in range(len(self.areas)):
            base = a * w
            total = self.values[base]
            if 0 < total < k:
                self.add(base, PRIMARY_AREA)
                continue
            for i in range(n):
                cells = [base + 1 + i] if self.exclusive else [base + 1 + i, base + 1 + n + i]
                if any(0 < self.values[x] < k for x in cells):
                    self.add(base + 1 + i, PRIMARY_CELL)

    def pending_lines(self) -> set[int]:
        lines = {number for cell in self.changed for number in self.lines_of[cell]}
        self.changed.clear()
        return lines

    def settle(self, lines: Iterable[int]) -> None:
        """Apply the line rule (module docstring, rule 4) until no line violates it."""
        self.changed.clear()
        queue = deque(lines)
        queued = set(queue)
        values, suppressed, k = self.values, self.suppressed, self.k
        while queue:
            number = queue.popleft()
            queued.discard(number)
            total, body = self.lines[number]
            if not suppressed[total] and values[total] == 0:
                continue  # every cell of the line is a known 0: nothing to protect
            hidden = [b for b in body if suppressed[b]]
            unknowns = len(hidden) + suppressed[total]
            if unknowns == 0:
                continue
            hidden_sum = sum(values[b] for b in hidden)
            small = not suppressed[total] and hidden_sum < k  # a shown total is 0 or ≥ k
            if unknowns != 1 and not small:
                continue
            shown = [b for b in body if not suppressed[b]]
            if not shown:
                # Only a parent with a single child gets here: child = parent.
                pick = total
            elif suppressed[total]:
                pick = min(shown, key=lambda b: (values[b] == 0, values[b], b))
            else:
                enough = [b for b in shown if hidden_sum + values[b] >= k]
                if enough:
                    pick = min(enough, key=lambda b: (values[b] == 0, values[b], b))
                else:
                    pick = max(shown, key=lambda b: (values[b], -b))
            self.add(pick, SECONDARY_AREA if pick % self.width == 0 else SECONDARY_CELL)
            for cell in self.changed:
                for other in self.lines_of[cell]:
                    if other not in queued:
                        queued.add(other)
                        queue.append(other)
            self.changed.clear()

    def exposed(self) -> list[int]:
        """Suppressed cells with a value in 1..k-1 that a reader can pin down exactly.

        The reader's tools, alternated until neither finds anything new: bounds (every count is
        ≥ 0, so a line's known total bounds its hidden cells, and hidden cells bound a hidden
        total) and exact elimination over all relations at once.
        """
        values, hidden = self.values, self.suppressed
        lines = [
            (total, body)
            for total, body in self.lines
            if hidden[total] or any(hidden[b] for b in body)
        ]
        known = [not h for h in hidden]
        low = [v if shown else 0 for v, shown in zip(values, known, strict=True)]
        high = [v if shown else _UNBOUNDED for v, shown in zip(values, known, strict=True)]
        while True:
            found = _propagate(lines, known, low, high)
            equations: list[dict[int, int]] = []
            for total, body in lines:
                eq = {b: -1 for b in body if not known[b]}
                if not known[total]:
                    eq[total] = 1
                if eq:
                    equations.append(eq)
            for cell in _determined(equations):
                known[cell] = True
                low[cell] = high[cell] = values[cell]
                found = True
            if not found:
                break
        return [c for c, v in enumerate(values) if hidden[c] and known[c] and 0 < v < self.k]

    def repair(self, cell: int) -> set[int]:
        """Hide one more shown cell on a relation through ``cell`` (or the nearest one); return
        the lines the newly hidden cells are on."""
        seen_lines: set[int] = set()
        seen_cells = {cell}
        frontier = [cell]
        while frontier:
            lines = []
            for c in frontier:
                for number in self.lines_of[c]:
                    if number not in seen_lines:
                        seen_lines.add(number)
                        lines.append(number)
            body_shown, totals_shown = [], []
            for number in lines:
                total, body = self.lines[number]
                body_shown += [b for b in body if not self.suppressed[b]]
                if not self.suppressed[total]:
                    totals_shown.append(total)
            choice = body_shown or totals_shown
            if choice:
                pick = min(
                    choice,
                    key=lambda b: (b % self.width == 0, self.values[b] == 0, self.values[b], b),
                )
                self.add(pick, SECONDARY_AREA if pick % self.width == 0 else SECONDARY_CELL)
                return {number for c in self.unit(pick) for number in self.lines_of[c]}
            frontier = []
            for number in lines:
                total, body = self.lines[number]
                for c in (total, *body):
                    if c not in seen_cells:
                        seen_cells.add(c)
                        frontier.append(c)
        return set()  # unreachable for a determined non-zero cell: its component has a shown cell

    # -- output ---------------------------------------------------------------------------

    def result(self) -> SuppressedTable:
        w, n = self.width, self.n
        rows: dict[str, SuppressedRow] = {}
        reasons: dict[Cell, str] = {}
        hidden_areas: list[str] = []
        for a, code in enumerate(self.areas):
            base = a * w
            shown = [
                None if self.suppressed[base + c] else self.values[base + c] for c in range(1 + n)
            ]
            rows[code] = SuppressedRow(
                total=shown[0], counts={o: shown[1 + i] for i, o in enumerate(self.options)}
            )
            for c in range(1 + n):
                if self.suppressed[base + c]:
                    reasons[(code, None if c == 0 else self.options[c - 1])] = self.reason[base + c]
            if self.suppressed[base]:
                hidden_areas.append(code)
        return SuppressedTable(
            question_id=self.table.question_id,
            exclusive=self.exclusive,
            options=self.options,
            k=self.k,
            rows=rows,
            reasons=reasons,
            suppressed_areas=tuple(hidden_areas),
        )


def _count(value: object, area: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"area {area!r}: {what} must be a count (int ≥ 0), not {value!r}")
    return value


def _table_ancestor(code: str, hierarchy: Hierarchy, index: Mapping[str, int]) -> int | None:
    """The nearest ancestor of ``code`` that is in the table (levels may be skipped)."""
    if code not in hierarchy.parent:
        raise ValueError(f"area {code!r} is not in the hierarchy")
    seen = {code}
    up = hierarchy.parent[code]
    while up is not None:
        if up in index:
            return index[up]
        if up in seen:
            raise ValueError(f"the hierarchy has a cycle through {up!r}")
        seen.add(up)
        up = hierarchy.parent.get(up)
    return None


_UNBOUNDED = 10**15  # an upper bound no count reaches: "no bound known"
_PROPAGATION_STEPS = 200  # per line, at most; a cap only makes the audit weaker, never wrong


def _propagate(
    lines: Sequence[tuple[int, Sequence[int]]], known: list[bool], low: list[int], high: list[int]
) -> bool:
    """Tighten the bounds ``low``/``high`` over the lines (total = Σ body, all ≥ 0); mark cells
    whose bounds meet as known. Return whether any cell became known."""
    lines_of: dict[int, list[int]] = defaultdict(list)
    for number, (total, body) in enumerate(lines):
        lines_of[total].append(number)
        for b in body:
            lines_of[b].append(number)
    queue = deque(range(len(lines)))
    queued = set(queue)
    budget = _PROPAGATION_STEPS * len(lines)
    found = False
    while queue and budget > 0:
        budget -= 1
        number = queue.popleft()
        queued.discard(number)
        total, body = lines[number]
        sum_low = sum(low[b] for b in body)
        sum_high = sum(high[b] for b in body)
        t_low, t_high = max(low[total], sum_low), min(high[total], sum_high)
        changed = []
        if t_low != low[total] or t_high != high[total]:
            low[total], high[total] = t_low, t_high
            changed.append(total)
        if t_low > 0 or t_high < _UNBOUNDED:  # else the total says nothing about its body
            for b in body:
                b_low = max(low[b], t_low - (sum_high - high[b]))
                b_high = min(high[b], t_high - (sum_low - low[b]))
                if b_low != low[b] or b_high != high[b]:
                    low[b], high[b] = b_low, b_high
                    changed.append(b)
        for cell in changed:
            if low[cell] == high[cell] and not known[cell]:
                known[cell] = True
                found = True
            for other in lines_of[cell]:
                if other not in queued:
                    queued.add(other)
                    queue.append(other)
    return found


def _determined(equations: Sequence[Mapping[int, int]]) -> set[int]:
    """The unknowns whose value the homogeneous system fixes: exact Gauss–Jordan elimination
    over the integers (rows scaled, never divided, and reduced by their gcd)."""
    basis: dict[int, dict[int, int]] = {}  # pivot → row holding it, reduced against the others
    holders: dict[int, set[int]] = defaultdict(set)  # column → pivots of the rows that hold it
    for equation in equations:
        row = dict(equation)
        for pivot in [c for c in row if c in basis]:
            if pivot in row:
                row = _combine(basis[pivot][pivot], row, row[pivot], basis[pivot])
        if not row:
            continue
        pivot = min(row, key=lambda c: (abs(row[c]) != 1, len(holders[c]), c))
        if row[pivot] < 0:
            row = {c: -v for c, v in row.items()}
        for other in list(holders[pivot]):
            old = basis[other]
            new = _combine(row[pivot], old, old[pivot], row)
            for c in old:
                if c not in new:
                    holders[c].discard(other)
            for c in new:
                holders[c].add(other)
            basis[other] = new
        basis[pivot] = row
        for c in row:
            holders[c].add(pivot)
    return {pivot for pivot, row in basis.items() if len(row) == 1}


def _combine(a: int, x: Mapping[int, int], b: int, y: Mapping[int, int]) -> dict[int, int]:
    """a·x − b·y, divided by the gcd of its entries."""
    out = {c: a * v for c, v in x.items()}
    for c, v in y.items():
        value = out.get(c, 0) - b * v
        if value:
            out[c] = value
        else:
            out.pop(c, None)
    divisor = 0
    for v in out.values():
        divisor = gcd(divisor, v)
    if divisor > 1:
        out = {c: v // divisor for c, v in out.items()}
    return out
