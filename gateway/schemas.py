"""Shapes of HTTP bodies and answers that are the gateway's own (inputs that belong to a
service reuse that service's schemas)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class Problem(Schema):
    type = fields.String(required=True, metadata={"example": "/problems/invalid-input"})
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    errors = fields.List(
        fields.Dict(), metadata={"description": "per field: {field, code, message}"}
    )


class TokensOut(Schema):
    access_token = fields.String(required=True)
    token_type = fields.String(required=True)
    expires_in = fields.Integer(required=True)
    refresh_token = fields.String()


class ResidentOut(Schema):
    resident_id = fields.UUID()
    municipality_code = fields.String()
    buurt_code = fields.String()
    wijk_code = fields.String()
    age_band = fields.String(allow_none=True)
    sex = fields.String(allow_none=True)
    birth_year = fields.Integer(allow_none=True)
    language = fields.String()
    email = fields.String(allow_none=True)
    email_verified = fields.Boolean()
    self_selected = fields.Boolean()
    consent_version = fields.String()
    consent_at = fields.DateTime()
    joined_at = fields.DateTime()


class SessionOut(TokensOut):
    resident = fields.Nested(ResidentOut)


class PollOut(Schema):
    id = fields.UUID()
    municipality_code = fields.String()
    status = fields.String()
    template_id = fields.String(allow_none=True)
    title = fields.String()
    definition = fields.Dict(metadata={"description": "see docs/pollspec.md"})
    audience = fields.Dict()
    opens_at = fields.DateTime(allow_none=True)
    closes_at = fields.DateTime(allow_none=True)
    reminder_after_hours = fields.List(fields.Integer())
    version = fields.Integer()
    content_hash = fields.String(allow_none=True)


class ResidentPollOut(Schema):
    poll_id = fields.UUID()
    version = fields.Integer()
    content_hash = fields.String()
    definition = fields.Dict()
    opens_at = fields.DateTime()
    closes_at = fields.DateTime(allow_none=True)


class TemplateOut(Schema):
    id = fields.String()
    theme = fields.String()
    title = fields.String()
    description = fields.String()
    estimated_minutes = fields.Integer()
    question_count = fields.Integer()
    language = fields.String()
    definition = fields.Dict()


class StaffOut(Schema):
    id = fields.UUID()
    municipality_code = fields.String(allow_none=True)
    email = fields.String()
    name = fields.String(allow_none=True)
    role = fields.String()
    status = fields.String()


class StaffSessionOut(TokensOut):
    staff = fields.Nested(StaffOut)


class AreaOut(Schema):
    code = fields.String()
    year = fields.Integer()
    level = fields.String()
    name = fields.String()
    parent_code = fields.String(allow_none=True)
    population = fields.Integer(allow_none=True)
    sex = fields.Dict()
    age = fields.Dict()


class AreaQuery(Schema):
    level = fields.String(validate=validate.OneOf(["gemeente", "wijk", "buurt"]))
    year = fields.Integer(validate=validate.Range(min=2000, max=2100))


class LocateQuery(Schema):
    lat = fields.Float(required=True, validate=validate.Range(min=-90, max=90))
    lon = fields.Float(required=True, validate=validate.Range(min=-180, max=180))


class PollListQuery(Schema):
    status = fields.String(
        validate=validate.OneOf(["draft", "scheduled", "open", "closed", "archived"])
    )


class TemplateQuery(Schema):
    theme = fields.String(validate=validate.Regexp(r"^[a-z0-9_]{2,40}$"))
