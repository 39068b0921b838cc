"""Areas in the panel database: import a KWB year with its boundaries, list, locate.

An import replaces the rows of that year only, so older years stay as history; importing the
same content again changes nothing and emits nothing. A newer year becomes the municipality's
current one. Each effective import emits ``areas_imported`` with the population margins.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.common.errors import InvalidInput, NotFound
from services.panel import areas as cbs
from services.panel.models import Area, AreaImport
from services.panel.tenants import get_municipality

# Locators are built from the database once per (municipality, year) and process.
_locators: dict[tuple[str, int], cbs.AreaLocator] = {}


def import_areas(
    session: Session,
    *,
    municipality_code: str,
    kwb_csv: str,
    buurt_geojson: str,
    now: datetime,
    emit: Any,
) -> dict[str, Any]:
    municipality = get_municipality(session, municipality_code)
    try:
        records = cbs.parse_kwb_csv(kwb_csv)
        boundaries = cbs.parse_boundaries(buurt_geojson)
    except cbs.AreaImportError as exc:
        raise InvalidInput("the area files were refused", exc.errors) from exc
    mismatch = cbs.match_boundaries(records, boundaries)
    if mismatch:
        raise InvalidInput("figures and boundaries do not describe the same buurten", mismatch)
    if records[0].municipality_code != municipality_code:
        raise InvalidInput(
            "these files are of another municipality",
            [
                {
                    "field": "kwb_csv",
                    "code": "other_municipality",
                    "message": f"the file is for {records[0].municipality_code}, "
                    f"not {municipality_code}",
                }
            ],
        )
    year = records[0].year
    payload = cbs.margins_payload(records)
    digest = hashlib.sha256(
        json.dumps([payload, buurt_geojson], sort_keys=True).encode()
    ).hexdigest()
    previous = session.scalar(
        sa.select(sa.func.count())
        .select_from(Area)
        .where(Area.municipality_code == municipality_code, Area.year == year)
    )
    rows = [
        {
            "code": r.code,
            "year": r.year,
            "municipality_code": r.municipality_code,
            "level": r.level,
            "name": r.name,
            "parent_code": r.parent_code,
            "population": r.population,
            "sex": r.sex,
            "age": r.age,
            "households": r.households,
            "boundary": [[list(map(list, ring)) for ring in poly] for poly in boundaries[r.code]]
            if r.code in boundaries
            else None,
        }
        for r in records
    ]
    changed = _content_changed(session, municipality_code, year, digest)
    if changed:
        session.execute(
            sa.delete(Area).where(Area.municipality_code == municipality_code, Area.year == year)
        )
        session.execute(insert(Area), rows)
        _store_digest(session, municipality_code, year, digest, now)
        emit(session, "areas_imported", payload)
        _locators.pop((municipality_code, year), None)
    if municipality.area_year is None or year > municipality.area_year:
        municipality.area_year = year
        municipality.updated_at = now
    session.flush()
    counts = {level: sum(1 for r in records if r.level == level) for level in cbs.LEVEL_CODE}
    return {
        "municipality_code": municipality_code,
        "year": year,
        "changed": changed,
        "replaced_rows": previous if changed else 0,
        "counts": counts,
        "current_year": municipality.area_year,
        "warnings": cbs.check_consistency(records),
    }


def _content_changed(session: Session, municipality_code: str, year: int, digest: str) -> bool:
    current = session.get(AreaImport, (municipality_code, year))
    return current is None or current.digest != digest


def _store_digest(
    session: Session, municipality_code: str, year: int, digest: str, now: datetime
) -> None:
    session.merge(
        AreaImport(municipality_code=municipality_code, year=year, digest=digest, imported_at=now)
    )


def current_year(session: Session, municipality_code: str) -> int:
    year = get_municipality(session, municipality_code).area_year
    if year is None:
        raise NotFound("no areas imported for this municipality yet")
    return year


def list_areas(
    session: Session, *, municipality_code: str, level: str | None = None, year: int | None = None
) -> list[dict[str, Any]]:
    year = year or current_year(session, municipality_code)
    query = sa.select(Area).where(Area.municipality_code == municipality_code, Area.year == year)
    if level:
        query = query.where(Area.level == level)
    return [serialize_area(a) for a in session.scalars(query.order_by(Area.code))]


def get_area(
    session: Session, *, municipality_code: str, code: str, year: int | None = None
) -> Area:
    year = year or current_year(session, municipality_code)
    area = session.get(Area, (code, year))
    if area is None or area.municipality_code != municipality_code:
        raise NotFound(f"no area {code} in {municipality_code}")
    return area


def serialize_area(a: Area) -> dict[str, Any]:
    return {
        "code": a.code,
        "year": a.year,
        "level": a.level,
        "name": a.name,
        "parent_code": a.parent_code,
        "population": a.population,
        "sex": a.sex,
        "age": a.age,
        "households": a.households,
    }


def locator(session: Session, municipality_code: str) -> cbs.AreaLocator:
    year = current_year(session, municipality_code)
    key = (municipality_code, year)
    if key not in _locators:
        rows = session.execute(
            sa.select(Area.code, Area.boundary).where(
                Area.municipality_code == municipality_code,
                Area.year == year,
                Area.level == "buurt",
                Area.boundary.is_not(None),
            )
        ).all()
        _locators[key] = cbs.AreaLocator(
            {
                code: [[[tuple(p) for p in ring] for ring in poly] for poly in boundary]
                for code, boundary in rows
            }
        )
    return _locators[key]


def locate(
    session: Session, *, municipality_code: str, lat: float, lon: float
) -> dict[str, Any] | None:
    """The buurt a point lies in — a suggestion near borders (generalised boundaries)."""
    code = locator(session, municipality_code).locate(lat, lon)
    if code is None:
        return None
    area = get_area(session, municipality_code=municipality_code, code=code)
    return {
        "buurt_code": area.code,
        "buurt_name": area.name,
        "wijk_code": area.parent_code,
        "approximate": True,
    }


def buurt_boundaries(session: Session, *, municipality_code: str) -> dict[str, Any]:
    """Buurt polygons of the current year (for the gateway's location checks)."""
    year = current_year(session, municipality_code)
    rows = session.execute(
        sa.select(Area.code, Area.boundary).where(
            Area.municipality_code == municipality_code,
            Area.year == year,
            Area.level == "buurt",
            Area.boundary.is_not(None),
        )
    ).all()
    return {"year": year, "boundaries": dict(rows)}
