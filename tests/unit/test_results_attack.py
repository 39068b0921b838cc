"""A reader with a linear-programming solver attacks published results (issue 15, items 1, 1b
and 1c): random polls of every question kind, option constraint, conditional and optional
question, self-selected and recently moved members and open texts, run through
services/responses/results.py, and every hidden figure of 1..k-1 people minimised and maximised
over everything the documents imply (tests/support/attacker.py).

``SUPPRESSION_ATTACK_POLLS`` (default 12) and ``SUPPRESSION_DIFFERENCING_POLLS`` (default 4) set
how many polls; ``python -m tests.unit.test_results_attack N M`` prints the figures for N single
releases and M release histories.
"""

from __future__ import annotations

import itertools
import os
import sys
from typing import Any

from tests.support import attacker

POLLS = int(os.environ.get("SUPPRESSION_ATTACK_POLLS", "12"))
HISTORIES = int(os.environ.get("SUPPRESSION_DIFFERENCING_POLLS", "4"))
REGION_POLLS = int(os.environ.get("SUPPRESSION_REGION_POLLS", "12"))
REGION_HISTORIES = int(os.environ.get("SUPPRESSION_REGION_DIFFERENCING_POLLS", "2"))
WAVE_PAIRS = int(os.environ.get("SUPPRESSION_WAVE_PAIRS", "6"))
KIND_POLLS = int(os.environ.get("SUPPRESSION_KIND_POLLS", "10"))
KIND_HISTORIES = int(os.environ.get("SUPPRESSION_KIND_DIFFERENCING_POLLS", "2"))


def attack_releases(seeds, make=attacker.random_case) -> tuple[attacker.Verdict, int]:
    total, leaky = attacker.Verdict(), 0
    for seed in seeds:
        case = make(seed)
        verdict = attacker.attack_release(case, attacker.released_documents(case), case.k)
        total.add(verdict)
        leaky += bool(verdict.proved or verdict.pinned)
    return total, leaky


def attack_region_releases(seeds) -> tuple[attacker.Verdict, int, int, int]:
    """Random polls with the municipality's own regions (``attacker.random_region_case``):
    the verdict, leaky polls, regions shown, regions listed."""
    total, leaky, shown, listed = attacker.Verdict(), 0, 0, 0
    for seed in seeds:
        case = attacker.random_region_case(seed)
        documents = attacker.released_documents(case)
        verdict = attacker.attack_release(case, documents, case.k)
        total.add(verdict)
        leaky += bool(verdict.proved or verdict.pinned)
        regions = [a for a in documents["all"]["areas"] if a["level"] == "regio"]
        listed += len(regions)
        shown += sum(not a["suppressed"] for a in regions)
    return total, leaky, shown, listed


def attack_histories(seeds, make=attacker.random_case) -> tuple[attacker.Verdict, int, int, int]:
    total, pairs, versions, held = attacker.Verdict(), 0, 0, 0
    for seed in seeds:
        case = make(seed)
        released, waited = attacker.release_history(case)
        versions += len(released)
        held += waited
        for first, second in itertools.combinations(released, 2):
            total.add(attacker.attack_pair(case, first, second, case.k))
            pairs += 1
    return total, pairs, versions, held


def attack_wave_pairs(seeds, make=attacker.random_case) -> dict[str, Any]:
    """Two waves of a series asked of the same panel (``attacker.random_wave_pair``), attacked
    by a reader told how they differ (``attacker.attack_waves``). Per kind of change: pairs,
    hidden figures, small ones, those the reader got (pinned or proved in 1..k-1), of those
    read off the other wave, those of areas that do not hold the changed buurt, and pairs
    where the change itself was pinned (of those, where the buurt's own row of that question
    was hidden in a wave)."""
    out: dict[str, Any] = {}
    for seed in seeds:
        pair = attacker.random_wave_pair(seed, make)
        found = attacker.attack_waves(pair)
        row = out.setdefault(
            pair.change,
            {
                "pairs": 0,
                "hidden": 0,
                "small": 0,
                "got": 0,
                "across": 0,
                "outside": [],
                "change_pinned": 0,
                "change_pinned_through_hidden": 0,
            },
        )
        row["pairs"] += 1
        row["hidden"] += found.verdict.hidden
        row["small"] += found.verdict.small
        row["got"] += len(set(found.verdict.pinned + found.verdict.proved))
        row["across"] += len(found.across)
        row["outside"] += found.outside
        row["change_pinned"] += bool(found.exposed)
        row["change_pinned_through_hidden"] += bool(found.exposed_through_hidden)
    return out


def test_no_hidden_figure_is_proved_small_by_a_linear_programming_reader():
    """Regression (1, 1b): open-text totals, multiple choice with max_selections = 1 or
    min = max, self-selected per area, relations already modelled and "listed means answered"
    each let a reader pin hidden figures or prove them to lie in 1..k-1. Now every relation a
    document implies is in the one system and the audit proves a protection interval."""
    verdict, leaky = attack_releases(range(POLLS))
    assert verdict.small > 0
    assert (leaky, verdict.pinned, verdict.proved) == (0, [], [])


def test_open_text_totals_do_not_give_away_the_answer_they_follow():
    """Regression (1): q1 ja 12 / nee 25 / wil_niet 3 in a wijk of 40 at k = 10; q2 (open,
    shown after "ja") published its per-wijk total 12 while ja and wil_niet were hidden."""
    definition = {
        "schema_version": 1,
        "title": "Open na ja",
        "intro": "x",
        "theme": "veiligheid",
        "estimated_minutes": 2,
        "language": "nl",
        "questions": [
            {
                "id": "q1",
                "type": "single_choice",
                "text": "Slachtoffer?",
                "options": [{"id": i, "label": i} for i in ("ja", "nee", "wil_niet")],
            },
            {
                "id": "q2",
                "type": "open_text",
                "text": "Wat gebeurde er?",
                "show_if": {"question": "q1", "any_of": ["ja"]},
            },
        ],
    }
    people = []
    for buurt, answers in (
        ("BU03440100", ("ja",) * 6 + ("nee",) * 12 + ("wil_niet",) * 2),
        ("BU03440101", ("ja",) * 6 + ("nee",) * 13 + ("wil_niet",)),
    ):
        for a in answers:
            given = {"q1": a, **({"q2": f"verhaal {len(people)}"} if a == "ja" else {})}
            people.append(attacker.Respondent(buurt, "25_44", "man", "panel", given))
    for buurt in ("BU03440200", "BU03440201"):
        for i in range(30):
            given = {"q1": "nee"} if i % 2 else {"q1": "ja", "q2": f"verhaal {len(people)}"}
            people.append(attacker.Respondent(buurt, "45_64", "vrouw", "panel", given))
    case = attacker.PollCase(
        seed=1,
        definition=definition,
        buurten=["BU03440100", "BU03440101", "BU03440200", "BU03440201"],
        respondents=people,
        k=10,
        margins_known=True,
    )
    documents = attacker.released_documents(case)
    q1, q2 = documents["all"]["questions"]
    ja = q1["areas"]["WK034401"].get("options", [{}])[0].get("count")
    assert ja is None  # 12 of 40 said ja, but wil_niet (3) hides it
    assert q2["areas"]["WK034401"].get("respondents", q2["areas"]["WK034401"].get("total")) in (
        None,
        ja,
    )
    verdict = attacker.attack_release(case, documents, case.k)
    assert (verdict.pinned, verdict.proved) == ([], [])


def test_open_answers_are_listed_only_where_their_count_is_shown():
    """Regression (1): "open answers are shown only for areas whose row is shown". The texts
    of a wijk are a count of their own (their number): listed beside a hidden row they would
    give the row away. Over random polls with open questions (optional and follow-up ones
    among them) and the example above: a suppressed row carries nothing but that it is
    suppressed, and texts stand only beside a shown count of 0 or at least k, in a wijk, in
    the view of all respondents, as many as that count (at most 100)."""
    listed = hidden_with_texts = 0
    cases = [attacker.random_case(seed) for seed in range(40)]
    for case in cases:
        texts = case.aggregates().texts
        for view, doc in attacker.released_documents(case).items():
            for q in doc["questions"]:
                if q["type"] != "open_text":
                    continue
                for code, entry in q["areas"].items():
                    if entry.get("suppressed"):
                        assert entry == {"suppressed": True}, (case.seed, view, q["id"], code)
                        hidden_with_texts += bool(texts.get(q["id"], {}).get(code, (0, []))[1])
                        continue
                    if "texts" not in entry:
                        continue
                    n = entry["respondents"]
                    assert (view, code[:2]) == ("all", "WK"), (case.seed, view, q["id"], code)
                    assert n == 0 or n >= doc["k"], (case.seed, q["id"], code, n)
                    assert len(entry["texts"]) == min(n, 100)
                    listed += 1
    assert listed > 0 and hidden_with_texts > 0  # both sides of the rule were met


def test_regions_that_differ_by_one_small_buurt_give_nothing_away():
    """Issue 13: regions are sums of buurten beside the tree, so two regions (or a region and
    its wijk) that differ by one small buurt give that buurt by subtraction. The reader gets
    every region's relation to its buurten on top of everything else, with regions made to be
    differenced: a wijk without its smallest buurt, that region with the buurt back (the wijk
    again), with one buurt of another wijk, both, and one that overlaps without nesting."""
    verdict, leaky, shown, listed = attack_region_releases(range(REGION_POLLS))
    assert verdict.small > 0 and listed > 0
    assert shown > 0  # regions are not simply all hidden
    assert (leaky, verdict.pinned, verdict.proved) == (0, [], [])


def test_released_versions_with_regions_cannot_be_differenced():
    """Every pair of released versions of polls with regions (as in the test above), attacked
    as one programme with the responses added in between."""
    verdict, pairs, _, _ = attack_histories(
        range(200, 200 + REGION_HISTORIES), attacker.random_region_case
    )
    assert pairs > 0
    assert (verdict.pinned, verdict.proved) == ([], [])


def test_a_region_differing_from_its_wijk_by_one_small_buurt_is_hidden_not_the_wijk():
    """A wijk of three buurten (40, 30 and 3 respondents) and a region of the two big ones:
    wijk − region = the small buurt. The wijk and the big buurten stay; the region gives way
    (its figures would give the 3 away), and the reader finds nothing."""
    definition = {
        "schema_version": 1,
        "title": "Regio",
        "intro": "x",
        "theme": "veiligheid",
        "estimated_minutes": 2,
        "language": "nl",
        "questions": [
            {
                "id": "q1",
                "type": "single_choice",
                "text": "Veilig?",
                "options": [{"id": i, "label": i} for i in ("ja", "nee")],
            }
        ],
    }
    people = []
    sizes = {"BU03440100": 40, "BU03440101": 30, "BU03440102": 3, "BU03440200": 50}
    for buurt, n in sizes.items():
        for i in range(n):
            answer = {"q1": "ja" if i % 2 else "nee"}
            people.append(attacker.Respondent(buurt, "25_44", "man", "panel", answer))
    case = attacker.PollCase(
        seed=2,
        definition=definition,
        buurten=list(sizes),
        respondents=people,
        k=10,
        margins_known=True,
        regions={
            "RG03440001": ["BU03440100", "BU03440101"],
            "RG03440002": ["BU03440100", "BU03440101", "BU03440200"],
        },
    )
    documents = attacker.released_documents(case)
    shown = {a["code"]: a["respondents"] for a in documents["all"]["areas"]}
    assert shown["WK034401"] == 73 and shown["BU03440102"] is None
    assert shown["RG03440001"] is None and shown["RG03440002"] is None
    assert shown["BU03440100"] is None or shown["BU03440101"] is None  # the wijk's second
    verdict = attacker.attack_release(case, documents, case.k)
    assert (verdict.pinned, verdict.proved) == ([], [])


def test_regions_are_weighted_to_the_sum_of_their_buurten_margins():
    """A shown region carries weighted percentages with intervals and an effective n, raked
    to its own CBS margins (the sum of its buurten's): a region of all the buurten of a wijk
    gets the wijk's figures exactly."""
    case = attacker.random_case(1)
    assert case.margins_known
    wijk = sorted({"WK" + b[2:8] for b in case.buurten})[0]
    case.regions = {"RG03440001": [b for b in case.buurten if b.startswith("BU" + wijk[2:])]}
    doc = attacker.released_documents(case)["all"]
    region = next(a for a in doc["areas"] if a["code"] == "RG03440001")
    wijk_row = next(a for a in doc["areas"] if a["code"] == wijk)
    assert region["level"] == "regio" and region["parent_code"] is None
    assert region["respondents"] == wijk_row["respondents"] == 171
    # The same shares (the attacker gives every area the same CBS profile), so the same
    # weights; the region's 15+ population is the sum of its buurten's (here 4 × 850).
    mine, theirs = dict(doc["weighting"]["RG03440001"]), dict(doc["weighting"][wijk])
    members = len(case.regions["RG03440001"])
    assert mine.pop("population_15_plus") == members * theirs.pop("population_15_plus")
    assert mine == theirs
    q = next(q for q in doc["questions"] if q["type"] != "open_text")
    mine, theirs = q["areas"]["RG03440001"], q["areas"][wijk]
    assert mine["effective_n"] == theirs["effective_n"] > 100
    assert [o["ci_low"] for o in mine["options"]] == [o["ci_low"] for o in theirs["options"]]
    assert any(o["ci_low"] is not None for o in mine["options"])


def test_versions_of_an_open_poll_cannot_be_differenced():
    """Regression (1c): results of an open poll changed with every intake batch, so two reads
    around one new response gave that response away, and k changed by an admin changed what a
    published poll showed. Every pair of released versions (not only consecutive ones: +1
    response, +k−1, k changed, the last open version against the final one) is attacked as
    one programme: the figures at both times and the responses added in between."""
    verdict, pairs, versions, _ = attack_histories(range(100, 100 + HISTORIES))
    assert pairs > 0 and versions > HISTORIES
    assert (verdict.pinned, verdict.proved) == ([], [])


def test_results_per_kind_and_per_channel_give_nothing_away():
    """Issue 14: residents, businesses and organisations answering in the app, by e-mail link
    and on paper, with buurten of a few businesses only (two shops and nobody else). The reader
    gets every breakdown — per kind of participant, all participants, per channel — with all
    participants = residents + businesses + organisations = app + link + paper, per question
    and for the respondents per area, beside both views; no hidden small figure may come out."""
    verdict, leaky = attack_releases(range(500, 500 + KIND_POLLS), attacker.random_kinds_case)
    assert verdict.small > 0
    assert (leaky, verdict.pinned, verdict.proved) == (0, [], [])


def test_two_shops_in_a_buurt_are_not_shown():
    """A buurt where two businesses answered and nobody else: neither their count nor their
    answers are shown, in any breakdown."""
    for seed in range(500, 500 + KIND_POLLS):
        case = attacker.random_kinds_case(seed)
        shops = {r.buurt for r in case.respondents}
        alone = [
            b
            for b in shops
            if [r.participant for r in case.respondents if r.buurt == b] == ["ondernemer"] * 2
        ]
        if not alone:
            continue
        documents = attacker.released_documents(case)
        for doc in documents.values():
            area = next(a for a in doc["areas"] if a["code"] == alone[0])
            assert area["respondents"] is None and area["kinds"]["ondernemer"] is None
            for q in doc["questions"]:
                for split in ("by_kind", "by_channel"):
                    for per_area in q[split].values():
                        assert alone[0] not in per_area  # questions are not split per buurt
        return
    raise AssertionError("no poll with a buurt of two shops")


def test_versions_of_a_poll_with_kinds_and_channels_cannot_be_differenced():
    """Issue 14: released versions of polls answered by every kind through every channel,
    attacked pairwise like any history (the breakdown tables appear once their first business
    or paper form comes in)."""
    verdict, pairs, versions, _ = attack_histories(
        range(600, 600 + KIND_HISTORIES), attacker.random_kinds_case
    )
    assert pairs > 0 and versions > KIND_HISTORIES
    assert (verdict.pinned, verdict.proved) == ([], [])


def test_two_waves_of_one_panel_give_nothing_away_outside_the_buurt_that_changed():
    """Issue 13: two waves of a series asked of the same panel, the same answers except in one
    buurt (one answer changed, or 1-3 members more or fewer), attacked together by a reader who
    is told exactly that — the second wave is the first plus the added answer sets minus the
    removed ones, nothing changed elsewhere, how many were added and removed. Such a reader
    gets figures of the buurt that changed (and of the areas holding it): read off the other
    wave where that shows them, or "at least one" from the changed answers themselves —
    docs/suppression.md, "Waves of a series", says why no suppression of either wave can stop
    that. Every hidden small figure of every other area must stay unknown."""
    found = attack_wave_pairs(range(300, 300 + WAVE_PAIRS))
    assert sum(row["pairs"] for row in found.values()) == WAVE_PAIRS
    assert sum(row["small"] for row in found.values()) > 0
    assert [f for row in found.values() for f in row["outside"]] == []


def test_one_changed_answer_hides_what_both_waves_hide():
    """The same panel answers both waves identically but for one answer in one buurt: the
    areas and rows do not change size, so no hidden small figure of either wave may come
    out (``across`` as well as otherwise)."""
    pairs = 0
    for seed in range(400, 460):
        pair = attacker.random_wave_pair(seed)
        if pair.change != "changed":
            continue
        found = attacker.attack_waves(pair)
        assert (found.verdict.pinned, found.verdict.proved) == ([], [])
        pairs += 1
        if pairs == max(2, WAVE_PAIRS // 3):
            break
    assert pairs > 0


def test_k_is_frozen_per_poll_at_its_first_release():
    """Regression (1c): a poll read at k = 10 and again at k = 15 gave exact small cells; the
    poll now keeps the k of its first release, whatever the municipality's k becomes."""
    from services.responses import results

    case = attacker.random_case(7)
    first = results.next_release(case.poll(), case.aggregates(), 10, None, closed=False)
    later = results.next_release(case.poll(), case.aggregates(), 15, first, closed=True)
    assert first.k == later.k == 10
    assert later.documents["all"]["k"] == 10
    assert set(map(tuple, later.hidden)) >= set(map(tuple, first.hidden))


def main(polls: int, histories: int) -> None:
    verdict, leaky = attack_releases(range(polls))
    print(
        f"single releases: polls={polls} hidden={verdict.hidden} small={verdict.small} "
        f"pinned={len(verdict.pinned)} proved_1_to_k-1={len(verdict.proved)} leaky_polls={leaky}"
    )
    verdict, leaky, shown, listed = attack_region_releases(range(polls))
    print(
        f"regions: polls={polls} regions_listed={listed} regions_shown={shown} "
        f"hidden={verdict.hidden} small={verdict.small} pinned={len(verdict.pinned)} "
        f"proved_1_to_k-1={len(verdict.proved)} leaky_polls={leaky}"
    )
    for change, row in sorted(attack_wave_pairs(range(300, 300 + polls)).items()):
        print(
            f"waves ({change}): pairs={row['pairs']} hidden={row['hidden']} small={row['small']} "
            f"got={row['got']} read_off_the_other_wave={row['across']} "
            f"outside_the_changed_buurt={len(row['outside'])} "
            f"change_pinned={row['change_pinned']} "
            f"through_hidden_rows={row['change_pinned_through_hidden']}"
        )
    verdict, pairs, versions, held = attack_histories(range(100, 100 + histories))
    print(
        f"differencing: polls={histories} versions={versions} held_reads={held} pairs={pairs} "
        f"hidden={verdict.hidden} small={verdict.small} pinned={len(verdict.pinned)} "
        f"proved_1_to_k-1={len(verdict.proved)}"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
