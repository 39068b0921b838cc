"""Trends over a series of polls (issue 13): the change between two waves' weighted shares,
the worked example of docs/methods.md ("Trends"), and what a trend document shows."""

from __future__ import annotations

import pytest

from services.responses import trends


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
