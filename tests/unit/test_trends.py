"""Trends over a series of polls (issue 13): the change between two waves' weighted shares,
the worked example of docs/methods.md ("Trends"), and what a trend document shows."""

from __future__ import annotations

import pytest

from services.responses import trends
from tests.unit.test_exports import DEFINITION as EXPORTED
from tests.unit.test_exports import UNMET, results_document, unmet_margins_document


def test_the_worked_example_of_the_methods_page():
    # Wave 1: 32.0% "onveilig" with n_eff 400.0; wave 2: 24.5% with n_eff 450.0.
    d, low, high, significant = trends.change(32.0, 400.0, 24.5, 450.0)
    assert round(d, 1) == -7.5
    assert (round(low, 1), round(high, 1)) == (-13.6, -1.4)
    assert significant
    # The same shares from fewer respondents: the interval includes 0.
    d, low, high, significant = trends.change(32.0, 180.0, 24.5, 210.0)
    assert (round(low, 1), round(high, 1), significant) == (-16.5, 1.5, False)


def test_a_change_of_nothing_is_never_significant():
    d, low, high, significant = trends.change(50.0, 100.0, 50.0, 100.0)
    assert d == 0 and low < 0 < high and not significant


def _doc(poll_id, areas):
    return {
        "poll_id": poll_id,
        "questions": [
            {
                "id": "q1",
                "type": "single_choice",
                "text": "Voelt u zich veilig?",
                "options": ["ja", "nee"],
                "areas": areas,
            }
        ],
    }


def _area(n_eff, ja):
    return {
        "respondents": 500,
        "effective_n": n_eff,
        "options": [
            {"option": "ja", "count": 1, "weighted_percent": ja, "ci_low": 1, "ci_high": 2},
            {"option": "nee", "count": 1, "weighted_percent": 100 - ja, "ci_low": 1, "ci_high": 2},
        ],
    }


DEFINITION = {
    "title": "Veiligheid",
    "questions": [
        {
            "id": "q1",
            "type": "single_choice",
            "text": "Voelt u zich veilig?",
            "options": [{"id": "ja"}, {"id": "nee"}],
        }
    ],
}


def test_a_trend_shows_a_change_only_where_both_waves_show_their_figures():
    waves = [
        {
            "poll_id": "a",
            "wave": 1,
            "definition": DEFINITION,
            "document": _doc(
                "a", {"WK034401": _area(400.0, 68.0), "WK034402": {"suppressed": True}}
            ),
        },
        {
            "poll_id": "b",
            "wave": 2,
            "definition": DEFINITION,
            "document": _doc("b", {"WK034401": _area(450.0, 75.5), "WK034402": _area(90.0, 60)}),
        },
    ]
    trend = trends.compare(waves)
    assert [w["wave"] for w in trend["waves"]] == [1, 2]
    (q,) = trend["questions"]
    west = q["areas"]["WK034401"]
    assert [w["effective_n"] for w in west["waves"]] == [400.0, 450.0]
    (step,) = west["changes"]
    ja = next(o for o in step["options"] if o["option"] == "ja")
    assert (ja["change"], ja["ci_low"], ja["ci_high"], ja["significant"]) == (
        7.5,
        1.4,
        13.6,
        True,
    )
    north = q["areas"]["WK034402"]
    assert north["waves"][0] == {"wave": 1, "poll_id": "a", "suppressed": True}
    assert all(o["change"] is None for o in north["changes"][0]["options"])


@pytest.mark.parametrize("options", [["ja", "nee", "weet_niet"], ["nee", "ja"]])
def test_waves_whose_options_differ_are_not_compared(options):
    later = _doc("b", {"WK034401": _area(450.0, 75.5)})
    later["questions"][0]["options"] = options
    waves = [
        {
            "poll_id": "a",
            "wave": 1,
            "definition": DEFINITION,
            "document": _doc("a", {"WK034401": _area(400.0, 68.0)}),
        },
        {"poll_id": "b", "wave": 2, "definition": DEFINITION, "document": later},
    ]
    step = trends.compare(waves)["questions"][0]["areas"]["WK034401"]["changes"][0]
    assert step["comparable"] is False and step["options"] == []


# --- means of scale questions ----------------------------------------------------------------

WAVE_1 = {"1": 10.0, "2": 20.0, "3": 30.0, "4": 30.0, "5": 10.0}
WAVE_2 = {"1": 5.0, "2": 15.0, "3": 30.0, "4": 35.0, "5": 15.0}


def test_the_worked_example_of_means_on_the_methods_page():
    # docs/methods.md, "Trends", the worked example for a likert5 question.
    m1, low1, high1, var1, n1 = trends.mean_of(WAVE_1, 200.0)
    assert (round(m1, 2), round(var1, 2), round(low1, 2), round(high1, 2)) == (
        3.1,
        1.29,
        2.94,
        3.26,
    )
    m2, low2, high2, var2, n2 = trends.mean_of(WAVE_2, 250.0)
    assert (round(m2, 2), round(var2, 2), round(low2, 2), round(high2, 2)) == (
        3.4,
        1.14,
        3.27,
        3.53,
    )
    d, low, high, significant = trends.mean_change(m1, var1, n1, m2, var2, n2)
    assert (round(d, 2), round(low, 2), round(high, 2), significant) == (0.3, 0.09, 0.51, True)
    # The same answers from effective n 60.0 and 70.0: the interval includes 0.
    a, b = trends.mean_of(WAVE_1, 60.0), trends.mean_of(WAVE_2, 70.0)
    d, low, high, significant = trends.mean_change(a[0], a[3], a[4], b[0], b[3], b[4])
    assert (round(low, 2), round(high, 2), significant) == (-0.08, 0.68, False)


def test_dont_know_is_left_out_of_a_mean_and_of_its_effective_n():
    with_dont_know = {**{v: p * 0.8 for v, p in WAVE_1.items()}, "dont_know": 20.0}
    mean, low, high, variance, n = trends.mean_of(with_dont_know, 250.0)
    assert round(mean, 6) == 3.1 and round(n, 6) == 200.0  # as wave 1 with n_eff 200
    assert (round(low, 2), round(high, 2)) == (2.94, 3.26)


def test_a_mean_is_hidden_when_a_value_is_hidden_or_nobody_gave_one():
    assert trends.mean_of({**WAVE_1, "3": None}, 200.0) is None
    assert trends.mean_of({"1": 0.0, "2": 0.0, "dont_know": 100.0}, 50.0) is None
    assert trends.mean_of(WAVE_1, None) is None


def _scale_doc(poll_id, areas):
    return {
        "poll_id": poll_id,
        "questions": [
            {
                "id": "veilig",
                "type": "likert5",
                "text": "Hoe veilig voelt u zich?",
                "options": list(WAVE_1),
                "areas": areas,
            }
        ],
    }


def _scale_area(n_eff, percents):
    return {
        "respondents": 300,
        "effective_n": n_eff,
        "options": [
            {"option": v, "count": 1, "weighted_percent": p, "ci_low": 0, "ci_high": 1}
            for v, p in percents.items()
        ],
        "mean": 3.0,
    }


SCALE_DEFINITION = {
    "title": "Veiligheid",
    "questions": [{"id": "veilig", "type": "likert5", "text": "Hoe veilig voelt u zich?"}],
}


def test_a_trend_of_a_scale_question_gives_the_weighted_mean_per_wave_and_its_change():
    waves = [
        {
            "poll_id": "a",
            "wave": 1,
            "definition": SCALE_DEFINITION,
            "document": _scale_doc(
                "a", {"WK034401": _scale_area(200.0, WAVE_1), "WK034402": {"suppressed": True}}
            ),
        },
        {
            "poll_id": "b",
            "wave": 2,
            "definition": SCALE_DEFINITION,
            "document": _scale_doc(
                "b",
                {"WK034401": _scale_area(250.0, WAVE_2), "WK034402": _scale_area(80.0, WAVE_2)},
            ),
        },
    ]
    (q,) = trends.compare(waves)["questions"]
    west = q["areas"]["WK034401"]
    assert [w["mean"] for w in west["waves"]] == [
        {"mean": 3.1, "ci_low": 2.94, "ci_high": 3.26, "effective_n": 200.0},
        {"mean": 3.4, "ci_low": 3.27, "ci_high": 3.53, "effective_n": 250.0},
    ]
    assert west["changes"][0]["mean"] == {
        "change": 0.3,
        "ci_low": 0.09,
        "ci_high": 0.51,
        "significant": True,
    }
    north = q["areas"]["WK034402"]
    assert north["waves"][0] == {"wave": 1, "poll_id": "a", "suppressed": True}
    assert north["changes"][0]["mean"]["change"] is None


def test_each_wave_keeps_the_weighting_note_of_its_own_figures_and_no_other_wijks():
    """Regression (issue 15, 1d): a trend copied each wave's weighted shares from its results
    but not the note about the weights behind them. Now a wave whose wijk's CBS margins could
    not be met has that note beside its figures; the wave before (met) and another wijk's
    waves have none."""
    met, unmet = results_document(seed=1), unmet_margins_document(seed=2)
    trend = trends.compare(
        [
            {"poll_id": "a", "wave": 1, "definition": EXPORTED, "document": met},
            {"poll_id": "b", "wave": 2, "definition": EXPORTED, "document": unmet},
        ]
    )
    for qid in ("vaak", "veilig"):
        q = next(q for q in trend["questions"] if q["id"] == qid)
        before, after = q["areas"][UNMET]["waves"]
        assert not any("cannot be met" in n for n in before["weighting_notes"])
        assert (
            after["weighting_notes"]
            == next(x for x in unmet["questions"] if x["id"] == qid)["areas"][UNMET][
                "weighting_notes"
            ]
        )
        assert any(
            n.startswith(f"{UNMET}: the margins cannot be met") for n in after["weighting_notes"]
        )
        for wave in q["areas"]["WK034401"]["waves"]:
            assert "options" in wave
            assert not any("cannot be met" in n for n in wave["weighting_notes"])
