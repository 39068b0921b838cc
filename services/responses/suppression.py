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
   and its complement together. Among the candidates the lowest level goes first (a buurt's
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
   cell), rule 4 runs again, and so does the audit.

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
* A poll's relations are only those ``Asked`` states. Open-text questions are no table here
  (their lists are checked per wijk on their own). For an optional question after several
  answers of a multiple-choice question the number asked is not known here, only that the
  total is at most Σ counts and at most the other question's total; the tests check that
  modelling against a reader who also knows asked ≥ each count, for two such answers.
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
    grid = _Grid([table], hierarchy, k)
    block = grid.blocks[0]
    forced_areas = list(forced_areas)
    for code in forced_areas:
        if code not in block.index:
            raise ValueError(f"forced area {code!r} is not in the table")
    forced = [block.cell(block.index[code], 0) for code in forced_areas]
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


@dataclass(frozen=True)
class Asked:
    """Who was asked a question of a poll, and whether they had to answer it.

    ``after`` None: every respondent of the poll was asked. Otherwise ``(question_id, options)``:
    only the respondents whose answer to that other question of the poll is one of ``options``
    (a ``show_if``; likert and rating values as strings, like their options). ``required``: every
    respondent who was asked answered, so the question's total per area is the number asked;
    otherwise the difference is the number who skipped it, a figure too.
    """

    required: bool = True
    after: tuple[str, Sequence[str]] | None = None


def asked_in(questions: Sequence[Mapping]) -> dict[str, Asked]:
    """``Asked`` per question from pollspec question definitions (``required``, default true;
    ``show_if: {question, any_of}``, scale values as strings like their options). Pass the
    questions that have tables; one shown after a question without a table gets no relation."""
    ids = {q["id"] for q in questions}
    asked = {}
    for q in questions:
        show_if = q.get("show_if")
        after = None
        if show_if is not None:
            if show_if["question"] not in ids:
                continue
            after = (show_if["question"], tuple(dict.fromkeys(str(v) for v in show_if["any_of"])))
        asked[q["id"]] = Asked(bool(q.get("required", True)), after)
    return asked


@dataclass(frozen=True)
class SuppressedPoll:
    """``areas``: hidden whole, in every table, with their respondents (and so their response
    rates), sorted. ``rows``: question id → the areas, not in ``areas``, where only that
    question's row is hidden (its total, counts and everything computed from them); the area
    and its rows in the other questions are shown. ``tables[i].suppressed_areas`` is both."""

    areas: tuple[str, ...]
    tables: list[SuppressedTable]  # in the order given
    rows: dict[str, tuple[str, ...]] = field(default_factory=dict)


def suppress_poll(
    tables: Sequence[Table],
    hierarchy: Hierarchy,
    k: int = DEFAULT_K,
    *,
    respondents: Mapping[str, int] | None = None,
    asked: Mapping[str, Asked] | None = None,
) -> SuppressedPoll:
    """Every question of a poll at once, as one system.

    ``respondents``: the poll's respondents per area (shown with the response rates).
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
    (``rows``). See "Areas and rows" in the module docstring.
    """
    check_k(k)
    grid = _Grid(tables, hierarchy, k, respondents=respondents, asked=asked or {})
    grid.run()
    results = [grid.result(i) for i in range(len(tables))]
    whole = grid.whole_areas
    rows = {
        r.question_id: tuple(code for code in r.suppressed_areas if code not in whole)
        for r in results
    }
    return SuppressedPoll(tuple(sorted(whole)), results, rows)


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


_TOTAL, _OPTION, _COMPLEMENT, _DERIVED = range(4)


@dataclass
class _Block:
    """One table's cells in the grid: row a, column c (0 = total, 1..n options, then the
    multiple-choice complements) is cell ``base + a·width + c``."""

    table: Table
    base: int
    areas: list[str]
    index: dict[str, int]
    options: tuple[str, ...]
    exclusive: bool
    width: int
    children: dict[int, list[int]]  # row → rows of its nearest descendants in the table
    # Whether a hidden total hides its area in every table: the total is (or may be) the
    # respondents there. False for an optional or follow-up question: its row alone goes.
    whole: bool = True

    def cell(self, row: int, column: int) -> int:
        return self.base + row * self.width + column


class _Grid:
    """Cells as a flat list, relations as lines (total cell, body cells): total = Σ body, every
    cell ≥ 0. Cells are the tables' totals, option counts and (multiple choice) complements,
    the respondents per area, and *derived* cells: figures a reader can compute but that are
    never shown (skipped, asked), hidden or not at no cost."""

    def __init__(
        self,
        tables: Sequence[Table],
        hierarchy: Hierarchy,
        k: int,
        *,
        respondents: Mapping[str, int] | None = None,
        asked: Mapping[str, Asked] | None = None,
    ) -> None:
        self.k = k
        self.depth = _depths(hierarchy)  # area → 0 gemeente, 1 wijk, 2 buurt (deeper: higher)
        self.values: list[int] = []
        self.kind: list[int] = []
        self.partner: list[int] = []  # option ↔ complement, else -1
        self.area: list[str] = []
        self.at_area: dict[str, list[int]] = defaultdict(list)
        self.lines: list[tuple[int, list[int]]] = []
        self.blocks = [self._block(t, hierarchy) for t in tables]
        ids = [t.question_id for t in tables]
        if len(set(ids)) != len(ids):
            raise ValueError("question ids must be distinct")
        self.respondents = None
        if respondents is not None:
            rows = {code: Row(total) for code, total in respondents.items()}
            self.respondents = self._block(Table("*", False, (), rows), hierarchy)
        for qid, how in (asked or {}).items():
            self._link(qid, how, ids)
            # Only a required question asked of everyone has the respondents as its total.
            self.blocks[ids.index(qid)].whole = how.required and how.after is None
        self.whole_areas: set[str] = set()  # areas hidden in every table and the respondents
        size = len(self.values)
        self.suppressed = [False] * size
        self.reason: list[str | None] = [None] * size
        self.lines_of: list[list[int]] = [[] for _ in range(size)]
        for number, (total, body) in enumerate(self.lines):
            self.lines_of[total].append(number)
            for cell in body:
                self.lines_of[cell].append(number)
        self.changed: set[int] = set()

    # -- building -------------------------------------------------------------------------

    def _new(self, value: int, kind: int, area: str) -> int:
        self.values.append(value)
        self.kind.append(kind)
        self.partner.append(-1)
        self.area.append(area)
        self.at_area[area].append(len(self.values) - 1)
        return len(self.values) - 1

    def _block(self, table: Table, hierarchy: Hierarchy) -> _Block:
        areas = list(table.rows)
        options = tuple(table.options)
        if len(set(options)) != len(options):
            raise ValueError("options must be distinct")
        n, exclusive = len(options), table.exclusive
        index = {code: i for i, code in enumerate(areas)}
        children: dict[int, list[int]] = defaultdict(list)
        for a, code in enumerate(areas):
            up = _table_ancestor(code, hierarchy, index)
            if up is not None:
                children[up].append(a)
        width = 1 + n if exclusive else 1 + 2 * n
        block = _Block(table, len(self.values), areas, index, options, exclusive, width, children)
        known = set(options)
        for code in areas:
            row = table.rows[code]
            total = _count(row.total, code, "total")
            extra = set(row.counts) - known
            if extra:
                raise ValueError(f"area {code!r}: unknown options {sorted(extra)}")
            counts = [_count(row.counts.get(o, 0), code, o) for o in options]
            if exclusive and n and sum(counts) != total:
                raise ValueError(f"area {code!r}: single-choice counts do not sum to the total")
            if any(c > total for c in counts):
                raise ValueError(f"area {code!r}: an option count exceeds the total")
            base = self._new(total, _TOTAL, code)
            for c in counts:
                self._new(c, _OPTION, code)
            if not exclusive:
                for i, c in enumerate(counts):
                    cell = self._new(total - c, _COMPLEMENT, code)
                    self.partner[cell], self.partner[base + 1 + i] = base + 1 + i, cell
            if exclusive and n:
                self.lines.append((base, [base + 1 + i for i in range(n)]))
            elif not exclusive:
                for i in range(n):
                    self.lines.append((base, [base + 1 + i, base + 1 + n + i]))
        for p, kids in children.items():
            for c in range(width):
                what = "total" if c == 0 else options[(c - 1) % n]
                self._hierarchy_line(
                    block.cell(p, c), [block.cell(a, c) for a in kids], what, block.areas[p]
                )
        return block

    def _hierarchy(self, column: list[int], block: _Block, what: str) -> None:
        """Lines parent = Σ children for one column of cells (one per row of ``block``)."""
        for p, kids in block.children.items():
            self._hierarchy_line(column[p], [column[a] for a in kids], what, block.areas[p])

    def _hierarchy_line(self, parent: int, kids: list[int], what: str, area: str) -> None:
        if self.values[parent] != sum(self.values[a] for a in kids):
            raise ValueError(
                f"area {area!r}: {what} is not the sum over its child areas "
                "(model respondents without a sub-area as an explicit child area)"
            )
        self.lines.append((parent, kids))

    def _link(self, qid: str, how: Asked, ids: list[str]) -> None:
        """The lines between a question's table and the respondents or its condition."""
        if qid not in ids:
            raise ValueError(f"asked: no table for question {qid!r}")
        block = self.blocks[ids.index(qid)]
        if how.after is None:
            if self.respondents is None:
                raise ValueError(f"question {qid!r} is asked of everyone: pass respondents")
            source, columns = self.respondents, [0]
            what = "the respondents"
        else:
            parent, options = how.after[0], list(how.after[1])
            if parent not in ids or parent == qid:
                raise ValueError(f"question {qid!r} is shown after {parent!r}: no such table")
            source = self.blocks[ids.index(parent)]
            unknown = [o for o in options if o not in source.options]
            if not options or unknown or len(set(options)) != len(options):
                raise ValueError(f"question {qid!r}: bad condition options {options!r}")
            if not source.exclusive and len(options) > 1:
                self._link_any_of(block, source, options, how.required)
                return
            columns = [1 + source.options.index(o) for o in options]
            what = f"the count of {parent!r} = {options!r}"
        seen_column, skip_column = [], []
        for a, code in enumerate(block.areas):
            if code not in source.index:
                raise ValueError(f"question {qid!r}: area {code!r} is missing from {what}")
            cells = [source.cell(source.index[code], c) for c in columns]
            asked_n = sum(self.values[c] for c in cells)
            total = block.cell(a, 0)
            answered = self.values[total]
            if answered > asked_n or (how.required and answered != asked_n):
                raise ValueError(
                    f"question {qid!r}, area {code!r}: {answered} answered, but {what} is "
                    f"{asked_n}" + (" and the question is required" if how.required else "")
                )
            if how.required:
                self.lines.append((cells[0], [total]) if len(cells) == 1 else (total, cells))
                continue
            if len(cells) == 1:
                seen = cells[0]
            else:
                seen = self._new(asked_n, _DERIVED, code)
                seen_column.append(seen)
                self.lines.append((seen, cells))
            skipped = self._new(asked_n - answered, _DERIVED, code)
            skip_column.append(skipped)
            self.lines.append((seen, [total, skipped]))
        for column in (seen_column, skip_column):
            if column:
                self._hierarchy(column, block, f"{qid!r} derived")

    def _link_any_of(
        self, block: _Block, source: _Block, options: list[str], required: bool
    ) -> None:
        """Asked after any of several answers to a multiple-choice question: the number asked is
        at least each answer's count and at most their sum, not a sum itself. Modelled with
        derived cells ≥ 0: all = Σ counts; all = asked + extra; and (required, asked = total
        known) asked = count + others per answer; and answered the other question = asked +
        none (ticked none of them). When the question is optional, the number asked is unknown
        and only total ≤ all and total ≤ answered the other are left: all = total + (extra +
        skipped), answered the other = total + (none + skipped)."""
        qid = block.table.question_id
        columns = [1 + source.options.index(o) for o in options]
        derived: list[list[int]] = []
        for a, code in enumerate(block.areas):
            if code not in source.index:
                raise ValueError(f"question {qid!r}: area {code!r} is missing from its condition")
            counts = [source.cell(source.index[code], c) for c in columns]
            total = block.cell(a, 0)
            answered, values = self.values[total], [self.values[c] for c in counts]
            if answered > sum(values) or (required and answered < max(values)):
                raise ValueError(f"question {qid!r}, area {code!r}: does not fit its condition")
            parent_total = source.cell(source.index[code], 0)
            if answered > self.values[parent_total]:
                raise ValueError(f"question {qid!r}, area {code!r}: does not fit its condition")
            every = self._new(sum(values), _DERIVED, code)
            rest = self._new(sum(values) - answered, _DERIVED, code)
            none = self._new(self.values[parent_total] - answered, _DERIVED, code)
            cells = [every, rest, none]
            self.lines += [(every, counts), (every, [total, rest]), (parent_total, [total, none])]
            if required:
                for count in counts:
                    others = self._new(answered - self.values[count], _DERIVED, code)
                    cells.append(others)
                    self.lines.append((total, [count, others]))
            derived.append(cells)
        for column in zip(*derived, strict=True):
            self._hierarchy(list(column), block, f"{qid!r} derived")

    # -- suppression ----------------------------------------------------------------------

    def row(self, cell: int) -> range:
        """The cells of the table row that ``cell`` (a total) heads."""
        return range(cell, cell + self._block_of(cell).width)

    def _block_of(self, cell: int) -> _Block:
        for block in (*self.blocks, self.respondents):
            if (
                block is not None
                and block.base <= cell < block.base + len(block.areas) * block.width
            ):
                return block
        raise AssertionError("not a table cell")  # pragma: no cover

    def unit(self, cell: int) -> Sequence[int]:
        """The cells hidden together with this one: the respondents, or the total of a question
        that is (or may be) the respondents, hide the area in every table (and the area's
        derived cells); the total of an optional or follow-up question hides its row in that
        table only; an option its complement."""
        kind = self.kind[cell]
        if kind == _TOTAL:
            return self.at_area[self.area[cell]] if self.whole(cell) else self.row(cell)
        if kind in (_OPTION, _COMPLEMENT) and self.partner[cell] >= 0:
            return [cell, self.partner[cell]]
        return [cell]

    def whole(self, cell: int) -> bool:
        """Whether this total, hidden, hides its whole area (see ``unit``)."""
        return self._block_of(cell).whole

    def cost(self, cell: int) -> int:
        """What hiding a cell takes with it: 0 a cell (or an option with its complement), 1 a
        question's row, 2 an area in every table. Secondary picks go for the cheapest kind."""
        if self.kind[cell] != _TOTAL:
            return 0
        return 2 if self.whole(cell) else 1

    def _mark(self, cell: int, reason: str) -> None:
        if not self.suppressed[cell]:
            self.suppressed[cell] = True
            self.reason[cell] = reason
            self.changed.add(cell)

    def add(self, cell: int, reason: str) -> None:
        own = self.row(cell) if self.kind[cell] == _TOTAL else ()
        if own and self.whole(cell):
            self.whole_areas.add(self.area[cell])
        for member in self.unit(cell):
            self._mark(member, reason if member in own or not own else SECONDARY_AREA)

    def free(self, cell: int) -> bool:
        """Whether hiding this cell costs nothing: a shown derived cell none of whose relations
        would then have it as their only unknown (else that relation hides a cell next)."""
        if self.kind[cell] != _DERIVED or self.suppressed[cell]:
            return False
        for number in self.lines_of[cell]:
            total, body = self.lines[number]
            if not any(self.suppressed[c] for c in (total, *body) if c != cell):
                return False
        return True

    def _reason_for(self, cell: int) -> str:
        return SECONDARY_AREA if self.kind[cell] == _TOTAL else SECONDARY_CELL

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
            if kind == _DERIVED and small[cell]:
                self._mark(cell, PRIMARY_CELL)
        for base in hidden_rows:
            self.add(base, SECONDARY_AREA)

    def run(self, forced: Iterable[int] = ()) -> None:
        """Rules 1–5 (module docstring), with the areas of the ``forced`` totals hidden too."""
        self.primary()
        for cell in forced:
            self.add(cell, SECONDARY_AREA)
        self.settle(range(len(self.lines)))
        for _ in range(len(self.values) + 1):
            exposed = self.exposed()
            if not exposed:
                return
            touched: set[int] = set()
            for cell in exposed:
                if touched.isdisjoint(self.lines_of[cell]):
                    touched |= self.repair(cell)
            self.settle(self.pending_lines())
        raise AssertionError("suppression did not reach a fixed point")  # pragma: no cover

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
            small = not suppressed[total] and hidden_sum < k  # a shown total is 0 or ≥ k
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
            else:
                enough = [b for b in shown if hidden_sum + values[b] >= k]
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
            urgent = self.kind[pick] == _DERIVED
            for cell in self.changed:
                for other in self.lines_of[cell]:
                    if urgent:
                        queue.appendleft(other)
                    elif other not in queued:
                        queue.append(other)
                    queued.add(other)
            self.changed.clear()

    def _smallest(self, cell: int) -> tuple[bool, int, int, bool, int, int]:
        """Sort key of the secondary picks: free derived cells first, then the lowest level
        (buurt before wijk before gemeente: buurt detail gives way before the wijk figures),
        then the cheapest kind (``cost``), non-zero before zero, then the smallest."""
        return (
            not self.free(cell),
            -self.depth.get(self.area[cell], 0),
            self.cost(cell),
            self.values[cell] == 0,
            self.values[cell],
            cell,
        )

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

    def hidden_areas(self, block: _Block | None) -> list[str]:
        if block is None:
            return []
        return [code for a, code in enumerate(block.areas) if self.suppressed[block.cell(a, 0)]]

    def result(self, number: int) -> SuppressedTable:
        block = self.blocks[number]
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
                    option = None if c == 0 else block.options[c - 1]
                    reasons[(code, option)] = self.reason[base + c]
        return SuppressedTable(
            question_id=block.table.question_id,
            exclusive=block.exclusive,
            options=block.options,
            k=self.k,
            rows=rows,
            reasons=reasons,
            suppressed_areas=tuple(self.hidden_areas(block)),
        )


def _count(value: object, area: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"area {area!r}: {what} must be a count (int ≥ 0), not {value!r}")
    return value


def _depths(hierarchy: Hierarchy) -> dict[str, int]:
    """Area → its number of ancestors (gemeente 0, wijk 1, buurt 2); a cycle stops the count
    (and is refused when the tables are built)."""
    depth: dict[str, int] = {}
    for code in hierarchy.parent:
        seen, up = {code}, hierarchy.parent.get(code)
        while up is not None and up not in seen:
            seen.add(up)
            up = hierarchy.parent.get(up)
        depth[code] = len(seen) - 1
    return depth


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
