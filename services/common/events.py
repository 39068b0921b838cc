"""The event catalogue: every domain event Buurtpeil publishes, in one place.

Each event has a source service, a name, a version and one marshmallow schema for its payload.
Payloads are validated when written to the outbox (a bad payload never leaves the service) and
again when consumed (a bad payload is dead-lettered, never dropped). docs/events.md describes
the same catalogue for humans; tests/unit/test_event_catalogue.py keeps the two in step.

On the wire an event is a JSON envelope::

    {"event_id": "<uuid>", "event": "poll_published", "version": 1, "source": "polls",
     "occurred_at": "<ISO 8601 UTC>", "correlation_id": "<hex>", "payload": {...}}

published to the topic exchange ``<source>.events`` with the event name as routing key, so
nameko's ``@event_handler(source, event)`` queues receive it.

Compatible changes (a new optional field) keep the version; anything else is a new version.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.common.intake import PARTICIPANT_KINDS

MUNICIPALITY_CODE = validate.Regexp(
    r"^GM\d{4}$", error="must be a CBS municipality code like GM0344"
)
AREA_CODE = validate.Regexp(
    r"^(GM\d{4}|WK\d{6}|BU\d{8})$", error="must be a CBS area code (GM…, WK…, BU…)"
)
LEVELS = ("gemeente", "wijk", "buurt")
AGE_BANDS = ("0_14", "15_24", "25_44", "45_64", "65_plus")
SEXES = ("man", "vrouw", "anders", "onbekend")
# A poll's audience without ``kinds`` reaches residents: a municipality's polls are written
# for residents (CBS-weighted) unless staff choose businesses or organisations as well.
DEFAULT_AUDIENCE_KINDS = ("resident",)


class EventValidationError(ValueError):
    """An envelope or payload that does not match the catalogue."""

    def __init__(self, message: str, errors: dict[str, Any] | list[Any] | None = None):
        super().__init__(message if not errors else f"{message}: {errors}")
        self.errors = errors or {}


# --- payload schemas -------------------------------------------------------------------------


REGION_CODE = validate.Regexp(r"^RG\d{8}$", error="must be a region code like RG03440001")
BUURT_CODE = validate.Regexp(r"^BU\d{8}$", error="must be a CBS buurt code (BU…)")


class FrozenRegionSchema(Schema):
    """A region as a poll froze it at publication (its version then)."""

    code = fields.String(required=True, validate=REGION_CODE)
    name = fields.String(required=True)
    version = fields.Integer(required=True, validate=validate.Range(min=1))
    buurt_codes = fields.List(fields.String(validate=BUURT_CODE), required=True)


class AudienceSchema(Schema):
    kind = fields.String(
        required=True, validate=validate.OneOf(["municipality", "areas", "sample"])
    )
    area_codes = fields.List(fields.String(validate=AREA_CODE), load_default=list)
    region_codes = fields.List(fields.String(validate=REGION_CODE), load_default=list)
    regions = fields.List(fields.Nested(FrozenRegionSchema), load_default=list)
    sample_size = fields.Integer(allow_none=True, validate=validate.Range(min=1))
    seed = fields.Integer(allow_none=True)
    # The kinds of participant the poll is for (issue 14; optional, added after version 1:
    # absent = residents only, what every poll meant before businesses could join).
    kinds = fields.List(
        fields.String(validate=validate.OneOf(PARTICIPANT_KINDS)),
        validate=validate.Length(min=1),
    )


def audience_kinds(audience: dict[str, Any]) -> tuple[str, ...]:
    """The kinds of participant an audience reaches: its ``kinds``, or residents only when it
    has none (a poll published before participants had kinds)."""
    return tuple(audience.get("kinds") or DEFAULT_AUDIENCE_KINDS)


class PollPublishedV1(Schema):
    poll_id = fields.UUID(required=True)
    municipality_code = fields.String(required=True, validate=MUNICIPALITY_CODE)
    version = fields.Integer(required=True, validate=validate.Range(min=1))
    content_hash = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{64}$"))
    template_id = fields.String(allow_none=True)
    definition = fields.Dict(required=True)
    audience = fields.Nested(AudienceSchema, required=True)
    opens_at = fields.AwareDateTime(required=True)
    closes_at = fields.AwareDateTime(allow_none=True)
    reminder_after_hours = fields.List(fields.Integer(validate=validate.Range(min=1)))
    published_at = fields.AwareDateTime(required=True)
    # A series (issue 13): the wave this poll is and the poll it follows (optional: added
    # after version 1 was out, so older events lack them: wave 1, no previous).
    previous_poll_id = fields.UUID(allow_none=True, load_default=None)
    wave = fields.Integer(validate=validate.Range(min=1), load_default=1)

    @validates_schema
    def definition_is_a_valid_poll(self, data: dict[str, Any], **_: Any) -> None:
        from services.common.pollspec import PollSpecError, validate_definition

        try:
            validate_definition(data["definition"])
        except PollSpecError as exc:
            raise ValidationError(
                {e.field: [e.message] for e in exc.errors}, field_name="definition"
            ) from exc


class PollClosedV1(Schema):
    poll_id = fields.UUID(required=True)
    municipality_code = fields.String(required=True, validate=MUNICIPALITY_CODE)
    closed_at = fields.AwareDateTime(required=True)
    reason = fields.String(required=True, validate=validate.OneOf(["manual", "schedule"]))


class ResidentSchema(Schema):
    """What other services may know of a panel member: no name, no address, no birth date."""

    resident_id = fields.UUID(required=True)
    # The kind of participant (issue 14; optional, added after version 1: absent = resident).
    kind = fields.String(validate=validate.OneOf(PARTICIPANT_KINDS))
    municipality_code = fields.String(required=True, validate=MUNICIPALITY_CODE)
    buurt_code = fields.String(required=True, validate=AREA_CODE)
    wijk_code = fields.String(required=True, validate=AREA_CODE)
    age_band = fields.String(allow_none=True, validate=validate.OneOf(AGE_BANDS))
    sex = fields.String(allow_none=True, validate=validate.OneOf(SEXES))
    language = fields.String(required=True, validate=validate.OneOf(["nl", "en"]))
    self_selected = fields.Boolean(required=True)
    consent = fields.Boolean(required=True)
    email = fields.Email(allow_none=True)  # only once verified; notify's e-mail channel needs it


class ResidentJoinedV1(ResidentSchema):
    joined_at = fields.AwareDateTime(required=True)


class ResidentUpdatedV1(ResidentSchema):
    updated_at = fields.AwareDateTime(required=True)


class ResidentLeftV1(Schema):
    resident_id = fields.UUID(required=True)
    municipality_code = fields.String(required=True, validate=MUNICIPALITY_CODE)
    left_at = fields.AwareDateTime(required=True)


class ContactLeftV1(Schema):
    """One contact of a business or organisation left; the organisation stays (with its other
    contacts). Ids only: the contact's e-mail address is erased, not sent."""

    resident_id = fields.UUID(required=True)  # the business or organisation
    contact_id = fields.UUID(required=True)
    municipality_code = fields.String(required=True, validate=MUNICIPALITY_CODE)
    left_at = fields.AwareDateTime(required=True)


class SessionsRevokedV1(Schema):
    """Sessions whose access tokens every gateway must refuse from now on (session ids only:
    the ``sid`` claim of the tokens), until ``expires_at``, when none can be valid any more."""

    session_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(min=1))
    kind = fields.String(required=True, validate=validate.OneOf(["resident", "staff"]))
    reason = fields.String(
        required=True,
        validate=validate.OneOf(["left", "disabled", "role_changed", "refresh_reused"]),
    )
    revoked_at = fields.AwareDateTime(required=True)
    expires_at = fields.AwareDateTime(required=True)


class MunicipalityChangedV1(Schema):
    """A municipality as other services may know it: its name and minimum cell size (k)."""

    municipality_code = fields.String(required=True, validate=MUNICIPALITY_CODE)
    name = fields.String(required=True, validate=validate.Length(min=1))
    min_cell_size = fields.Integer(required=True, validate=validate.Range(min=1))
    changed_at = fields.AwareDateTime(required=True)


class AreaMarginsSchema(Schema):
    code = fields.String(required=True, validate=AREA_CODE)
    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    name = fields.String(required=True)
    parent_code = fields.String(allow_none=True, validate=AREA_CODE)
    population = fields.Integer(allow_none=True, validate=validate.Range(min=0))
    # CBS publishes sex as male/female only; age bands as in AGE_BANDS. None where CBS has '.'.
    sex = fields.Dict(
        keys=fields.String(validate=validate.OneOf(["man", "vrouw"])),
        values=fields.Integer(allow_none=True),
    )
    age = fields.Dict(
        keys=fields.String(validate=validate.OneOf(AGE_BANDS)),
        values=fields.Integer(allow_none=True),
    )


class AreasImportedV1(Schema):
    municipality_code = fields.String(required=True, validate=MUNICIPALITY_CODE)
    year = fields.Integer(required=True, validate=validate.Range(min=2000, max=2100))
    areas = fields.List(fields.Nested(AreaMarginsSchema), required=True)


class AreaCountSchema(Schema):
    area_code = fields.String(required=True, validate=AREA_CODE)
    invited = fields.Integer(required=True, validate=validate.Range(min=0))


class InvitationsSentV1(Schema):
    poll_id = fields.UUID(required=True)
    municipality_code = fields.String(required=True, validate=MUNICIPALITY_CODE)
    total = fields.Integer(required=True, validate=validate.Range(min=0))
    per_area = fields.List(fields.Nested(AreaCountSchema), required=True)


class ResponseRecordedV1(Schema):
    poll_id = fields.UUID(required=True)
    municipality_code = fields.String(required=True, validate=MUNICIPALITY_CODE)
    # No longer sent (it linked the resident to their response row); accepted from messages
    # queued before, so they are not dead-lettered.
    response_id = fields.UUID(allow_none=True)
    # Carried for notify (reminders, feedback) only; responses never stores it next to answers.
    resident_id = fields.UUID(required=True)
    recorded_at = fields.AwareDateTime(required=True)


class FeedbackPublishedV1(Schema):
    feedback_id = fields.UUID(required=True)
    poll_id = fields.UUID(required=True)
    municipality_code = fields.String(required=True, validate=MUNICIPALITY_CODE)
    title = fields.String(required=True)
    summary = fields.String(required=True)
    notify_all_invitees = fields.Boolean(load_default=False)
    published_at = fields.AwareDateTime(required=True)


class MeasureUpdatedV1(Schema):
    measure_id = fields.UUID(required=True)
    feedback_id = fields.UUID(required=True)
    poll_id = fields.UUID(required=True)
    municipality_code = fields.String(required=True, validate=MUNICIPALITY_CODE)
    title = fields.String(required=True)
    status = fields.String(
        required=True, validate=validate.OneOf(["planned", "in_progress", "done", "dropped"])
    )
    note = fields.String(allow_none=True)
    updated_at = fields.AwareDateTime(required=True)


# --- the catalogue ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EventType:
    source: str
    name: str
    version: int
    schema: type[Schema]
    description: str
    # Carries a resident id that no service may keep after publishing: the outbox row is
    # deleted as soon as the event is published instead of being kept for the usual days.
    forget_when_sent: bool = False
    # Carries personal data (a resident id, a profile): dead letters of its consumers are
    # kept only for the dead-letter retention (deadletter.py), not for ever.
    personal: bool = False

    @property
    def exchange(self) -> str:
        return f"{self.source}.events"


CATALOGUE: dict[str, EventType] = {
    e.name: e
    for e in [
        EventType(
            "polls",
            "poll_published",
            1,
            PollPublishedV1,
            "A poll opened: the frozen definition, its version and hash, and the audience.",
        ),
        EventType(
            "polls",
            "poll_closed",
            1,
            PollClosedV1,
            "A poll closed, by hand or on schedule; no more submissions.",
        ),
        EventType(
            "panel",
            "resident_joined",
            1,
            ResidentJoinedV1,
            "A resident joined the panel (after consent); pseudonymous profile only.",
            personal=True,
        ),
        EventType(
            "panel",
            "resident_updated",
            1,
            ResidentUpdatedV1,
            "A resident changed profile: moved buurt, language, e-mail verified.",
            personal=True,
        ),
        EventType(
            "panel",
            "resident_left",
            1,
            ResidentLeftV1,
            "A resident left and was erased; every service drops its projection.",
            forget_when_sent=True,
            personal=True,
        ),
        EventType(
            "panel",
            "contact_left",
            1,
            ContactLeftV1,
            "One contact of a business or organisation left; the organisation stays. Its "
            "devices go (notify).",
            personal=True,
        ),
        EventType(
            "panel",
            "sessions_revoked",
            1,
            SessionsRevokedV1,
            "Sessions were ended (account disabled or role changed, resident left, refresh "
            "token reused); every gateway refuses their access tokens.",
        ),
        EventType(
            "panel",
            "municipality_changed",
            1,
            MunicipalityChangedV1,
            "A municipality was added or changed its settings: its name and minimum cell size, "
            "which responses suppresses results with.",
        ),
        EventType(
            "panel",
            "areas_imported",
            1,
            AreasImportedV1,
            "CBS areas and population margins (sex, age band) for a year were imported.",
        ),
        EventType(
            "notify",
            "invitations_sent",
            1,
            InvitationsSentV1,
            "Invitations for a poll were written; counts per area for response rates.",
        ),
        EventType(
            "responses",
            "response_recorded",
            1,
            ResponseRecordedV1,
            "A submission was stored and counted; marks the invitation answered.",
            forget_when_sent=True,
            personal=True,
        ),
        EventType(
            "feedback",
            "feedback_published",
            1,
            FeedbackPublishedV1,
            "Terugkoppeling on a poll was published; respondents are told.",
        ),
        EventType(
            "feedback",
            "measure_updated",
            1,
            MeasureUpdatedV1,
            "A measure promised in feedback changed status.",
        ),
    ]
}


def event_type(name: str) -> EventType:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise EventValidationError(f"unknown event {name!r}") from None


@functools.cache
def _schema(name: str) -> Schema:
    """One schema instance per event type: marshmallow schemas are reusable, and making one
    costs more than validating a small payload (intake validates one per response)."""
    return event_type(name).schema()


def validate_payload(name: str, payload: Any) -> None:
    errors = (
        _schema(name).validate(payload)
        if isinstance(payload, dict)
        else {"_schema": ["payload must be an object"]}
    )
    if errors:
        raise EventValidationError(f"invalid {name} payload", errors)


def make_envelope(
    name: str,
    payload: dict[str, Any],
    *,
    correlation_id: str | None = None,
    event_id: uuid.UUID | None = None,
    occurred_at: datetime | None = None,
) -> dict[str, Any]:
    """Validate a payload and wrap it for publication."""
    spec = event_type(name)
    validate_payload(name, payload)
    return {
        "event_id": str(event_id or uuid.uuid4()),
        "event": name,
        "version": spec.version,
        "source": spec.source,
        "occurred_at": (occurred_at or datetime.now(UTC)).isoformat(),
        "correlation_id": correlation_id,
        "payload": payload,
    }


class EnvelopeSchema(Schema):
    event_id = fields.UUID(required=True)
    event = fields.String(required=True)
    version = fields.Integer(required=True)
    source = fields.String(required=True)
    occurred_at = fields.AwareDateTime(required=True)
    correlation_id = fields.String(allow_none=True)
    payload = fields.Dict(required=True)


@dataclass(frozen=True)
class DomainEvent:
    """A consumed event, validated against the catalogue."""

    id: uuid.UUID
    name: str
    version: int
    source: str
    occurred_at: datetime
    correlation_id: str | None
    payload: dict[str, Any]


def parse_envelope(body: Any, *, expected: str | None = None) -> DomainEvent:
    """Validate a consumed message body; raise EventValidationError when it does not fit."""
    if not isinstance(body, dict):
        raise EventValidationError("message body is not an event envelope")
    try:
        env = EnvelopeSchema().load(body)
    except ValidationError as exc:
        raise EventValidationError("invalid event envelope", exc.messages) from exc
    spec = event_type(env["event"])
    if expected is not None and env["event"] != expected:
        raise EventValidationError(f"expected {expected}, got {env['event']}")
    if env["version"] != spec.version or env["source"] != spec.source:
        raise EventValidationError(
            f"{env['event']} v{env['version']} from {env['source']} is not in the catalogue "
            f"(v{spec.version} from {spec.source})"
        )
    validate_payload(env["event"], body["payload"])
    return DomainEvent(
        id=env["event_id"],
        name=env["event"],
        version=env["version"],
        source=env["source"],
        occurred_at=env["occurred_at"],
        correlation_id=env.get("correlation_id"),
        payload=body["payload"],
    )
