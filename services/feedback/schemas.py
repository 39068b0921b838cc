"""Input shapes of the feedback service's RPC API. Texts are stripped before their length is
checked, so "   " is as empty as ""."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from services.common.validation import MULTILINE

AREA_CODE = validate.Regexp(
    r"^(GM\d{4}|WK\d{6}|BU\d{8})$", error="must be a CBS gemeente, wijk or buurt code"
)
SUB_AREA_CODE = validate.Regexp(
    r"^(WK\d{6}|BU\d{8})$", error="must be a wijk (WK…) or buurt (BU…) code"
)
MEASURE_STATUSES = ("planned", "in_progress", "done", "dropped")


class Text(fields.String):
    """A string, stripped. Empty after stripping: refused when ``required`` or ``nonempty``
    (a field that may be left out but not blanked), else None."""

    def __init__(self, *, max_length: int, nonempty: bool = False, **kwargs: Any):
        self.max_length = max_length
        self.nonempty = nonempty
        super().__init__(**kwargs)

    # Ignored: marshmallow types String as Field[str], but a blank Text is None by design.
    def _deserialize(  # type: ignore[override]
        self, value: Any, attr: Any, data: Any, **kwargs: Any
    ) -> str | None:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not text:
            if self.required or self.nonempty:
                raise ValidationError("must not be empty")
            return None
        if len(text) > self.max_length:
            raise ValidationError(f"at most {self.max_length} characters")
        return text


class KeyFigureIn(Schema):
    question_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    area_code = fields.String(load_default=None, allow_none=True, validate=AREA_CODE)


class FeedbackDraftIn(Schema):
    title = Text(max_length=120, required=True)
    heard = Text(max_length=5000, required=True, metadata=MULTILINE)
    plan = Text(max_length=5000, required=True, metadata=MULTILINE)
    not_followed = Text(max_length=5000, load_default=None, allow_none=True, metadata=MULTILINE)
    key_figures = fields.List(
        fields.Nested(KeyFigureIn), load_default=list, validate=validate.Length(max=10)
    )
    notify_all_invitees = fields.Boolean(load_default=False)


class MeasureIn(Schema):
    title = Text(max_length=120, required=True)
    description = Text(max_length=2000, load_default=None, allow_none=True, metadata=MULTILINE)
    area_codes = fields.List(
        fields.String(validate=SUB_AREA_CODE), load_default=list, validate=validate.Length(max=200)
    )
    owner = Text(max_length=120, required=True)
    expected_date = fields.Date(load_default=None, allow_none=True)


class MeasureUpdate(Schema):
    """The same fields, each optional: only those given change."""

    title = Text(max_length=120, nonempty=True)
    description = Text(max_length=2000, allow_none=True, metadata=MULTILINE)
    area_codes = fields.List(
        fields.String(validate=SUB_AREA_CODE), validate=validate.Length(max=200)
    )
    owner = Text(max_length=120, nonempty=True)
    expected_date = fields.Date(allow_none=True)


class StatusChangeIn(Schema):
    status = fields.String(required=True, validate=validate.OneOf(MEASURE_STATUSES))
    note = Text(max_length=1000, load_default=None, allow_none=True, metadata=MULTILINE)


class ReactionIn(Schema):
    useful = fields.Boolean(required=True, truthy={True}, falsy={False})
    comment = Text(max_length=500, load_default=None, allow_none=True, metadata=MULTILINE)
