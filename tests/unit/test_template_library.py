"""The Dutch template library: complete, valid, and written to our rules."""

import pytest

from services.common.pollspec import QUESTION_TYPES, validate_answers
from services.polls import library
from tests.support.answers import minimal_answers

REQUIRED_THEMES = {
    "veiligheidsgevoel",
    "verkeersveiligheid",
    "verlichting",
    "buurtpreventie",
    "cameratoezicht",
    "overlast",
    "woninginbraak",
    "jaarwisseling",
    "groen",
    "afval",
    "spelen_en_jongeren",
    "vertrouwen",
}
TEMPLATES = library.library()


def test_at_least_twelve_templates_cover_the_required_themes():
    assert len(TEMPLATES) >= 12
    themes = {t["definition"]["theme"] for t in TEMPLATES.values()}
    assert REQUIRED_THEMES <= themes


@pytest.mark.parametrize("template_id", sorted(TEMPLATES))
def test_template_shape(template_id):
    template = TEMPLATES[template_id]
    definition = template["definition"]
    assert 5 <= len(definition["questions"]) <= 15
    assert definition["language"] == "nl"
    assert template["description"], "staff choose by the description"
    assert 1 <= definition["estimated_minutes"] <= 15


def test_the_library_as_a_whole_uses_every_question_type_and_conditions():
    used = {q["type"] for t in TEMPLATES.values() for q in t["definition"]["questions"]}
    assert used == set(QUESTION_TYPES)
    assert any("show_if" in q for t in TEMPLATES.values() for q in t["definition"]["questions"])


def test_showcase_template_starts_with_the_safety_question():
    first = TEMPLATES["veiligheidsgevoel"]["definition"]["questions"][0]
    assert first["id"] == "veilig_buurt" and first["type"] == "likert5"


@pytest.mark.parametrize("template_id", sorted(TEMPLATES))
def test_a_template_can_be_answered_minimally(template_id):
    """Answering only the required questions that are shown, in order, is valid."""
    definition = TEMPLATES[template_id]["definition"]
    validate_answers(definition, minimal_answers(definition), location_check=lambda la, lo: True)


def test_get_template_returns_a_copy():
    template = library.get_template("afval")
    template["definition"]["questions"].clear()
    assert library.get_template("afval")["definition"]["questions"]
