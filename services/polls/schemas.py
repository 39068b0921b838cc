"""Input and output shapes of the polls service's RPC API (the gateway reuses them for HTTP
bodies and for the OpenAPI document)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from services.common.errors import InvalidInput

AUDIENCE_KINDS = ("municipality", "areas", "sample")


class AudienceIn(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(AUDIENCE_KINDS))
    area_codes = fields.List(
        fields.String(
            validate=validate.Regexp(
                r"^(WK\d{6}|BU\d{8})$", error="must be a wijk (WK…) or buurt (BU…) code"
            )
        ),
        load_default=list,
        validate=validate.Length(max=500),
    )
    # For kind "sample": residents drawn at random per listed area (or from the whole
    # municipality when no areas are listed).
    sample_size = fields.Integer(
        allow_none=True, load_default=None, validate=validate.Range(min=1, max=1_000_000)
    )


class PollCreate(Schema):
    template_id = fields.String(load_default=None)
    definition = fields.Dict(load_default=None)
    audience = fields.Nested(AudienceIn, load_default=lambda: {"kind": "municipality"})
    opens_at = fields.AwareDateTime(load_default=None, allow_none=True)
    closes_at = fields.AwareDateTime(load_default=None, allow_none=True)
    reminder_after_hours = fields.List(
        fields.Integer(validate=validate.Range(min=1, max=24 * 60)),
        load_default=list,
        validate=validate.Length(max=5),
    )


class PollUpdate(Schema):
    definition = fields.Dict()
    audience = fields.Nested(AudienceIn)
    opens_at = fields.AwareDateTime(allow_none=True)
    closes_at = fields.AwareDateTime(allow_none=True)
    reminder_after_hours = fields.List(
        fields.Integer(validate=validate.Range(min=1, max=24 * 60)), validate=validate.Length(max=5)
    )


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
