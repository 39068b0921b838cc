"""The reader suppression defends against, played out on a ``System`` after the rules ran.

Two readers:

* ``exposed``: cheap and exact for what it finds — bounds from "every count is ≥ 0" along the
  lines, and exact integer Gauss–Jordan elimination over every relation, alternated until
  neither learns anything new. It finds the hidden small figures a reader can *pin*.
* ``uncertified``: the protection interval, proved. For every hidden figure of 1..k-1 people it
  looks for a whole table consistent with everything published (every count, every relation,
  every lower bound) in which that figure is 0 or at least k; the figure is safe when one
  exists. Such tables are found with HiGHS (``scipy.optimize.milp``) as integer solutions, one
  for many figures at a time, and each is then checked in exact integer arithmetic, so a
  solver's rounding can only cost a figure (hidden once more), never let one through. A figure
  without such a table is one a reader with a linear-programming solver proves to lie in
  1..k-1: the rules hide one more cell near it and the audit runs again.

  Speed (docs/benchmarks.md, "One results release"): unknowns that a relation fixes on its own
  are substituted first (exact). Then witnesses are searched for in parts of the system, every
  other unknown held at its true value, so a whole table of a part is a whole table of the
  system: a component of up to ``_WHOLE_CELLS`` unknowns whole, a larger one per wijk (its
  branch of the area tree); then near each figure left; then two wijken at a time; only what
  that leaves is searched for in the whole component, one by one (up to ``_LARGEST_WHOLE``
  unknowns). The linear relaxation is used only to *exclude* a witness (its range includes
  every whole table's), never to accept one. The searches after the first are bounded in solver
  calls, and a call that runs out of time proves nothing (it is logged): what is not proved
  stays hidden, and the rules hide one more cell near it. A witness, once found, stays one in
  the rules' later rounds on the same system (``_certified``).
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from math import gcd

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array, hstack

from services.common.suppression.model import System

log = logging.getLogger(__name__)

_UNBOUNDED = 10**15  # an upper bound no count reaches: "no bound known"
_PROPAGATION_STEPS = 200  # per line, at most; a cap only makes the audit weaker, never wrong
_SOLVE_SECONDS = 20.0  # per solver call; a call that runs out certifies nothing (safe side)


def _relations(system: System) -> list[dict[int, int]]:
    """``system.relations()``, built once per system: the relations never change while the
    rules run (only which cells are hidden does), and every repair round reads them."""
    cached = getattr(system, "_audit_relations", None)
    if cached is None or cached[0] != (len(system.lines), len(system.equations)):
        cached = ((len(system.lines), len(system.equations)), system.relations())
        system._audit_relations = cached  # type: ignore[attr-defined]
    return cached[1]


def known_to_reader(system: System) -> list[bool]:
    """The cells a reader is given: published cells that are not suppressed."""
    return [system.published(c) and not system.suppressed[c] for c in range(len(system.values))]


# -- the cheap reader ----------------------------------------------------------------------


def exposed(system: System) -> list[int]:
    """Suppressed cells with a value in 1..k-1 that a reader can pin down exactly.

    The reader's tools, alternated until neither finds anything new: bounds (every count is
    ≥ 0, so a line's known total bounds its hidden cells, and hidden cells bound a hidden
    total) and exact elimination over all relations at once.
    """
    values, hidden = system.values, system.suppressed
    lines = [
        (total, body)
        for total, body in system.lines
        if hidden[total] or any(hidden[b] for b in body)
    ]
    known = [not h for h in hidden]
    low = [v if shown else f for v, shown, f in zip(values, known, system.floor, strict=True)]
    high = [v if shown else _UNBOUNDED for v, shown in zip(values, known, strict=True)]
    lines_of: dict[int, list[int]] = defaultdict(list)
    for number, (total, body) in enumerate(lines):
        lines_of[total].append(number)
        for b in body:
            lines_of[b].append(number)
    elimination: _Elimination | None = None
    unfed: list[int] = []  # unknown when the elimination last heard of them
    while True:
        found = _propagate(lines, known, low, high, lines_of)
        if elimination is None:
            equations = []
            for relation in _relations(system):
                eq = {c: v for c, v in relation.items() if not known[c]}
                if eq:
                    equations.append(eq)
            elimination = _Elimination(equations)
            unfed = [c for c, k in enumerate(known) if not k]
        else:
            # A cell the bounds found since is one more equation {cell: 1}: the same row
            # space as eliminating again without it, at a fraction of the cost.
            still = []
            for cell in unfed:
                if known[cell]:
                    elimination.add({cell: 1})
                else:
                    still.append(cell)
            unfed = still
        for cell in elimination.determined():
            if not known[cell]:
                known[cell] = True
                low[cell] = high[cell] = values[cell]
                found = True
        if not found:
            break
    return [c for c in range(len(values)) if hidden[c] and known[c] and system.sensitive(c)]


def _propagate(
    lines: Sequence[tuple[int, Sequence[int]]],
    known: list[bool],
    low: list[int],
    high: list[int],
    lines_of: Mapping[int, Sequence[int]],
) -> bool:
    """Tighten the bounds ``low``/``high`` over the lines (total = Σ body, all ≥ 0; ``lines_of``
    a cell's lines); mark cells whose bounds meet as known. Return whether any cell became
    known."""
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
    return _Elimination(equations).determined()


class _Elimination:
    """Exact Gauss–Jordan elimination over the integers, kept so that more equations (a cell
    the bounds found: {cell: 1}) can be added to it later without starting again: the row
    space, and so the set of determined unknowns, is the same as from scratch."""

    def __init__(self, equations: Sequence[Mapping[int, int]] = ()) -> None:
        self.basis: dict[int, dict[int, int]] = {}  # pivot → row, reduced against the others
        self.holders: dict[int, set[int]] = defaultdict(set)  # column → pivots holding it
        for equation in equations:
            self.add(equation)

    def add(self, equation: Mapping[int, int]) -> None:
        basis, holders = self.basis, self.holders
        row = dict(equation)
        for pivot in [c for c in row if c in basis]:
            if pivot in row:
                row = _combine(basis[pivot][pivot], row, row[pivot], basis[pivot])
        if not row:
            return
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

    def determined(self) -> set[int]:
        return {pivot for pivot, row in self.basis.items() if len(row) == 1}


def _combine(a: int, x: Mapping[int, int], b: int, y: Mapping[int, int]) -> dict[int, int]:
    """a·x − b·y, divided by the gcd of its entries."""
    out = dict(x) if a == 1 else {c: a * v for c, v in x.items()}
    for c, v in y.items():
        value = out.get(c, 0) - b * v
        if value:
            out[c] = value
        else:
            del out[c]
    if out:
        divisor = gcd(*out.values())
        if divisor > 1:
            out = {c: v // divisor for c, v in out.items()}
    return out


# -- the protection interval ---------------------------------------------------------------


def uncertified(system: System) -> list[int]:
    """Hidden figures of 1..k-1 people for which no table consistent with everything published
    has the figure at 0 or at k or more (see the module docstring)."""
    values, k = system.values, system.k
    given = known_to_reader(system)
    rows: list[tuple[dict[int, int], int]] = []
    for relation in _relations(system):
        unknown = {c: v for c, v in relation.items() if not given[c]}
        if unknown:
            rhs = -sum(v * values[c] for c, v in relation.items() if given[c])
            rows.append((unknown, rhs))
    certified = _certified(system, given)
    targets = [
        c for c in range(len(values)) if not given[c] and system.sensitive(c) and c not in certified
    ]
    if not targets:
        return []
    rows, fixed = _peel(rows, values)
    left = [t for t in targets if t in fixed]  # pinned: no other value fits at all
    parent: dict[int, int] = {}

    def find(c: int) -> int:
        parent.setdefault(c, c)
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    for unknown, _ in rows:
        cells = list(unknown)
        for c in cells[1:]:
            parent[find(c)] = find(cells[0])
    by_component: dict[int, list[int]] = defaultdict(list)
    for t in targets:
        if t not in fixed:
            by_component[find(t)].append(t)
    rows_of: dict[int, list[tuple[dict[int, int], int]]] = defaultdict(list)
    for row in rows:
        rows_of[find(next(iter(row[0])))].append(row)
    branch = _branches(system)
    for root, component_targets in by_component.items():
        stubborn = _certify(
            component_targets, rows_of.get(root, []), values, system.floor, k, branch
        )
        certified.update(set(component_targets) - set(stubborn))
        left += stubborn
    return sorted(left)


def _certified(system: System, given: list[bool]) -> set[int]:
    """The figures a witness was found for in an earlier round of the rules on this system.
    Hiding more cells only takes equations away from the reader (the true values of the newly
    hidden cells extend an old witness to a whole table of the new system), so a witness stays
    one while no hidden cell has been shown again — checked, else the memory is dropped."""
    memory = getattr(system, "_audit_certified", None)
    if memory is not None and not any(
        shown and not was for shown, was in zip(given, memory[0], strict=True)
    ):
        memory[0][:] = given
        remembered: set[int] = memory[1]
        return remembered
    certified: set[int] = set()
    system._audit_certified = (list(given), certified)  # type: ignore[attr-defined]
    return certified


def _branches(system: System) -> list[str]:
    """Per cell: the top-level area below the gemeente it belongs to (a wijk with its buurten),
    the natural parts of a large search (``_certify``)."""
    top: dict[str, str] = {}

    def branch(area: str) -> str:
        if area not in top:
            code, seen = area, 0
            while system.depth.get(code, 0) > 1 and seen < 32:
                code = system.parent.get(code) or code
                seen += 1
            top[area] = code
        return top[area]

    return [branch(area) for area in system.area]


def _peel(
    rows: list[tuple[dict[int, int], int]], values: Sequence[int]
) -> tuple[list[tuple[dict[int, int], int]], set[int]]:
    """Substitute every unknown that a row with no other unknown fixes, repeatedly: the rows
    left and the fixed unknowns. Exact: such an unknown has one value in every solution, its
    true value (the true table is a solution), so the solutions of the rows left are those of
    the whole system without the fixed unknowns."""
    live = [(dict(unknown), rhs) for unknown, rhs in rows]
    rows_of: dict[int, list[int]] = defaultdict(list)
    for number, (unknown, _) in enumerate(live):
        for c in unknown:
            rows_of[c].append(number)
    queue = deque(number for number, (unknown, _) in enumerate(live) if len(unknown) == 1)
    fixed: set[int] = set()
    while queue:
        unknown, _ = live[queue.popleft()]
        if len(unknown) != 1:
            continue
        (cell,) = unknown
        fixed.add(cell)
        for number in rows_of[cell]:
            other, rhs = live[number]
            if cell in other:
                live[number] = (other, rhs - other.pop(cell) * values[cell])
                if len(other) == 1:
                    queue.append(number)
    return [(unknown, rhs) for unknown, rhs in live if unknown], fixed


class _Component:
    """One connected part of the reader's system: its unknowns, equations A·x = b, bounds."""

    def __init__(self, rows: list[tuple[dict[int, int], int]], floor: Sequence[int]) -> None:
        cells = sorted({c for unknown, _ in rows for c in unknown})
        self.index = {c: i for i, c in enumerate(cells)}
        self.rows = rows
        self.size = len(cells)
        self.floor = np.array([floor[c] for c in cells], dtype=float)
        r, col, data = [], [], []
        for i, (unknown, _) in enumerate(rows):
            for c, v in unknown.items():
                r.append(i)
                col.append(self.index[c])
                data.append(v)
        self.matrix = coo_array((data, (r, col)), shape=(len(rows), self.size)).tocsr()
        self.rhs = np.array([b for _, b in rows], dtype=float)

    def solve(
        self,
        objective: np.ndarray,
        low: np.ndarray,
        capped: Sequence[int] = (),
        cap: int = 0,
        *,
        integral: bool = True,
    ) -> _Solved:
        """A solution minimising ``objective`` (over x, then one y per ``capped`` unknown) with
        lower bounds ``low``. Each y_i ≤ x[capped[i]] and 0 ≤ y_i ≤ ``cap``: maximising Σ y
        (objective −1 on them) pushes as many as it can to ``cap``. ``integral``: in whole
        numbers (a MILP); otherwise the linear relaxation, whose optimum is often a whole table
        all the same and whose range includes every whole table's."""
        extra = len(capped)
        n = self.size + extra
        matrix = self.matrix
        if extra:
            matrix = hstack([matrix, coo_array((matrix.shape[0], extra))]).tocsr()
        constraints = [LinearConstraint(matrix, self.rhs, self.rhs)]
        if extra:
            r, col, data = [], [], []
            for i, unknown in enumerate(capped):
                r += [i, i]
                col += [self.size + i, unknown]
                data += [1.0, -1.0]
            caps = coo_array((data, (r, col)), shape=(extra, n)).tocsr()
            constraints.append(LinearConstraint(caps, -np.inf, 0.0))
        result = milp(
            objective,
            integrality=np.ones(n) if integral else np.zeros(n),
            bounds=Bounds(
                np.concatenate([low, np.zeros(extra)]),
                np.concatenate([np.full(self.size, np.inf), np.full(extra, float(cap))]),
            ),
            constraints=constraints,
            options={"time_limit": _SOLVE_SECONDS, "disp": False},
        )
        if result.status == 1:
            log.warning(
                "suppression audit: HiGHS stopped at its time limit (%s s, %s unknowns); "
                "what it did not prove is hidden (safe side)",
                _SOLVE_SECONDS,
                n,
            )
        if result.x is None:
            # Infeasible, or out of time: only a proved infeasible relaxation says anything
            # (no whole table either); anything else certifies nothing (safe side).
            return _Solved(None, result.status == 2 and not integral)
        fun = float(result.fun) if result.status == 0 else None
        x = [round(v) for v in result.x[: self.size]]
        return _Solved(x if self.holds(x, low) else None, False, fun)

    def holds(self, x: list[int], low: np.ndarray) -> bool:
        """Exact check: every equation and bound in integers."""
        if any(v < lo for v, lo in zip(x, low, strict=True)):
            return False
        index = self.index
        return all(
            sum(v * x[index[c]] for c, v in unknown.items()) == b for unknown, b in self.rows
        )


@dataclass
class _Solved:
    """What one solver call gave: ``x``, a whole table checked exactly (or None);
    ``infeasible``: proved that no table, whole or not, fits; ``optimum``: the objective's
    optimum when the solver proved one (for a relaxation: a bound on every whole table's)."""

    x: list[int] | None
    infeasible: bool = False
    optimum: float | None = None


_NEARBY_CELLS = 4000  # unknowns in one search near a target
# Bounds on the searches after the first stage, counted in solver calls, not seconds (the same
# poll gets the same release on any machine): a target they leave without a witness stays
# hidden with one more cell near it (the rules' repair), the safe side. Measured in
# docs/benchmarks.md ("One results release").
_NEARBY_PARTS = 150
_ONE_BY_ONE = 40
# Above this, one solver call over a whole component runs into its time limit (30,017
# unknowns at 1,000 responses over Utrecht's 111 buurten: 20 s without a solution), so what
# the parts leave is not searched whole.
_LARGEST_WHOLE = 20_000
# A component up to this size is searched whole first: one or two solver calls (well under a
# second at this size) settle nearly every target, where searches near each target would take
# one call per handful of targets. A larger one is searched per branch of the area tree first.
_WHOLE_CELLS = 12_000


def _part(
    free: set[int],
    rows: list[tuple[dict[int, int], int]],
    rows_of: Mapping[int, list[int]],
    values: Sequence[int],
    floor: Sequence[int],
) -> _Component:
    """The rows touching ``free`` over the ``free`` unknowns alone, every other unknown at its
    true value. The true table satisfies every row, so a whole table of the part, with the
    others at their true values, is a whole table of the component."""
    part_rows = []
    for number in sorted({n for c in free for n in rows_of[c]}):
        unknown, rhs = rows[number]
        inside = {c: v for c, v in unknown.items() if c in free}
        rhs -= sum(v * values[c] for c, v in unknown.items() if c not in free)
        part_rows.append((inside, rhs))
    return _Component(part_rows, floor)


def _many_at_once(part: _Component, mine: list[int], left: set[int], k: int) -> None:
    """Two searches in ``part`` for witnesses of the targets ``mine``: as many at 0 as it can,
    then as many at k or more; every target a whole table puts there leaves ``left``."""
    objective = np.zeros(part.size)
    for t in mine:
        objective[part.index[t]] = 1.0
    for step in range(2):
        if step:
            capped = [part.index[t] for t in mine if t in left]
            if not capped:
                break
            objective = np.concatenate([np.zeros(part.size), -np.ones(len(capped))])
            x = part.solve(objective, part.floor, capped, k).x
        else:
            x = part.solve(objective, part.floor).x
        if x is not None:
            for t in mine:
                if not 0 < x[part.index[t]] < k:
                    left.discard(t)


_PARTNERS = 2  # branches tried with each branch that has targets left


def _in_pairs(
    parts: list[set[int]],
    rows: list[tuple[dict[int, int], int]],
    rows_of: Mapping[int, list[int]],
    values: Sequence[int],
    floor: Sequence[int],
    k: int,
    remaining: set[int],
) -> None:
    """``_many_at_once`` over the union of two parts, for each part with targets left and up to
    ``_PARTNERS`` others: those it shares the most relations with first."""
    part_of = {c: i for i, free in enumerate(parts) for c in free}
    shared: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for unknown, _ in rows:
        touched = {part_of[c] for c in unknown}
        for a in touched:
            for b in touched:
                if a != b:
                    shared[a][b] += 1
    for a, free in enumerate(parts):
        partners = sorted(shared[a], key=lambda b: (-shared[a][b], b))[:_PARTNERS]
        for b in partners:
            if not any(t in remaining for t in free):
                break
            both = free | parts[b]
            mine = [t for t in both if t in remaining]
            _many_at_once(_part(both, rows, rows_of, values, floor), mine, remaining, k)


def _rows_of(rows: list[tuple[dict[int, int], int]]) -> dict[int, list[int]]:
    rows_of: dict[int, list[int]] = defaultdict(list)
    for number, (unknown, _) in enumerate(rows):
        for c in unknown:
            rows_of[c].append(number)
    return rows_of


def _nearby(
    targets: list[int],
    rows: list[tuple[dict[int, int], int]],
    values: Sequence[int],
    floor: Sequence[int],
    k: int,
) -> list[int]:
    """The targets left without a witness by searches in small parts of the component: the
    unknowns nearest a target (breadth first over the rows, up to ``_NEARBY_CELLS``) free,
    every other unknown at its true value. The true table satisfies every row, so a whole
    table of the part, with the others at their true values, is a whole table of the
    component: a witness for every target it puts at 0 or at k or more. A search that finds
    none proves nothing; those targets are left to the search over the whole component."""
    rows_of = _rows_of(rows)
    left = set(targets)
    tried: set[int] = set()
    for seed in targets:
        if seed not in left or seed in tried:
            continue
        if len(tried) == _NEARBY_PARTS:
            break
        tried.add(seed)
        free, frontier, seen = {seed}, [seed], set()
        while frontier and len(free) < _NEARBY_CELLS:
            step = []
            for c in frontier:
                for number in rows_of[c]:
                    if number not in seen:
                        seen.add(number)
                        for other in rows[number][0]:
                            if other not in free and len(free) < _NEARBY_CELLS:
                                free.add(other)
                                step.append(other)
            frontier = step
        mine = [t for t in free if t in left]
        _many_at_once(_part(free, rows, rows_of, values, floor), mine, left, k)
    return [t for t in targets if t in left]


def _certify(
    targets: list[int],
    rows: list[tuple[dict[int, int], int]],
    values: Sequence[int],
    floor: Sequence[int],
    k: int,
    branch: Sequence[str],
) -> list[int]:
    """The targets of one component without a witness (see ``uncertified``).

    In parts of the component, the rest held at its true values — any whole table found there
    is a whole table of the component: the whole component when it is small, else each wijk
    with its buurten (``branch``); then near each target left (``_nearby``); then two wijken
    at a time (``_in_pairs``). What that leaves is searched in the whole component: many
    targets at once, then one by one, where the linear relaxation goes first. Its range
    includes every whole table's, so it only ever *excludes* a witness (the target at least 1
    in every table, or none with it at k or more); a witness itself is always a whole table,
    checked exactly."""
    if not rows:  # unknowns on no relation: free upwards, so each can reach k
        return []
    cells = {c for unknown, _ in rows for c in unknown}
    rows_of = _rows_of(rows)
    remaining = set(targets)
    if len(cells) <= _WHOLE_CELLS:
        parts = [cells]
    else:
        by_branch: dict[str, set[int]] = defaultdict(set)
        for c in cells:
            by_branch[branch[c]].add(c)
        parts = list(by_branch.values())
    for free in parts:
        mine = [t for t in free if t in remaining]
        if mine:
            _many_at_once(_part(free, rows, rows_of, values, floor), mine, remaining, k)
    left = _nearby([t for t in targets if t in remaining], rows, values, floor, k)
    if left and len(parts) > 1:
        # A figure of a wijk (or a buurt alone in its wijk) moves only with another wijk's:
        # two branches at a time, the partners the branch shares most relations with first.
        remaining = set(left)
        _in_pairs(parts, rows, rows_of, values, floor, k, remaining)
        left = [t for t in left if t in remaining]
    if not left or len(cells) > _LARGEST_WHOLE:
        return left
    part = _Component(rows, floor)

    def settle(x: list[int] | None) -> bool:
        if x is None:
            return False
        before = len(left)
        left[:] = [t for t in left if 0 < x[part.index[t]] < k]
        return len(left) < before

    def search(
        objective: np.ndarray, low: np.ndarray, capped: Sequence[int] = (), cap: int = 0
    ) -> bool:
        return settle(part.solve(objective, low, capped, cap).x)

    # Many at once: as many targets as possible at 0, then as many as possible at k or more.
    while left:
        objective = np.zeros(part.size)
        for t in left:
            objective[part.index[t]] = 1.0
        if not search(objective, part.floor):
            break
    while left:
        capped = [part.index[t] for t in left]
        objective = np.concatenate([np.zeros(part.size), -np.ones(len(capped))])
        if not search(objective, part.floor, capped, k):
            break
    # One by one: can it be 0; else can it be k or more.
    stubborn = left[_ONE_BY_ONE:]
    for t in list(left[:_ONE_BY_ONE]):
        i = part.index[t]
        objective = np.zeros(part.size)
        objective[i] = 1.0
        relaxed = part.solve(objective, part.floor, integral=False)
        if relaxed.x is not None and relaxed.x[i] == 0:
            continue
        if relaxed.optimum is None or relaxed.optimum < 0.5:  # 0 not excluded: whole numbers
            x = part.solve(objective, part.floor).x
            if x is not None and x[i] == 0:
                continue
        low = part.floor.copy()
        low[i] = max(low[i], k)
        relaxed = part.solve(np.zeros(part.size), low, integral=False)
        if relaxed.x is not None:
            continue
        if not relaxed.infeasible and part.solve(np.zeros(part.size), low).x is not None:
            continue
        stubborn.append(t)
    return stubborn
