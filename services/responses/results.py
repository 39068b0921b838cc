"""Results of a poll, read from the counters only (never from raw responses): per question and
area (gemeente, wijken, buurten), counts and percentages, means for scales, weighted
percentages with 95% intervals (raking per wijk to its CBS margins, Kish effective n, Wilson),
response rates, and small-cell suppression so that no figure rests on fewer than k
respondents or can be derived from the figures shown (docs/suppression.md).

Two views of the same poll: ``all`` respondents (the default) and ``panel``, the invited panel
members who did not move recently (leaving out self-selected sign-ups and recently moved
residents). Both are suppressed in one system with the table of the respondents the panel view
leaves out (all − panel, cell by cell), so reading both gives nothing away.

Results over time (``release``): an open poll's results change with every intake batch; each
released version is kept (``result_releases``) and the next must respect it: the same k, never a
cell the previous version hid, and the responses added since, as a table of their own, pass the
same protection test. See docs/suppression.md, "Results over time".
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.common import suppression
from services.common.areas import level_of, parent_of
from services.common.errors import NotFound
from services.common.intake import CHANNELS
from services.common.suppression import versions
from services.responses import weighting
from services.responses.models import AreaMargins, Poll, ResultRelease

T = TypeVar("T")

log = logging.getLogger(__name__)

SCALES = ("likert5", "rating10")
EXCLUSIVE = ("single_choice", "likert5", "rating10", "ranking")  # ranking: first choice only
COUNTED = (*EXCLUSIVE, "multiple_choice")
TABLED = (*COUNTED, "open_text")  # questions with a table in the suppression system

# Who a respondent is: an invited panel member, a self-selected sign-up, or an invited member
# who moved since (counted where they were invited). Self-selected wins when both apply.
PANEL, SELF_SELECTED, RECENTLY_MOVED = "panel", "self_selected", "recently_moved"
RESPONDENT_KINDS = (PANEL, SELF_SELECTED, RECENTLY_MOVED)
VIEWS: dict[str, tuple[str, ...]] = {"all": RESPONDENT_KINDS, "panel": (PANEL,)}
DEFAULT_VIEW = "all"

# Who answered (issue 14): residents — the three kinds above —, businesses and organisations.
# The main figures of an area are residents' (weighted to CBS margins, which are of persons);
# businesses and organisations are breakdowns of their own, unweighted. A stratum's third
# element is its composition: a resident's kind of respondent, or the kind of participant.
RESIDENT = "resident"
ONDERNEMER, ORGANISATIE = "ondernemer", "organisatie"
OTHER_KINDS = (ONDERNEMER, ORGANISATIE)
COMPOSITION = (*RESPONDENT_KINDS, *OTHER_KINDS)  # the respondents table's options
EVERYONE = "all"  # the all-participants row of the breakdown per kind

# The sets of respondents with a table per question in the suppression system: name →
# (compositions, channels), and the table id's suffix. "all"/"panel" are the two views (of
# residents), "rest" = all − panel (never published), then one per other kind of participant,
# all participants, and one per channel (of all participants).
SETS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "all": (RESPONDENT_KINDS, CHANNELS),
    "panel": ((PANEL,), CHANNELS),
    "rest": ((SELF_SELECTED, RECENTLY_MOVED), CHANNELS),
    ONDERNEMER: ((ONDERNEMER,), CHANNELS),
    ORGANISATIE: ((ORGANISATIE,), CHANNELS),
    "everyone": (COMPOSITION, CHANNELS),
    **{channel: (COMPOSITION, (channel,)) for channel in CHANNELS},
}
_SUFFIX = {
    "all": "",
    "panel": "@panel",
    "rest": "@rest",
    ONDERNEMER: "#" + ONDERNEMER,
    ORGANISATIE: "#" + ORGANISATIE,
    "everyone": "#all",
    **{channel: "~" + channel for channel in CHANNELS},
}
# Tables of the respondents beside "*" (whose options are the composition): residents per
# area, and all respondents by channel.
RESIDENTS_TABLE, CHANNELS_TABLE = "*#resident", "*~"
# Who a question is asked of when it follows no other question: a table's respondents.
_ASKED_OF: dict[str, tuple[str, tuple[str, ...]] | None] = {
    "all": ("*", RESPONDENT_KINDS),
    "panel": ("*", (PANEL,)),
    "rest": ("*", (SELF_SELECTED, RECENTLY_MOVED)),
    ONDERNEMER: ("*", (ONDERNEMER,)),
    ORGANISATIE: ("*", (ORGANISATIE,)),
    "everyone": None,
    **{channel: (CHANNELS_TABLE, (channel,)) for channel in CHANNELS},
}

Stratum = tuple[str | None, ...]  # age band, sex, composition[, channel (absent: app)]


def channel_of(stratum: tuple) -> str:
    return stratum[3] if len(stratum) > 3 else "app"


def in_set(stratum: tuple, name: str) -> bool:
    compositions, channels = SETS[name]
    return stratum[2] in compositions and channel_of(stratum) in channels


def regions_of(poll: Any) -> dict[str, dict[str, Any]]:
    """The regions a poll shows results for, as frozen in its audience when it was published
    (code → {code, name, version, buurt_codes}): a region changed later does not change them."""
    audience = getattr(poll, "audience", None) or {}
    return {r["code"]: r for r in audience.get("regions") or []}


def load_poll(session: Session, *, municipality_code: str, poll_id: str) -> Poll:
    try:
        poll = session.get(Poll, uuid.UUID(str(poll_id)))
    except ValueError:
        poll = None
    if poll is None or poll.municipality_code != municipality_code:
        raise NotFound("no results for this poll (not published, or not yours)")
    return poll


OPEN_TEXTS_SHOWN = 100  # per area: a random sample when there are more (``total`` says how many)


@dataclass
class Aggregates:
    """What results are computed from: counters per area and stratum (age band, sex, kind of
    respondent), and what goes beside them. ``read_aggregates`` reads them from the counter
    tables; the benchmark builds the same from the raw responses to check both agree."""

    base: dict[str, dict[str, dict[Stratum, int]]]  # question ("*": all) → area → stratum → n
    chosen: dict[str, dict[str, dict[tuple[Stratum, str], int]]]  # … → (stratum, option) → n
    invited: dict[str, int]  # buurt → invited
    margins: dict[str, dict[str, Any]]  # area → CBS name and margins
    texts: dict[str, dict[str, tuple[int, list[str]]]]  # open question → wijk → (n, sample)
    margins_year: int | None = None
    # Businesses' and organisations' open answers: kind → open question → wijk → (n, sample)
    # (``texts`` holds residents').
    kind_texts: dict[str, dict[str, dict[str, tuple[int, list[str]]]]] = field(default_factory=dict)


def begin_snapshot(session: Session, *, read_only: bool = True) -> Session:
    """Make the session's transaction one snapshot (REPEATABLE READ): respondents, counts, open
    answers, the release and the results version are then read as of the same commit, so an
    intake batch committed between two statements cannot make a count exceed its total. Must be
    the transaction's first statement."""
    mode = ", READ ONLY" if read_only else ""
    session.execute(sa.text(f"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ{mode}"))
    return session


KIND_SQL = (
    "CASE WHEN kind <> 'resident' THEN kind WHEN self_selected THEN 'self_selected' "
    "WHEN recently_moved THEN 'recently_moved' ELSE 'panel' END"
)
COUNTS_SQL = f"""
SELECT question_id, option, area_code, age_band, sex, {KIND_SQL}, channel, sum(n)::int
FROM counts WHERE poll_id = %(poll_id)s
GROUP BY question_id, option, area_code, age_band, sex, 6, channel
"""
RESPONDENTS_SQL = f"""
SELECT question_id, area_code, age_band, sex, {KIND_SQL}, channel, sum(n)::int
FROM respondents WHERE poll_id = %(poll_id)s GROUP BY question_id, area_code, age_band, sex, 5,
channel
"""
# Open answers per wijk: how many, and a sample in id order (ids are random, so the sample does
# not depend on when a text came in); shuffled after.
TEXTS_SQL = """
SELECT question_id, wijk_code, kind, total, text FROM (
    SELECT question_id, wijk_code, kind, text, count(*) OVER w AS total,
           row_number() OVER (w ORDER BY id) AS rank
    FROM open_texts WHERE poll_id = %(poll_id)s
    WINDOW w AS (PARTITION BY question_id, wijk_code, kind)
) t WHERE rank <= %(shown)s
"""


def read_aggregates(session: Session, poll: Poll) -> Aggregates:
    """Three queries over the counters and a sample of the open answers; plain DB-API cursors,
    because at a million responses the counters are ~10⁵ rows and ORM rows cost more than the
    query (see docs/benchmarks.md, results). Call inside ``begin_snapshot``."""
    dbapi = session.connection().connection.dbapi_connection
    assert dbapi is not None  # None only once the connection is closed; it was just checked out
    cursor = dbapi.cursor()
    params = {"poll_id": str(poll.id), "shown": OPEN_TEXTS_SHOWN}
    base: dict = defaultdict(lambda: defaultdict(dict))
    cursor.execute(RESPONDENTS_SQL, params)
    for qid, area, age, sex, kind, channel, n in cursor.fetchall():
        base[qid][area][(age, sex, kind, channel)] = n
    chosen: dict = defaultdict(lambda: defaultdict(dict))
    cursor.execute(COUNTS_SQL, params)
    for qid, option, area, age, sex, kind, channel, n in cursor.fetchall():
        chosen[qid][area][((age, sex, kind, channel), option)] = n
    texts: dict[str, dict[str, tuple[int, list[str]]]] = defaultdict(dict)
    kind_texts: dict[str, dict[str, dict[str, tuple[int, list[str]]]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    cursor.execute(TEXTS_SQL, params)
    for qid, wijk, kind, total, text in cursor.fetchall():
        into = texts if kind == RESIDENT else kind_texts[kind]
        into[qid].setdefault(wijk, (total, []))[1].append(text)
    cursor.execute("SELECT area_code, n FROM invited WHERE poll_id = %(poll_id)s", params)
    invited = dict(cursor.fetchall())
    cursor.close()
    year, margins = latest_margins(session, poll.municipality_code)
    return Aggregates(
        base=base,
        chosen=chosen,
        invited=invited,
        margins=margins,
        texts=texts,
        margins_year=year,
        kind_texts={kind: dict(per_q) for kind, per_q in kind_texts.items()},
    )


def latest_margins(
    session: Session, municipality_code: str
) -> tuple[int | None, dict[str, dict[str, Any]]]:
    year = session.scalar(
        sa.select(sa.func.max(AreaMargins.year)).where(
            AreaMargins.municipality_code == municipality_code
        )
    )
    if year is None:
        return None, {}
    rows = session.scalars(
        sa.select(AreaMargins).where(
            AreaMargins.municipality_code == municipality_code, AreaMargins.year == year
        )
    )
    return year, {r.code: {"name": r.name, "sex": r.sex, "age": r.age} for r in rows}


# -- what the suppression system is made of ------------------------------------------------


def options_of(q: Mapping[str, Any]) -> list[str]:
    if q["type"] == "likert5":
        return [str(v) for v in range(1, 6)] + (["dont_know"] if q.get("dont_know") else [])
    if q["type"] == "rating10":
        return [str(v) for v in range(0, 11)] + (["dont_know"] if q.get("dont_know") else [])
    if q["type"] == "open_text":
        return []
    return [o["id"] for o in q["options"]]


def with_regions(poll: Any, data: Aggregates) -> Aggregates:
    """The aggregates with a row per region of the poll: every counter the sum of its buurten's,
    and its CBS margins the sum of its buurten's (so the region is raked to them like a wijk to
    its own). Nothing is stored per region: a region's figures are always its buurten's sums,
    on the version the poll was published with."""
    regions = regions_of(poll)
    if not regions:
        return data

    def summed(per_area: Mapping[str, Mapping[Any, int]], members: list[str]) -> dict:
        out: dict = defaultdict(int)
        for code in members:
            for key, n in per_area.get(code, {}).items():
                out[key] += n
        return dict(out)

    base = {q: dict(per_area) for q, per_area in data.base.items()}
    chosen = {q: dict(per_area) for q, per_area in data.chosen.items()}
    margins = dict(data.margins)
    for code, region in regions.items():
        members = list(dict.fromkeys(region["buurt_codes"]))
        for q, per_area in data.base.items():
            row = summed(per_area, members)
            if row:
                base[q][code] = row
        for q, per_area_chosen in data.chosen.items():
            row = summed(per_area_chosen, members)
            if row:
                chosen[q][code] = row
        margins[code] = _summed_margins(region.get("name"), [data.margins.get(m) for m in members])
    # Invitations per region are summed beside the tree in ``build_view``.
    return Aggregates(
        base, chosen, data.invited, margins, data.texts, data.margins_year, data.kind_texts
    )


def _summed_margins(name: str | None, members: list[Mapping[str, Any] | None]) -> dict[str, Any]:
    """A region's CBS margins: per category the sum over its buurten; None (no figure) when a
    buurt has none for it or is unknown to CBS."""
    out: dict[str, Any] = {"name": name}
    for dim in ("sex", "age"):
        keys = {key for m in members if m for key in (m.get(dim) or {})}
        total: dict[str, Any] = {}
        for key in sorted(keys):
            values = [(m.get(dim) or {}).get(key) if m else None for m in members]
            total[key] = None if any(v is None for v in values) else sum(values)
        out[dim] = total
    return out


def listed_areas(poll: Any, data: Aggregates) -> tuple[list[str], list[str]]:
    """The areas the results list, and those listed only because someone there answered.

    Listing an area says something only when it depends on the answers: so the results list
    every area of the audience that CBS knows (and those invitations went to), answered or not,
    and the reader's system gets "at least one respondent" for any other area that is listed.
    """
    gm = poll.municipality_code
    audience = getattr(poll, "audience", None) or {}
    codes = [c for c in audience.get("area_codes") or [] if isinstance(c, str)]
    known = [c for c in data.margins if c[2:6] == gm[2:6]]
    if audience.get("kind") == "areas" and codes:
        reach = [c for c in known if any(c.startswith(("BU" + a[2:], "WK" + a[2:])) for a in codes)]
        reach += [c for c in codes if c in known]
    else:
        reach = known
    independent: set[str] = set(regions_of(poll))  # listed whatever the answers
    for listed in [*reach, *data.invited]:
        code: str | None = listed
        while code is not None:
            independent.add(code)
            code = parent_of(code)
    answered = set(data.base.get("*", {}))
    areas = sorted(independent | answered, key=lambda c: (len(c), c))
    at_least_one = [c for c in areas if c not in independent and c in answered]
    return areas, at_least_one


def _view_counts(
    base: Mapping[str, Mapping[Stratum, int]],
    chosen: Mapping[str, Mapping[tuple[Stratum, str], int]],
    code: str,
    name: str,
) -> tuple[int, dict[str, int]]:
    total = sum(n for s, n in base.get(code, {}).items() if in_set(s, name))
    counts: dict[str, int] = defaultdict(int)
    for (s, option), n in chosen.get(code, {}).items():
        if in_set(s, name):
            counts[option] += n
    return total, dict(counts)


def question_table(
    q: Mapping[str, Any], data: Aggregates, areas: Iterable[str], view: str
) -> suppression.Table:
    """One question's table over the respondents of one set of ``SETS`` ("rest": those the
    panel view leaves out; never published, a figure all the same)."""
    base, chosen = data.base.get(q["id"], {}), data.chosen.get(q["id"], {})
    rows = {}
    for code in areas:
        total, counts = _view_counts(base, chosen, code, view)
        rows[code] = suppression.Row(total, counts)
    selections, sole = None, ()
    if q["type"] == "multiple_choice":
        high = len(q["options"])
        selections = (q.get("min_selections", 1), q.get("max_selections", high))
        sole = tuple(o["id"] for o in q["options"] if o.get("exclusive"))
    return suppression.Table(
        q["id"] + _SUFFIX[view],
        q["type"] in EXCLUSIVE or q["type"] == "open_text",
        options_of(q),
        rows,
        selections=selections,
        sole=sole,
        published=view != "rest",
        rank=0 if view in ("all", "panel", "rest") else 1,  # breakdowns give way first
    )


def respondents_table(data: Aggregates, areas: list[str], kinds: bool = True) -> suppression.Table:
    """All respondents per area by composition (residents by kind of respondent, and when
    ``kinds``, businesses and organisations); every count is published with them."""
    everyone = data.base.get("*", {})
    options = COMPOSITION if kinds else RESPONDENT_KINDS
    rows = {}
    for code in areas:
        by_kind = dict.fromkeys(options, 0)
        for stratum, n in everyone.get(code, {}).items():
            by_kind[str(stratum[2])] += n
        rows[code] = suppression.Row(sum(by_kind.values()), by_kind)
    # With businesses or organisations the total is all participants': a breakdown's figure
    # (the residents' count is ``RESIDENTS_TABLE``), which gives way first.
    return suppression.Table("*", True, options, rows, rank=1 if kinds else 0)


def breakdown_tables(data: Aggregates, areas: list[str]) -> list[suppression.Table]:
    """The respondents' other published counts: residents per area (the sum of their three
    kinds) and all respondents by channel."""
    everyone = data.base.get("*", {})
    residents, per_channel = {}, {}
    for code in areas:
        by_channel = dict.fromkeys(CHANNELS, 0)
        resident = 0
        for stratum, n in everyone.get(code, {}).items():
            by_channel[channel_of(stratum)] += n
            resident += n if stratum[2] in RESPONDENT_KINDS else 0
        residents[code] = suppression.Row(resident)
        per_channel[code] = suppression.Row(sum(by_channel.values()), by_channel)
    return [
        suppression.Table(RESIDENTS_TABLE, True, (), residents),
        suppression.Table(CHANNELS_TABLE, True, CHANNELS, per_channel, rank=1),
    ]


BREAKDOWN_ASKED = {
    RESIDENTS_TABLE: suppression.Asked(True, ("*", RESPONDENT_KINDS)),
    CHANNELS_TABLE: suppression.Asked(True, None),
}


def asked_for(
    questions: list[Mapping[str, Any]], view: str, residents_only: bool = False
) -> dict[str, suppression.Asked]:
    """The relations of one set's tables: to its respondents and between its questions
    (``residents_only``: nobody else answered, the residents' tables are everyone's)."""
    out = {}
    for qid, how in suppression.asked_in(questions).items():
        after = how.after
        if after is not None:
            after = (after[0] + _SUFFIX[view], after[1])
        elif not (residents_only and view == "all"):
            after = _ASKED_OF[view]
        out[qid + _SUFFIX[view]] = suppression.Asked(how.required, after)
    return out


# A count went down since the last release (counts only grow while answers are kept): no later
# version can be proved safe against it, so none is released.
Shrunk = versions.Shrunk


@dataclass
class System:
    """The suppression input of a poll: every table of both views and of the rest, the
    respondents, their relations; ``snapshot`` its counts as JSON (what a release stores)."""

    tables: list[suppression.Table]
    respondents: suppression.Table
    asked: dict[str, suppression.Asked]
    differences: list[tuple[str, ...]]
    hierarchy: suppression.Hierarchy
    at_least_one: list[str] = field(default_factory=list)
    # Breakdown tables left out of the system (``system_of``): an alias's cells are those of
    # another table (table id → that id), and a set nobody in the poll belongs to is all 0.
    aliases: dict[str, str] = field(default_factory=dict)
    # Tables kept in the snapshot but not suppressed: the residents and the respondents by
    # channel while they equal the respondents (no business answered, one channel).
    shadow: list[suppression.Table] = field(default_factory=list)
    # The areas questions are split in by kind and channel (``split_areas``; None: all): an
    # alias of a split has cells only there.
    split_in: list[str] | None = None
    # The tables whose total is an area's main count (``suppress_poll``'s ``whole``); None:
    # the respondents' and the required questions asked of everyone (no business answered).
    whole: list[str] | None = None

    def snapshot(self) -> dict[str, Any]:
        tables = {t.question_id: t for t in (*self.tables, self.respondents, *self.shadow)}
        out = {name: versions.snapshot(t) for name, t in tables.items()}
        for alias, source in self.aliases.items():
            rows = versions.snapshot(tables[source])
            if self.split_in is not None:  # an alias of a split has its areas only
                rows = {code: row for code, row in rows.items() if code in self.split_in}
            out[alias] = rows
        return out

    def minus(self, before: Mapping[str, Any], at_least_one_before: Iterable[str]) -> System:
        """The responses added since ``before`` (a ``snapshot``), as a system of their own:
        every relation holds for them too, and counts only grow."""

        def less(table: suppression.Table) -> suppression.Table:
            # A release from before a table had its last options (the respondents before
            # businesses and organisations) counted none of them: ``versions.minus`` pads.
            return versions.minus(table, before.get(table.question_id, {}))

        if CHANNELS_TABLE not in before:
            before = _before_breakdowns(before)
        earlier = set(at_least_one_before)
        return System(
            [less(t) for t in self.tables],
            less(self.respondents),
            self.asked,
            self.differences,
            self.hierarchy,
            [c for c in self.at_least_one if c not in earlier],
            self.aliases,
            [less(t) for t in self.shadow],
            self.split_in,
            self.whole,
        )

    def suppress(
        self, k: int, hidden: Iterable[tuple[str, str, str | None]] = (), *, rules: bool = True
    ) -> Any:
        # Cells hidden before under an id that is an alias now are hidden with its source;
        # those of an area a table no longer has (an alias's buurten, where the table it
        # became has none: ``split_areas``) are published nowhere.
        rows = {t.question_id: t.rows for t in (*self.tables, self.respondents)}
        return suppression.suppress_poll(
            self.tables,
            self.hierarchy,
            k,
            respondents=self.respondents,
            asked=self.asked,
            at_least_one=self.at_least_one,
            differences=self.differences,
            hidden=[h for h in hidden if h[0] in rows and h[1] in rows[h[0]]],
            rules=rules,
            whole=self.whole,
        )

    def hidden_cells(self, safe: Any) -> list[tuple[str, str, str | None]]:
        cells = hidden_cells(safe, self.aliases)
        if self.split_in is None:
            return cells
        where = set(self.split_in)
        return [c for c in cells if c[0] not in self.aliases or c[1] in where]


def _before_breakdowns(before: Mapping[str, Any]) -> dict[str, Any]:
    """A snapshot released before issue 14, as a release with breakdowns would have stored it:
    every respondent was a resident in the app, so all participants and the app are the
    residents' figures, the respondents by channel all in the app."""
    out = dict(before)
    for table_id, rows in before.items():
        if table_id != "*" and not any(mark in table_id for mark in "@#~"):
            # Split tables as they are made now: not per buurt (``split_areas``).
            split = {code: row for code, row in rows.items() if level_of(code) != "buurt"}
            out[table_id + _SUFFIX["everyone"]] = split
            out[table_id + _SUFFIX["app"]] = split
    everyone = before.get("*", {})
    out[RESIDENTS_TABLE] = {code: row[:1] for code, row in everyone.items()}
    out[CHANNELS_TABLE] = {code: [row[0], row[0], 0, 0] for code, row in everyone.items()}
    return out


def present_sets(data: Aggregates) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The other kinds of participant (businesses, organisations) and the channels somebody in
    the poll answered as or through."""
    kinds: set[str] = set()
    channels: set[str] = set()
    for cells in data.base.get("*", {}).values():
        for stratum in cells:
            kinds.add(str(stratum[2]))
            channels.add(channel_of(stratum))
    return (
        tuple(k for k in OTHER_KINDS if k in kinds),
        tuple(c for c in CHANNELS if c in channels),
    )


def split_sets(data: Aggregates) -> tuple[list[str], dict[str, str], set[str]]:
    """Which sets of ``SETS`` get tables of their own, which are aliases of another (set →
    set) and which are all 0.

    A set nobody in the poll belongs to (no business answered, nobody on paper) has 0 in every
    cell: its tables are left out and published as 0 (a gemeente figure of 0 says that much).
    Then all participants are the residents (when no business or organisation answered), or
    one channel is all participants (when everyone answered through it), cell by cell: that
    table is the other one's alias, shown exactly as the other is. The system is then the one
    of a poll without breakdowns plus what is not 0, so a poll of residents in the app costs
    what it cost before the breakdowns (issue 14)."""
    kinds, channels = present_sets(data)
    real = ["all", "panel", "rest", *kinds]
    aliases: dict[str, str] = {}
    if kinds:
        real.append("everyone")
    else:
        aliases["everyone"] = "all"
    whole = aliases.get("everyone", "everyone")
    if len(channels) > 1:
        real += channels
    else:
        aliases.update({c: whole for c in channels})
    zeros = {k for k in OTHER_KINDS if k not in kinds} | {c for c in CHANNELS if c not in channels}
    return real, aliases, zeros


def split_areas(areas: list[str], buurt_splits: bool = False) -> list[str]:
    """The areas the questions are split by kind and by channel in: the gemeente, its wijken
    and regions, not its buurten (``buurt_splits``: a poll whose earlier release published a
    split per buurt, made before this, keeps its buurten, so that its versions stay
    comparable; ``published_buurt_splits``).

    A buurt's split is nearly always hidden (a buurt has few respondents, fewer still per
    kind or channel), and every split table per buurt multiplies the cells the suppression
    system and its audit solve: on a demo-sized poll with kinds and channels, splits per buurt
    made a first release 45 times as costly as the same poll without (docs/benchmarks.md,
    "Releases with breakdowns"). The respondents per kind and per channel stay per buurt."""
    if buurt_splits:
        return list(areas)
    return [c for c in areas if level_of(c) != "buurt"]


def _is_split(table_id: str) -> bool:
    return not table_id.startswith("*") and any(mark in table_id for mark in "#~")


def published_buurt_splits(documents: Mapping[str, Any]) -> bool:
    """Whether a stored release published a question's split by kind or channel per buurt
    (releases made before ``split_areas``, of polls where somebody was not a resident in the
    app)."""
    for doc in documents.values():
        for q in doc.get("questions", []):
            for split in ("by_kind", "by_channel"):
                for per_area in (q.get(split) or {}).values():
                    if any(level_of(code) == "buurt" for code in per_area):
                        return True
    return False


def without_buurt_splits(tables: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A stored snapshot without the buurt rows of its split tables: kept there by releases
    made before ``split_areas`` that published no split per buurt (the tables were aliases
    of the residents' own, or nothing was split), so nothing of them was shown."""
    return {
        name: (
            {code: row for code, row in rows.items() if level_of(code) != "buurt"}
            if _is_split(name)
            else rows
        )
        for name, rows in tables.items()
    }


def system_of(
    poll: Any,
    data: Aggregates,
    areas: list[str],
    at_least_one: list[str],
    *,
    buurt_splits: bool = False,
) -> System:
    questions = [q for q in poll.definition["questions"] if q["type"] in TABLED]
    real, aliases, _ = split_sets(data)
    in_splits = split_areas(areas, buurt_splits)
    kinds = [k for k in OTHER_KINDS if k in real]
    channels = [c for c in CHANNELS if c in real]
    whole = aliases.get("everyone", "everyone")
    tables: list[suppression.Table] = []
    shadow: list[suppression.Table] = []
    for table in breakdown_tables(data, areas):
        needed = kinds if table.question_id == RESIDENTS_TABLE else channels
        (tables if needed else shadow).append(table)
    asked = {t.question_id: BREAKDOWN_ASKED[t.question_id] for t in tables}
    differences: list[tuple[str, ...]] = []
    for view in real:
        where = areas if view in ("all", "panel", "rest") else in_splits
        tables += [question_table(q, data, where, view) for q in questions]
        asked.update(asked_for(questions, view, residents_only=not kinds))
    for q in questions:
        qid = q["id"]
        # all (residents) = panel + rest; all participants = residents + businesses +
        # organisations = app + link + paper: cell by cell, every one a relation of the system.
        differences.append((qid, qid + _SUFFIX["panel"], qid + _SUFFIX["rest"]))
        if kinds:
            differences.append(
                (qid + _SUFFIX["everyone"], qid, *(qid + _SUFFIX[kind] for kind in kinds))
            )
        if channels:
            differences.append(
                (qid + _SUFFIX[whole], *(qid + _SUFFIX[channel] for channel in channels))
            )
    regions = regions_of(poll)
    hierarchy = suppression.Hierarchy(
        {c: parent_of(c) for c in areas if c not in regions},
        {c: list(r["buurt_codes"]) for c, r in regions.items() if c in areas},
    )
    table_aliases = {
        q["id"] + _SUFFIX[alias]: q["id"] + _SUFFIX[source]
        for alias, source in aliases.items()
        for q in questions
    }
    main_totals = None
    if kinds:
        # The residents are the main figures: their count, hidden, hides the area. Every
        # other total hides its own row only — all participants (the respondents' total) is
        # a breakdown's figure, and a question's row goes alone (measured: more of the
        # residents' figures shown, and faster, than with the required questions hiding the
        # area too; docs/benchmarks.md, "Releases with breakdowns").
        main_totals = [RESIDENTS_TABLE]
    return System(
        tables,
        respondents_table(data, areas, bool(kinds)),
        asked,
        differences,
        hierarchy,
        at_least_one,
        table_aliases,
        shadow,
        in_splits,
        main_totals,
    )


def small_splits(system: System, k: int) -> list[tuple[str, str, str | None]]:
    """The split by channel hidden whole where one of its groups is small: in every area where
    the respondents of a channel somebody answered through number 1..k-1, every channel's count
    (``CHANNELS_TABLE``) and every question's row per channel there (docs/suppression.md,
    "What is hidden when a split's group is small").

    Left to the rules, a channel group of a few people in one buurt (five paper forms) is
    protected by whatever cell the line rule and the audit reach first, and the respondents per
    channel share their total with the area's respondents: the repair ends on that total and
    hides the area, main figures and all, in the buurt's wijk and the gemeente. Hidden whole
    here, the split leaves every group of that area unknown (any of them may be 0, the others
    adding up to the shown figures), and the area's main figures are as they would be without
    the split. Areas where every channel has 0 or at least k respondents show the split."""
    tables = {t.question_id: t for t in system.tables}
    per_channel = tables.get(CHANNELS_TABLE)
    if per_channel is None:  # one channel: no split by channel
        return []
    channels = [
        c
        for c in per_channel.options
        if any(t.endswith(_SUFFIX[c]) for t in tables if t != CHANNELS_TABLE)
    ]
    split_tables = [
        t for t in tables if t != CHANNELS_TABLE and any(t.endswith(_SUFFIX[c]) for c in channels)
    ]
    out: list[tuple[str, str, str | None]] = []
    for code, row in per_channel.rows.items():
        if not any(0 < row.counts.get(c, 0) < k for c in channels):
            continue
        out += [(CHANNELS_TABLE, code, c) for c in channels]
        out += [(t, code, None) for t in split_tables if code in tables[t].rows]
    return out


def small_kinds(system: System, k: int) -> list[tuple[str, str, str | None]]:
    """The split by kind hidden whole where one of its groups is small: in every area where
    the businesses or the organisations that answered number 1..k-1, all participants (the
    respondents' row: its total with every kind's count), every question's row per other kind
    and of all participants there, and the split by channel of that area (its channels add up
    to all participants) — docs/suppression.md, "What is hidden when a split's group is small".

    The residents' figures of the area stay as they would be without the businesses: their
    count (``RESIDENTS_TABLE``) and their questions are the area's main figures, and all
    participants minus residents — the small group — is then unknown. Left to the rules, the
    group was protected by whatever the line rule reached first, and the repairs climbed to
    the residents' figures or to the wijk's and the gemeente's figures per kind."""
    people = system.respondents
    tables = {t.question_id: t for t in system.tables}
    kinds = [
        kind
        for kind in OTHER_KINDS
        if kind in people.options and any(t.endswith(_SUFFIX[kind]) for t in tables)
    ]
    if not kinds:  # only residents answered: no split by kind
        return []
    marks = [_SUFFIX[kind] for kind in (*kinds, "everyone")]
    per_channel = tables.get(CHANNELS_TABLE)
    if per_channel is not None:  # several channels: a split by channel
        marks += [_SUFFIX[c] for c in per_channel.options]
    split_tables = [t for t in tables if t != CHANNELS_TABLE and any(t.endswith(m) for m in marks)]
    out: list[tuple[str, str, str | None]] = []
    for code, row in people.rows.items():
        if not any(0 < row.counts.get(kind, 0) < k for kind in kinds):
            continue
        out.append(("*", code, None))
        if per_channel is not None:
            out += [(CHANNELS_TABLE, code, c) for c in per_channel.options]
        out += [(t, code, None) for t in split_tables if code in tables[t].rows]
    return out


def hidden_cells(
    safe: Any, aliases: Mapping[str, str] | None = None
) -> list[tuple[str, str, str | None]]:
    """The published cells a suppression result hides: (table id, area, option or None); an
    alias's (``System.aliases``) are its source's, under its own id."""
    out = []
    by_id = {t.question_id: t for t in safe.tables}
    named = [(t.question_id, t) for t in [*safe.tables, safe.respondents]]
    named += [(alias, by_id[source]) for alias, source in (aliases or {}).items()]
    for name, table in named:
        if name.endswith(_SUFFIX["rest"]):
            continue  # never published: nothing to carry to the next version
        for area, option in table.reasons:
            out.append((name, area, option))
    return sorted(out, key=lambda c: (c[0], c[1], c[2] or ""))


# -- releases ------------------------------------------------------------------------------


@dataclass
class Release:
    """A released version: its documents per view and what the next release must respect."""

    seq: int
    k: int
    final: bool
    tables: dict[str, Any]
    hidden: list[tuple[str, str, str | None]]
    at_least_one: list[str]
    documents: dict[str, dict[str, Any]]


def next_release(
    poll: Any,
    data: Aggregates,
    k: int,
    previous: Release | None,
    *,
    closed: bool,
    held: list[str] | None = None,
) -> Release | None:
    """The next version of a poll's results, or None when it must wait.

    The first version is suppressed on its own. Every later one hides at least what the
    previous one hid, and the responses added since — as a table of their own, with every
    relation — must pass the protection test with that pattern (docs/suppression.md, "Results
    over time"). While the poll is open, a version that would have to hide more is not
    released (the previous one is served until enough has come in); once the poll has closed,
    the final version hides what it must. Counts that went down (nothing removes answers, so
    this would be an operator's doing) release nothing either; why goes into ``held`` (or the
    log), so this can run in a thread of its own without touching the process's log locks.
    """
    data = with_regions(poll, data)
    areas, at_least_one = listed_areas(poll, data)
    if previous is not None:
        k = previous.k
        areas = sorted(
            set(areas) | {c for t in previous.tables.values() for c in t},
            key=lambda c: (len(c), c),
        )
        at_least_one = sorted(set(at_least_one) | set(previous.at_least_one))
    buurt_splits = previous is not None and published_buurt_splits(previous.documents)
    system = system_of(poll, data, areas, at_least_one, buurt_splits=buurt_splits)
    # Where a channel's group is small, its split goes whole: never the area's main figures.
    splits_hidden = small_splits(system, k) + small_kinds(system, k)
    added = None
    if previous is not None:
        try:
            before = previous.tables if buurt_splits else without_buurt_splits(previous.tables)
            added = system.minus(before, previous.at_least_one)
        except Shrunk as exc:
            reason = f"results of poll {poll.id} not released: {exc}"
            if held is None:
                log.warning("%s", reason)
            else:
                held.append(reason)
            return None
    released = versions.next_pattern(
        system,
        added,
        k,
        previous.hidden if previous is not None else (),
        final=closed,
        forced=splits_hidden,
    )
    if released is None:
        return None
    safe, hidden = released
    splits = question_splits(poll, data, safe, areas)
    documents = {view: build_view(poll, data, k, view, safe, areas, splits) for view in VIEWS}
    seq = 1 if previous is None else previous.seq + 1
    for doc in documents.values():
        doc["version"] = {"seq": seq, "final": closed}
    return Release(seq, k, closed, system.snapshot(), hidden, at_least_one, documents)


def _release_of(row: ResultRelease | None) -> Release | None:
    if row is None:
        return None
    return Release(
        row.seq,
        row.k,
        row.final,
        row.tables["tables"],
        [tuple(h) for h in row.hidden],
        row.tables["at_least_one"],
        row.document,
    )


def inline(work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return work(*args, **kwargs)


def release(
    session: Session,
    *,
    poll_id: str,
    municipality_code: str,
    k: int,
    offload: Callable[..., Any] = inline,
) -> dict:
    """The documents (per view) of the poll's current released version, releasing a new one
    when the counters changed and the rule allows. Call inside ``begin_snapshot(read_only=
    False)``; a concurrent release of the same poll makes the insert fail (serialization), and
    the caller runs it again. ``offload(fn, *args)`` runs the computation (suppression,
    raking: seconds at a million responses): the service passes eventlet's ``tpool.execute``,
    so the process goes on answering while it runs."""
    poll = load_poll(session, municipality_code=municipality_code, poll_id=poll_id)
    row = session.get(ResultRelease, poll.id)
    previous = _release_of(row)
    if row is not None and row.results_version == poll.results_version:
        return row.document
    # After close, answers submitted before it may still be counted: each is one more final
    # version of the same chain, released like any other.
    closed = poll.closed_at is not None
    frozen = poll.k if poll.k is not None else k
    data = read_aggregates(session, poll)
    held: list[str] = []
    new = offload(next_release, poll, data, frozen, previous, closed=closed, held=held)
    for reason in held:
        log.warning("%s", reason)
    if new is None:
        return row.document  # type: ignore[union-attr]  # previous exists when None
    values = {
        "seq": new.seq,
        "k": new.k,
        "final": new.final,
        "results_version": poll.results_version,
        "released_at": datetime.now().astimezone(),
        "tables": {"tables": new.tables, "at_least_one": new.at_least_one},
        "hidden": [list(h) for h in new.hidden],
        "document": new.documents,
    }
    session.execute(
        insert(ResultRelease)
        .values(poll_id=poll.id, **values)
        .on_conflict_do_update(index_elements=["poll_id"], set_=values)
    )
    if poll.k is None:
        poll.k = new.k
    return new.documents


def compute(
    session: Session, *, poll_id: str, municipality_code: str, k: int, view: str = DEFAULT_VIEW
) -> dict[str, Any]:
    """The current released document of one view (see ``release``)."""
    return release(session, poll_id=poll_id, municipality_code=municipality_code, k=k)[view]


def build(poll: Any, data: Aggregates, k: int, view: str = DEFAULT_VIEW) -> dict[str, Any]:
    """One results document computed on its own (a first release), for tests and benchmarks."""
    new = next_release(poll, data, k, None, closed=False)
    assert new is not None
    return new.documents[view]


# -- the document --------------------------------------------------------------------------


def build_view(
    poll: Any,
    data: Aggregates,
    k: int,
    view: str,
    safe: Any,
    areas: list[str],
    splits: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The results document of one view from the suppressed system: figures, weighting.
    ``splits``: question id → its ``by_kind`` and ``by_channel`` (``question_splits``; the
    same in both views), computed here when not given."""
    kinds = set(VIEWS[view])
    suffix = _SUFFIX[view]
    everyone = {
        code: {s: n for s, n in data.base.get("*", {}).get(code, {}).items() if s[2] in kinds}
        for code in areas
    }
    people = safe.respondents.rows
    # Raked per wijk, and per region to its own margins (the sums of its buurten's).
    weights = {
        wijk: weighting.rake(_cells(everyone[wijk]), data.margins.get(wijk))
        for wijk in areas
        if wijk.startswith(("WK", "RG"))
    }
    populations = _populations(weights, data.margins, areas)  # regions' are shown only

    invited_total: dict[str, int] = defaultdict(int)
    for buurt, n in data.invited.items():
        code: str | None = buurt
        while code is not None:
            invited_total[code] += n
            code = parent_of(code)
    for region_code, region in regions_of(poll).items():
        members = dict.fromkeys(region["buurt_codes"])
        invited_total[region_code] = sum(data.invited.get(b, 0) for b in members)

    tables = {t.question_id: t for t in safe.tables}
    residents = tables.get(RESIDENTS_TABLE)  # only when businesses or organisations answered

    def shown_respondents(code: str) -> int | None:
        row = people[code]
        return row.total if view == "all" else row.counts.get(PANEL)

    def main_hidden(code: str) -> bool:
        """Whether the area's main figures (the residents') are hidden: with businesses or
        organisations, all participants may be hidden where the residents are shown."""
        if view == "all" and residents is not None:
            return residents.rows[code].total is None
        return shown_respondents(code) is None

    present = present_sets(data)[1]
    if splits is None:
        splits = question_splits(poll, data, safe, areas)
    area_rows = []
    for code in areas:
        respondents = shown_respondents(code)
        invited = invited_total.get(code)
        area_rows.append(
            {
                "code": code,
                "level": level_of(code),
                "parent_code": parent_of(code),
                "name": (data.margins.get(code) or {}).get("name"),
                "respondents": respondents,
                "self_selected": people[code].counts.get(SELF_SELECTED),
                "recently_moved": people[code].counts.get(RECENTLY_MOVED),
                "kinds": area_kinds(code, people, tables),
                "channels": area_channels(code, people, tables, present),
                # Invitations are shown only beside shown respondents: with a hidden count they
                # would bound it (respondents ≤ invited).
                "invited": invited if respondents is not None else None,
                "response_rate": (
                    round(100 * respondents / invited, 1)
                    if respondents is not None and invited
                    else None
                ),
                "suppressed": main_hidden(code),
            }
        )
    questions = []
    for q in poll.definition["questions"]:
        if q["type"] in COUNTED:
            questions.append(
                question_results(
                    q,
                    tables[q["id"] + suffix],
                    _only(data.base.get(q["id"], {}), kinds),
                    _only(data.chosen.get(q["id"], {}), kinds),
                    areas,
                    weights,
                    populations,
                )
            )
        elif q["type"] == "open_text":
            questions.append(
                open_answers(poll, q, tables[q["id"] + suffix], data.texts.get(q["id"], {}), view)
            )
        if q["id"] in splits:
            questions[-1].update(splits[q["id"]])
    return {
        "poll_id": str(poll.id),
        "k": k,
        "respondents": view,
        "areas": area_rows,
        "questions": questions,
        "weighting": {
            wijk: weighting_summary(result, populations.get(wijk))
            for wijk, result in weights.items()
            if not main_hidden(wijk)
        },
        "margins_year": data.margins_year,
    }


def area_kinds(
    code: str, people: Mapping[str, Any], tables: Mapping[str, Any]
) -> dict[str, int | None]:
    """Respondents of an area per kind of participant (None: suppressed)."""
    residents = tables.get(RESIDENTS_TABLE)  # none when only residents answered
    if residents is None:
        total = people[code].total
        return {RESIDENT: total, **{kind: None if total is None else 0 for kind in OTHER_KINDS}}
    return {
        RESIDENT: residents.rows[code].total,
        **{kind: people[code].counts.get(kind) for kind in OTHER_KINDS},
    }


def area_channels(
    code: str, people: Mapping[str, Any], tables: Mapping[str, Any], present: tuple[str, ...]
) -> dict[str, int | None]:
    """Respondents of an area per channel (None: suppressed); when all answered through one
    channel, its count is the area's respondents."""
    if CHANNELS_TABLE in tables:
        return dict(tables[CHANNELS_TABLE].rows[code].counts)
    if people[code].total is None:
        return dict.fromkeys(CHANNELS)
    return {c: people[code].total if c in present else 0 for c in CHANNELS}


# The breakdowns of a question: per kind of participant (residents, businesses, organisations,
# and all participants together) and per channel. Unweighted (CBS margins are of persons, and
# a split by channel is not a sample of anything), each share with its Wilson interval on n.
KIND_SETS = {
    RESIDENT: "all",
    ONDERNEMER: ONDERNEMER,
    ORGANISATIE: ORGANISATIE,
    EVERYONE: "everyone",
}


def question_splits(
    poll: Any, data: Aggregates, safe: Any, areas: list[str]
) -> dict[str, dict[str, Any]]:
    """Question id → {"by_kind": kind → area → figures, "by_channel": channel → area →
    figures}, from the suppressed tables of those sets (``SETS``).

    A split lists the groups somebody in the poll belongs to, and only when there are two or
    more: with one kind of participant (residents) or one channel, its one group would be the
    area's own (unweighted) figures again — a poll of residents in the app has empty splits,
    and a document no larger than before. A group left out has 0 everywhere (the area
    ``kinds`` and ``channels`` say so)."""
    tables = {t.question_id: t for t in safe.tables}
    _, aliases, _ = split_sets(data)
    kinds, channels = present_sets(data)
    kind_groups = [RESIDENT, *kinds, EVERYONE] if kinds else []
    channel_groups = list(channels) if len(channels) > 1 else []

    def table(q: Mapping[str, Any], name: str) -> suppression.SuppressedTable:
        while name in aliases:
            name = aliases[name]
        return tables[q["id"] + _SUFFIX[name]]

    out: dict[str, dict[str, Any]] = {}
    for q in poll.definition["questions"]:
        if q["type"] not in TABLED:
            continue
        qid = q["id"]
        # The residents' group is the residents' own table: split where the others are.
        where = [c for c in areas if c in table(q, "everyone").rows] if kind_groups else areas
        by_kind = {}
        for kind in kind_groups:
            texts = data.kind_texts.get(kind, {}).get(qid, {}) if kind in OTHER_KINDS else None
            by_kind[kind] = unweighted_results(q, table(q, KIND_SETS[kind]), where, texts, poll)
        by_channel = {
            channel: unweighted_results(q, table(q, channel), areas) for channel in channel_groups
        }
        out[qid] = {"by_kind": by_kind, "by_channel": by_channel}
    return out


def unweighted_results(
    q: Mapping[str, Any],
    safe: suppression.SuppressedTable,
    areas: list[str],
    texts: Mapping[str, tuple[int, list[str]]] | None = None,
    poll: Any = None,
) -> dict[str, Any]:
    """One question's figures per area for one breakdown: respondents, per option the count,
    percentage and its 95% Wilson interval (docs/methods.md, "Businesses and organisations"),
    the mean of a scale; an open question its count, and ``texts`` (a business's or an
    organisation's answers) per wijk where that count is shown, as for residents."""
    per_area: dict[str, Any] = {}
    for code in areas:
        if code not in safe.rows:
            continue  # no split there (``split_areas``: not per buurt)
        row = safe.rows[code]
        if row.total is None:
            per_area[code] = {"suppressed": True}
            continue
        entry: dict[str, Any] = {"respondents": row.total}
        if q["type"] == "open_text":
            if texts is not None and code.startswith("WK") and row.total:
                items = texts.get(code, (0, []))[1]
                entry["texts"] = suppression.shuffle_texts(items, f"{poll.id}:{q['id']}")
        else:
            entry["options"] = [
                {"option": opt, **share_figures(row.counts.get(opt), row.total)}
                for opt in safe.options
            ]
            if q["type"] in SCALES:
                entry["mean"] = _mean(row.counts, row.total)
        per_area[code] = entry
    return per_area


def share_figures(count: int | None, total: int) -> dict[str, Any]:
    """An unweighted share: count, percentage and the 95% Wilson interval on n = ``total``
    (None where the count is hidden or nobody answered)."""
    if count is None or not total:
        return {"count": count, "percent": None, "ci_low": None, "ci_high": None}
    low, high = weighting.wilson_interval(count / total, total)
    return {
        "count": count,
        "percent": _percent(count, total),
        "ci_low": round(100 * low, 1),
        "ci_high": round(100 * high, 1),
    }


def _cells(strata: Mapping[Any, int]) -> dict[weighting.Cell, int]:
    """Strata (age, sex, kind) summed over kind: the cells weighting works on."""
    out: dict[weighting.Cell, int] = defaultdict(int)
    for s, n in strata.items():
        out[(s[0], s[1])] += n
    return dict(out)


def _only(per_area: Mapping[str, Mapping[Any, int]], kinds: set[str]) -> dict[str, dict]:
    """Counters of the given kinds only, per area, with the kind summed out of the stratum."""
    out: dict[str, dict] = {}
    for code, cells in per_area.items():
        merged: dict = defaultdict(int)
        for key, n in cells.items():
            if isinstance(key[1], str) and isinstance(key[0], tuple):  # ((age, sex, kind), option)
                stratum, option = key
                if stratum[2] in kinds:
                    merged[((stratum[0], stratum[1]), option)] += n
            elif key[2] in kinds:
                merged[(key[0], key[1])] += n
        out[code] = dict(merged)
    return out


@dataclass(frozen=True)
class Population:
    """A wijk's 15+ population as the gemeente figure weighs it, and how it was obtained."""

    value: float | None
    note: str | None = None


def _populations(
    weights: Mapping[str, weighting.RakeResult],
    margins: Mapping[str, Mapping[str, Any]],
    areas: list[str],
) -> dict[str, Population]:
    """Each wijk's 15+ population. When CBS has no figure (``.``) for one of its 15+ age bands,
    the missing part is estimated from the gemeente's age profile: the known bands' share of the
    gemeente's 15+ population scales them up; the figure then carries a note."""
    gemeente = next((c for c in areas if c.startswith("GM")), None)
    gm_age = (margins.get(gemeente) or {}).get("age") or {} if gemeente else {}
    out = {}
    for wijk, result in weights.items():
        if result.population is not None:
            out[wijk] = Population(float(result.population))
            continue
        age = (margins.get(wijk) or {}).get("age") or {}
        known = [b for b in weighting.RAKED_AGE_BANDS if age.get(b) is not None]
        missing = [b for b in weighting.RAKED_AGE_BANDS if b not in known]
        gm_known = sum(gm_age.get(b) or 0 for b in known)
        gm_bands = [gm_age.get(b) for b in weighting.RAKED_AGE_BANDS]
        gm_all = [v for v in gm_bands if v is not None]
        if known and gm_known and len(gm_all) == len(gm_bands):
            estimate = sum(age[b] for b in known) * sum(gm_all) / gm_known
            out[wijk] = Population(
                estimate,
                f"15+ population of {wijk} estimated: no CBS figure for age "
                f"{', '.join(missing)}, taken from the gemeente's age profile",
            )
        else:
            out[wijk] = Population(
                None, f"no 15+ population for {wijk}: not in the gemeente figure"
            )
    return out


def visible_count(n: int, k: int) -> int | None:
    """A count shown beside results: 0 or at least k, never a small group."""
    return n if n == 0 or n >= k else None


def question_results(
    q: Mapping[str, Any],
    safe: suppression.SuppressedTable,
    base: dict,
    chosen: dict,
    areas: list[str],
    weights: dict[str, weighting.RakeResult],
    populations: Mapping[str, Population] | None = None,
) -> dict[str, Any]:
    options = list(safe.options)
    populations = populations or {}
    per_area: dict[str, dict[str, Any]] = {}
    for code in areas:
        row = safe.rows[code]
        if row.total is None:  # a hidden area, or this question's row only: nothing shown
            per_area[code] = {"suppressed": True}
            continue
        shares, notes = _weighted(code, base, chosen, weights, options, populations)
        per_area[code] = {
            "respondents": row.total,
            "effective_n": round(shares.effective_n, 1) if shares else None,
            "options": [
                {
                    "option": opt,
                    "count": row.counts.get(opt),
                    "percent": _percent(row.counts.get(opt), row.total),
                    **_weighted_figures(shares, opt, row.counts.get(opt) is None),
                }
                for opt in options
            ],
            "weighting_notes": notes,
            **({"mean": _mean(row.counts, row.total)} if q["type"] in SCALES else {}),
        }
    return {
        "id": q["id"],
        "type": q["type"],
        "text": q["text"],
        "options": options,
        "areas": per_area,
    }


def _percent(count: int | None, total: int | None) -> float | None:
    return round(100 * count / total, 1) if count is not None and total else None


def _wijk_of(code: str) -> str | None:
    """The area whose weights a figure uses: a wijk its own, a buurt its wijk's, a region its
    own (raked to the sum of its buurten's margins)."""
    if code.startswith(("WK", "RG")):
        return code
    return parent_of(code) if code.startswith("BU") else None


def _notes_of(result: weighting.RakeResult) -> list[str]:
    """What a reader of a weighted figure must know: weights that miss the margins."""
    notes = []
    if not result.converged:
        notes.append(
            f"weights miss the CBS margins by up to {result.max_margin_error:.1%} "
            "(the raking did not converge)"
        )
    return notes + [n for n in result.notes if n not in notes]


def _weighted(
    code: str,
    base: dict,
    chosen: dict,
    weights: dict[str, weighting.RakeResult],
    options: list[str],
    populations: Mapping[str, Population],
) -> tuple[weighting.Shares | None, list[str]]:
    if code.startswith("GM"):
        return _gemeente_shares(code, base, chosen, weights, options, populations)
    wijk = _wijk_of(code)
    result = weights.get(wijk) if wijk else None
    cells = base.get(code, {})
    if result is None or any(c not in result.weights for c in cells):
        return None, []
    shares = weighting.weighted_share(
        chosen.get(code, {}), result.weights, base=cells, options=options
    )
    return shares, [f"{wijk}: {n}" for n in _notes_of(result)]


def _gemeente_shares(
    code: str,
    base: dict,
    chosen: dict,
    weights: dict[str, weighting.RakeResult],
    options: list[str],
    populations: Mapping[str, Population],
) -> tuple[weighting.Shares | None, list[str]]:
    """Wijk by wijk: each wijk's respondents stand for its 15+ population (estimated where a
    CBS figure is missing, see ``_populations``); a wijk without one is left out, with a note."""
    combined_counts: dict[tuple[Any, Hashable], int] = {}
    combined_base: dict[Any, int] = {}
    combined_weights: dict[Any, float] = {}
    notes: list[str] = []
    for wijk, result in weights.items():
        if not wijk.startswith("WK" + code[2:6]) or not base.get(wijk):
            continue
        population = populations.get(wijk) or Population(None)
        if population.note:
            notes.append(population.note)
        if population.value is None or not result.n:
            continue
        notes += [f"{wijk}: {n}" for n in _notes_of(result)]
        scale = population.value / result.n
        for cell, n in base.get(wijk, {}).items():
            if cell not in result.weights:
                return None, notes
            combined_base[(wijk, cell)] = n
            combined_weights[(wijk, cell)] = result.weights[cell] * scale
        for (cell, opt), n in chosen.get(wijk, {}).items():
            combined_counts[((wijk, cell), opt)] = n
    if not combined_base:
        return None, notes
    shares = weighting.weighted_share(
        combined_counts, combined_weights, base=combined_base, options=options
    )
    return shares, notes


def _weighted_figures(shares: weighting.Shares | None, option: str, hidden: bool) -> dict[str, Any]:
    if shares is None or hidden:
        return {"weighted_percent": None, "ci_low": None, "ci_high": None}
    share = next((s for s in shares.options if s.option == option), None)
    # weighted_share leaves the interval out exactly when it leaves the percentage out.
    if (
        share is None
        or share.weighted_percent is None
        or share.ci_low is None
        or share.ci_high is None
    ):
        return {"weighted_percent": None, "ci_low": None, "ci_high": None}
    return {
        "weighted_percent": round(share.weighted_percent, 1),
        "ci_low": round(share.ci_low, 1),
        "ci_high": round(share.ci_high, 1),
    }


def _mean(counts: dict[str, int | None], total: int) -> float | None:
    """Mean of the numeric answers, when none of their counts is hidden."""
    numeric = {opt: n for opt, n in counts.items() if opt != "dont_know"}
    shown = {opt: n for opt, n in numeric.items() if n is not None}
    if len(shown) < len(numeric):
        return None
    n = sum(shown.values())
    return round(sum(int(opt) * c for opt, c in shown.items()) / n, 2) if n else None


def weighting_summary(
    result: weighting.RakeResult, population: Population | None = None
) -> dict[str, Any]:
    return {
        "method": result.method,
        "converged": result.converged,
        "iterations": result.iterations,
        "max_margin_error": round(result.max_margin_error, 8),
        "trimmed": result.trimmed,
        "effective_n": round(result.effective_n, 1),
        "dimensions": list(result.dimensions),
        "population_15_plus": (
            round(population.value) if population and population.value is not None else None
        ),
        "notes": list(result.notes) + ([population.note] if population and population.note else []),
    }


def open_answers(
    poll: Any,
    q: Mapping[str, Any],
    safe: suppression.SuppressedTable,
    texts: dict[str, tuple[int, list[str]]],
    view: str,
) -> dict[str, Any]:
    """Per area, how many answered the open question (suppressed like any count); the answers
    themselves per wijk, only where that wijk's count is shown (so at least k, or 0), shuffled,
    no times, at most ``OPEN_TEXTS_SHOWN`` of them. Listed in the ``all`` view only: the texts
    carry no kind of respondent."""
    per_area: dict[str, Any] = {}
    for code, row in safe.rows.items():
        if row.total is None:
            per_area[code] = {"suppressed": True}
            continue
        entry: dict[str, Any] = {"respondents": row.total}
        if view == "all" and code.startswith("WK") and row.total:
            items = texts.get(code, (0, []))[1]
            entry["texts"] = suppression.shuffle_texts(items, f"{poll.id}:{q['id']}")
        per_area[code] = entry
    return {"id": q["id"], "type": q["type"], "text": q["text"], "areas": per_area}
