"""Small-cell suppression of results tables: primary and secondary (complementary) suppression.

The rules are explained for municipal researchers in docs/suppression.md; this package is
their reference: ``model`` builds the system of cells and relations, this module applies the
rules, ``audit`` plays the reader (bounds, exact elimination, and the protection interval proved
with HiGHS).

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

A poll (``suppress_poll``) is one system: every question's table, the respondents per area, and
the relations between them that ``Asked`` (from the definition's ``required`` and ``show_if``,
see ``asked_in``) gives, each as lines too:

* asked of everyone, required: respondents = total, per area;
* asked of everyone, optional: respondents = total + skipped;
* after answer(s) A of a single-choice or scale question, or one answer of a multiple-choice
  one: count(A) = total (required) or count(A) = total + skipped (optional), with count(A) the
  sum of the counts of A ("asked", a derived cell, when there are several);
* after several answers A of a multiple-choice question (asked = those who ticked at least one:
  no sum): all = Σ counts(A), all = total + rest, answered(other) = total + none, and when
  required (asked = total known) total = count(a) + others(a) per answer a.

"Skipped", "asked", "all", "rest", "none" and "others" are *derived* cells: never shown, but a
reader can compute them when enough is shown, so they are figures (1..k-1 is small, rule 2) and
count in the audit. Hiding one costs nothing as long as every other relation it is on keeps an
unknown, so the line rule and the repair hide such a derived cell first where that does the
job; whether it did is for the audit to find out. Derived cells add
up over the areas like the tables do.

Rules (k = the municipality's minimum, default 10, never below 5)
-----------------------------------------------------------------
1. Primary, area: an area with 1..k-1 respondents is suppressed entirely ("primary_area"). In a
   poll (below, "Areas and rows") a question whose total is not the respondents (optional, or
   shown after an answer) and is 1..k-1 in an area loses that row only ("primary_area" too).
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
   and its complement together. Among the candidates a breakdown's cell goes first (a table
   with ``rank`` 1: per kind of participant or per channel, so an area's main figures stay
   shown where hiding a breakdown's cell will do; a breakdown's total on a line with a main
   table's cells is then a candidate too, when it costs no more), then the lowest level (a buurt's
   cell, then a wijk's, then the gemeente's: buurt detail gives way before the wijk figures,
   which matter most), then the cheapest kind (a cell, then a question's row, then a whole
   area; ``_Grid.cost``), then the smallest.
5. Audit. Line rules stop subtraction along one line, but relations combined can still pin a
   cell: two suppressed "rectangles" joined by one cell (exact elimination over all relations
   finds it), or a rectangle whose other corners are 0 (bounds find it: counts are ≥ 0). The
   audit plays that reader: it alternates bound propagation and exact integer Gauss–Jordan
   elimination until neither learns anything new. Any suppressed cell in 1..k-1 it pins down
   gets one more cell suppressed on a relation through it (in the order of rule 4: lowest
   level, cheapest kind, non-zero, smallest; or on the nearest relation that has a shown
   cell), rule 4 runs again, and so does the audit. Then the protection interval
   (``audit.uncertified``): every suppressed cell of 1..k-1 (derived cells included) must have
   an integer table consistent with everything published — shown cells, every relation and
   equation, lower bounds — in which it is 0 or at least k; found with HiGHS, checked exactly.
   A cell without one is repaired the same way.

Termination: every step of 4 and 5 suppresses at least one cell that was shown, and there are
finitely many cells. A cell can only be pinned to a non-zero value through relations that reach
a shown cell (with nothing shown, every bound is 0..∞ and the homogeneous relations fix nothing
but zeros), so a repair always finds a cell to add. The loop ends, at worst with everything
suppressed; in practice after no or a few repairs.

What this does not protect against (see docs/suppression.md): a reader who replays this
algorithm can reason about which shown cell was *not* picked; and relations with figures
outside the system. (A reader with a linear-programming solver gets, for every hidden small
cell, a range that includes 0 or reaches k: rule 5.) In particular:

* The *reasons* reveal values (a "primary_cell" is in 1..k-1, a "secondary_cell" is 0 or ≥ k,
  and with the line sum that can pin a value). They are for logs, audits and tests. Never show
  them in results or exports: show "suppressed" only.
* Areas and rows. The respondents per area are shown with the response rates, and again as
  the total of every required question asked of everyone. So in ``suppress_poll`` hiding the
  respondents, or the total of such a question, or of a question whose relation to the others
  is not given in ``asked`` (it may be the respondents), hides the area in every table and in
  the respondents (``SuppressedPoll.areas``); otherwise the same total shown in one table and
  hidden in another gives the game away. The total of an optional or follow-up question is not
  the respondents: hiding it hides that question's row in that area and nothing else
  (``SuppressedPoll.rows``), so a small number of skips, a small number asked or a small
  total costs a row (and whatever the line rule and the audit then need, usually one more row
  of the same question and, for a follow-up question, counts of the question it follows), not
  the area. Suppressing tables one by one with ``suppress`` knows nothing of the relations
  between them: use ``suppress_poll``.
* A poll's relations are those ``Asked`` states, the tables' own (options, selections), the
  respondents' composition and ``differences`` between tables. An open question is a table
  without options (its count per area). For an optional question after several
  answers of a multiple-choice question the number asked is not known here, only that the
  total is at most Σ counts and at most the other question's total; the tests check that
  modelling against a reader who also knows asked ≥ each count, for two such answers.
* Every figure derived from a suppressed cell (percentage, weighted percentage, interval) is
  suppressed with it, and a scale mean is shown only for an area with no suppressed cell (a
  mean is one more linear relation over the counts).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Mapping, Sequence

from services.common.suppression import audit
from services.common.suppression.model import (
    DEFAULT_K,
    DERIVED,
    PRIMARY_AREA,
    PRIMARY_CELL,
    SECONDARY_AREA,
    SECONDARY_CELL,
    TOTAL,
    Asked,
    Block,
    Cell,
    Hierarchy,
    Row,
    SuppressedPoll,
    SuppressedRow,
    SuppressedTable,
    System,
    Table,
    check_k,
)


def suppress(
    table: Table,
    hierarchy: Hierarchy,
    k: int = DEFAULT_K,
    *,
    forced_areas: Iterable[str] = (),
    at_least_one: Iterable[str] = (),
) -> SuppressedTable:
    """The table with every figure that rests on fewer than k respondents, or that could be
    derived from the shown figures, replaced by None. See the module docstring for the rules.

    ``at_least_one``: areas whose listing tells a reader they are not empty (listed only
    because something was counted there): their totals get a lower bound of 1.

    ``forced_areas`` are suppressed entirely whatever their size ("secondary_area"): the areas
    suppressed in the poll's respondents-per-area table, so that every question hides the same
    area totals.
    """
    check_k(k)
    grid = Suppressor([table], hierarchy, k)
    block = grid.blocks[0]
    forced_areas = list(forced_areas)
    for code in forced_areas:
        if code not in block.index:
            raise ValueError(f"forced area {code!r} is not in the table")
    forced = [block.cell(block.index[code], 0) for code in forced_areas]
    for code in at_least_one:
        cell = block.cell(block.index[code], 0)
        if grid.values[cell] < 1:
            raise ValueError(f"area {code!r} is listed as not empty but is")
        grid.floor[cell] = 1
    grid.run(forced)
    return grid.result(0)


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


def suppress_poll(
    tables: Sequence[Table],
    hierarchy: Hierarchy,
    k: int = DEFAULT_K,
    *,
    respondents: Mapping[str, int] | Table | None = None,
    asked: Mapping[str, Asked] | None = None,
    at_least_one: Iterable[str] = (),
    differences: Iterable[tuple[str, ...]] = (),
    hidden: Iterable[tuple[str, str, str | None]] = (),
    rules: bool = True,
    whole: Iterable[str] | None = None,
) -> SuppressedPoll:
    """Every question of a poll at once, as one system.

    ``respondents``: the poll's respondents per area (shown with the response rates), or a
    ``Table`` of them whose (exclusive) options are their composition: every option count is
    published too (invited members, self-selected, recently moved). ``at_least_one``: areas
    listed only because they have respondents — a reader knows those have at least one.
    ``differences``: (whole, part, rest, …) table ids, whole = Σ the parts cell by cell (pass
    a part no one sees as an unpublished ``Table``). ``hidden``: published cells (table id —
    "*" for the respondents —, area, option or None for the total) to suppress whatever their
    values: the cells an earlier version hid (docs/suppression.md, "Results over time").
    ``rules=False``:
    hide exactly ``hidden`` and let only the audit add to it.
    ``asked``: question id → ``Asked`` for the questions whose relation to the respondents or to
    another question is known; a question left out is treated as unrelated to the others (only
    the areas it hides are shared), so pass every question. The relations, checked against the
    counts (``ValueError`` when they do not hold):

    * asked of everyone, required: its total per area is the respondents there;
    * asked of everyone, optional: total + skipped = respondents, and "skipped" is a figure;
    * shown after an answer: the number asked is that answer's count in the other question (the
      sum of the counts for several answers of a single-choice or scale question; a multiple
      choice question with several answers gives no exact number, see the module docstring),
      and total = asked (required) or total + skipped = asked (optional).

    All tables, the respondents and these relations are suppressed as one system: the line
    rules run over every relation and the audit eliminates over all of them together. An area
    whose respondents are hidden, or the total of a required question asked of everyone or of a
    question not in ``asked``, is hidden in every table and in the respondents (``areas``); a
    hidden total of an optional or follow-up question hides that question's row only
    (``rows``). See "Areas and rows" in the module docstring. ``whole``: instead, the ids of
    the tables of ``asked`` (and "*" for the respondents) whose hidden total hides the area —
    the ones that count the area's main group (the residents, when businesses answered too:
    their all-participants figure is then a breakdown's, and hiding it hides its row only).
    """
    check_k(k)
    grid = Suppressor(
        tables,
        hierarchy,
        k,
        respondents=respondents,
        asked=asked or {},
        at_least_one=at_least_one,
        differences=differences,
        whole=whole,
    )
    grid.run(grid.cells_of(hidden), rules=rules)
    results = [grid.result(i) for i in range(len(tables))]
    whole = grid.whole_areas
    rows = {
        r.question_id: tuple(code for code in r.suppressed_areas if code not in whole)
        for r in results
    }
    everyone = grid.result(grid.respondents) if grid.respondents is not None else None
    return SuppressedPoll(tuple(sorted(whole)), results, rows, everyone)


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


class Suppressor(System):
    """The rules (module docstring) applied to a ``System``: primary, the line rule, and the
    repairs the audit asks for."""

    def cost(self, cell: int) -> int:
        """What hiding a cell takes with it: 0 a cell (or an option with its complement), 1 a
        question's row, 2 an area in every table. Secondary picks go for the cheapest kind."""
        if self.kind[cell] != TOTAL:
            return 0
        return 2 if self.whole(cell) else 1

    def _mark(self, cell: int, reason: str) -> None:
        if not self.suppressed[cell]:
            self.suppressed[cell] = True
            self.reason[cell] = reason
            self.changed.add(cell)

    def add(self, cell: int, reason: str) -> None:
        own = self.row(cell) if self.kind[cell] == TOTAL else ()
        if own and self.whole(cell):
            self.whole_areas.add(self.area[cell])
        for member in self.unit(cell):
            self._mark(member, reason if member in own or not own else SECONDARY_AREA)

    def free(self, cell: int) -> bool:
        """Whether hiding this cell costs nothing: a shown derived cell none of whose relations
        would then have it as their only unknown (else that relation hides a cell next)."""
        if self.kind[cell] != DERIVED or self.suppressed[cell]:
            return False
        for number in self.lines_of[cell]:
            total, body = self.lines[number]
            if not any(self.suppressed[c] for c in (total, *body) if c != cell):
                return False
        return True

    def _reason_for(self, cell: int) -> str:
        return SECONDARY_AREA if self.kind[cell] == TOTAL else SECONDARY_CELL

    def primary(self) -> None:
        k, values = self.k, self.values
        small = [0 < v < k for v in values]
        hidden_rows = []
        for block in (*self.blocks, self.respondents):
            if block is None:
                continue
            n = len(block.options)
            for a in range(len(block.areas)):
                base = block.cell(a, 0)
                if small[base]:
                    for cell in self.row(base):
                        self._mark(cell, PRIMARY_AREA)
                    hidden_rows.append(base)
                    continue
                for i in range(n):
                    cells = [base + 1 + i] if block.exclusive else [base + 1 + i, base + 1 + n + i]
                    if any(small[x] for x in cells):
                        self.add(base + 1 + i, PRIMARY_CELL)
        for cell, kind in enumerate(self.kind):
            if kind == DERIVED and small[cell]:
                self._mark(cell, PRIMARY_CELL)
        for base in hidden_rows:
            self.add(base, SECONDARY_AREA)

    def cells_of(self, keys: Iterable[tuple[str, str, str | None]]) -> list[int]:
        """Cells by (table id or "*", area, option or None); unknown ones are refused."""
        blocks = {b.table.question_id: b for b in self.blocks}
        if self.respondents is not None:
            blocks["*"] = self.respondents
        cells = []
        for table_id, area, option in keys:
            block = blocks.get(table_id)
            if block is None or area not in block.index:
                raise ValueError(f"no cell {(table_id, area, option)!r}")
            if option is not None and option not in block.options:
                raise ValueError(f"no cell {(table_id, area, option)!r}")
            column = 0 if option is None else 1 + block.options.index(option)
            cells.append(block.cell(block.index[area], column))
        return cells

    def run(self, forced: Iterable[int] = (), *, rules: bool = True) -> None:
        """Rules 1–5 (module docstring), with the ``forced`` cells hidden too (a total hides its
        row or area, see ``unit``; a breakdown's, the figures derived from it alone with it,
        ``hide_derived_of``). ``rules=False``: only the ``forced`` cells, then the audit
        (rule 5) — for a pattern already proved safe another way (a later version of results,
        docs/suppression.md), checked once more and repaired if the audit finds anything."""
        if rules:
            self.primary()
        else:
            for cell, kind in enumerate(self.kind):
                if kind == DERIVED and self.sensitive(cell):
                    self._mark(cell, PRIMARY_CELL)
        forced = list(forced)
        for cell in forced:
            self.add(cell, self._reason_for(cell))
        self.hide_derived_of(c for c in forced if self.rank[c])
        if rules:
            self.settle(range(len(self.lines)))
        else:
            self.changed.clear()
        for _ in range(len(self.values) + 1):
            exposed = audit.exposed(self) or audit.uncertified(self)
            if not exposed:
                return
            touched: set[int] = set()
            for cell in exposed:
                if touched.isdisjoint(self.lines_of[cell]):
                    touched |= self.repair(cell)
            self.settle(self.pending_lines())
        raise AssertionError("suppression did not reach a fixed point")  # pragma: no cover

    def hide_derived_of(self, cells: Iterable[int]) -> None:
        """With a breakdown's forced cells, the figures derived from them alone: a derived cell
        on a line with one of them whose other table cells are all a breakdown's (those who
        skipped a question, per channel; a channel's gemeente minus a region). Left shown, such
        a figure is one the reader has (the rules' convention), and together with the main
        table's own it gives away the group the breakdown hid (the main table's skips minus the
        app's are the paper's)."""
        for cell in cells:
            for member in self.unit(cell):
                for number in self.lines_of[member]:
                    total, body = self.lines[number]
                    line = (total, *body)
                    if any(self.kind[c] != DERIVED and not self.rank[c] for c in line):
                        continue
                    for c in line:
                        if self.kind[c] == DERIVED:
                            self._mark(c, SECONDARY_CELL)

    def pending_lines(self) -> set[int]:
        lines = {number for cell in self.changed for number in self.lines_of[cell]}
        self.changed.clear()
        return lines

    def settle(self, lines: Iterable[int]) -> None:
        """Apply the line rule (module docstring, rule 4) until no line violates it. A derived
        cell that is ``free`` to hide is hidden first where that does the job."""
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
            # A shown total is 0 or ≥ k; hidden cells that add up to 0 are known zeros (rule 3).
            small = not suppressed[total] and 0 < hidden_sum < k
            if unknowns != 1 and not small:
                continue
            shown = [b for b in body if not suppressed[b]]
            if self.free(total):
                pick = total
            elif not shown:
                # A parent with a single child, or an equality between tables: both the same.
                pick = total
            elif suppressed[total]:
                pick = min(shown, key=self._smallest)
            elif self._deeper(total, shown) and self._gives_way(total):
                # A region over a wijk or a smaller region (their difference is the body's
                # derived cell): the region, the deeper level, gives way, whole.
                pick = total
            else:
                enough = [b for b in shown if hidden_sum + values[b] >= k]
                # A breakdown's total gives way before a main table's cell (``Table.rank``):
                # hidden, it leaves the line two unknowns.
                if self.rank[total] > max(self.rank[b] for b in shown) and self.cost(total) <= min(
                    (self.cost(b) for b in enough), default=0
                ):
                    enough.append(total)
                if enough:
                    pick = min(enough, key=self._smallest)
                else:
                    pick = max(
                        shown,
                        key=lambda b: (
                            self.free(b),
                            self.depth.get(self.area[b], 0),
                            -self.cost(b),
                            values[b],
                            -b,
                        ),
                    )
            self.add(pick, self._reason_for(pick))
            # A derived cell hidden here leaves one of its other relations with one unknown,
            # which then hides a cell, usually a row: settle those first, so that the lines
            # still waiting see that row hidden before they pick one more.
            urgent = self.kind[pick] == DERIVED
            for cell in self.changed:
                for other in self.lines_of[cell]:
                    if urgent:
                        queue.appendleft(other)
                    elif other not in queued:
                        queue.append(other)
                    queued.add(other)
            self.changed.clear()

    def _deeper(self, total: int, body: Iterable[int]) -> bool:
        """Whether a line's total is of a deeper level than every cell of ``body``: only a
        region's difference with an area it holds (a wijk, a smaller region)."""
        depth = self.depth.get(self.area[total], 0)
        return all(self.depth.get(self.area[b], 0) < depth for b in body)

    def _gives_way(self, cell: int) -> bool:
        """Whether hiding a region's cell protects anything: only when one of its members is
        hidden in the same column. With every member shown the region's figure is their sum,
        and hiding it would only make the rules hide a member next."""
        line = self.group_line.get(cell)
        if line is None:
            return True
        total, body = self.lines[line]
        return not body or any(self.suppressed[b] for b in body)

    def _smallest(self, cell: int) -> tuple[bool, int, int, int, bool, int, int]:
        """Sort key of the secondary picks: free derived cells first, then a breakdown's cell
        before a main table's (``Table.rank``), then the lowest level (buurt before wijk before
        gemeente: buurt detail gives way before the wijk figures), then the cheapest kind
        (``cost``), non-zero before zero, then the smallest."""
        return (
            not self.free(cell),
            -self.rank[cell],
            -self.depth.get(self.area[cell], 0),
            self.cost(cell),
            self.values[cell] == 0,
            self.values[cell],
            cell,
        )

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
            body_shown: list[int] = []
            totals_shown: list[int] = []
            for number in lines:
                total, body = self.lines[number]
                body_shown += [b for b in body if not self.suppressed[b]]
                if not self.suppressed[total]:
                    # A region's total gives way like a body cell (it is the deeper level).
                    deeper = self._deeper(total, body) and self._gives_way(total)
                    # A breakdown's cell gives way before a main table's (``Table.rank``).
                    first = self.rank[total] > 0 and self.cost(total) == 0
                    (body_shown if deeper or first else totals_shown).append(total)
            choice = body_shown or totals_shown
            if choice:
                pick = min(choice, key=self._smallest)
                self.add(pick, self._reason_for(pick))
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

    def hidden_areas(self, block: Block | None) -> list[str]:
        if block is None:
            return []
        return [code for a, code in enumerate(block.areas) if self.suppressed[block.cell(a, 0)]]

    def result(self, number: int | Block) -> SuppressedTable:
        block = self.blocks[number] if isinstance(number, int) else number
        n = len(block.options)
        rows: dict[str, SuppressedRow] = {}
        reasons: dict[Cell, str] = {}
        for a, code in enumerate(block.areas):
            base = block.cell(a, 0)
            shown = [
                None if self.suppressed[base + c] else self.values[base + c] for c in range(1 + n)
            ]
            rows[code] = SuppressedRow(
                total=shown[0], counts={o: shown[1 + i] for i, o in enumerate(block.options)}
            )
            for c in range(1 + n):
                if self.suppressed[base + c]:
                    cell_option = None if c == 0 else block.options[c - 1]
                    reason = self.reason[base + c]
                    assert reason is not None  # _mark gives every suppressed cell one
                    reasons[(code, cell_option)] = reason
        return SuppressedTable(
            question_id=block.table.question_id,
            exclusive=block.exclusive,
            options=block.options,
            k=self.k,
            rows=rows,
            reasons=reasons,
            suppressed_areas=tuple(self.hidden_areas(block)),
        )
