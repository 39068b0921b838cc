"""Inputs of the notify service's RPC API (the gateway reuses them for HTTP bodies)."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.common.municipal import QuietHoursIn  # one shape for a municipality and a resident

B64URL = validate.Regexp(r"^[A-Za-z0-9_-]+={0,2}$", error="must be base64url")


class PushKeysIn(Schema):
    p256dh = fields.String(required=True, validate=[B64URL, validate.Length(min=86, max=90)])
    auth = fields.String(required=True, validate=[B64URL, validate.Length(min=22, max=24)])


class DeviceIn(Schema):
    """A Web Push subscription as the browser's PushSubscription.toJSON() gives it, or an FCM
    registration token."""

    channel = fields.String(required=True, validate=validate.OneOf(["webpush", "fcm"]))
    endpoint = fields.Url(schemes={"https", "http"}, validate=validate.Length(max=2000))
    keys = fields.Nested(PushKeysIn)
    token = fields.String(validate=validate.Length(min=20, max=4096))

    @validates_schema
    def complete_for_channel(self, data: dict, **_: object) -> None:
        if data["channel"] == "webpush":
            missing = [f for f in ("endpoint", "keys") if f not in data]
            if missing:
                raise ValidationError(
                    {f: ["required for a Web Push subscription"] for f in missing}
                )
        elif "token" not in data:
            raise ValidationError({"token": ["required for an FCM device"]})


class PreferencesIn(Schema):
    channel_order = fields.List(
        fields.String(validate=validate.OneOf(["webpush", "fcm", "email"])),
        validate=validate.Length(min=1, max=3),
    )
    quiet_hours = fields.Nested(QuietHoursIn, allow_none=True)


class ReplayIn(Schema):
    delivery_ids = fields.List(
        fields.Integer(validate=validate.Range(min=1)), validate=validate.Length(max=100_000)
    )
