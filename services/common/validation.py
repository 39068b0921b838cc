"""Loading untrusted input with marshmallow, turning its errors into our field-error list."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from marshmallow import Schema, ValidationError, fields

from services.common.errors import InvalidInput


def flatten_messages(messages: Any, prefix: str = "") -> list[dict[str, str]]:
    """marshmallow's nested error dict → ``[{field, code, message}]`` with dotted paths."""
    if isinstance(messages, dict):
        out: list[dict[str, str]] = []
        for key, value in messages.items():
            path = (
                prefix
                if key == "_schema"
                else (
                    f"{prefix}[{key}]"
                    if isinstance(key, int)
                    else f"{prefix}.{key}"
                    if prefix
                    else key
                )
            )
            out.extend(flatten_messages(value, path))
        return out
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [{"field": prefix or "body", "code": "invalid", "message": m} for m in messages]
    if isinstance(messages, list):
        return [e for m in messages for e in flatten_messages(m, prefix)]
    return [{"field": prefix or "body", "code": "invalid", "message": str(messages)}]


def load(schema: Schema, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidInput(
            "body must be a JSON object",
            [{"field": "body", "code": "invalid_type", "message": "expected an object"}],
        )
    errors = json_errors(data) or single_line_errors(schema, data)
    if errors:
        raise InvalidInput("invalid input", errors)
    try:
        loaded: dict[str, Any] = schema.load(data)
    except ValidationError as exc:
        raise InvalidInput("invalid input", flatten_messages(exc.messages)) from exc
    errors = loaded_errors(loaded)
    if errors:
        raise InvalidInput("invalid input", errors)
    return loaded


# --- what PostgreSQL and our parsers refuse, checked once where input is parsed ---------------

MAX_DEPTH = 32  # arrays and objects inside each other; a poll definition needs about 6
# C0 control characters but tab, line feed and carriage return (free text keeps its line
# breaks), and UTF-16 surrogates, which only an unpaired "\ud800" escape can produce.
_REFUSED = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
# PostgreSQL's timestamptz takes UTC offsets up to 15:59 (Python's datetime up to 23:59).
MAX_UTC_OFFSET = timedelta(hours=15, minutes=59)


def text_error(value: str, where: str) -> dict[str, str] | None:
    """The field error for a string we cannot store, or None."""
    found = _REFUSED.search(value)
    if found is None:
        return None
    char = found.group()
    if "\ud800" <= char <= "\udfff":
        return {
            "field": where,
            "code": "unpaired_surrogate",
            "message": f"contains an unpaired UTF-16 surrogate (U+{ord(char):04X})",
        }
    return {
        "field": where,
        "code": "control_character",
        "message": f"contains a control character (U+{ord(char):04X})",
    }


def _path(prefix: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else str(key)


def json_errors(data: Any, *, root: str = "", max_depth: int = MAX_DEPTH) -> list[dict[str, str]]:
    """Field errors for a parsed JSON value: nesting deeper than ``max_depth``, strings (values
    and keys) with control characters or unpaired surrogates. Iterative: any depth is safe."""
    errors: list[dict[str, str]] = []
    stack: list[tuple[Any, str, int]] = [(data, root, 0)]
    while stack and len(errors) < 20:
        value, where, depth = stack.pop()
        if isinstance(value, str):
            error = text_error(value, where or "body")
            if error:
                errors.append(error)
        elif isinstance(value, (dict, list)):
            if depth >= max_depth:
                errors.append(
                    {
                        "field": where or "body",
                        "code": "too_deep",
                        "message": f"nested deeper than {max_depth} levels",
                    }
                )
                continue
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                path = _path(where, key)
                if isinstance(key, str):
                    error = text_error(key, path)
                    if error:
                        errors.append({**error, "message": f"its name {error['message']}"})
                        continue
                stack.append((item, path, depth + 1))
    errors.reverse()  # roughly document order
    return errors


def loaded_errors(data: Any, *, root: str = "") -> list[dict[str, str]]:
    """Field errors for values a schema loaded that PostgreSQL would refuse: datetimes whose
    UTC offset is beyond ±15:59 (marshmallow and Python accept up to ±23:59)."""
    errors: list[dict[str, str]] = []
    stack: list[tuple[Any, str]] = [(data, root)]
    while stack:
        value, where = stack.pop()
        if isinstance(value, datetime):
            offset = value.utcoffset()
            if offset is not None and abs(offset) > MAX_UTC_OFFSET:
                errors.append(
                    {
                        "field": where or "body",
                        "code": "invalid_offset",
                        "message": "the UTC offset must be between -15:59 and +15:59",
                    }
                )
        elif isinstance(value, dict):
            stack.extend((item, _path(where, key)) for key, item in value.items())
        elif isinstance(value, (list, tuple)):
            stack.extend((item, _path(where, i)) for i, item in enumerate(value))
    return errors


# Free text (a feedback's "what we heard", a comment, a CSV) keeps its line breaks and tabs;
# mark such a field ``metadata=MULTILINE``. Every other string field is one line: a line break
# in a title or a name ends up in e-mail headers, CSV cells and log lines.
MULTILINE = {"multiline": True}
_LINE_BREAK = re.compile(r"[\t\n\r]")


def single_line_errors(schema: Schema, data: Any, prefix: str = "") -> list[dict[str, str]]:
    """Field errors for tabs and line breaks in the string fields of ``schema`` that are not
    marked ``MULTILINE`` (nested schemas and lists included), for raw input ``data``."""
    if not isinstance(data, dict):
        return []
    errors: list[dict[str, str]] = []
    for name, field in schema.fields.items():
        key = field.data_key or name
        if key in data:
            errors.extend(_line_errors(field, data[key], _path(prefix, key)))
    return errors


def _line_errors(field: fields.Field[Any], value: Any, where: str) -> list[dict[str, str]]:
    if isinstance(field, fields.Nested):
        items = value if field.many and isinstance(value, list) else [value]
        paths = [f"{where}[{i}]" for i in range(len(items))] if field.many else [where]
        return [
            e
            for item, path in zip(items, paths, strict=True)
            for e in single_line_errors(field.schema, item, path)
        ]
    if isinstance(field, fields.List) and isinstance(value, list):
        paths = [f"{where}[{i}]" for i in range(len(value))]
        return [
            e
            for item, path in zip(value, paths, strict=True)
            for e in _line_errors(field.inner, item, path)
        ]
    if isinstance(field, fields.String) and isinstance(value, str):
        found = _LINE_BREAK.search(value)
        if found and not field.metadata.get("multiline"):
            return [
                {
                    "field": where,
                    "code": "control_character",
                    "message": "must be one line: no line breaks or tabs "
                    f"(U+{ord(found.group()):04X})",
                }
            ]
    return []
