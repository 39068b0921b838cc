"""Shapes of HTTP bodies and answers: the public API's contract, the gateway's own.

Answers and queries here and in ``answers``; the bodies of the routes each service answers in a
module per service (``panel``, ``polls``, ``notify``, ``feedback``). None is imported from a
service: the gateway imports nothing but ``services.common`` (``make lint`` enforces it,
docs/architecture.md). The dispatcher sends every JSON answer through its route's schema
(``gateway.routing.shape``): what is not declared here is not sent."""

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
    kind = fields.String(
        metadata={"description": "resident, ondernemer (a business) or organisatie"}
    )
    kvk_number = fields.String(allow_none=True, metadata={"description": "8 digits"})
    organisation_name = fields.String(allow_none=True)
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
    consent = fields.Boolean()
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
    previous_poll_id = fields.String(
        allow_none=True, metadata={"description": "the earlier wave this poll follows"}
    )
    wave = fields.Integer(metadata={"description": "1 for a first poll, then 2, 3, …"})
    opens_at = fields.DateTime(allow_none=True)
    closes_at = fields.DateTime(allow_none=True)
    reminder_after_hours = fields.List(fields.Integer())
    version = fields.Integer()
    content_hash = fields.String(allow_none=True)
    created_by = fields.String(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime(allow_none=True)
    published_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    archived_at = fields.DateTime(allow_none=True)


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
    created_at = fields.DateTime()
    last_login_at = fields.DateTime(allow_none=True)


class StaffSessionOut(TokensOut):
    staff = fields.Nested(StaffOut)


class AreaOut(Schema):
    code = fields.String()
    year = fields.Integer()
    level = fields.String()
    name = fields.String()
    parent_code = fields.String(allow_none=True)
    population = fields.Integer(allow_none=True)
    households = fields.Integer(allow_none=True)
    sex = fields.Dict()
    age = fields.Dict()


class AreaQuery(Schema):
    level = fields.String(validate=validate.OneOf(["gemeente", "wijk", "buurt"]))
    year = fields.Integer(validate=validate.Range(min=2000, max=2100))


class LocateQuery(Schema):
    lat = fields.Float(required=True, validate=validate.Range(min=-90, max=90))
    lon = fields.Float(required=True, validate=validate.Range(min=-180, max=180))


AREA_CODE_LIST = r"^((WK\d{6}|BU\d{8})(,(WK\d{6}|BU\d{8})){0,499})?$"


class ReachQuery(Schema):
    """An audience as in a poll (``area_codes`` comma-separated)."""

    kind = fields.String(
        load_default="municipality", validate=validate.OneOf(["municipality", "areas", "sample"])
    )
    area_codes = fields.String(
        load_default="",
        validate=validate.Regexp(
            AREA_CODE_LIST, error="wijk (WK…) and buurt (BU…) codes, comma-separated"
        ),
    )
    sample_size = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(min=1, max=1_000_000)
    )
    kinds = fields.String(
        load_default="resident",
        validate=validate.Regexp(
            r"^(resident|ondernemer|organisatie)(,(resident|ondernemer|organisatie))*$",
            error="resident, ondernemer, organisatie: comma-separated",
        ),
        metadata={"description": "the kinds of participant, comma-separated (default resident)"},
    )


class ReachOut(Schema):
    members = fields.Integer(allow_none=True)
    suppressed = fields.Boolean()
    k = fields.Integer()


class PollListQuery(Schema):
    status = fields.String(
        validate=validate.OneOf(["draft", "scheduled", "open", "closed", "archived"])
    )


class ResultsQuery(Schema):
    respondents = fields.String(
        load_default="all",
        validate=validate.OneOf(["all", "panel"]),
        metadata={
            "description": "all: every respondent (default); panel: invited panel members who "
            "did not move recently (self-selected sign-ups and recently moved residents left "
            "out). Both views are suppressed as one system (docs/suppression.md)."
        },
    )


class TemplateQuery(Schema):
    theme = fields.String(validate=validate.Regexp(r"^[a-z0-9_]{2,40}$"))


class RegionOut(Schema):
    code = fields.String(metadata={"description": "RG + the municipality's 4 digits + a number"})
    name = fields.String()
    version = fields.Integer(metadata={"description": "the version shown"})
    current_version = fields.Integer()
    buurt_codes = fields.List(fields.String())
    archived = fields.Boolean()
    created_at = fields.DateTime()
    updated_at = fields.DateTime(metadata={"description": "when this version was written"})
    created_by = fields.String(allow_none=True)


class RegionQuery(Schema):
    archived = fields.Boolean(load_default=False)


class RegionVersionQuery(Schema):
    version = fields.Integer(validate=validate.Range(min=1))


class RegionBuurtShare(Schema):
    code = fields.String()
    share = fields.Float(metadata={"description": "part of the buurt's area inside the polygon"})


class RegionProposalOut(Schema):
    name = fields.String()
    buurt_codes = fields.List(
        fields.String(), metadata={"description": "the buurten mostly inside: POST these"}
    )
    buurten = fields.List(fields.Nested(RegionBuurtShare))
    mostly_outside = fields.List(fields.Nested(RegionBuurtShare))
    year = fields.Integer()
