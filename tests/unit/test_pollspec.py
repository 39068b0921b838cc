"""Tests for services/common/pollspec.py against the contract in docs/pollspec.md.

Examples pin the exact ``field`` and ``code`` of each error; the properties generate random valid
definitions and answer sets, check they pass, then break them one way at a time and check the
refusal names the right field and code.
"""

from __future__ import annotations

import copy
import hashlib
import math
import operator
from dataclasses import dataclass
from functools import partial

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from services.common.pollspec import (
    QUESTION_TYPES,
    SCHEMA_VERSION,
    FieldError,
    PollSpecError,
    answer_options,
    content_hash,
    validate_answers,
    validate_definition,
    visible_questions,
)

DOCUMENTED_CODES = {
    "required", "hidden", "unknown_question", "invalid_type", "unknown_option", "duplicate",
    "too_few", "too_many", "exclusive", "out_of_range", "too_long", "empty", "outside_area",
    "invalid", "missing", "unknown_field", "forward_reference", "unsupported_version",
}  # fmt: skip

# Modest example counts keep the whole file under ~20 s: there are some 30 mutation properties
# (each breaks a freshly generated poll one way), so they get fewer examples than the main ones.
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MUTATION = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- helpers -----------------------------------------------------------------------------------


def definition_errors(definition: object) -> list[tuple[str, str]]:
    with pytest.raises(PollSpecError) as info:
        validate_definition(definition)
    return [(e.field, e.code) for e in info.value.errors]


def answer_errors(definition: dict, answers: object, **kwargs) -> dict[str, str]:
    """field -> code; an answer has at most one error."""
    with pytest.raises(PollSpecError) as info:
        validate_answers(definition, answers, **kwargs)
    fields = [e.field for e in info.value.errors]
    assert len(fields) == len(set(fields)), fields
    return {e.field: e.code for e in info.value.errors}


def poll(*questions: dict, **top: object) -> dict:
    definition = {
        "schema_version": 1,
        "title": "Veilig in de buurt",
        "intro": "Een korte peiling over veiligheid.",
        "theme": "veiligheidsgevoel",
        "estimated_minutes": 4,
        "language": "nl",
        "questions": list(questions),
    }
    definition.update(top)
    return definition


def options(*ids: str, exclusive: tuple[str, ...] = ()) -> list[dict]:
    made = [{"id": i, "label": f"Optie {i}"} for i in ids]
    for option in made:
        if option["id"] in exclusive:
            option["exclusive"] = True
    return made


def single(qid: str = "q1", ids: tuple[str, ...] = ("ja", "nee", "soms"), **extra) -> dict:
    return {"id": qid, "type": "single_choice", "text": "Voelt u zich veilig?",
            "options": options(*ids), **extra}  # fmt: skip


def multiple(qid: str = "q1", ids=("fiets", "auto", "ov", "geen"), exclusive=("geen",), **extra):
    return {"id": qid, "type": "multiple_choice", "text": "Hoe reist u?",
            "options": options(*ids, exclusive=exclusive), **extra}  # fmt: skip


def likert(qid: str = "q1", **extra) -> dict:
    labels = ["Zeer oneens", "Oneens", "Neutraal", "Eens", "Zeer eens"]
    return {"id": qid, "type": "likert5", "text": "De buurt is schoon.", "labels": labels, **extra}


def rating(qid: str = "q1", **extra) -> dict:
    return {"id": qid, "type": "rating10", "text": "Welk cijfer geeft u de buurt?",
            "low_label": "Slecht", "high_label": "Uitstekend", **extra}  # fmt: skip


def open_text(qid: str = "q1", **extra) -> dict:
    return {"id": qid, "type": "open_text", "text": "Wat kan beter?", **extra}


def ranking(qid: str = "q1", ids=("groen", "parkeren", "veiligheid", "spelen"), **extra) -> dict:
    return {"id": qid, "type": "ranking", "text": "Wat is het belangrijkst?",
            "options": options(*ids), **extra}  # fmt: skip


def location(qid: str = "q1", **extra) -> dict:
    return {"id": qid, "type": "location", "text": "Waar voelt u zich onveilig?", **extra}


IF_Q0_JA = {"question": "q0", "any_of": ["ja"]}


def every_type_poll() -> dict:
    return poll(
        single("veilig"),
        multiple("vervoer", max_selections=2),
        likert("schoon", dont_know="Weet niet"),
        rating("cijfer"),
        open_text("beter", max_length=10, required=False),
        ranking("prioriteit", rank_count=2),
        location("plek", required=False),
        likert("waarom", show_if={"question": "veilig", "any_of": ["nee", "soms"]}),
    )


VALID_ANSWERS = {
    "veilig": "ja",
    "vervoer": ["fiets", "ov"],
    "schoon": "dont_know",
    "cijfer": 0,
    "beter": "  Meer groen \n",
    "prioriteit": ["spelen", "groen"],
    "plek": {"lat": 52, "lon": 4.9},
}


# --- definitions: examples ---------------------------------------------------------------------


def test_a_definition_with_every_question_type_is_valid():
    validate_definition(every_type_poll())


@pytest.mark.parametrize("value", [None, [], "poll", 1, True, 1.5])
def test_a_definition_must_be_an_object(value):
    assert definition_errors(value) == [("", "invalid_type")]


def test_missing_top_level_fields_are_all_reported():
    assert definition_errors({"schema_version": 1}) == [
        ("title", "missing"),
        ("intro", "missing"),
        ("theme", "missing"),
        ("estimated_minutes", "missing"),
        ("language", "missing"),
        ("questions", "missing"),
    ]


def test_missing_schema_version_is_reported():
    definition = poll(single())
    del definition["schema_version"]
    assert definition_errors(definition) == [("schema_version", "missing")]


def test_an_unknown_schema_version_is_the_only_error_reported():
    assert definition_errors(poll(schema_version=2, title=5, extra=1)) == [
        ("schema_version", "unsupported_version")
    ]


@pytest.mark.parametrize("version", [True, "1", 1.0])
def test_schema_version_must_be_an_integer(version):
    assert definition_errors(poll(single(), schema_version=version)) == [
        ("schema_version", "invalid_type")
    ]


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("title", "ab", "invalid"),
        ("title", "   ", "empty"),
        ("title", "x" * 201, "too_long"),
        ("title", None, "invalid_type"),
        ("intro", "", "empty"),
        ("intro", "x" * 2001, "too_long"),
        ("theme", "Veiligheid", "invalid"),
        ("theme", "a", "invalid"),
        ("theme", "a" * 41, "invalid"),
        ("theme", "veilig\n", "invalid"),
        ("theme", 3, "invalid_type"),
        ("estimated_minutes", 0, "out_of_range"),
        ("estimated_minutes", 61, "out_of_range"),
        ("estimated_minutes", True, "invalid_type"),
        ("estimated_minutes", 4.0, "invalid_type"),
        ("language", "de", "invalid"),
        ("language", ["nl"], "invalid_type"),
        ("questions", {}, "invalid_type"),
        ("questions", [], "too_few"),
    ],
)
def test_top_level_field_errors(field, value, code):
    assert definition_errors(poll(single(), **{field: value})) == [(field, code)]


def test_at_most_fifty_questions():
    questions = [single(f"q{i}") for i in range(51)]
    assert definition_errors(poll(*questions)) == [("questions", "too_many")]
    validate_definition(poll(*questions[:50]))


def test_unknown_fields_are_refused_everywhere():
    question = single(hint="?", show_if=None)
    question["show_if"] = {"question": "q0", "any_of": ["ja"], "not": True}
    question["options"][1]["exclusive"] = True  # only multiple_choice options may be exclusive
    definition = poll(single("q0"), question, owner="me")
    assert sorted(definition_errors(definition)) == [
        ("owner", "unknown_field"),
        ("questions[1].hint", "unknown_field"),
        ("questions[1].options[1].exclusive", "unknown_field"),
        ("questions[1].show_if.not", "unknown_field"),
    ]


def test_fields_of_another_question_type_are_unknown():
    assert definition_errors(poll(likert(options=options("a", "b")))) == [
        ("questions[0].options", "unknown_field")
    ]


def test_with_an_unknown_type_only_fields_no_type_has_are_unknown():
    question = {"id": "q1", "type": "matrix", "text": "?", "options": [], "rows": []}
    assert definition_errors(poll(question)) == [
        ("questions[0].type", "invalid"),
        ("questions[0].rows", "unknown_field"),
    ]


@pytest.mark.parametrize(
    ("question", "field", "code"),
    [
        ({"type": "location", "text": "?"}, "questions[0].id", "missing"),
        ({"id": "q1", "text": "?"}, "questions[0].type", "missing"),
        ({"id": "q1", "type": "location"}, "questions[0].text", "missing"),
        (location("Q1"), "questions[0].id", "invalid"),
        (location("1q"), "questions[0].id", "invalid"),
        (location("q" * 41), "questions[0].id", "invalid"),
        (location(7), "questions[0].id", "invalid_type"),
        (location(type=["location"]), "questions[0].type", "invalid_type"),
        (location(type="Location"), "questions[0].type", "invalid"),
        (location(text=""), "questions[0].text", "empty"),
        (location(text="x" * 501), "questions[0].text", "too_long"),
        (location(help="x" * 501), "questions[0].help", "too_long"),
        (location(help=None), "questions[0].help", "invalid_type"),
        (location(required="yes"), "questions[0].required", "invalid_type"),
        (location(required=1), "questions[0].required", "invalid_type"),
        (location(show_if=["q0"]), "questions[0].show_if", "invalid_type"),
    ],
)
def test_common_question_field_errors(question, field, code):
    assert definition_errors(poll(question)) == [(field, code)]


def test_questions_must_be_objects():
    assert definition_errors(poll(single(), "q2")) == [("questions[1]", "invalid_type")]


def test_an_empty_help_text_is_allowed():
    validate_definition(poll(location(help="")))


def test_duplicate_question_ids_are_refused_at_the_later_question():
    assert definition_errors(poll(single("q1"), likert("q2"), rating("q1"))) == [
        ("questions[2].id", "duplicate")
    ]


@pytest.mark.parametrize(
    ("question", "field", "code"),
    [
        (single(options=options("ja")), "questions[0].options", "too_few"),
        (single(options=options(*(f"o{i}" for i in range(31)))), "questions[0].options",
         "too_many"),
        (ranking(options=options(*(f"o{i}" for i in range(16)))), "questions[0].options",
         "too_many"),
        (single(options=None), "questions[0].options", "invalid_type"),
        (single(ids=("ja", "nee", "ja")), "questions[0].options[2].id", "duplicate"),
        (single(ids=("ja", "Nee")), "questions[0].options[1].id", "invalid"),
        (single(ids=("ja", "")), "questions[0].options[1].id", "invalid"),
        (single(options=[{"id": "a", "label": "A"}, "b"]), "questions[0].options[1]",
         "invalid_type"),
        (single(options=[{"id": "a", "label": "A"}, {"label": "B"}]), "questions[0].options[1].id",
         "missing"),
        (single(options=[{"id": "a", "label": "A"}, {"id": "b"}]), "questions[0].options[1].label",
         "missing"),
        (single(options=[{"id": "a", "label": "A"}, {"id": "b", "label": " "}]),
         "questions[0].options[1].label", "empty"),
        (single(options=[{"id": "a", "label": "A"}, {"id": "b", "label": "x" * 201}]),
         "questions[0].options[1].label", "too_long"),
        (multiple(options=[{"id": "a", "label": "A"}, {"id": "b", "label": "B", "exclusive": 1}]),
         "questions[0].options[1].exclusive", "invalid_type"),
        (multiple(options=None), "questions[0].options", "invalid_type"),
        (ranking(options=None), "questions[0].options", "invalid_type"),
    ],
)  # fmt: skip
def test_option_errors(question, field, code):
    assert definition_errors(poll(question)) == [(field, code)]


@pytest.mark.parametrize(
    ("extra", "field", "code"),
    [
        ({"min_selections": 3, "max_selections": 2}, "questions[0].min_selections", "out_of_range"),
        ({"min_selections": 0}, "questions[0].min_selections", "out_of_range"),
        ({"min_selections": 5}, "questions[0].min_selections", "out_of_range"),
        ({"max_selections": 5}, "questions[0].max_selections", "out_of_range"),
        ({"max_selections": 0}, "questions[0].max_selections", "out_of_range"),
        ({"min_selections": True}, "questions[0].min_selections", "invalid_type"),
        ({"max_selections": "2"}, "questions[0].max_selections", "invalid_type"),
    ],
)
def test_selection_bounds(extra, field, code):
    assert definition_errors(poll(multiple(**extra))) == [(field, code)]


def test_selection_bounds_may_equal_the_option_count():
    validate_definition(poll(multiple(min_selections=4, max_selections=4)))
    validate_definition(poll(multiple(min_selections=1, max_selections=1)))


@pytest.mark.parametrize(
    ("rank_count", "code"), [(0, "out_of_range"), (5, "out_of_range"), (True, "invalid_type")]
)
def test_rank_count_bounds(rank_count, code):
    assert definition_errors(poll(ranking(rank_count=rank_count))) == [
        ("questions[0].rank_count", code)
    ]


@pytest.mark.parametrize("rank_count", [1, 4])
def test_rank_count_may_be_one_up_to_all_options(rank_count):
    validate_definition(poll(ranking(rank_count=rank_count)))


@pytest.mark.parametrize(
    ("question", "field", "code"),
    [
        (likert(labels=["a", "b", "c", "d"]), "questions[0].labels", "too_few"),
        (likert(labels=list("abcdef")), "questions[0].labels", "too_many"),
        (likert(labels="abcde"), "questions[0].labels", "invalid_type"),
        (likert(labels=["a", "b", 3, "d", "e"]), "questions[0].labels[2]", "invalid_type"),
        (likert(labels=["a", "b", "", "d", "e"]), "questions[0].labels[2]", "empty"),
        (likert(dont_know=True), "questions[0].dont_know", "invalid_type"),
        (likert(dont_know=""), "questions[0].dont_know", "empty"),
        ({**rating(), "low_label": None}, "questions[0].low_label", "invalid_type"),
        (rating(dont_know="x" * 201), "questions[0].dont_know", "too_long"),
        (open_text(max_length=0), "questions[0].max_length", "out_of_range"),
        (open_text(max_length=5001), "questions[0].max_length", "out_of_range"),
        (open_text(max_length=10.0), "questions[0].max_length", "invalid_type"),
    ],
)
def test_scale_and_text_field_errors(question, field, code):
    assert definition_errors(poll(question)) == [(field, code)]


def test_likert_needs_labels_and_rating_needs_both_end_labels():
    question = likert()
    del question["labels"]
    assert definition_errors(poll(question)) == [("questions[0].labels", "missing")]
    question = rating()
    del question["high_label"]
    assert definition_errors(poll(question)) == [("questions[0].high_label", "missing")]


def test_show_if_may_test_every_condition_type():
    validate_definition(
        poll(
            single("a"),
            multiple("b"),
            likert("c"),
            rating("d"),
            location("e", show_if={"question": "a", "any_of": ["ja", "soms"]}),
            location("f", show_if={"question": "b", "any_of": ["geen"]}),
            location("g", show_if={"question": "c", "any_of": [1, 5]}),
            location("h", show_if={"question": "d", "any_of": [0, 10]}),
        )
    )


@pytest.mark.parametrize(
    ("show_if", "field", "code"),
    [
        ({"question": "q2", "any_of": ["ja"]}, "questions[1].show_if.question",
         "forward_reference"),
        ({"question": "q1", "any_of": ["ja"]}, "questions[1].show_if.question",
         "forward_reference"),
        ({"question": "qx", "any_of": ["ja"]}, "questions[1].show_if.question", "unknown_question"),
        ({"question": 0, "any_of": ["ja"]}, "questions[1].show_if.question", "invalid_type"),
        ({"question": "q0", "any_of": ["ja", "nooit"]}, "questions[1].show_if.any_of[1]",
         "unknown_option"),
        ({"question": "q0", "any_of": [1]}, "questions[1].show_if.any_of[0]", "invalid_type"),
        ({"question": "q0", "any_of": []}, "questions[1].show_if.any_of", "too_few"),
        ({"question": "q0", "any_of": ["ja"] * 51}, "questions[1].show_if.any_of", "too_many"),
        ({"question": "q0", "any_of": "ja"}, "questions[1].show_if.any_of", "invalid_type"),
        ({"question": "q0"}, "questions[1].show_if.any_of", "missing"),
        ({"any_of": ["ja"]}, "questions[1].show_if.question", "missing"),
    ],
)  # fmt: skip
def test_show_if_errors(show_if, field, code):
    definition = poll(single("q0"), likert("q1", show_if=show_if), single("q2"))
    assert definition_errors(definition) == [(field, code)]


@pytest.mark.parametrize(
    ("source", "any_of", "field", "code"),
    [
        (likert("q0"), [0], "questions[1].show_if.any_of[0]", "out_of_range"),
        (likert("q0"), [5, 6], "questions[1].show_if.any_of[1]", "out_of_range"),
        (likert("q0"), [True], "questions[1].show_if.any_of[0]", "invalid_type"),
        (likert("q0", dont_know="Weet niet"), ["dont_know"], "questions[1].show_if.any_of[0]",
         "invalid_type"),
        (rating("q0"), [11], "questions[1].show_if.any_of[0]", "out_of_range"),
        (rating("q0"), [-1], "questions[1].show_if.any_of[0]", "out_of_range"),
        (multiple("q0"), ["trein"], "questions[1].show_if.any_of[0]", "unknown_option"),
        (open_text("q0"), ["ja"], "questions[1].show_if.question", "invalid"),
        (ranking("q0"), ["groen"], "questions[1].show_if.question", "invalid"),
        (location("q0"), ["ja"], "questions[1].show_if.question", "invalid"),
    ],
)  # fmt: skip
def test_show_if_values_must_suit_the_tested_question(source, any_of, field, code):
    definition = poll(source, open_text("q1", show_if={"question": "q0", "any_of": any_of}))
    assert definition_errors(definition) == [(field, code)]


def test_all_definition_errors_are_collected():
    definition = poll(
        single("q1", ids=("a", "a")),
        {"id": "q1", "type": "likert5", "text": "", "labels": []},
        title="",
        language="fr",
    )
    assert definition_errors(definition) == [
        ("title", "empty"),
        ("language", "invalid"),
        ("questions[0].options[1].id", "duplicate"),
        ("questions[1].id", "duplicate"),
        ("questions[1].text", "empty"),
        ("questions[1].labels", "too_few"),
    ]


@pytest.mark.parametrize(
    "definition",
    [
        poll({1: "x", None: 2}),
        poll(single(options=[{"id": ["a"], "label": {}}, {"id": None, "label": 1}])),
        poll(multiple(min_selections=None, max_selections=[]), single(show_if={"question": []})),
        poll(likert(labels=[[], {}, None, 1.5, "e"]), rating(low_label={"a": 1})),
        {"schema_version": 1, "questions": [{"show_if": {"question": {"q": 1}, "any_of": {}}}]},
        {(1, 2): "tuple key", "schema_version": 1},
    ],
)
def test_malformed_definitions_raise_only_pollspec_error(definition):
    assert definition_errors(definition)


@pytest.mark.parametrize("broken", [5, "ja", {"ja": "Ja"}, None, [["ja"]], [{"id": 1}]])
def test_a_show_if_on_a_question_with_broken_options_reports_the_options(broken):
    definition = poll(single("q0", options=broken), open_text("q1", show_if=IF_Q0_JA))
    errors = definition_errors(definition)
    assert errors[0][0].startswith("questions[0].options")
    assert errors[-1] == ("questions[1].show_if.any_of[0]", "unknown_option")


# --- answers: examples -------------------------------------------------------------------------


def test_valid_answers_are_normalised():
    assert validate_answers(every_type_poll(), VALID_ANSWERS) == {
        "veilig": "ja",
        "vervoer": ["fiets", "ov"],
        "schoon": "dont_know",
        "cijfer": 0,
        "beter": "Meer groen",
        "prioriteit": ["spelen", "groen"],
        "plek": {"lat": 52.0, "lon": 4.9},
    }


def test_optional_questions_may_be_left_out_or_null():
    answers = {**VALID_ANSWERS, "beter": None}
    del answers["plek"]
    assert set(validate_answers(every_type_poll(), answers)) == {
        "veilig", "vervoer", "schoon", "cijfer", "prioriteit",
    }  # fmt: skip


def test_a_shown_follow_up_question_is_validated_and_returned():
    answers = {**VALID_ANSWERS, "veilig": "soms", "waarom": 2}
    assert validate_answers(every_type_poll(), answers)["waarom"] == 2
    assert answer_errors(every_type_poll(), {**VALID_ANSWERS, "veilig": "soms"}) == {
        "answers.waarom": "required"
    }


@pytest.mark.parametrize("answers", [None, [], "ja", 1])
def test_answers_must_be_an_object(answers):
    assert answer_errors(every_type_poll(), answers) == {"answers": "invalid_type"}
    with pytest.raises(PollSpecError):
        visible_questions(every_type_poll(), answers)


@pytest.mark.parametrize(
    ("qid", "value", "code"),
    [
        ("veilig", None, "required"),
        ("veilig", "misschien", "unknown_option"),
        ("veilig", ["ja"], "invalid_type"),
        ("veilig", 1, "invalid_type"),
        ("vervoer", "fiets", "invalid_type"),
        ("vervoer", ["fiets", 1], "invalid_type"),
        ("vervoer", ["fiets", "trein"], "unknown_option"),
        ("vervoer", ["fiets", "fiets"], "duplicate"),
        ("vervoer", [], "too_few"),
        ("vervoer", ["fiets", "auto", "ov"], "too_many"),
        ("vervoer", ["geen", "fiets"], "exclusive"),
        ("vervoer", ["fiets", "geen"], "exclusive"),
        ("schoon", 0, "out_of_range"),
        ("schoon", 6, "out_of_range"),
        ("schoon", True, "invalid_type"),
        ("schoon", 3.0, "invalid_type"),
        ("schoon", "3", "invalid_type"),
        ("cijfer", 11, "out_of_range"),
        ("cijfer", -1, "out_of_range"),
        ("cijfer", False, "invalid_type"),
        ("cijfer", "dont_know", "invalid"),
        ("beter", "", "empty"),
        ("beter", " \n\t ", "empty"),
        ("beter", "x" * 11, "too_long"),
        ("beter", 42, "invalid_type"),
        ("prioriteit", ["groen"], "too_few"),
        ("prioriteit", ["groen", "spelen", "parkeren"], "too_many"),
        ("prioriteit", ["groen", "groen"], "duplicate"),
        ("prioriteit", ["groen", "zwembad"], "unknown_option"),
        ("prioriteit", {"groen": 1}, "invalid_type"),
        ("plek", {"lat": 91, "lon": 4.9}, "out_of_range"),
        ("plek", {"lat": 52.1, "lon": -180.5}, "out_of_range"),
        ("plek", {"lat": math.nan, "lon": 4.9}, "out_of_range"),
        ("plek", {"lat": 52.1, "lon": math.inf}, "out_of_range"),
        ("plek", {"lat": True, "lon": 4.9}, "invalid_type"),
        ("plek", {"lat": "52.1", "lon": 4.9}, "invalid_type"),
        ("plek", {"lat": 52.1}, "invalid"),
        ("plek", {"lat": 52.1, "lon": 4.9, "alt": 3}, "invalid"),
        ("plek", [52.1, 4.9], "invalid_type"),
    ],
)
def test_answer_errors(qid, value, code):
    answers = {**VALID_ANSWERS, qid: value}
    assert answer_errors(every_type_poll(), answers) == {f"answers.{qid}": code}


def test_open_text_length_is_counted_after_stripping():
    answers = {**VALID_ANSWERS, "beter": "   " + "x" * 10 + "   "}
    assert validate_answers(every_type_poll(), answers)["beter"] == "x" * 10


def test_unknown_question_ids_are_refused():
    answers = {**VALID_ANSWERS, "leeftijd": 40, "extra": None}
    assert answer_errors(every_type_poll(), answers) == {
        "answers.leeftijd": "unknown_question",
        "answers.extra": "unknown_question",
    }


def test_all_answer_errors_are_collected():
    answers = {"veilig": "nee", "vervoer": [], "schoon": 9, "beter": "", "zzz": 1}
    assert answer_errors(every_type_poll(), answers) == {
        "answers.vervoer": "too_few",
        "answers.schoon": "out_of_range",
        "answers.cijfer": "required",
        "answers.beter": "empty",
        "answers.prioriteit": "required",
        "answers.waarom": "required",
        "answers.zzz": "unknown_question",
    }


def test_answering_a_hidden_question_is_refused_but_null_is_allowed():
    assert answer_errors(every_type_poll(), {**VALID_ANSWERS, "waarom": 4}) == {
        "answers.waarom": "hidden"
    }
    assert "waarom" not in validate_answers(every_type_poll(), {**VALID_ANSWERS, "waarom": None})


def test_a_dont_know_answer_is_only_allowed_when_the_question_offers_it():
    assert validate_answers(poll(rating(dont_know="Weet niet")), {"q1": "dont_know"}) == {
        "q1": "dont_know"
    }
    assert answer_errors(poll(likert()), {"q1": "dont_know"}) == {"answers.q1": "invalid"}


def test_an_exclusive_option_alone_is_enough_whatever_min_selections():
    definition = poll(multiple(min_selections=2))
    assert validate_answers(definition, {"q1": ["geen"]}) == {"q1": ["geen"]}
    assert answer_errors(definition, {"q1": ["fiets"]}) == {"answers.q1": "too_few"}


def test_ranking_without_rank_count_ranks_every_option():
    definition = poll(ranking())
    ranked = ["veiligheid", "groen", "spelen", "parkeren"]
    assert validate_answers(definition, {"q1": ranked}) == {"q1": ranked}
    assert answer_errors(definition, {"q1": ranked[:3]}) == {"answers.q1": "too_few"}


def test_location_check_gets_floats_and_can_refuse():
    seen = []

    def inside(lat: float, lon: float) -> bool:
        seen.append((lat, lon))
        return lat > 52

    definition = poll(location())
    assert validate_answers(definition, {"q1": {"lat": 53, "lon": 5}}, location_check=inside)
    assert seen == [(53.0, 5.0)] and all(type(v) is float for v in seen[0])
    assert answer_errors(definition, {"q1": {"lat": 51.9, "lon": 5}}, location_check=inside) == {
        "answers.q1": "outside_area"
    }


def test_the_location_check_is_not_asked_about_impossible_coordinates():
    def never(lat: float, lon: float) -> bool:
        raise AssertionError("called")

    definition = poll(location())
    assert answer_errors(definition, {"q1": {"lat": -91, "lon": 5}}, location_check=never) == {
        "answers.q1": "out_of_range"
    }


def chain_poll() -> dict:
    return poll(
        single("q1"),
        single("q2", show_if={"question": "q1", "any_of": ["ja"]}),
        likert("q3", show_if={"question": "q2", "any_of": ["nee"]}),
        likert("q4", show_if={"question": "q3", "any_of": [4, 5]}, required=False),
    )


def test_visibility_follows_earlier_answers_in_order():
    assert visible_questions(chain_poll(), {}) == ["q1"]
    assert visible_questions(chain_poll(), {"q1": "ja"}) == ["q1", "q2"]
    assert visible_questions(chain_poll(), {"q1": "ja", "q2": "nee"}) == ["q1", "q2", "q3"]
    answers = {"q1": "ja", "q2": "nee", "q3": 5}
    assert visible_questions(chain_poll(), answers) == ["q1", "q2", "q3", "q4"]
    assert validate_answers(chain_poll(), answers) == answers


def test_a_hidden_questions_answer_shows_nothing():
    answers = {"q1": "nee", "q2": "nee", "q3": 5}
    assert visible_questions(chain_poll(), answers) == ["q1"]
    assert answer_errors(chain_poll(), answers) == {"answers.q2": "hidden", "answers.q3": "hidden"}


def test_a_multiple_choice_condition_matches_any_chosen_option():
    definition = poll(
        multiple("q1", exclusive=()), open_text("q2", show_if={"question": "q1", "any_of": ["ov"]})
    )
    assert visible_questions(definition, {"q1": ["fiets", "ov"]}) == ["q1", "q2"]
    assert visible_questions(definition, {"q1": ["fiets", "auto"]}) == ["q1"]


@pytest.mark.parametrize("value", ["dont_know", True, 4.0, "4", [4], None])
def test_only_a_matching_integer_meets_a_scale_condition(value):
    definition = poll(
        likert("q1", dont_know="Weet niet"),
        open_text("q2", show_if={"question": "q1", "any_of": [1, 4]}),
    )
    assert visible_questions(definition, {"q1": 4}) == ["q1", "q2"]
    assert visible_questions(definition, {"q1": value}) == ["q1"]


# --- errors and hashing ------------------------------------------------------------------------


def test_field_error_and_pollspec_error():
    error = FieldError("answers.q1", "required", "this question is required")
    assert error.as_dict() == {
        "field": "answers.q1",
        "code": "required",
        "message": "this question is required",
    }
    raised = PollSpecError([error, FieldError("", "invalid_type", "the definition must be")])
    assert isinstance(raised, ValueError)
    assert raised.errors[0] is error
    assert str(raised).startswith("2 errors: answers.q1: this question is required [required]")


def test_a_long_error_summary_is_cut_short():
    errors = [FieldError(f"answers.q{i}", "required", "required") for i in range(25)]
    summary = str(PollSpecError(errors))
    assert "answers.q9:" in summary and "answers.q10:" not in summary
    assert summary.endswith("... and 15 more")


def test_content_hash_is_sha256_of_canonical_json():
    expected = hashlib.sha256('{"a":[1,"é"],"b":{"c":null}}'.encode()).hexdigest()
    assert content_hash({"b": {"c": None}, "a": [1, "é"]}) == expected
    assert content_hash(every_type_poll()) == content_hash(copy.deepcopy(every_type_poll()))
    assert content_hash({"a": 1}) != content_hash({"a": 2})


def test_answer_options_lists_option_ids_in_order():
    assert answer_options(ranking()) == ("groen", "parkeren", "veiligheid", "spelen")
    assert answer_options(likert()) == ()


# --- strategies --------------------------------------------------------------------------------
# Generation is written as plain ``draw_*`` functions over a few fixed primitive strategies:
# building a new strategy object for every example (sampled_from a fresh list, a composite
# with a dict argument) costs far more than drawing from it.

LETTERS = "abcdefghijklmnopqrstuvwxyz"
ALPHABET = LETTERS + " ABCéëĳ€?!,.-"


def texts(max_size: int) -> st.SearchStrategy:
    """Non-blank text of 1..max_size characters (built, not filtered: filters are slow)."""
    return st.builds(
        operator.add,
        st.text(alphabet=LETTERS + "ABCéĳ€?", min_size=1, max_size=1),
        st.text(alphabet=ALPHABET, max_size=max_size - 1),
    )


# Small pools with the edge cases in them; the examples above cover each length and pattern
# boundary one by one.
TEXTS = st.sampled_from(
    ["x", "Ja", "Weet niet / geen mening", "Voelt u zich 's avonds veilig?", " Ëën €  ", "l" * 200]
)
TITLES = st.sampled_from(["abc", "Veilig in de buurt", "Groen  & spelen", "t" * 200])
THEMES = st.sampled_from(["veiligheidsgevoel", "a1", "__", "0" * 40])
QUESTION_IDS = ("q1", "q2", "q10", "a", "b", "veilig", "vraag_2", "z9_", "m", "q" + "x" * 39)
OPTION_IDS = ("ja", "nee", "soms", "0", "1", "a", "geen", "weet_niet", "fiets", "b_2", "o" * 40)
ANSWER_TEXTS = {limit: texts(limit) for limit in range(1, 13)}
PADDING = st.sampled_from(["", " ", "  \n", "\t", "\u00a0"])
SCALES = {"likert5": st.integers(1, 5), "rating10": st.integers(0, 10)}
SCALES_OR_DONT_KNOW = {kind: scale | st.just("dont_know") for kind, scale in SCALES.items()}
LOCATIONS = st.fixed_dictionaries(
    {"lat": st.floats(-90, 90), "lon": st.integers(-180, 180) | st.floats(-180, 180)}
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)


def pick(draw, items: tuple | list):
    return items[draw(st.integers(0, len(items) - 1))]


def pick_some(draw, items: tuple | list, low: int, high: int) -> list:
    """low..high distinct items, in random order."""
    indexes = st.integers(0, len(items) - 1)
    return [items[k] for k in draw(st.lists(indexes, min_size=low, max_size=high, unique=True))]


def maybe(draw, target: dict, key: str, strategy: st.SearchStrategy) -> None:
    if draw(st.booleans()):
        target[key] = draw(strategy)


def draw_options(draw, exclusive: str = "no") -> list[dict]:
    """2..6 options; exclusive: "no", "maybe" (random) or "some" (at least one, not all)."""
    made = [{"id": i, "label": draw(TEXTS)} for i in pick_some(draw, OPTION_IDS, 2, 6)]
    if exclusive == "maybe":
        for option in made:
            maybe(draw, option, "exclusive", st.booleans())
    elif exclusive == "some":
        for k in pick_some(draw, range(1, len(made)), 1, len(made) - 1):
            made[k]["exclusive"] = True
    return made


def draw_single_choice(draw) -> dict:
    return {"type": "single_choice", "options": draw_options(draw)}


def draw_multiple_choice(draw, exclusive: str = "maybe", room: bool = False) -> dict:
    """room: max_selections is below the number of options, so one more is too many."""
    made = draw_options(draw, exclusive)
    count = len(made)
    top = draw(st.integers(1, count - 1)) if room else draw(st.integers(1, count))
    low = draw(st.integers(1, top))
    body = {"type": "multiple_choice", "options": made}
    if room or top != count or draw(st.booleans()):
        body["max_selections"] = top
    if low != 1 or draw(st.booleans()):
        body["min_selections"] = low
    return body


def draw_likert5(draw) -> dict:
    body = {"type": "likert5", "labels": [draw(TEXTS) for _ in range(5)]}
    maybe(draw, body, "dont_know", TEXTS)
    return body


def draw_rating10(draw) -> dict:
    body = {"type": "rating10", "low_label": draw(TEXTS), "high_label": draw(TEXTS)}
    maybe(draw, body, "dont_know", TEXTS)
    return body


def draw_open_text(draw) -> dict:
    body = {"type": "open_text"}
    maybe(draw, body, "max_length", st.integers(1, 40) | st.integers(1, 5000))
    return body


def draw_ranking(draw, room: bool = False) -> dict:
    """room: rank_count is below the number of options, so one more is too many."""
    body = {"type": "ranking", "options": draw_options(draw)}
    count = len(body["options"])
    if room:
        body["rank_count"] = draw(st.integers(1, count - 1))
    else:
        maybe(draw, body, "rank_count", st.integers(1, count))
    return body


def draw_location(draw) -> dict:
    return {"type": "location"}


BODIES = {
    "single_choice": draw_single_choice,
    "multiple_choice": draw_multiple_choice,
    "likert5": draw_likert5,
    "rating10": draw_rating10,
    "open_text": draw_open_text,
    "ranking": draw_ranking,
    "location": draw_location,
}


def draw_any_body(draw) -> dict:
    return BODIES[pick(draw, QUESTION_TYPES)](draw)


def condition_values(question: dict) -> tuple | list:
    if question["type"] == "likert5":
        return range(1, 6)
    if question["type"] == "rating10":
        return range(0, 11)
    return answer_options(question)


def draw_show_if(draw, earlier: list[dict]) -> dict | None:
    sources = [q for q in earlier if q["type"] not in ("open_text", "ranking", "location")]
    if not sources or draw(st.booleans()):
        return None
    source = pick(draw, sources)
    values = condition_values(source)
    return {"question": source["id"], "any_of": pick_some(draw, values, 1, len(values))}


def draw_definition(draw, focus=None) -> tuple[dict, str | None]:
    """A valid definition; with ``focus`` (a body drawer), one question made by it is always
    shown and required. Returns the definition and that question's id."""
    if focus is None:
        bodies = [draw_any_body(draw) for _ in range(draw(st.integers(1, 6)))]
        focus_at = None
    else:  # a little context around the focus question is enough
        bodies = [draw_any_body(draw) for _ in range(draw(st.integers(0, 2)))]
        focus_at = draw(st.integers(0, len(bodies)))
        bodies.insert(focus_at, focus(draw))
    ids = pick_some(draw, QUESTION_IDS, len(bodies), len(bodies))
    questions: list[dict] = []
    for index, (qid, body) in enumerate(zip(ids, bodies, strict=True)):
        question = {"id": qid, "text": draw(TEXTS), **body}
        maybe(draw, question, "help", st.just("") | TEXTS)
        if index == focus_at:
            maybe(draw, question, "required", st.just(True))  # explicitly or by default
        else:
            maybe(draw, question, "required", st.booleans())
            show_if = draw_show_if(draw, questions)
            if show_if is not None:
                question["show_if"] = show_if
        questions.append(question)
    definition = {
        "schema_version": SCHEMA_VERSION,
        "title": draw(TITLES),
        "intro": draw(TEXTS),
        "theme": draw(THEMES),
        "estimated_minutes": draw(st.integers(1, 60)),
        "language": pick(draw, ("nl", "en")),
        "questions": questions,
    }
    return definition, (None if focus_at is None else ids[focus_at])


@st.composite
def definitions(draw) -> dict:
    return draw_definition(draw)[0]


def draw_multiple_choice_answer(draw, question: dict) -> list[str]:
    made = question["options"]
    exclusive = [o["id"] for o in made if o.get("exclusive")]
    plain = [o["id"] for o in made if not o.get("exclusive")]
    low = question.get("min_selections", 1)
    high = min(question.get("max_selections", len(made)), len(plain))
    if exclusive and (low > high or draw(st.integers(0, 3)) == 0):
        return [pick(draw, exclusive)]
    return pick_some(draw, plain, low, high)


def draw_answer(draw, question: dict) -> object:
    """A valid answer to a valid question."""
    kind = question["type"]
    if kind == "single_choice":
        return pick(draw, answer_options(question))
    if kind == "multiple_choice":
        return draw_multiple_choice_answer(draw, question)
    if kind in SCALES:
        return draw((SCALES_OR_DONT_KNOW if "dont_know" in question else SCALES)[kind])
    if kind == "open_text":
        limit = min(question.get("max_length", 1000), 12)
        return draw(PADDING) + draw(ANSWER_TEXTS[limit]) + draw(PADDING)
    if kind == "ranking":
        count = question.get("rank_count", len(question["options"]))
        return pick_some(draw, answer_options(question), count, count)
    return draw(LOCATIONS)


def normalised(question: dict, value: object) -> object:
    if question["type"] == "open_text":
        return value.strip()
    if question["type"] == "location":
        return {"lat": float(value["lat"]), "lon": float(value["lon"])}
    return value


def condition_met(show_if: dict, answers: dict) -> bool:
    value = answers.get(show_if["question"])
    chosen = value if isinstance(value, list) else [value]
    return any(item in show_if["any_of"] for item in chosen)


@dataclass
class Filled:
    answers: dict
    expected: dict  # what validate_answers returns
    shown: list[str]


def draw_answers(draw, definition: dict) -> Filled:
    """Answers to a valid definition that respect show_if, required and every value rule."""
    filled = Filled({}, {}, [])
    for question in definition["questions"]:
        qid = question["id"]
        show_if = question.get("show_if")
        if show_if and not (
            show_if["question"] in filled.shown and condition_met(show_if, filled.answers)
        ):
            maybe(draw, filled.answers, qid, st.none())
            continue
        filled.shown.append(qid)
        if question.get("required", True) or draw(st.booleans()):
            filled.answers[qid] = draw_answer(draw, question)
            filled.expected[qid] = normalised(question, filled.answers[qid])
        else:
            maybe(draw, filled.answers, qid, st.none())
    return filled


@st.composite
def polls(draw, focus=None) -> tuple[dict, Filled, str | None]:
    """(definition, answers, focus question id); build once at import, not per example."""
    definition, focus_id = draw_definition(draw, focus)
    return definition, draw_answers(draw, definition), focus_id


FOCUSED = {kind: polls(body) for kind, body in BODIES.items()}


def question_by_id(definition: dict, qid: str) -> dict:
    return next(q for q in definition["questions"] if q["id"] == qid)


def fresh_id(definition: dict) -> str:
    taken = {q["id"] for q in definition["questions"]}
    candidate = "extra"
    while candidate in taken:
        candidate += "_"
    return candidate


def refused_with(definition: dict, answers: dict, qid: str, code: str, **kwargs) -> None:
    errors = answer_errors(definition, answers, **kwargs)
    assert errors.get(f"answers.{qid}") == code, errors
    assert set(errors.values()) <= DOCUMENTED_CODES


# --- properties: valid input passes --------------------------------------------------------------


@PROPERTY
@given(polls())
def test_generated_definitions_and_answers_are_valid(made):
    definition, filled, _ = made
    validate_definition(definition)
    normalised_answers = validate_answers(definition, filled.answers)
    assert normalised_answers == filled.expected
    assert list(normalised_answers) == [qid for qid in filled.shown if qid in filled.expected]
    assert visible_questions(definition, filled.answers) == filled.shown


# --- properties: broken answers are refused ----------------------------------------------------


@MUTATION
@pytest.mark.parametrize("kind", ["single_choice", "multiple_choice", "ranking"])
@given(data=st.data())
def test_an_unknown_option_is_refused(kind, data):
    definition, filled, qid = data.draw(FOCUSED[kind])
    bad = "NOT_AN_OPTION"
    value = bad if kind == "single_choice" else [bad, *filled.answers[qid][1:]]
    refused_with(definition, {**filled.answers, qid: value}, qid, "unknown_option")


@MUTATION
@given(polls(partial(draw_multiple_choice, exclusive="no", room=True)))
def test_too_many_selections_are_refused(made):
    definition, filled, qid = made
    question = question_by_id(definition, qid)
    more = list(answer_options(question)[: question["max_selections"] + 1])
    refused_with(definition, {**filled.answers, qid: more}, qid, "too_many")


@MUTATION
@given(polls(partial(draw_ranking, room=True)))
def test_too_many_ranked_options_are_refused(made):
    definition, filled, qid = made
    question = question_by_id(definition, qid)
    more = list(answer_options(question)[: question["rank_count"] + 1])
    refused_with(definition, {**filled.answers, qid: more}, qid, "too_many")


@MUTATION
@pytest.mark.parametrize("kind", ["multiple_choice", "ranking"])
@given(data=st.data())
def test_too_few_selections_are_refused(kind, data):
    definition, filled, qid = data.draw(FOCUSED[kind])
    fewer = [] if kind == "multiple_choice" else filled.answers[qid][:-1]
    refused_with(definition, {**filled.answers, qid: fewer}, qid, "too_few")


@MUTATION
@given(polls(partial(draw_multiple_choice, exclusive="no")))
def test_fewer_than_min_selections_are_refused(made):
    definition, filled, qid = made
    question = question_by_id(definition, qid)
    fewer = list(answer_options(question)[: question.get("min_selections", 1) - 1])
    refused_with(definition, {**filled.answers, qid: fewer}, qid, "too_few")


@MUTATION
@given(polls(partial(draw_multiple_choice, exclusive="some")), st.data())
def test_combining_an_exclusive_option_is_refused(made, data):
    definition, filled, qid = made
    made_options = question_by_id(definition, qid)["options"]
    exclusive = pick(data.draw, [o["id"] for o in made_options if o.get("exclusive")])
    other = pick(data.draw, [o["id"] for o in made_options if o["id"] != exclusive])
    combined = pick_some(data.draw, [exclusive, other], 2, 2)
    refused_with(definition, {**filled.answers, qid: combined}, qid, "exclusive")


OUTSIDE_SCALE = {
    "likert5": st.integers(max_value=0) | st.integers(min_value=6),
    "rating10": st.integers(max_value=-1) | st.integers(min_value=11),
}


@MUTATION
@pytest.mark.parametrize("kind", ["likert5", "rating10"])
@given(data=st.data())
def test_scale_answers_out_of_range_are_refused(kind, data):
    definition, filled, qid = data.draw(FOCUSED[kind])
    outside = data.draw(OUTSIDE_SCALE[kind])
    refused_with(definition, {**filled.answers, qid: outside}, qid, "out_of_range")


@MUTATION
@given(FOCUSED["open_text"], st.data())
def test_too_long_text_is_refused(made, data):
    definition, filled, qid = made
    limit = question_by_id(definition, qid).get("max_length", 1000)
    extra = data.draw(st.integers(1, 3))
    text = (
        data.draw(PADDING) + "x€ĳ" * (limit // 3) + "x" * (limit % 3 + extra) + data.draw(PADDING)
    )
    refused_with(definition, {**filled.answers, qid: text}, qid, "too_long")


BLANKS = st.text(alphabet=" \t\n\r\u00a0\u2003", max_size=6)


@MUTATION
@given(FOCUSED["open_text"], BLANKS)
def test_empty_text_is_refused(made, blank):
    definition, filled, qid = made
    refused_with(definition, {**filled.answers, qid: blank}, qid, "empty")


def add_question(definition: dict, body: dict, show_if: dict) -> dict:
    question = {"id": fresh_id(definition), "text": "Vervolgvraag", **body, "show_if": show_if}
    definition["questions"].append(question)
    return question


@MUTATION
@given(FOCUSED["single_choice"], st.data())
def test_answering_a_hidden_question_is_refused(made, data):
    """A question hidden by the answer before it, and one that depends only on the hidden one:
    the hidden question's own answer must not show the second."""
    definition, filled, qid = made
    options_left = list(answer_options(question_by_id(definition, qid)))
    options_left.remove(filled.answers[qid])
    any_of = pick_some(data.draw, options_left, 1, len(options_left))
    hidden = add_question(
        definition, draw_single_choice(data.draw), {"question": qid, "any_of": any_of}
    )
    hidden_answer = draw_answer(data.draw, hidden)
    after = {"question": hidden["id"], "any_of": [hidden_answer]}
    follow_up = add_question(definition, draw_any_body(data.draw), after)
    validate_definition(definition)
    answers = {
        **filled.answers,
        hidden["id"]: hidden_answer,
        follow_up["id"]: draw_answer(data.draw, follow_up),
    }
    assert visible_questions(definition, answers) == visible_questions(definition, filled.answers)
    errors = answer_errors(definition, answers)
    assert errors[f"answers.{hidden['id']}"] == "hidden"
    assert errors[f"answers.{follow_up['id']}"] == "hidden"


@MUTATION
@given(polls(draw_any_body), st.booleans())
def test_leaving_out_a_required_shown_question_is_refused(made, as_null):
    definition, filled, qid = made
    answers = dict(filled.answers)
    if as_null:
        answers[qid] = None
    else:
        del answers[qid]
    refused_with(definition, answers, qid, "required")


@MUTATION
@given(polls(), st.text(max_size=12), JSON)
def test_an_unknown_question_id_is_refused(made, key, value):
    definition, filled, _ = made
    assume(key not in {q["id"] for q in definition["questions"]})
    refused_with(definition, {**filled.answers, key: value}, key, "unknown_question")


NOT_A_LIST = st.text(max_size=5) | st.integers() | st.dictionaries(st.text(max_size=3), JSON)
WRONG_TYPES = {
    "single_choice": st.integers()
    | st.booleans()
    | st.floats()
    | st.lists(st.sampled_from(OPTION_IDS)),
    "multiple_choice": NOT_A_LIST | st.lists(st.integers() | st.booleans(), min_size=1),
    "likert5": st.booleans() | st.floats() | st.lists(st.integers()) | st.text(max_size=3),
    "rating10": st.booleans() | st.floats() | st.dictionaries(st.text(), st.integers()),
    "open_text": st.integers() | st.booleans() | st.floats() | st.lists(st.text()),
    "ranking": NOT_A_LIST | st.lists(st.none() | st.floats(), min_size=1),
    "location": st.lists(st.floats())
    | st.text()
    | st.integers()
    | st.fixed_dictionaries(
        {"lat": st.booleans() | st.text() | st.none(), "lon": st.floats(-180, 180)}
    ),
}


@MUTATION
@pytest.mark.parametrize("kind", QUESTION_TYPES)
@given(data=st.data())
def test_an_answer_of_the_wrong_type_is_refused(kind, data):
    definition, filled, qid = data.draw(FOCUSED[kind])
    wrong = data.draw(WRONG_TYPES[kind])
    refused_with(definition, {**filled.answers, qid: wrong}, qid, "invalid_type")


@MUTATION
@pytest.mark.parametrize("kind", ["multiple_choice", "ranking"])
@given(data=st.data())
def test_a_repeated_option_is_refused(kind, data):
    definition, filled, qid = data.draw(FOCUSED[kind])
    chosen = filled.answers[qid]
    repeated = pick_some(
        data.draw, [*chosen, pick(data.draw, chosen)], len(chosen) + 1, len(chosen) + 1
    )
    refused_with(definition, {**filled.answers, qid: repeated}, qid, "duplicate")


@MUTATION
@given(FOCUSED["location"])
def test_the_location_check_decides_inside_or_outside(made):
    definition, filled, qid = made
    validate_answers(definition, filled.answers, location_check=lambda lat, lon: True)
    refused_with(definition, filled.answers, qid, "outside_area", location_check=lambda a, b: False)


IMPOSSIBLE = {
    "lat": st.floats(min_value=90, exclude_min=True) | st.floats(max_value=-90, exclude_max=True),
    "lon": st.floats(min_value=180, exclude_min=True) | st.floats(max_value=-180, exclude_max=True),
}


@MUTATION
@given(FOCUSED["location"], st.sampled_from(["lat", "lon"]), st.data())
def test_impossible_coordinates_are_refused(made, axis, data):
    definition, filled, qid = made
    wrong = data.draw(IMPOSSIBLE[axis] | st.just(math.nan))
    value = {**filled.answers[qid], axis: wrong}
    refused_with(definition, {**filled.answers, qid: value}, qid, "out_of_range")


# --- properties: broken definitions are refused ------------------------------------------------


def assert_definition_refused(definition: dict, field: str, code: str) -> None:
    errors = definition_errors(definition)
    assert (field, code) in errors, errors
    assert {c for _, c in errors} <= DOCUMENTED_CODES


@MUTATION
@given(definitions(), st.data())
def test_a_duplicate_question_id_is_refused(definition, data):
    questions = definition["questions"]
    assume(len(questions) >= 2)
    later = data.draw(st.integers(1, len(questions) - 1))
    earlier = data.draw(st.integers(0, later - 1))
    questions[later]["id"] = questions[earlier]["id"]
    assert_definition_refused(definition, f"questions[{later}].id", "duplicate")


@MUTATION
@given(definitions(), st.data())
def test_a_show_if_on_itself_or_a_later_question_is_refused(definition, data):
    questions = definition["questions"]
    index = data.draw(st.integers(0, len(questions) - 1))
    target = data.draw(st.integers(index, len(questions) - 1))
    questions[index]["show_if"] = {"question": questions[target]["id"], "any_of": [1]}
    field = f"questions[{index}].show_if.question"
    assert_definition_refused(definition, field, "forward_reference")


@MUTATION
@given(polls(draw_multiple_choice), st.data())
def test_min_selections_above_max_selections_is_refused(made, data):
    definition, _, qid = made
    index = next(i for i, q in enumerate(definition["questions"]) if q["id"] == qid)
    question = definition["questions"][index]
    top = data.draw(st.integers(1, len(question["options"]) - 1))
    question["max_selections"] = top
    question["min_selections"] = data.draw(st.integers(top + 1, len(question["options"])))
    assert_definition_refused(definition, f"questions[{index}].min_selections", "out_of_range")


@MUTATION
@given(definitions(), st.data(), st.text(max_size=15))
def test_an_unknown_question_type_is_refused(definition, data, kind):
    assume(kind not in QUESTION_TYPES)
    index = data.draw(st.integers(0, len(definition["questions"]) - 1))
    definition["questions"][index]["type"] = kind
    assert_definition_refused(definition, f"questions[{index}].type", "invalid")


@MUTATION
@given(definitions(), st.data(), JSON)
def test_an_unknown_field_is_refused_where_it_is(definition, data, value):
    places = [("", definition)]
    for i, question in enumerate(definition["questions"]):
        places.append((f"questions[{i}]", question))
        if "show_if" in question:
            places.append((f"questions[{i}].show_if", question["show_if"]))
        for k, option in enumerate(question.get("options", [])):
            places.append((f"questions[{i}].options[{k}]", option))
    path, place = pick(data.draw, places)
    place["x_extra"] = value
    assert_definition_refused(definition, f"{path}.x_extra" if path else "x_extra", "unknown_field")


# --- properties: nothing but PollSpecError escapes ---------------------------------------------


def nodes(value: object, path: tuple = ()) -> list[tuple]:
    """Paths to every value inside a JSON-like document."""
    found = [path]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += nodes(inner, (*path, key))
    elif isinstance(value, list):
        for k, inner in enumerate(value):
            found += nodes(inner, (*path, k))
    return found


def replaced(document: dict, path: tuple, new: object) -> object:
    if not path:
        return new
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = new
    return document


def refuses_cleanly(validate, *args, **kwargs) -> None:
    try:
        validate(*args, **kwargs)
    except PollSpecError as error:
        assert error.errors and {e.code for e in error.errors} <= DOCUMENTED_CODES


@FUZZ
@given(JSON)
def test_any_json_as_a_definition_raises_only_pollspec_error(value):
    refuses_cleanly(validate_definition, value)


ANY_ANSWERS = st.dictionaries(st.sampled_from(QUESTION_IDS) | st.text(max_size=4), JSON, max_size=6)


@FUZZ
@given(definitions(), st.data(), JSON, ANY_ANSWERS)
def test_a_corrupted_definition_raises_only_pollspec_error(definition, data, junk, answers):
    """Whatever one value is replaced with, validation refuses cleanly; and when the result is
    still accepted, validating any answers against it refuses cleanly too."""
    corrupted = replaced(definition, pick(data.draw, nodes(definition)), junk)
    try:
        validate_definition(corrupted)
    except PollSpecError as error:
        assert error.errors and {e.code for e in error.errors} <= DOCUMENTED_CODES
        return
    refuses_cleanly(validate_answers, corrupted, answers, location_check=lambda lat, lon: lat > 0)


@FUZZ
@given(definitions(), st.data(), JSON)
def test_corrupting_a_question_that_a_show_if_tests_raises_only_pollspec_error(
    definition, data, junk
):
    sources = {q["show_if"]["question"] for q in definition["questions"] if "show_if" in q}
    assume(sources)
    index = pick(
        data.draw, [i for i, q in enumerate(definition["questions"]) if q["id"] in sources]
    )
    inside = [("questions", index, *path) for path in nodes(definition["questions"][index])]
    refuses_cleanly(validate_definition, replaced(definition, pick(data.draw, inside), junk))


@FUZZ
@given(polls(), ANY_ANSWERS, st.integers(0, 2))
def test_any_json_answers_raise_only_pollspec_error(made, noise, shape):
    definition, filled, _ = made
    answers = [{**filled.answers, **noise}, noise, list(noise)][shape]
    refuses_cleanly(validate_answers, definition, answers)
