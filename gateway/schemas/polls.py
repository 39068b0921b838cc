"""Bodies of the routes the polls service answers: a poll created or edited.

The gateway's own copy: the public API is versioned with the gateway, not with the service
behind it, which validates what it is sent again with its own schemas
(services/polls/schemas.py). Change both when the API changes; tests/unit/test_gateway_schemas.py
says where the two differ.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from services.common.intake import PARTICIPANT_KINDS

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
    # The municipality's own regions (issue 13): results per region beside the CBS areas;
    # with kind "areas" their buurten are in the audience too. Frozen at publication.
    region_codes = fields.List(
        fields.String(validate=validate.Regexp(r"^RG\d{8}$", error="must be a region code (RG…)")),
        load_default=list,
        validate=validate.Length(max=50),
    )
    # For kind "sample": residents drawn at random per listed area (or from the whole
    # municipality when no areas are listed).
    sample_size = fields.Integer(
        allow_none=True, load_default=None, validate=validate.Range(min=1, max=1_000_000)
    )
    # The kinds of participant the poll is for (issue 14), e.g. ["ondernemer"] with a region:
    # the businesses of a shopping area. Left out: residents only (DEFAULT_AUDIENCE_KINDS in
    # the event catalogue), what every poll meant before businesses could join.
    kinds = fields.List(
        fields.String(validate=validate.OneOf(PARTICIPANT_KINDS)),
        validate=validate.Length(min=1, max=len(PARTICIPANT_KINDS)),
    )


class PollCreate(Schema):
    template_id = fields.String(load_default=None)
    # The next wave of an earlier published poll of ours (a series, issue 13): without a
    # template_id or definition, the earlier poll's definition is the start.
    previous_poll_id = fields.UUID(load_default=None, allow_none=True)
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
