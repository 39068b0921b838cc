"""Municipalities (tenants): identity, branding (huisstijl) and settings.

Branding is checked for what a resident will see: colours are hex, and the text colour on the
primary colour (``text_on_primary``, by default the more legible of white and black) must reach
WCAG AA contrast, 4.5:1.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.common.errors import Conflict, InvalidInput, NotFound, invalid
from services.common.municipal import DEFAULT_SETTINGS, default_branding
from services.panel.models import Municipality

Emit = Callable[[Session, str, dict[str, Any]], Any]  # the service's Outbox
HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
WCAG_AA = 4.5
MIN_CELL_FLOOR = 5  # results never show cells smaller than this, whatever a municipality sets


def relative_luminance(hex_colour: str) -> float:
    """WCAG 2.x relative luminance of an sRGB colour like #1F4E79."""

    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast_ratio(a: str, b: str) -> float:
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_on(primary: str) -> tuple[str, float]:
    """The more legible of white and black text on ``primary``, with its contrast ratio."""
    white, black = contrast_ratio(primary, "#FFFFFF"), contrast_ratio(primary, "#000000")
    return ("#FFFFFF", white) if white >= black else ("#000000", black)


def check_branding(branding: dict[str, Any]) -> dict[str, Any]:
    if HEX.match(str(branding.get("primary_color", ""))) and not branding.get("text_on_primary"):
        branding = {**branding, "text_on_primary": text_on(branding["primary_color"])[0]}
    errors = [
        {
            "field": f"branding.{key}",
            "code": "invalid_colour",
            "message": "use a hex colour like #1F4E79",
        }
        for key in ("primary_color", "accent_color", "text_on_primary")
        if not HEX.match(str(branding.get(key, "")))
    ]
    if errors:
        raise InvalidInput("the branding colours are not valid", errors)
    ratio = contrast_ratio(branding["primary_color"], branding["text_on_primary"])
    if ratio < WCAG_AA:
        best, best_ratio = text_on(branding["primary_color"])
        raise invalid(
            "branding.text_on_primary",
            "low_contrast",
            f"this text colour on the primary colour reaches {ratio:.2f}:1; WCAG AA needs "
            f"{WCAG_AA}:1 ({best} would reach {best_ratio:.2f}:1)",
        )
    return {**branding, "contrast_ratio": round(ratio, 2)}


def check_settings(settings: dict[str, Any]) -> dict[str, Any]:
    if settings["min_cell_size"] < MIN_CELL_FLOOR:
        raise invalid(
            "settings.min_cell_size",
            "below_floor",
            f"the minimum cell size cannot be below {MIN_CELL_FLOOR}",
        )
    quiet = settings["quiet_hours"]
    if quiet and quiet["start"] == quiet["end"]:
        raise invalid("settings.quiet_hours", "empty_window", "start and end must differ")
    return settings


def branding_etag(branding: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(branding, sort_keys=True).encode()).hexdigest()
    return f'"{digest[:32]}"'


def get_municipality(session: Session, code: str) -> Municipality:
    municipality = session.get(Municipality, code)
    if municipality is None:
        raise NotFound("no such municipality")
    return municipality


def create_municipality(
    session: Session,
    *,
    code: str,
    name: str,
    now: datetime,
    branding: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    emit: Emit | None = None,
) -> Municipality:
    if session.get(Municipality, code) is not None:
        raise Conflict(f"municipality {code} exists already")
    municipality = Municipality(
        code=code,
        name=name,
        branding=check_branding({**default_branding(name), **(branding or {})}),
        settings=check_settings({**DEFAULT_SETTINGS, **(settings or {})}),
        created_at=now,
        updated_at=now,
    )
    session.add(municipality)
    session.flush()
    announce(session, municipality, emit)
    return municipality


def update_branding(
    session: Session, *, code: str, changes: dict[str, Any], now: datetime
) -> Municipality:
    municipality = get_municipality(session, code)
    current = {
        k: v
        for k, v in municipality.branding.items()
        if k not in ("text_on_primary", "contrast_ratio")
    }
    municipality.branding = check_branding({**current, **changes})
    municipality.updated_at = now
    session.flush()
    return municipality


def update_settings(
    session: Session,
    *,
    code: str,
    changes: dict[str, Any],
    now: datetime,
    emit: Emit | None = None,
) -> Municipality:
    municipality = get_municipality(session, code)
    municipality.settings = check_settings({**municipality.settings, **changes})
    municipality.updated_at = now
    session.flush()
    announce(session, municipality, emit)
    return municipality


def announce(session: Session, municipality: Municipality, emit: Emit | None) -> None:
    """``municipality_changed``, in the transaction of the change: responses holds each
    municipality's minimum cell size (and name, for exports) from it."""
    if emit is None:
        return
    emit(
        session,
        "municipality_changed",
        {
            "municipality_code": municipality.code,
            "name": municipality.name,
            "min_cell_size": municipality.settings["min_cell_size"],
            "changed_at": municipality.updated_at.isoformat(),
        },
    )


def list_municipalities(session: Session) -> list[Municipality]:
    return list(session.scalars(sa.select(Municipality).order_by(Municipality.code)))


def serialize_municipality(m: Municipality) -> dict[str, Any]:
    return {
        "code": m.code,
        "name": m.name,
        "branding": m.branding,
        "settings": m.settings,
        "area_year": m.area_year,
        "created_at": m.created_at.isoformat(),
        "updated_at": m.updated_at.isoformat(),
    }
