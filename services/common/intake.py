"""The intake contract: a resident's submission, from the gateway to responses over the
``responses.intake`` work queue — the busiest message Buurtpeil has, so not a nameko event (one
message per submission, consumed in batches: docs/queues.md).

The gateway builds a submission with ``submission()`` after it validated the answers against the
open poll, publishes it with a publisher confirm and answers 202; responses checks each message
with ``malformed()`` before recording it (``services/responses/intake.py``), and a message that
can never be recorded goes to ``responses.intake.dlq`` at once. docs/events.md describes the
contract for humans, docs/queues.md the queue.

A submission (``SubmissionV1``)::

    {"version": 1, "receipt_id", "poll_id", "answers": {...}, "submitted_at", "channel",
     "resident": {"id", "kind", "municipality_code", "wijk_code", "buurt_code", "age_band",
                  "sex", "self_selected", "recently_moved"}}

``wijk_code``/``buurt_code`` are where the resident was invited (the area is frozen for the poll
once invited); ``recently_moved`` says they live elsewhere now. ``channel`` is how the answer
came in (``CHANNELS``: the app, a personal link in an e-mail, or a paper form keyed in by staff);
``resident.kind`` is the kind of participant (``PARTICIPANT_KINDS``: a resident, a business or an
organisation). ``version``, ``recently_moved``, ``channel`` and ``kind`` were added after the
first messages were queued: absent, they mean 1, false, ``app`` and ``resident``. Unknown fields
are ignored (a compatible addition keeps the version); anything else is a new version, and
responses refuses a version it does not know.

The resident id is only used by responses for the pseudonymous respondent key and the
``response_recorded`` event; it is stored nowhere.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kombu import Queue
from marshmallow import INCLUDE, Schema, ValidationError, fields, validate

INTAKE_QUEUE = "responses.intake"
SUBMISSION_VERSION = 1
# How an answer came in: the app, the personal link in an invitation e-mail, a paper form.
CHANNELS = ("app", "link", "paper")
# Who answered: CBS margins (weighting) are of persons, so only residents are weighted.
PARTICIPANT_KINDS = ("resident", "ondernemer", "organisatie")


def intake_queue() -> Queue:
    """The queue as producer and consumer declare it: durable, replicated (quorum)."""
    return Queue(
        INTAKE_QUEUE,
        exchange="",
        routing_key=INTAKE_QUEUE,
        durable=True,
        auto_delete=False,
        queue_arguments={"x-queue-type": "quorum"},
    )


def _iso_8601(value: str) -> None:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError("not an ISO 8601 date and time") from None


_REQUIRED_TEXT = validate.Length(min=1)


class SubmittingResidentV1(Schema):
    """Who answered, as far as results need it: never a name or an address."""

    class Meta:
        unknown = INCLUDE

    id = fields.UUID(required=True)
    kind = fields.String(validate=validate.OneOf(PARTICIPANT_KINDS))  # absent: resident
    municipality_code = fields.String(required=True, validate=_REQUIRED_TEXT)
    wijk_code = fields.String(required=True, validate=_REQUIRED_TEXT)
    buurt_code = fields.String(required=True, validate=_REQUIRED_TEXT)
    age_band = fields.String(allow_none=True)
    sex = fields.String(allow_none=True)
    self_selected = fields.Boolean()
    recently_moved = fields.Boolean()  # absent: false


class SubmissionV1(Schema):
    class Meta:
        unknown = INCLUDE

    version = fields.Integer(validate=validate.Equal(SUBMISSION_VERSION))  # absent: 1
    receipt_id = fields.UUID(required=True)
    poll_id = fields.UUID(required=True)
    resident = fields.Nested(SubmittingResidentV1, required=True)
    answers = fields.Dict(required=True)  # checked against the poll by the gateway
    submitted_at = fields.String(required=True, validate=_iso_8601)
    channel = fields.String(validate=validate.OneOf(CHANNELS))  # absent: app


_SCHEMA = SubmissionV1()


def submission(
    *,
    receipt_id: str,
    poll_id: str,
    answers: dict[str, Any],
    submitted_at: datetime,
    resident: dict[str, Any],
    channel: str = "app",
) -> dict[str, Any]:
    """A submission as it goes on the queue (``resident``: the fields of
    ``SubmittingResidentV1``). Not validated again here: on the gateway's busiest route that
    would cost more than the rest of building it (marshmallow, ~75 µs); the unit tests keep
    what this builds and ``SubmissionV1`` in step, and responses checks every message."""
    return {
        "version": SUBMISSION_VERSION,
        "receipt_id": receipt_id,
        "poll_id": poll_id,
        "answers": answers,
        "submitted_at": submitted_at.isoformat(),
        "channel": channel,
        "resident": resident,
    }


def malformed(body: Any) -> str | None:
    """Why a message can never be recorded (it goes to the dead-letter queue), or None."""
    if not isinstance(body, dict):
        return "a submission must be an object"
    errors = _SCHEMA.validate(body)
    if not errors:
        return None
    return "; ".join(f"{field}: {_text(messages)}" for field, messages in sorted(errors.items()))


def _text(messages: Any) -> str:
    if isinstance(messages, dict):
        return ", ".join(f"{k}: {_text(v)}" for k, v in sorted(messages.items(), key=str))
    if isinstance(messages, list):
        return " ".join(str(m) for m in messages)
    return str(messages)
