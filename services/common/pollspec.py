"""Poll definitions and answers: the checks behind docs/pollspec.md (schema version 1).

``validate_definition`` is called when staff save a poll or a template is loaded;
``validate_answers`` is called by the gateway on every submission, so it assumes the definition
was validated before and does no more work than the answers need. Both collect every problem as
a ``FieldError`` with a path (``questions[2].options[0].id``, ``answers.q3``) and raise one
``PollSpecError``; nothing else is raised for any JSON-like input.

Pure functions, standard library only.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

SCHEMA_VERSION = 1
QUESTION_TYPES = (
    "single_choice",
    "multiple_choice",
    "likert5",
    "rating10",
    "open_text",
    "ranking",
    "location",
)
# Types whose answer another question's show_if may test.
CONDITION_TYPES = ("single_choice", "multiple_choice", "likert5", "rating10")
LANGUAGES = ("nl", "en")
DONT_KNOW = "dont_know"

MAX_QUESTIONS = 50
MAX_ANY_OF = 50
DEFAULT_TEXT_LENGTH = 1000
MAX_TEXT_LENGTH = 5000
_MAX_OPTIONS = {"single_choice": 30, "multiple_choice": 30, "ranking": 15}
_SCALES = {"likert5": (1, 5), "rating10": (0, 10)}
_LABEL_LENGTH = 200

_QUESTION_ID = re.compile(r"[a-z][a-z0-9_]{0,39}")
_OPTION_ID = re.compile(r"[a-z0-9_]{1,40}")
_THEME = re.compile(r"[a-z0-9_]{2,40}")

_TOP_FIELDS = frozenset(
    {"schema_version", "title", "intro", "theme", "estimated_minutes", "language", "questions"}
)
_COMMON_FIELDS = frozenset({"id", "type", "text", "help", "required", "show_if"})
_TYPE_FIELDS = {
    "single_choice": frozenset({"options"}),
    "multiple_choice": frozenset({"options", "min_selections", "max_selections"}),
    "likert5": frozenset({"labels", "dont_know"}),
    "rating10": frozenset({"low_label", "high_label", "dont_know"}),
    "open_text": frozenset({"max_length"}),
    "ranking": frozenset({"options", "rank_count"}),
    "location": frozenset(),
}
_ANY_QUESTION_FIELDS = _COMMON_FIELDS.union(*_TYPE_FIELDS.values())
_SHOW_IF_FIELDS = frozenset({"question", "any_of"})
_OPTION_FIELDS = frozenset({"id", "label"})
_EXCLUSIVE_OPTION_FIELDS = frozenset({"id", "label", "exclusive"})

_MAX_SUMMARISED = 10


@dataclass(frozen=True)
class FieldError:
    field: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


class PollSpecError(ValueError):
    """A definition or a set of answers broke the contract; ``errors`` says where and how."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = list(errors)
        super().__init__(_summarise(self.errors))


def _summarise(errors: list[FieldError]) -> str:
    parts = [f"{e.field or '(definition)'}: {e.message} [{e.code}]" for e in errors]
    if len(parts) > _MAX_SUMMARISED:
        parts = parts[:_MAX_SUMMARISED] + [f"... and {len(errors) - _MAX_SUMMARISED} more"]
    noun = "error" if len(errors) == 1 else "errors"
    return f"{len(errors)} {noun}: " + "; ".join(parts)


def content_hash(obj: object) -> str:
    """sha256 hex of canonical JSON, so equal documents hash equally whatever their key order."""
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def answer_options(question: dict[str, Any]) -> tuple[str, ...]:
    """The option ids of a choice or ranking question, in order (empty for other types).

    Safe on a question that is still being validated: malformed options are skipped.
    """
    options = question.get("options")
    if not isinstance(options, list):
        return ()
    return tuple(
        option["id"]
        for option in options
        if isinstance(option, dict) and isinstance(option.get("id"), str)
    )


# --- definitions -------------------------------------------------------------------------------


def validate_definition(definition: object) -> None:
    """Raise PollSpecError listing every way ``definition`` breaks the contract."""
    errors: list[FieldError] = []
    _check_definition(errors, definition)
    if errors:
        raise PollSpecError(errors)


def _check_definition(errors: list[FieldError], definition: object) -> None:
    if not isinstance(definition, dict):
        errors.append(FieldError("", "invalid_type", "the definition must be an object"))
        return
    if not _check_version(errors, definition):
        return  # the shape of everything else depends on the version
    _check_unknown_fields(errors, definition, _TOP_FIELDS, "")
    if _present(errors, definition, "title", ""):
        _check_text(errors, "title", definition["title"], 3, 200)
    if _present(errors, definition, "intro", ""):
        _check_text(errors, "intro", definition["intro"], 1, 2000)
    if _present(errors, definition, "theme", ""):
        _check_pattern(errors, "theme", definition["theme"], _THEME)
    if _present(errors, definition, "estimated_minutes", ""):
        _check_int(errors, "estimated_minutes", definition["estimated_minutes"], 1, 60)
    if _present(errors, definition, "language", ""):
        _check_choice(errors, "language", definition["language"], LANGUAGES)
    if _present(errors, definition, "questions", ""):
        _check_questions(errors, definition["questions"])


def _check_version(errors: list[FieldError], definition: dict[str, Any]) -> bool:
    """False when the version is one this module does not know."""
    if not _present(errors, definition, "schema_version", ""):
        return True
    version = definition["schema_version"]
    if type(version) is not int:
        errors.append(FieldError("schema_version", "invalid_type", "must be an integer"))
    elif version != SCHEMA_VERSION:
        message = f"version {version} is not supported; only {SCHEMA_VERSION} is"
        errors.append(FieldError("schema_version", "unsupported_version", message))
        return False
    return True


def _check_questions(errors: list[FieldError], questions: object) -> None:
    if not isinstance(questions, list):
        errors.append(FieldError("questions", "invalid_type", "must be a list of questions"))
        return
    _check_count(errors, "questions", questions, 1, MAX_QUESTIONS, "questions")
    positions = _first_positions(questions)
    for index, question in enumerate(questions):
        path = f"questions[{index}]"
        if isinstance(question, dict):
            _check_question(errors, path, question, index, questions, positions)
        else:
            errors.append(FieldError(path, "invalid_type", "must be an object"))


def _first_positions(questions: list[Any]) -> dict[str, int]:
    """Question id -> index of its first occurrence (later ones are duplicates)."""
    positions: dict[str, int] = {}
    for index, question in enumerate(questions):
        qid = question.get("id") if isinstance(question, dict) else None
        if isinstance(qid, str):
            positions.setdefault(qid, index)
    return positions


def _check_question(
    errors: list[FieldError],
    path: str,
    question: dict[str, Any],
    index: int,
    questions: list[Any],
    positions: dict[str, int],
) -> None:
    qtype = _check_question_type(errors, path, question)
    # With an unknown type, only fields no type knows can be called unknown.
    allowed = _COMMON_FIELDS | _TYPE_FIELDS[qtype] if qtype else _ANY_QUESTION_FIELDS
    _check_unknown_fields(errors, question, allowed, path)
    if _present(errors, question, "id", path):
        _check_question_id(errors, f"{path}.id", question["id"], index, positions)
    if _present(errors, question, "text", path):
        _check_text(errors, f"{path}.text", question["text"], 1, 500)
    if "help" in question:
        _check_text(errors, f"{path}.help", question["help"], 0, 500)
    if "required" in question:
        _check_bool(errors, f"{path}.required", question["required"])
    if "show_if" in question:
        _check_show_if(errors, f"{path}.show_if", question["show_if"], index, questions, positions)
    if qtype:
        _TYPE_CHECKS[qtype](errors, path, question)


def _check_question_type(
    errors: list[FieldError], path: str, question: dict[str, Any]
) -> str | None:
    """The question's type when it is a known one, else None (after recording why)."""
    if not _present(errors, question, "type", path):
        return None
    qtype = question["type"]
    if not isinstance(qtype, str):
        errors.append(FieldError(f"{path}.type", "invalid_type", "must be a string"))
        return None
    if qtype not in QUESTION_TYPES:
        message = f"unknown question type {qtype!r}; expected one of {', '.join(QUESTION_TYPES)}"
        errors.append(FieldError(f"{path}.type", "invalid", message))
        return None
    return qtype


def _check_question_id(
    errors: list[FieldError], path: str, qid: object, index: int, positions: dict[str, int]
) -> None:
    if (
        _check_pattern(errors, path, qid, _QUESTION_ID)
        and isinstance(qid, str)  # it is, once the pattern matched
        and positions[qid] != index
    ):
        message = f"{qid!r} is already the id of questions[{positions[qid]}]"
        errors.append(FieldError(path, "duplicate", message))


def _check_show_if(
    errors: list[FieldError],
    path: str,
    show_if: object,
    index: int,
    questions: list[Any],
    positions: dict[str, int],
) -> None:
    if not isinstance(show_if, dict):
        errors.append(FieldError(path, "invalid_type", "must be an object"))
        return
    _check_unknown_fields(errors, show_if, _SHOW_IF_FIELDS, path)
    source = None
    if _present(errors, show_if, "question", path):
        source = _condition_source(
            errors, f"{path}.question", show_if["question"], index, questions, positions
        )
    if _present(errors, show_if, "any_of", path):
        _check_any_of(errors, f"{path}.any_of", show_if["any_of"], source)


def _condition_source(
    errors: list[FieldError],
    path: str,
    ref: object,
    index: int,
    questions: list[Any],
    positions: dict[str, int],
) -> dict[str, Any] | None:
    """The earlier question a show_if tests, or None (after recording why it cannot be used)."""
    if not isinstance(ref, str):
        errors.append(FieldError(path, "invalid_type", "must be a question id (string)"))
        return None
    position = positions.get(ref)
    if position is None:
        errors.append(FieldError(path, "unknown_question", f"no question has id {ref!r}"))
        return None
    if position >= index:
        message = f"{ref!r} is not an earlier question; show_if may only test earlier questions"
        errors.append(FieldError(path, "forward_reference", message))
        return None
    source: dict[str, Any] = questions[position]
    if source.get("type") not in CONDITION_TYPES:
        message = f"{ref!r} cannot be tested; show_if needs a {', '.join(CONDITION_TYPES)} question"
        errors.append(FieldError(path, "invalid", message))
        return None
    return source


def _check_any_of(
    errors: list[FieldError], path: str, any_of: object, source: dict[str, Any] | None
) -> None:
    if not isinstance(any_of, list):
        errors.append(FieldError(path, "invalid_type", "must be a list of values"))
        return
    _check_count(errors, path, any_of, 1, MAX_ANY_OF, "values")
    if source is None:
        return
    if source["type"] in _SCALES:
        low, high = _SCALES[source["type"]]
        for k, value in enumerate(any_of):
            _check_int(errors, f"{path}[{k}]", value, low, high)
    else:
        option_ids = answer_options(source)
        for k, value in enumerate(any_of):
            _check_choice(errors, f"{path}[{k}]", value, option_ids, code="unknown_option")


def _check_options(
    errors: list[FieldError], path: str, question: dict[str, Any], exclusive: bool
) -> int:
    """Check a choice or ranking question's options; return how many there are (0 if broken)."""
    if not _present(errors, question, "options", path):
        return 0
    path = f"{path}.options"
    options = question["options"]
    if not isinstance(options, list):
        errors.append(FieldError(path, "invalid_type", "must be a list of options"))
        return 0
    _check_count(errors, path, options, 2, _MAX_OPTIONS[question["type"]], "options")
    allowed = _EXCLUSIVE_OPTION_FIELDS if exclusive else _OPTION_FIELDS
    seen: set[str] = set()
    for k, option in enumerate(options):
        _check_option(errors, f"{path}[{k}]", option, allowed, seen)
    return len(options)


def _check_option(
    errors: list[FieldError], path: str, option: object, allowed: frozenset[str], seen: set[str]
) -> None:
    if not isinstance(option, dict):
        errors.append(FieldError(path, "invalid_type", "must be an object with id and label"))
        return
    _check_unknown_fields(errors, option, allowed, path)
    if _present(errors, option, "id", path):
        option_id = option["id"]
        if _check_pattern(errors, f"{path}.id", option_id, _OPTION_ID):
            if option_id in seen:
                message = f"option id {option_id!r} is used twice"
                errors.append(FieldError(f"{path}.id", "duplicate", message))
            seen.add(option_id)
    if _present(errors, option, "label", path):
        _check_text(errors, f"{path}.label", option["label"], 1, _LABEL_LENGTH)
    if "exclusive" in option:
        _check_bool(errors, f"{path}.exclusive", option["exclusive"])


def _check_single_choice(errors: list[FieldError], path: str, question: dict[str, Any]) -> None:
    _check_options(errors, path, question, exclusive=False)


def _check_multiple_choice(errors: list[FieldError], path: str, question: dict[str, Any]) -> None:
    count = _check_options(errors, path, question, exclusive=True)
    high = count or _MAX_OPTIONS["multiple_choice"]  # bound still known when options are broken
    low_ok, low = _optional_int(errors, path, question, "min_selections", 1, high, default=1)
    high_ok, top = _optional_int(errors, path, question, "max_selections", 1, high, default=high)
    if low_ok and high_ok and low > top:
        message = f"min_selections ({low}) must not be greater than max_selections ({top})"
        errors.append(FieldError(f"{path}.min_selections", "out_of_range", message))


def _check_ranking(errors: list[FieldError], path: str, question: dict[str, Any]) -> None:
    count = _check_options(errors, path, question, exclusive=False)
    high = count or _MAX_OPTIONS["ranking"]
    _optional_int(errors, path, question, "rank_count", 1, high, default=high)


def _check_likert5(errors: list[FieldError], path: str, question: dict[str, Any]) -> None:
    if _present(errors, question, "labels", path):
        labels = question["labels"]
        if isinstance(labels, list):
            _check_count(errors, f"{path}.labels", labels, 5, 5, "labels")
            for k, label in enumerate(labels):
                _check_text(errors, f"{path}.labels[{k}]", label, 1, _LABEL_LENGTH)
        else:
            errors.append(FieldError(f"{path}.labels", "invalid_type", "must be a list of 5"))
    _check_dont_know(errors, path, question)


def _check_rating10(errors: list[FieldError], path: str, question: dict[str, Any]) -> None:
    for key in ("low_label", "high_label"):
        if _present(errors, question, key, path):
            _check_text(errors, f"{path}.{key}", question[key], 1, _LABEL_LENGTH)
    _check_dont_know(errors, path, question)


def _check_dont_know(errors: list[FieldError], path: str, question: dict[str, Any]) -> None:
    if "dont_know" in question:
        _check_text(errors, f"{path}.dont_know", question["dont_know"], 1, _LABEL_LENGTH)


def _check_open_text(errors: list[FieldError], path: str, question: dict[str, Any]) -> None:
    _optional_int(errors, path, question, "max_length", 1, MAX_TEXT_LENGTH, DEFAULT_TEXT_LENGTH)


def _check_location(errors: list[FieldError], path: str, question: dict[str, Any]) -> None:
    """A location question has no fields of its own."""


_TYPE_CHECKS: dict[str, Callable[[list[FieldError], str, dict[str, Any]], None]] = {
    "single_choice": _check_single_choice,
    "multiple_choice": _check_multiple_choice,
    "likert5": _check_likert5,
    "rating10": _check_rating10,
    "open_text": _check_open_text,
    "ranking": _check_ranking,
    "location": _check_location,
}


# --- small field checks ------------------------------------------------------------------------


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _present(errors: list[FieldError], obj: dict[str, Any], key: str, path: str) -> bool:
    """True when ``key`` is in ``obj``; records ``missing`` otherwise."""
    if key in obj:
        return True
    errors.append(FieldError(_join(path, key), "missing", f"{key} is required"))
    return False


def _check_unknown_fields(
    errors: list[FieldError], obj: dict[str, Any], allowed: frozenset[str], path: str
) -> None:
    for key in obj:
        if key not in allowed:
            errors.append(
                FieldError(_join(path, str(key)), "unknown_field", f"unknown field {key!r}")
            )


def _check_text(errors: list[FieldError], path: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, str):
        errors.append(FieldError(path, "invalid_type", "must be a string"))
    elif low and not value.strip():
        errors.append(FieldError(path, "empty", "must not be empty"))
    elif len(value) < low:
        errors.append(FieldError(path, "invalid", f"must be at least {low} characters"))
    elif len(value) > high:
        errors.append(FieldError(path, "too_long", f"must be at most {high} characters"))


def _check_pattern(
    errors: list[FieldError], path: str, value: object, pattern: re.Pattern[str]
) -> bool:
    if not isinstance(value, str):
        errors.append(FieldError(path, "invalid_type", "must be a string"))
        return False
    if not pattern.fullmatch(value):
        errors.append(FieldError(path, "invalid", f"must match {pattern.pattern}"))
        return False
    return True


def _check_int(errors: list[FieldError], path: str, value: object, low: int, high: int) -> bool:
    if type(value) is not int:  # bool is an int subclass but never a valid number here
        errors.append(FieldError(path, "invalid_type", "must be an integer"))
        return False
    if not low <= value <= high:
        errors.append(FieldError(path, "out_of_range", f"must be between {low} and {high}"))
        return False
    return True


def _optional_int(
    errors: list[FieldError],
    path: str,
    obj: dict[str, Any],
    key: str,
    low: int,
    high: int,
    default: int,
) -> tuple[bool, int]:
    """(valid, value) of an optional integer field, ``default`` when absent."""
    if key not in obj:
        return True, default
    value = obj[key]
    return _check_int(errors, f"{path}.{key}", value, low, high), value


def _check_bool(errors: list[FieldError], path: str, value: object) -> None:
    if not isinstance(value, bool):
        errors.append(FieldError(path, "invalid_type", "must be true or false"))


def _check_choice(
    errors: list[FieldError],
    path: str,
    value: object,
    choices: tuple[str, ...],
    code: str = "invalid",
) -> None:
    if not isinstance(value, str):
        errors.append(FieldError(path, "invalid_type", "must be a string"))
    elif value not in choices:
        errors.append(FieldError(path, code, f"{value!r} is not one of {', '.join(choices)}"))


def _check_count(
    errors: list[FieldError], path: str, items: list[Any], low: int, high: int, noun: str
) -> None:
    if len(items) < low:
        errors.append(FieldError(path, "too_few", f"needs at least {low} {noun}"))
    elif len(items) > high:
        errors.append(FieldError(path, "too_many", f"allows at most {high} {noun}"))


# --- answers -----------------------------------------------------------------------------------

LocationCheck = Callable[[float, float], bool]


class _Invalid(Exception):
    """One answer's problem; turned into a FieldError by validate_answers."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def visible_questions(definition: dict[str, Any], answers: object) -> list[str]:
    """Ids of the questions shown for these answers, in order."""
    given = _require_object(answers)
    return [q["id"] for q, shown in _visibility(definition, given) if shown]


def validate_answers(
    definition: dict[str, Any], answers: object, *, location_check: LocationCheck | None = None
) -> dict[str, Any]:
    """Return the normalised answers to a validated definition, or raise PollSpecError.

    Normalised: only shown questions, left-out optional ones omitted, open text stripped,
    locations as floats, in question order.
    """
    given = _require_object(answers)
    errors: list[FieldError] = []
    normalised: dict[str, Any] = {}
    for question, shown in _visibility(definition, given):
        qid = question["id"]
        value = given.get(qid)  # null counts as left out
        if value is None:
            if shown and question.get("required", True):
                errors.append(FieldError(f"answers.{qid}", "required", "this question is required"))
        elif not shown:
            errors.append(FieldError(f"answers.{qid}", "hidden", "this question was not shown"))
        else:
            try:
                normalised[qid] = _ANSWER_CHECKS[question["type"]](question, value, location_check)
            except _Invalid as problem:
                errors.append(FieldError(f"answers.{qid}", problem.code, problem.message))
    errors.extend(_unknown_answers(definition, given))
    if errors:
        raise PollSpecError(errors)
    return normalised


def _require_object(answers: object) -> dict[str, Any]:
    if not isinstance(answers, dict):
        raise PollSpecError([FieldError("answers", "invalid_type", "answers must be an object")])
    return answers


def _unknown_answers(definition: dict[str, Any], answers: dict[str, Any]) -> list[FieldError]:
    known = {question["id"] for question in definition["questions"]}
    return [
        FieldError(f"answers.{key}", "unknown_question", "no question has this id")
        for key in answers
        if key not in known
    ]


def _visibility(
    definition: dict[str, Any], answers: dict[str, Any]
) -> Iterator[tuple[dict[str, Any], bool]]:
    """Each question with whether it is shown; a hidden question's answer shows nothing."""
    shown_types: dict[str, str] = {}
    for question in definition["questions"]:
        shown = _condition_met(question.get("show_if"), answers, shown_types)
        if shown:
            shown_types[question["id"]] = question["type"]
        yield question, shown


def _condition_met(
    show_if: dict[str, Any] | None, answers: dict[str, Any], shown_types: dict[str, str]
) -> bool:
    if show_if is None:
        return True
    source = show_if["question"]
    if source not in shown_types:
        return False
    value = answers.get(source)
    chosen = value if shown_types[source] == "multiple_choice" else [value]
    if not isinstance(chosen, list):
        return False
    # Exact types: True must not match 1, nor 3.0 match 3.
    return any(type(item) in (str, int) and item in show_if["any_of"] for item in chosen)


def _answer_single_choice(
    question: dict[str, Any], value: object, _check: LocationCheck | None
) -> str:
    if not isinstance(value, str):
        raise _Invalid("invalid_type", "must be an option id (string)")
    if value not in answer_options(question):
        raise _Invalid("unknown_option", f"{value!r} is not an option of this question")
    return value


def _answer_multiple_choice(
    question: dict[str, Any], value: object, _check: LocationCheck | None
) -> list[str]:
    chosen = _distinct_options(question, value)
    exclusive = {o["id"] for o in question["options"] if o.get("exclusive", False)}
    if len(chosen) == 1 and chosen[0] in exclusive:
        return chosen  # an exclusive option alone is a complete answer whatever min_selections
    for option_id in chosen:
        if option_id in exclusive:
            raise _Invalid("exclusive", f"{option_id!r} cannot be combined with other options")
    low = question.get("min_selections", 1)
    high = question.get("max_selections", len(question["options"]))
    _check_answer_count(chosen, low, high)
    return chosen


def _answer_ranking(
    question: dict[str, Any], value: object, _check: LocationCheck | None
) -> list[str]:
    ranked = _distinct_options(question, value)
    count = question.get("rank_count", len(question["options"]))
    _check_answer_count(ranked, count, count)
    return ranked


def _distinct_options(question: dict[str, Any], value: object) -> list[str]:
    if not isinstance(value, list):
        raise _Invalid("invalid_type", "must be a list of option ids")
    options = answer_options(question)
    seen: set[str] = set()
    for item in value:
        if not isinstance(item, str):
            raise _Invalid("invalid_type", "must be a list of option ids (strings)")
        if item not in options:
            raise _Invalid("unknown_option", f"{item!r} is not an option of this question")
        if item in seen:
            raise _Invalid("duplicate", f"{item!r} is given twice")
        seen.add(item)
    return list(value)


def _check_answer_count(chosen: list[str], low: int, high: int) -> None:
    expected = f"exactly {low}" if low == high else f"{low} to {high}"
    if len(chosen) < low:
        raise _Invalid("too_few", f"choose {expected} options")
    if len(chosen) > high:
        raise _Invalid("too_many", f"choose {expected} options")


def _answer_scale(
    question: dict[str, Any], value: object, _check: LocationCheck | None
) -> int | str:
    low, high = _SCALES[question["type"]]
    if value == DONT_KNOW:
        if "dont_know" not in question:
            raise _Invalid("invalid", "this question has no 'dont_know' answer")
        return DONT_KNOW
    if type(value) is not int:
        raise _Invalid("invalid_type", f"must be an integer from {low} to {high}")
    if not low <= value <= high:
        raise _Invalid("out_of_range", f"must be from {low} to {high}")
    return value


def _answer_open_text(question: dict[str, Any], value: object, _check: LocationCheck | None) -> str:
    if not isinstance(value, str):
        raise _Invalid("invalid_type", "must be a string")
    text = value.strip()
    if not text:
        raise _Invalid("empty", "must not be empty")
    limit = question.get("max_length", DEFAULT_TEXT_LENGTH)
    if len(text) > limit:
        raise _Invalid("too_long", f"must be at most {limit} characters")
    return text


def _answer_location(
    question: dict[str, Any], value: object, check: LocationCheck | None
) -> dict[str, float]:
    if not isinstance(value, dict):
        raise _Invalid("invalid_type", "must be an object with lat and lon")
    if set(value) != {"lat", "lon"}:
        raise _Invalid("invalid", "must have exactly the fields lat and lon")
    lat, lon = value["lat"], value["lon"]
    if type(lat) not in (int, float) or type(lon) not in (int, float):
        raise _Invalid("invalid_type", "lat and lon must be numbers")
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):  # also false for NaN
        raise _Invalid("out_of_range", "lat must be in -90..90 and lon in -180..180")
    lat, lon = float(lat), float(lon)
    if check is not None and not check(lat, lon):
        raise _Invalid("outside_area", "this location is outside the municipality")
    return {"lat": lat, "lon": lon}


_ANSWER_CHECKS: dict[str, Callable[[dict[str, Any], object, LocationCheck | None], object]] = {
    "single_choice": _answer_single_choice,
    "multiple_choice": _answer_multiple_choice,
    "likert5": _answer_scale,
    "rating10": _answer_scale,
    "open_text": _answer_open_text,
    "ranking": _answer_ranking,
    "location": _answer_location,
}
