"""feedback's pure logic: measure transitions, input validation, feed order, reaction
suppression (with the secondary rule), medians, overdue dates, key-figure snapshots, clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.common.clock import Clock, ClockNotAdjustable
from services.common.errors import Conflict, InvalidInput
from services.common.validation import load
from services.feedback import feed, figures, keyfigures, lifecycle, measures, overdue
from services.feedback.reactions import next_version, reactor_key, summarize
from services.feedback.schemas import FeedbackDraftIn, MeasureIn, MeasureUpdate, StatusChangeIn
from tests.unit.test_exports import UNMET, unmet_margins_document

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def fields_of(exc: InvalidInput) -> list[str]:
    return [e["field"] for e in exc.errors]


# --- transitions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "current, target",
    [
        ("planned", "in_progress"),
        ("planned", "done"),
        ("planned", "dropped"),
        ("in_progress", "done"),
        ("in_progress", "dropped"),
    ],
)
def test_allowed_transitions(current, target):
    measures.check_transition(current, target, "omdat")


@pytest.mark.parametrize(
    "current, target",
    [
        ("in_progress", "planned"),
        ("in_progress", "in_progress"),
        ("done", "in_progress"),
        ("done", "dropped"),
        ("dropped", "planned"),
        ("dropped", "done"),
        ("planned", "planned"),
    ],
)
def test_refused_transitions(current, target):
    with pytest.raises(Conflict) as caught:
        measures.check_transition(current, target, "note")
    assert caught.value.errors[0]["code"] == "invalid_transition"
    assert caught.value.errors[0]["field"] == "status"


def test_dropping_needs_a_reason():
    with pytest.raises(InvalidInput) as caught:
        measures.check_transition("planned", "dropped", None)
    assert fields_of(caught.value) == ["note"]


def test_area_codes_must_belong_to_the_municipality():
    measures.check_area_codes(["WK034401", "BU03440111"], "GM0344")
    with pytest.raises(InvalidInput) as caught:
        measures.check_area_codes(["WK034401", "BU03630000"], "GM0344")
    assert fields_of(caught.value) == ["area_codes[1]"]


# --- validation ----------------------------------------------------------------------------


def test_draft_validation_names_each_field():
    with pytest.raises(InvalidInput) as caught:
        load(
            FeedbackDraftIn(),
            {
                "title": "   ",
                "heard": "x" * 5001,
                "key_figures": [{"question_id": "q", "area_code": "Utrecht"}],
            },
        )
    assert set(fields_of(caught.value)) == {
        "title",
        "heard",
        "plan",
        "key_figures[0].area_code",
    }


def test_draft_defaults_and_stripping():
    data = load(FeedbackDraftIn(), {"title": "  Licht  ", "heard": "a", "plan": "b"})
    assert data == {
        "title": "Licht",
        "heard": "a",
        "plan": "b",
        "not_followed": None,
        "key_figures": [],
        "notify_all_invitees": False,
    }
    with pytest.raises(InvalidInput) as caught:
        load(FeedbackDraftIn(), {**data, "key_figures": [{"question_id": "q"}] * 11})
    assert fields_of(caught.value) == ["key_figures"]


def test_measure_validation():
    with pytest.raises(InvalidInput) as caught:
        load(MeasureIn(), {"title": "Lampen", "expected_date": "31-12-2026", "area_codes": ["X"]})
    assert set(fields_of(caught.value)) == {"owner", "expected_date", "area_codes[0]"}
    ok = load(
        MeasureIn(), {"title": "Lampen", "owner": "Stadsbeheer", "expected_date": "2026-12-31"}
    )
    assert ok["expected_date"].isoformat() == "2026-12-31" and ok["area_codes"] == []
    assert load(MeasureUpdate(), {"owner": "Wijkteam"}) == {"owner": "Wijkteam"}
    with pytest.raises(InvalidInput) as caught:
        load(MeasureUpdate(), {"title": " "})
    assert fields_of(caught.value) == ["title"]
    with pytest.raises(InvalidInput) as caught:
        load(StatusChangeIn(), {"status": "finished", "note": None})
    assert fields_of(caught.value) == ["status"]


def test_key_figure_areas_default_to_the_gemeente_and_stay_inside_it():
    assert keyfigures.check_areas([{"question_id": "q", "area_code": None}], "GM0344") == [
        {"question_id": "q", "area_code": "GM0344"}
    ]
    with pytest.raises(InvalidInput) as caught:
        keyfigures.check_areas([{"question_id": "q", "area_code": "WK036301"}], "GM0344")
    assert fields_of(caught.value) == ["key_figures[0].area_code"]


RESULTS = {
    "questions": [
        {
            "id": "veilig",
            "type": "likert5",
            "text": "Hoe veilig?",
            "options": ["1", "2"],
            "areas": {
                "GM0344": {
                    "respondents": 40,
                    "options": [
                        {
                            "option": "1",
                            "count": 30,
                            "percent": 75.0,
                            "weighted_percent": 71.2,
                            "ci_low": 60.1,
                            "ci_high": 80.0,
                        },
                        {"option": "2", "count": None, "percent": None},
                    ],
                },
                "WK034401": {"suppressed": True},
            },
        },
        {"id": "tips", "type": "open_text", "text": "Tips?", "areas": {}},
    ]
}


def test_snapshot_copies_figures_and_suppression_exactly():
    requests = [
        {"question_id": "veilig", "area_code": "GM0344"},
        {"question_id": "veilig", "area_code": "WK034401"},
        {"question_id": "veilig", "area_code": "BU03440111"},
    ]
    whole, wijk, buurt = keyfigures.snapshot(requests, RESULTS)
    assert whole["n"] == 40 and whole["question"] == "Hoe veilig?" and not whole["suppressed"]
    assert whole["options"][0] == {
        "option": "1",
        "percent": 75.0,
        "weighted_percent": 71.2,
        "ci_low": 60.1,
        "ci_high": 80.0,
    }
    assert whole["options"][1] == {"option": "2", "suppressed": True}
    assert wijk["suppressed"] is True and "n" not in wijk and "options" not in wijk
    assert buurt["n"] == 0 and buurt["options"] == []


def test_a_key_figure_carries_the_weighting_note_of_its_area_and_not_another_wijks():
    """Regression (issue 15, 1d): a key figure copied the weighted percentages and intervals
    from the results but dropped the note about the weights behind them, so residents saw the
    figures of a wijk whose CBS margins could not be met as if they had been. The note now goes
    with the figure (and is frozen with it at publication); another wijk's figure has none."""
    doc = unmet_margins_document()
    unmet, other, whole = keyfigures.snapshot(
        [
            {"question_id": "vaak", "area_code": UNMET},
            {"question_id": "vaak", "area_code": "WK034401"},
            {"question_id": "vaak", "area_code": "GM0344"},
        ],
        doc,
    )
    assert any(o.get("weighted_percent") is not None for o in unmet["options"])
    assert (
        unmet["weighting_notes"]
        == next(q for q in doc["questions"] if q["id"] == "vaak")["areas"][UNMET]["weighting_notes"]
    )
    assert any(
        n.startswith(f"{UNMET}: the margins cannot be met") for n in unmet["weighting_notes"]
    )
    assert other["options"] and not any("cannot be met" in n for n in other["weighting_notes"])
    # The gemeente figure combines the wijken, that one with its note.
    assert any(
        n.startswith(f"{UNMET}: the margins cannot be met") for n in whole["weighting_notes"]
    )


def test_snapshot_refuses_unknown_and_open_questions():
    with pytest.raises(InvalidInput) as caught:
        keyfigures.snapshot(
            [
                {"question_id": "veilig", "area_code": "GM0344"},
                {"question_id": "nope", "area_code": "GM0344"},
                {"question_id": "tips", "area_code": "GM0344"},
            ],
            RESULTS,
        )
    assert fields_of(caught.value) == ["key_figures[1].question_id", "key_figures[2].question_id"]
    assert [e["code"] for e in caught.value.errors] == ["unknown_question", "no_figures"]


def test_summary_is_about_200_characters_cut_at_a_word():
    short = "We hoorden dat de verlichting tekortschiet."
    assert lifecycle.summary_of(short) == short
    long = "woord " * 100
    summary = lifecycle.summary_of(long)
    assert len(summary) <= 200 and summary.endswith("woord…")


# --- feed ----------------------------------------------------------------------------------


def test_feed_puts_my_area_first_and_newest_first_within_each_group():
    items = [
        {"id": "old-mine", "published_at": "2026-01-01T00:00:00+00:00", "concerns_my_area": True},
        {"id": "new-other", "published_at": "2026-03-01T00:00:00+00:00", "concerns_my_area": False},
        {"id": "new-mine", "published_at": "2026-02-01T00:00:00+00:00", "concerns_my_area": True},
        {"id": "old-other", "published_at": "2025-12-01T00:00:00+00:00", "concerns_my_area": False},
    ]
    assert [i["id"] for i in feed.order_feed(items)] == [
        "new-mine",
        "old-mine",
        "new-other",
        "old-other",
    ]


@pytest.mark.parametrize(
    "kind, audience, measure_areas, expected",
    [
        ("municipality", [], [], True),
        ("areas", ["WK034401"], [], True),
        ("areas", ["BU03440111"], [], True),
        ("areas", ["BU03440112"], [], False),
        ("areas", ["WK034402"], ["BU03440111"], True),
        ("sample", ["WK034402"], ["WK034403"], False),
    ],
)
def test_what_concerns_my_area(kind, audience, measure_areas, expected):
    assert (
        feed.concerns(
            audience_kind=kind,
            audience_areas=audience,
            measure_areas=measure_areas,
            buurt_code="BU03440111",
            wijk_code="WK034401",
        )
        is expected
    )


# --- reactions -----------------------------------------------------------------------------


def test_reaction_counts_go_through_the_one_suppression():
    """Regression (issue 15, item 2): reactions had a weaker suppression of their own — wijk 25
    with buurten 3, 4 and 18 gave 7 by subtraction, the useful / not useful split was never
    hidden, and ``n`` was shown below k. Now the table (useful / not useful per area) goes
    through services/common/suppression like every figure, and an attacker finds nothing."""
    rows = [("WK034401", "BU03440101", i % 2 == 0, None) for i in range(3)]
    rows += [("WK034401", "BU03440102", i % 3 == 0, None) for i in range(4)]
    rows += [("WK034401", "BU03440103", i % 4 != 0, "Fijn") for i in range(18)]
    rows += [("WK034402", "BU03440201", True, None) for _ in range(12)]
    rows += [("WK034402", "BU03440202", i % 5 != 0, None) for i in range(15)]
    view = summarize(rows, 10)
    by_code = {a["area_code"]: a for a in view["per_area"]}
    hidden = {c for c, a in by_code.items() if a.get("suppressed")}
    assert {"BU03440101", "BU03440102"} <= hidden
    assert len({"BU03440101", "BU03440102", "BU03440103"} & hidden) >= 2
    shown = {a["area_code"]: a for a in view["per_area"] if not a.get("suppressed")}
    for area in shown.values():  # every shown split is 0 or at least k, or hidden
        for figure in (area["n"], area["useful"], area.get("not_useful")):
            assert figure is None or figure == 0 or figure >= 10
    for figure in (view["n"], view["useful"], view["not_useful"]):
        assert figure is None or figure == 0 or figure >= 10
    attacked = _attack_reactions(rows, view, 10)
    assert attacked == []
    small = summarize(rows[:4], 10)
    assert small["n"] is None and small["suppressed"] and small["useful"] is None
    assert all(a.get("suppressed") for a in small["per_area"]) and small["comments"] == []


def _attack_reactions(rows, view, k):
    """An LP reader over the staff view: per area n = useful + not useful, buurten → wijk →
    gemeente, every listed area ≥ 1; the hidden figures of 1..k-1 it proves to lie there."""
    from tests.support.attacker import Programme, attack

    prog = Programme()
    truth, figures = {}, []
    areas = {"GM0344": None}
    for w, b, useful, _ in rows:
        areas.setdefault(w, "GM0344")
        areas.setdefault(b, w)
        for code in ("GM0344", w, b):
            for family, hit in (("u", useful), ("v", not useful)):
                truth[(family, code)] = truth.get((family, code), 0) + hit
    for code, parent in areas.items():
        prog.equal({("n", code): 1, ("u", code): -1, ("v", code): -1})
        figures += [("n", code), ("u", code), ("v", code)]
        truth[("n", code)] = truth[("u", code)] + truth[("v", code)]
        if parent is not None:
            prog.at_least(("n", code), 1)
        kids = [c for c, p in areas.items() if p == code]
        for family in "nuv":
            if kids:
                prog.equal({(family, code): 1, **{(family, c): -1 for c in kids}})
    known = set()
    shown = {a["area_code"]: a for a in view["per_area"] if not a.get("suppressed")}
    shown["GM0344"] = {"n": view["n"], "useful": view["useful"], "not_useful": view["not_useful"]}
    for a in shown.values():  # before issue 15 not_useful per area was n − useful
        if a.get("not_useful") is None and a.get("n") is not None and a.get("useful") is not None:
            a["not_useful"] = a["n"] - a["useful"]
    for code, a in shown.items():
        for family, name in (("n", "n"), ("u", "useful"), ("v", "not_useful")):
            if a.get(name) is not None:
                prog.equal({(family, code): 1}, a[name])
                known.add((family, code))
    verdict = attack(prog, figures, known, truth, k)
    return verdict.proved + verdict.pinned


def test_reactor_key_is_stable_and_keyed():
    assert reactor_key(b"s", "r1") == reactor_key(b"s", "r1")
    assert reactor_key(b"s", "r1") != reactor_key(b"t", "r1")
    assert "r1" not in reactor_key(b"s", "r1")


# --- loop figures and overdue --------------------------------------------------------------


def test_median_days():
    assert figures.median_days([]) is None
    assert figures.median_days([(T0, T0 + timedelta(days=3))]) == 3.0
    pairs = [(T0, T0 + timedelta(days=d)) for d in (1, 10, 4, 7)]
    assert figures.median_days(pairs) == 5.5
    assert figures.share(1, 3) == 0.333 and figures.share(0, 0) is None


def test_loop_reactions_are_the_sum_of_released_versions_hidden_ones_left_out():
    """Regression: the loop figures counted the reactions table live, so two reads of the
    figure (or the gauge) around one reaction said whether that resident found the feedback
    useful. Now they are the sum of each feedback's latest released version's gemeente-level
    figures; one whose figures are hidden contributes nothing and is counted as hidden."""
    many = [("WK034401", "BU03440101", i % 2 == 0, None) for i in range(20)]  # 10 useful
    few = [("WK034401", "BU03440101", True, None) for _ in range(4)]  # fewer than k
    first = next_version(many, 10, None, "GM0344")
    small = next_version(few, 10, None, "GM0344")
    assert first is not None and small is not None and small.document["suppressed"]
    loop = figures.released_reactions([first.document, small.document])
    assert loop == {
        "reactions": 20,
        "share_useful": 0.5,
        "reactions_feedbacks_counted": 1,
        "reactions_feedbacks_hidden": 1,
    }
    # One reaction more (not useful) is no new version: the figure stays what was released.
    assert next_version([*many, ("WK034401", "BU03440101", False, None)], 10, first) is None
    assert figures.released_reactions([first.document, small.document]) == loop
    # The total shown but its split hidden: left out too, not counted with a wrong share.
    split_hidden = {**first.document, "useful": None, "not_useful": None}
    assert figures.released_reactions([split_hidden])["reactions_feedbacks_hidden"] == 1
    assert figures.released_reactions([]) == {
        "reactions": 0,
        "share_useful": None,
        "reactions_feedbacks_counted": 0,
        "reactions_feedbacks_hidden": 0,
    }


def test_overdue_dates():
    assert not overdue.is_overdue(None, None, due_days=30, now=T0)
    assert not overdue.is_overdue(T0, None, due_days=30, now=T0 + timedelta(days=30))
    assert overdue.is_overdue(T0, None, due_days=30, now=T0 + timedelta(days=30, seconds=1))
    assert not overdue.is_overdue(
        T0, T0 + timedelta(days=40), due_days=30, now=T0 + timedelta(days=50)
    )
    assert overdue.days_overdue(T0, 30, T0 + timedelta(days=33, hours=5)) == 3


def test_reminders_go_to_active_editors_and_admins_only():
    staff = [
        {"email": "a@utrecht.nl", "role": "admin", "status": "active"},
        {"email": "e@utrecht.nl", "role": "editor", "status": "active"},
        {"email": "v@utrecht.nl", "role": "viewer", "status": "active"},
        {"email": "d@utrecht.nl", "role": "editor", "status": "disabled"},
        {"email": "i@utrecht.nl", "role": "editor", "status": "invited"},
    ]
    assert overdue.recipients(staff) == ["a@utrecht.nl", "e@utrecht.nl"]


def test_reminder_text_is_dutch_and_says_what_and_where():
    poll = {
        "poll_id": "p1",
        "poll_title": "Veilig in de buurt",
        "closed_at": T0.isoformat(),
        "due_at": (T0 + timedelta(days=30)).isoformat(),
        "days_overdue": 4,
    }
    subject, body = overdue.reminder_text(poll, admin_url="https://beheer.example/admin/")
    assert subject == "Terugkoppeling 4 dagen te laat: Veilig in de buurt"
    assert "4 dagen te laat" in body and "https://beheer.example/admin/polls/p1/feedback" in body
    assert "31-03-2026" in body


# --- clock ---------------------------------------------------------------------------------


class FakeContainer:
    service_name = "feedback"

    def __init__(self, config):
        self.config = config


def make_clock(config):
    container = FakeContainer(config)  # bind() keeps only a weak reference
    clock = Clock().bind(container, "clock")
    clock.setup()
    return clock, container


def test_clock_moves_only_when_configured_for_tests():
    clock, _ = make_clock({})
    with pytest.raises(ClockNotAdjustable):
        clock.advance(days=31)
    for value in ("true", "1", "yes"):  # a string from the environment is not enough
        clock, _ = make_clock({"CLOCK_ADJUSTABLE": value})
        with pytest.raises(ClockNotAdjustable):
            clock.advance(days=1)
    clock, _ = make_clock({"CLOCK_ADJUSTABLE": True})
    before = clock.now()
    assert clock.advance(days=31) - before >= timedelta(days=31)
