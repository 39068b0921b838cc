"""What suppression works on: tables, the poll's relations between them, and the one linear
system they make (cells and relations). Building only; the rules are in ``rules``, the reader
that checks them in ``audit``.

Every figure is a *cell* with a true value (a count, ≥ 0). Relations are linear equations over
cells with integer coefficients: *lines* ``total = Σ body`` (hierarchy, rows, links between
tables) and *equations* ``Σ coef·cell = 0`` for what is not a plain sum (the number of options a
multiple-choice answer may tick). Cell kinds:

* ``TOTAL``, ``OPTION``: a table's row total and option counts — what results publish;
* ``COMPLEMENT``: "did not choose" of a multiple-choice option (total − count), never shown but
  computable when its option and total are;
* ``DERIVED``: a figure a reader can compute but that is never shown (skipped, asked, …): a
  small one must stay hidden like any other;
* ``SLACK``: a non-negative unknown that turns an inequality into an equation (ticks above the
  minimum, say); no group of people, never shown, never protected.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_K = 10
MIN_K = 5

PRIMARY_AREA = "primary_area"
PRIMARY_CELL = "primary_cell"
SECONDARY_AREA = "secondary_area"
SECONDARY_CELL = "secondary_cell"
REASONS = (PRIMARY_AREA, PRIMARY_CELL, SECONDARY_AREA, SECONDARY_CELL)

TOTAL, OPTION, COMPLEMENT, DERIVED, SLACK = range(5)

# A region's level in the pick order of the rules (deeper gives way first): below the buurten
# (2), so a region gives way before any CBS area. A region is a second view of figures the tree
# already shows; hiding its cell, rather than one more buurt's, keeps the tree as it would be
# without regions wherever that is enough.
REGION_DEPTH = 3

# A cell of the output: (area code, option), with option None for the row total.
Cell = tuple[str, str | None]


@dataclass(frozen=True)
class Row:
    """One area: respondents who answered the question, and the count per option (missing = 0)."""

    total: int
    counts: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Table:
    """One question (or one published count per area: no options).

    ``exclusive``: options add up to the total (single choice, scales, a ranking's first
    choice). Multiple choice (``exclusive=False``) may say how many options an answer ticks:
    ``selections = (min, max)``, and ``sole`` options are answered alone (pollspec's
    ``exclusive: true`` option, "none of these"); both are relations a reader uses: with
    ``max = 1`` or ``min = max`` the options add up to a known multiple of the total.
    """

    question_id: str
    exclusive: bool  # True: single choice, options sum to the total
    options: Sequence[str]
    rows: Mapping[str, Row]  # area code → row
    selections: tuple[int, int] | None = None
    sole: Sequence[str] = ()
    # False: never shown, only computable (the difference of two published tables, say):
    # every cell is a derived figure.
    published: bool = True
    # 1: a breakdown (per kind of participant, per channel): where hiding one of its cells or
    # one of a main table's would do, its cell gives way first (rules, rule 4).
    rank: int = 0


@dataclass(frozen=True)
class Hierarchy:
    """Area code → parent area code (None for the gemeente). May hold areas not in a table.

    ``groups``: the municipality's own regions, region code → its member areas (buurten of the
    tree above). A region is no node of the tree: its figures are the sums over its members in
    the table (a relation per column), regions may overlap and need not cover anything, and
    every difference between a region and another published area (region, wijk, gemeente)
    that nests in it, or it in, is a figure too (``System._regions``)."""

    parent: Mapping[str, str | None]
    groups: Mapping[str, Sequence[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Asked:
    """Who was asked a question of a poll, and whether they had to answer it.

    ``after`` None: every respondent of the poll was asked. Otherwise ``(question_id, options)``:
    only the respondents whose answer to that other question of the poll is one of ``options``
    (a ``show_if``; likert and rating values as strings, like their options); question id
    ``"*"`` names the respondents table, whose options are their composition (a question asked
    of every invited panel member, say). ``required``: every
    respondent who was asked answered, so the question's total per area is the number asked;
    otherwise the difference is the number who skipped it, a figure too.
    """

    required: bool = True
    after: tuple[str, Sequence[str]] | None = None


def asked_in(questions: Sequence[Mapping[str, Any]]) -> dict[str, Asked]:
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


@dataclass(frozen=True)
class SuppressedPoll:
    """``areas``: hidden whole, in every table, with their respondents (and so their response
    rates), sorted. ``rows``: question id → the areas, not in ``areas``, where only that
    question's row is hidden (its total, counts and everything computed from them); the area
    and its rows in the other questions are shown. ``tables[i].suppressed_areas`` is both.
    ``respondents``: the respondents table (its options: the composition, when given)."""

    areas: tuple[str, ...]
    tables: list[SuppressedTable]  # in the order given
    rows: dict[str, tuple[str, ...]] = field(default_factory=dict)
    respondents: SuppressedTable | None = None


def check_k(k: int) -> int:
    """The minimum cell size, refused below MIN_K (and when it is not an integer)."""
    if isinstance(k, bool) or not isinstance(k, int):
        raise ValueError(f"k must be an integer, not {k!r}")
    if k < MIN_K:
        raise ValueError(f"k must be at least {MIN_K}, not {k}")
    return k


@dataclass
class Block:
    """One table's cells in the system: row a, column c (0 = total, 1..n options, then the
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


class System:
    """Cells as flat lists (``values``, ``kind``, ``area``, ``floor``), relations as ``lines``
    (total cell, body cells: total = Σ body) and ``equations`` ({cell: coefficient}, Σ = 0).

    Built from a poll's tables, the respondents per area (optionally split into a composition:
    invited panel members, self-selected, recently moved), the ``Asked`` relations between
    questions, ``at_least_one``: areas whose mere listing says they have a respondent (their
    respondents get a lower bound of 1 for the reader), and ``differences``: (whole, part,
    part, …) table ids with whole = Σ parts cell by cell (all respondents = invited members +
    the others, all participants = residents + businesses + organisations, per question)."""

    def __init__(
        self,
        tables: Sequence[Table],
        hierarchy: Hierarchy,
        k: int,
        *,
        respondents: Mapping[str, int] | Table | None = None,
        asked: Mapping[str, Asked] | None = None,
        at_least_one: Iterable[str] = (),
        differences: Iterable[tuple[str, ...]] = (),
        whole: Iterable[str] | None = None,
    ) -> None:
        self.k = k
        self.depth = _depths(hierarchy)  # area → 0 gemeente, 1 wijk, 2 buurt (deeper: higher)
        self.parent: dict[str, str | None] = dict(hierarchy.parent)
        self.values: list[int] = []
        self.kind: list[int] = []
        self.partner: list[int] = []  # option ↔ complement, else -1
        self.area: list[str] = []
        self.floor: list[int] = []
        self.at_area: dict[str, list[int]] = defaultdict(list)
        self.lines: list[tuple[int, list[int]]] = []
        self.equations: list[dict[int, int]] = []
        self.group_line: dict[int, int] = {}  # a region's cell → its line region = Σ members
        self.blocks = [self._block(t, hierarchy) for t in tables]
        ids = [t.question_id for t in tables]
        if len(set(ids)) != len(ids):
            raise ValueError("question ids must be distinct")
        self.respondents: Block | None = None
        if respondents is not None:
            if not isinstance(respondents, Table):
                rows = {code: Row(total) for code, total in respondents.items()}
                respondents = Table("*", False, (), rows)
            elif not respondents.exclusive and respondents.options:
                raise ValueError("a composition of the respondents must be exclusive")
            self.respondents = self._block(respondents, hierarchy)
            for code in at_least_one:
                if code not in self.respondents.index:
                    raise ValueError(f"at_least_one: no respondents for area {code!r}")
                cell = self.respondents.cell(self.respondents.index[code], 0)
                if self.values[cell] < 1:
                    raise ValueError(f"area {code!r} is listed as answered but has no respondents")
                self.floor[cell] = 1
        for qid, how in (asked or {}).items():
            self._link(qid, how, ids)
            # Only a required question asked of everyone has the respondents as its total.
            self.blocks[ids.index(qid)].whole = how.required and how.after is None
        if whole is not None:
            # Named: the tables whose total is the area's main count ("*": the respondents).
            named = set(whole)
            for qid in asked or {}:
                self.blocks[ids.index(qid)].whole = qid in named
            if self.respondents is not None:
                self.respondents.whole = "*" in named
        for whole_id, *part_ids in differences:
            if len(part_ids) < 2:
                raise ValueError(f"difference of {whole_id!r}: name at least two parts")
            self._difference(*(self._table(i, ids) for i in (whole_id, *part_ids)))
        self.whole_areas: set[str] = set()  # areas hidden in every table and the respondents
        size = len(self.values)
        self.rank = [0] * size  # a cell's table's ``rank`` (derived cells: 0)
        for block in (*self.blocks, self.respondents):
            if block is not None and block.table.rank:
                start = block.base
                self.rank[start : start + len(block.areas) * block.width] = [block.table.rank] * (
                    len(block.areas) * block.width
                )
        self.suppressed = [kind == SLACK for kind in self.kind]  # a slack is never known
        self.reason: list[str | None] = [None] * size
        self.lines_of: list[list[int]] = [[] for _ in range(size)]
        for number, (total, body) in enumerate(self.lines):
            self.lines_of[total].append(number)
            for cell in body:
                self.lines_of[cell].append(number)
        self.equations_of: list[list[int]] = [[] for _ in range(size)]
        for number, equation in enumerate(self.equations):
            for cell in equation:
                self.equations_of[cell].append(number)
        self.changed: set[int] = set()

    # -- building -------------------------------------------------------------------------

    def _new(self, value: int, kind: int, area: str) -> int:
        self.values.append(value)
        self.kind.append(kind)
        self.partner.append(-1)
        self.area.append(area)
        self.floor.append(0)
        self.at_area[area].append(len(self.values) - 1)
        return len(self.values) - 1

    def _block(self, table: Table, hierarchy: Hierarchy) -> Block:
        areas = list(table.rows)
        options = tuple(table.options)
        if len(set(options)) != len(options):
            raise ValueError("options must be distinct")
        n, exclusive = len(options), table.exclusive
        index = {code: i for i, code in enumerate(areas)}
        children: dict[int, list[int]] = defaultdict(list)
        for a, code in enumerate(areas):
            if code in hierarchy.groups:
                continue
            up = _table_ancestor(code, hierarchy, index)
            if up is not None:
                children[up].append(a)
        # A region's row is the sum of its members' rows, like a parent's (for derived columns
        # too): a region is a "parent" of its members without being in the tree.
        for code, members in hierarchy.groups.items():
            if code in index:
                for member in dict.fromkeys(members):
                    if member in hierarchy.groups:
                        raise ValueError(f"region {code!r}: a member is a region ({member!r})")
                    if member in index:
                        children[index[code]].append(index[member])
        width = 1 + n if exclusive else 1 + 2 * n
        block = Block(table, len(self.values), areas, index, options, exclusive, width, children)
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
            shown = table.published
            base = self._new(total, TOTAL if shown else DERIVED, code)
            for c in counts:
                self._new(c, OPTION if shown else DERIVED, code)
            if not exclusive:
                for i, c in enumerate(counts):
                    cell = self._new(total - c, COMPLEMENT if shown else DERIVED, code)
                    self.partner[cell], self.partner[base + 1 + i] = base + 1 + i, cell
            if exclusive and n:
                self.lines.append((base, [base + 1 + i for i in range(n)]))
            elif not exclusive:
                for i in range(n):
                    self.lines.append((base, [base + 1 + i, base + 1 + n + i]))
        if not exclusive:  # after the rows: a block's cells are contiguous
            for a, code in enumerate(areas):
                self._selections(table, block.cell(a, 0), code)
        for p, kids in children.items():
            for c in range(width):
                what = "total" if c == 0 else options[(c - 1) % n]
                self._hierarchy_line(
                    block.cell(p, c), [block.cell(a, c) for a in kids], what, block.areas[p]
                )
                if areas[p] in hierarchy.groups:
                    self.group_line[block.cell(p, c)] = len(self.lines) - 1
        if hierarchy.groups:
            self._regions(block, hierarchy)
        return block

    def _regions(self, block: Block, hierarchy: Hierarchy) -> None:
        """The differences between a region and every other published area of the table that
        nests in it or it in (a region, a wijk, the gemeente), as figures: per column a
        derived cell d with bigger = smaller + d (and bigger = smaller when the two cover the
        same buurten). A reader gets d by subtraction wherever both are shown, so d must be 0
        or at least k like any figure, and a small d hides one of the two (the region first:
        it is the deeper level in the pick order). Overlaps that do not nest give no count by
        subtraction alone; the audit's exact elimination and protection interval cover every
        combination of relations, these included."""
        leaves = _leaves(block, hierarchy)
        regions = [a for a, code in enumerate(block.areas) if code in hierarchy.groups]
        others = [
            a
            for a, code in enumerate(block.areas)
            if code not in hierarchy.groups and block.children.get(a)
        ]
        pairs: list[tuple[int, int]] = []
        for i, r in enumerate(regions):
            for a in [*others, *regions[i + 1 :]]:
                pairs.append((r, a))
        for r, a in pairs:
            mine, theirs = leaves[r], leaves[a]
            if mine == theirs:
                big, small = (a, r) if a in others else (r, a)
            elif mine > theirs:
                big, small = r, a
            elif mine < theirs:
                big, small = a, r
            else:
                continue
            code = block.areas[r]
            for c in range(block.width):
                whole, part = block.cell(big, c), block.cell(small, c)
                body = [part]
                if leaves[big] != leaves[small]:
                    body.append(self._new(self.values[whole] - self.values[part], DERIVED, code))
                self.lines.append((whole, body))

    def _selections(self, table: Table, base: int, code: str) -> None:
        """How many options one multiple-choice answer ticks, as equations over a row: a
        ``sole`` option alone, otherwise between min and max of the others. With r = total −
        Σ sole (those who ticked regular options): Σ regular = m·r when min = max = m, else
        min·r ≤ Σ regular ≤ max·r (two slacks); and every regular count ≤ r (a slack each)."""
        options = list(table.options)
        sole = [o for o in table.sole if o in options]
        if len(set(sole)) != len(sole):
            raise ValueError("sole options must be distinct")
        if table.selections is None and not sole:
            return
        low, high = table.selections or (1, max(1, len(options) - len(sole)))
        if not (isinstance(low, int) and isinstance(high, int) and 0 <= low <= high):
            raise ValueError(f"selections must be 0 ≤ min ≤ max, not {table.selections!r}")
        cells = {o: base + 1 + i for i, o in enumerate(options)}
        regular = [cells[o] for o in options if o not in sole]
        alone = [cells[o] for o in sole]
        value = self.values
        r = value[base] - sum(value[c] for c in alone)
        ticked = sum(value[c] for c in regular)

        def equation(terms: dict[int, int], slack: int | None) -> None:
            eq = dict(terms)
            if slack is not None:
                if slack < 0:
                    raise ValueError(
                        f"area {code!r}: the selections of {table.question_id!r} "
                        "do not fit min/max_selections and its sole options"
                    )
                eq[self._new(slack, SLACK, code)] = -1
            self.equations.append({c: v for c, v in eq.items() if v})

        def r_times(m: int) -> dict[int, int]:
            terms = {base: m}
            for c in alone:
                terms[c] = terms.get(c, 0) - m
            return terms

        def combine(*parts: dict[int, int], sign: tuple[int, ...]) -> dict[int, int]:
            out: dict[int, int] = defaultdict(int)
            for part, s in zip(parts, sign, strict=True):
                for c, v in part.items():
                    out[c] += s * v
            return dict(out)

        regular_terms = {c: 1 for c in regular}
        if r < 0:
            raise ValueError(
                f"area {code!r}: sole options of {table.question_id!r} exceed the total"
            )
        if low == high:
            if ticked != low * r:
                raise ValueError(
                    f"area {code!r}: {table.question_id!r} ticks {ticked}, not {low} per answer"
                )
            equation(combine(regular_terms, r_times(low), sign=(1, -1)), None)
        else:
            equation(combine(regular_terms, r_times(low), sign=(1, -1)), ticked - low * r)
            equation(combine(r_times(high), regular_terms, sign=(1, -1)), high * r - ticked)
        if alone:
            for c in regular:
                equation(combine(r_times(1), {c: 1}, sign=(1, -1)), r - value[c])

    def _table(self, table_id: str, ids: list[str]) -> Block:
        if table_id not in ids:
            raise ValueError(f"no table {table_id!r}")
        return self.blocks[ids.index(table_id)]

    def _difference(self, whole: Block, *parts: Block) -> None:
        """whole = Σ parts, cell by cell (same options in each), in every area all of them
        have: all respondents = invited members + the others, all participants = residents +
        businesses + organisations = app + link + paper (the splits by kind and channel may
        have fewer areas than the residents' tables: no buurten)."""
        names = " + ".join(repr(p.table.question_id) for p in parts)
        if any((p.options, p.exclusive) != (whole.options, whole.exclusive) for p in parts):
            raise ValueError(f"tables {whole.table.question_id!r} and {names} differ in shape")
        blocks = (whole, *parts)
        for code in whole.areas:
            if not all(code in b.index for b in parts):
                continue
            for c in range(whole.width):
                cells = [b.cell(b.index[code], c) for b in blocks]
                if self.values[cells[0]] != sum(self.values[x] for x in cells[1:]):
                    raise ValueError(f"area {code!r}: {whole.table.question_id!r} is not {names}")
                self.lines.append((cells[0], cells[1:]))

    def _hierarchy(self, column: list[int], block: Block, what: str) -> None:
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
            if parent == "*" and self.respondents is not None:
                source = self.respondents
            elif parent not in ids or parent == qid:
                raise ValueError(f"question {qid!r} is shown after {parent!r}: no such table")
            else:
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
                seen = self._new(asked_n, DERIVED, code)
                seen_column.append(seen)
                self.lines.append((seen, cells))
            skipped = self._new(asked_n - answered, DERIVED, code)
            skip_column.append(skipped)
            self.lines.append((seen, [total, skipped]))
        for column in (seen_column, skip_column):
            if column:
                self._hierarchy(column, block, f"{qid!r} derived")

    def _link_any_of(self, block: Block, source: Block, options: list[str], required: bool) -> None:
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
            every = self._new(sum(values), DERIVED, code)
            rest = self._new(sum(values) - answered, DERIVED, code)
            none = self._new(self.values[parent_total] - answered, DERIVED, code)
            cells = [every, rest, none]
            self.lines += [(every, counts), (every, [total, rest]), (parent_total, [total, none])]
            if required:
                for count in counts:
                    others = self._new(answered - self.values[count], DERIVED, code)
                    cells.append(others)
                    self.lines.append((total, [count, others]))
            derived.append(cells)
        for column in zip(*derived, strict=True):
            self._hierarchy(list(column), block, f"{qid!r} derived")

    # -- structure ------------------------------------------------------------------------

    def row(self, cell: int) -> range:
        """The cells of the table row that ``cell`` (a total) heads."""
        return range(cell, cell + self.block_of(cell).width)

    def block_of(self, cell: int) -> Block:
        for block in (*self.blocks, self.respondents):
            if (
                block is not None
                and block.base <= cell < block.base + len(block.areas) * block.width
            ):
                return block
        raise AssertionError("not a table cell")  # pragma: no cover

    def whole(self, cell: int) -> bool:
        """Whether this total, hidden, hides its whole area (see ``unit``)."""
        return self.block_of(cell).whole

    def unit(self, cell: int) -> Sequence[int]:
        """The cells hidden together with this one: the respondents, or the total of a question
        that is (or may be) the respondents, hide the area in every table (and the area's
        derived cells); the total of an optional or follow-up question hides its row in that
        table only; an option its complement."""
        kind = self.kind[cell]
        if kind == TOTAL:
            return self.at_area[self.area[cell]] if self.whole(cell) else self.row(cell)
        if kind in (OPTION, COMPLEMENT) and self.partner[cell] >= 0:
            return [cell, self.partner[cell]]
        return [cell]

    def published(self, cell: int) -> bool:
        """Whether the results show this cell (when it is not suppressed): totals and counts."""
        return self.kind[cell] in (TOTAL, OPTION)

    def sensitive(self, cell: int) -> bool:
        """A figure about 1..k-1 people: to be hidden, and to stay hidden from any reader."""
        return self.kind[cell] != SLACK and 0 < self.values[cell] < self.k

    def relations(self) -> list[dict[int, int]]:
        """Every relation as an equation {cell: coefficient} = 0: lines and equations."""
        out = []
        for total, body in self.lines:
            eq: dict[int, int] = defaultdict(int)
            eq[total] += 1
            for b in body:
                eq[b] -= 1
            out.append({c: v for c, v in eq.items() if v})
        return out + [dict(e) for e in self.equations]


def _count(value: object, area: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"area {area!r}: {what} must be a count (int ≥ 0), not {value!r}")
    return value


def _depths(hierarchy: Hierarchy) -> dict[str, int]:
    """Area → its number of ancestors (gemeente 0, wijk 1, buurt 2; a region ``REGION_DEPTH``);
    a cycle stops the count (and is refused when the tables are built)."""
    depth: dict[str, int] = {}
    for code in hierarchy.parent:
        seen, up = {code}, hierarchy.parent.get(code)
        while up is not None and up not in seen:
            seen.add(up)
            up = hierarchy.parent.get(up)
        depth[code] = len(seen) - 1
    for code in hierarchy.groups:
        depth[code] = REGION_DEPTH
    return depth


def _leaves(block: Block, hierarchy: Hierarchy) -> dict[int, frozenset[int]]:
    """Row → the rows of the table's lowest areas (those without children in the table, and no
    region) that make it up: a buurt itself, a wijk its buurten, a region its members."""
    memo: dict[int, frozenset[int]] = {}

    def of(a: int) -> frozenset[int]:
        if a not in memo:
            kids = block.children.get(a)
            memo[a] = frozenset().union(*(of(c) for c in kids)) if kids else frozenset({a})
        return memo[a]

    return {a: of(a) for a in range(len(block.areas))}


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
