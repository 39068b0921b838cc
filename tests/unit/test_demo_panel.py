"""The synthetic panel of ``make run``: where its residents live, who they are, what they answer."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date

import pytest

from deploy import demo_panel
from services.common.pollspec import validate_answers
from services.panel.areas import DATA_DIR, margins_payload, parse_kwb_csv
from services.polls.library import library

TODAY = date(2026, 11, 25)


@pytest.fixture(scope="module")
def buurten():
    text = (DATA_DIR / "utrecht_GM0344_kwb2024_areas.csv").read_text(encoding="utf-8")
    areas = margins_payload(parse_kwb_csv(text))["areas"]
    return [a for a in areas if a["level"] == "buurt"]


def test_allocation_follows_population_and_adds_up():
    counts = demo_panel.allocate(10, {"a": 500, "b": 300, "c": 200, "d": 0})
    assert counts == {"a": 5, "b": 3, "c": 2, "d": 0}
    assert sum(demo_panel.allocate(7, {"a": 1, "b": 1, "c": 1}).values()) == 7


def test_residents_spread_over_buurten_by_population(buurten):
    members = demo_panel.profiles(buurten, 3000, random.Random(1), TODAY)
    assert len(members) == 3000
    per_buurt = Counter(m.buurt_code for m in members)
    whole = sum(b["population"] or 0 for b in buurten)
    for b in buurten:
        expected = 3000 * (b["population"] or 0) / whole
        assert abs(per_buurt.get(b["code"], 0) - expected) < 1, b["code"]
    parents = {b["code"]: b["parent_code"] for b in buurten}
    assert all(m.wijk_code == parents[m.buurt_code] for m in members)


def test_ages_and_sexes_follow_the_margins(buurten):
    members = demo_panel.profiles(buurten, 20000, random.Random(2), TODAY)
    adults = {band: sum(b["age"][band] or 0 for b in buurten) for band in demo_panel.ADULT_BANDS}
    total = sum(adults.values())
    drawn = Counter(m.age_band for m in members)
    for band, population in adults.items():
        assert abs(drawn[band] / len(members) - population / total) < 0.02, band
    for m in members:
        low, high = demo_panel.ADULT_BANDS[m.age_band]
        assert low <= TODAY.year - m.birth_year <= high
    assert set(Counter(m.sex for m in members)) == {"man", "vrouw"}
    share_email = sum(m.channel == "email" for m in members) / len(members)
    assert abs(share_email - demo_panel.EMAIL_SHARE) < 0.01


def test_the_same_seed_gives_the_same_panel(buurten):
    first = demo_panel.profiles(buurten, 200, random.Random(7), TODAY)
    second = demo_panel.profiles(buurten, 200, random.Random(7), TODAY)
    assert first == second


@pytest.mark.parametrize("template", sorted(library()))
def test_synthetic_answers_are_valid_for_every_template(buurten, template):
    definition = library()[template]["definition"]
    rng = random.Random(3)
    for member in demo_panel.profiles(buurten, 60, rng, TODAY):
        answers = demo_panel.answers_for(definition, member, {}, rng)
        validate_answers(definition, answers)  # raises PollSpecError when not


def test_the_feeling_of_safety_differs_by_wijk_as_configured(buurten):
    definition = library()["veiligheidsgevoel"]["definition"]
    rng = random.Random(4)
    members = demo_panel.profiles(buurten, 4000, rng, TODAY)
    feeling = {"WK034401": 4.2, "WK034403": 2.4}
    means = {}
    for wijk in feeling:
        scores = [
            demo_panel.answers_for(definition, m, feeling, rng)["veilig_buurt"]
            for m in members
            if m.wijk_code == wijk
        ]
        means[wijk] = sum(scores) / len(scores)
    assert means["WK034401"] - means["WK034403"] > 1.2
