"""Reactions over time (docs/suppression.md, "Reactions over time"): a staff member who reads a
feedback item's reaction figures before and after a change — one new reaction, a reaction
replaced (useful → not useful), a resident who left — must learn no small figure from the two
readings: neither a hidden count of either reading nor the change between them.

The reader is a linear-programming attacker (tests/support/attacker.py) who writes both
readings as one programme: per reading, n = useful + not useful in every area, buurten → wijk
→ gemeente, every listed area ≥ 1, every shown figure at its value; and the change between the
readings as the difference of the two (any change is possible: reactions are added, replaced
and erased). A hidden figure of 1..k-1 proved to lie there is a leak, and so is a change of
1..k-1 (up or down) proved to be one: "one more useful reaction in wijk X".
"""

from __future__ import annotations

import math
import random

from services.feedback.reactions import Version, next_version, summarize
from tests.support.attacker import Programme, attack

GM = "GM0344"
K = 10
WIJKEN = {f"WK0344{w:02d}": [f"BU0344{w:02d}{b:02d}" for b in range(1, 4)] for w in (1, 2)}
BUURTEN = [b for bs in WIJKEN.values() for b in bs]
FAMILIES = (("n", "n"), ("u", "useful"), ("v", "not_useful"))


def _wijk(buurt: str) -> str:
    return "WK" + buurt[2:8]


def _base(seed: int = 1) -> list[tuple[str, bool]]:
    """(buurt, useful) per resident: two wijken of about 25 and 35 reactions, buurten from a
    few to twenty."""
    rng = random.Random(seed)
    sizes = [3, 4, 18, 12, 15, 8]
    return [(b, rng.random() < 0.7) for b, n in zip(BUURTEN, sizes, strict=True) for _ in range(n)]


def _rows(reactions: list[tuple[str, bool]]) -> list[tuple[str, str, bool, None]]:
    return [(_wijk(b), b, useful, None) for b, useful in reactions]


def _served(reactions: list[tuple[str, bool]], previous: Version | None) -> Version:
    """What a staff read serves: a new version when the rule allows, else the previous one."""
    new = next_version(_rows(reactions), K, previous, GM)
    if new is None:
        assert previous is not None
        return previous
    return new


def _unversioned(reactions: list[tuple[str, bool]]) -> Version:
    """A read as it was before versions: the current reactions suppressed on their own."""
    view = summarize(_rows(reactions), K, GM)
    first = next_version(_rows(reactions), K, None, GM)
    assert first is not None
    return Version(first.seq, K, first.counts, first.hidden, first.at_least_one, view)


def _shown(document: dict) -> dict[str, dict]:
    shown = {a["area_code"]: a for a in document["per_area"] if not a.get("suppressed")}
    shown[GM] = {
        "n": document["n"],
        "useful": document["useful"],
        "not_useful": document["not_useful"],
    }
    return shown


def _reader(versions: list[Version]) -> tuple[Programme, list, set, dict]:
    prog = Programme()
    figures, known, truth = [], set(), {}
    for t, version in enumerate(versions):
        listed = {a["area_code"] for a in version.document["per_area"]}
        areas = {GM: None, **{c: (GM if c.startswith("WK") else _wijk(c)) for c in listed}}
        for code, parent in areas.items():
            prog.equal({(t, "n", code): 1, (t, "u", code): -1, (t, "v", code): -1})
            if parent is not None:
                prog.at_least((t, "n", code), 1)
            kids = [c for c, p in areas.items() if p == code]
            for family, _ in FAMILIES:
                figures.append((t, family, code))
                n, u, v = version.counts.get(code, [0, 0, 0])
                truth[(t, family, code)] = {"n": n, "u": u, "v": v}[family]
                if kids:
                    prog.equal({(t, family, code): 1, **{(t, family, c): -1 for c in kids}})
        for code, area in _shown(version.document).items():
            for family, name in FAMILIES:
                if area.get(name) is not None:
                    prog.equal({(t, family, code): 1}, area[name])
                    known.add((t, family, code))
    return prog, figures, known, truth


def _small_changes(prog: Programme, first: Version, second: Version) -> list[tuple[str, str]]:
    """The changes between the two readings (per area and figure) the reader proves to be
    1..k-1 up or down."""
    out = []
    codes = {a["area_code"] for a in first.document["per_area"]} | {GM}
    for code in sorted(codes):
        for family, _ in FAMILIES:
            up = {(1, family, code): 1, (0, family, code): -1}
            down = {(0, family, code): 1, (1, family, code): -1}
            high = _capped_max(prog, up)
            low = -_capped_max(prog, down)
            if (1 <= low and high <= K - 1) or (-(K - 1) <= low and high <= -1):
                out.append((family, code))
    return out


def _capped_max(prog: Programme, terms: dict) -> int:
    """The largest value of ``terms`` over integer tables, capped at k (reaching k is all
    that matters); k when every table has it above k (the capped programme is then empty)."""
    if prog.extreme(terms, 1) > K - 1e-6:
        return K
    return math.floor(prog.integer_extreme(terms, -1, K) + 1e-6)


def _leaks(first: Version, second: Version) -> list:
    prog, figures, known, truth = _reader([first, second])
    verdict = attack(prog, figures, known, truth, K)
    return verdict.pinned + verdict.proved + _small_changes(prog, first, second)


def _changes() -> dict[str, list[tuple[str, bool]]]:
    base = _base()
    added = [*base, ("BU03440201", False)]
    replaced = list(base)
    i = next(i for i, (b, useful) in enumerate(base) if b == "BU03440103" and useful)
    replaced[i] = ("BU03440103", False)
    erased = base[:i] + base[i + 1 :]
    return {"+1": added, "replaced": replaced, "erased": erased}


def test_two_readings_around_one_change_give_nothing_away():
    """Regression: reactions were suppressed one reading at a time, so a read before and after
    one new reaction (or a replaced or erased one) showed the gemeente's and the wijk's counts
    move by one: that reaction's wijk and whether it found the feedback useful. Now the second
    read serves the same version, and the reader learns nothing."""
    first = _served(_base(), None)
    for name, after in _changes().items():
        second = _served(after, first)
        assert second.seq == first.seq, name
        assert _leaks(first, second) == [], name


def test_the_reader_catches_readings_without_versions():
    """The same reader against readings suppressed one at a time (as before versions): every
    one of the three changes is read off the two readings."""
    first = _unversioned(_base())
    for name, after in _changes().items():
        assert _leaks(first, _unversioned(after)) != [], name


def test_every_pair_of_released_versions_cannot_be_differenced():
    """Random histories of reactions (mostly new ones, some replaced, some erased), read after
    every change: every pair of versions served (not only consecutive ones) is attacked; new
    versions do come (the rule does not freeze the figures for good)."""
    pairs = released = 0
    for seed in range(4):
        rng = random.Random(seed)
        reactions = _base(seed)
        served = [_served(reactions, None)]
        for _ in range(120):
            roll = rng.random()
            if roll < 0.08 and reactions:
                i = rng.randrange(len(reactions))
                reactions[i] = (reactions[i][0], not reactions[i][1])
            elif roll < 0.12 and reactions:
                reactions.pop(rng.randrange(len(reactions)))
            else:
                reactions.append((rng.choice(BUURTEN), rng.random() < 0.7))
            version = _served(reactions, served[-1])
            if version.seq != served[-1].seq:
                served.append(version)
        released += len(served) - 1
        for i, first in enumerate(served):
            for second in served[i + 1 :]:
                pairs += 1
                assert _leaks(first, second) == [], (seed, first.seq, second.seq)
    assert released > 0 and pairs > 0
