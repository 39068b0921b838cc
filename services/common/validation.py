"""Loading untrusted input with marshmallow, turning its errors into our field-error list."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError

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
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise InvalidInput("invalid input", flatten_messages(exc.messages)) from exc
