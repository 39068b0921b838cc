"""Helpers to bring a test panel up to a usable state: Utrecht with its real CBS areas."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from services.panel import accounts
from services.panel.areas import DATA_DIR

UTRECHT = "GM0344"


def utrecht_files() -> dict[str, str]:
    return {
        "kwb_csv": (DATA_DIR / "utrecht_GM0344_kwb2024_areas.csv").read_text(encoding="utf-8"),
        "buurt_geojson": (DATA_DIR / "utrecht_GM0344_buurten_2024.geojson").read_text(
            encoding="utf-8"
        ),
    }


def utrecht_files_as(code: str) -> dict[str, str]:
    """Utrecht's areas under another municipality's code (GM0344 → code, WK0344… → WK<digits>…),
    for tests that need two municipalities with areas."""
    digits = code[2:6]
    return {
        name: re.sub(r"\b(GM|WK|BU)0344", lambda m: m.group(1) + digits, text)
        for name, text in utrecht_files().items()
    }


def seed_utrecht(panel: Any, name: str = "Utrecht", code: str = UTRECHT) -> dict[str, Any]:
    municipality = panel.create_municipality({"code": code, "name": name})
    panel.import_areas(code, utrecht_files())
    return municipality


def platform_admin(
    engine: Any,
    email: str = "beheer@buurtpeil.localhost",
    password: str = "correct horse battery staple",
) -> None:
    with Session(engine) as session, session.begin():
        accounts.create_platform_admin(
            session, email=email, password=password, now=datetime.now(UTC)
        )


def profile(**overrides: Any) -> dict[str, Any]:
    return {
        "buurt_code": "BU03440111",
        "birth_year": 1980,
        "sex": "vrouw",
        "language": "nl",
        "consent": True,
        **overrides,
    }
