"""A municipality's settings as more than one service reads them: the defaults (panel creates a
municipality with them; notify falls back to them while panel cannot be asked) and the shape of
quiet hours (a municipality's and a resident's are the same).

Panel owns the settings (``services/panel/tenants.py``); nothing here reads or stores them.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

DEFAULT_SETTINGS: dict[str, Any] = {
    "min_cell_size": 10,
    "default_channels": ["webpush", "fcm", "email"],
    "quiet_hours": {"start": "21:00", "end": "08:00"},
    "max_invitations_per_month": 4,
    "feedback_due_days": 30,
}


def default_branding(name: str) -> dict[str, Any]:
    return {
        "app_name": f"Buurtpeil {name}",
        "primary_color": "#1F4E79",
        "accent_color": "#F2A900",
        "text_on_primary": None,  # None: the more legible of white and black
        "logo_url": None,
        "welcome_text": f"Welkom bij het inwonerpanel van {name}. Uw mening telt in uw buurt.",
        "privacy_url": None,
        "contact": {"email": None, "phone": None, "url": None},
    }


class QuietHoursIn(Schema):
    start = fields.String(required=True, validate=validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$"))
    end = fields.String(required=True, validate=validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$"))
