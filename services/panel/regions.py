"""A municipality's own regions (issue 13): named sets of its buurten, beside the CBS wijken.

A region is made from a list of buurt codes, or proposed from GeoJSON polygons (each buurt goes
to the polygon where most of its area lies; the proposal is shown, and creating the region
from it is the confirmation). Regions may overlap and need not cover the municipality.

Versioned: a change writes a new version (``region_versions`` is the history; no event: nothing
listens, and a poll carries the regions it uses in ``poll_published``); a poll freezes the
versions of its regions when it is published (``for_poll``), so its results stay computed on
those.

Privacy (docs/suppression.md, "Regions"): a region's figures are sums over its buurten, so two
areas whose buurten nest — a region and a wijk, the gemeente, or another region — publish
their difference by subtraction. The results suppress per poll (every difference is a figure
in the one linked system), but a region that could only ever give a small group away is
refused here, before any poll uses it: when its difference with a wijk, the gemeente or
another active region is a set of buurten with fewer than ``MIN_DIFFERENCE_PER_K`` × k
inhabitants (CBS), the request fails with 422 naming the region, the other area and the
buurten. Overlaps that do not nest give no count by subtraction alone; they are left to the
results' audit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.common.areas import Polygon, point_in_polygon
from services.common.errors import Conflict, InvalidInput, NotFound
from services.panel import area_store
from services.panel import areas as cbs
from services.panel.models import Area, Municipality, Region, RegionVersion
from services.panel.tenants import get_municipality

# A nested difference of fewer than this many inhabitants per unit of k is refused: at k = 10,
# 500 inhabitants, around 400 adults — at a response rate of 2.5% about k respondents.
MIN_DIFFERENCE_PER_K = 50
# Points per buurt when the GeoJSON import measures where a buurt's area lies (a grid over its
# bounding box, those inside the buurt counted): shares are good to a few percent.
GRID = 40


def _lock(session: Session, municipality_code: str) -> None:
    """One region change at a time per municipality: each is checked against the others."""
    if session.get(Municipality, municipality_code, with_for_update=True) is None:
        raise NotFound("no such municipality")


def _refuse(field: str, code: str, message: str) -> InvalidInput:
    return InvalidInput(message, [{"field": field, "code": code, "message": message}])


# --- reading ---------------------------------------------------------------------------------


def _get(session: Session, municipality_code: str, code: str, *, lock: bool = False) -> Region:
    query = sa.select(Region).where(
        Region.code == code, Region.municipality_code == municipality_code
    )
    region = session.scalars(query.with_for_update() if lock else query).first()
    if region is None:
        raise NotFound(f"no region {code}")
    return region


def _version(session: Session, code: str, version: int) -> RegionVersion:
    row = session.get(RegionVersion, (code, version))
    if row is None:
        raise NotFound(f"no version {version} of region {code}")
    return row


def serialize_region(region: Region, version: RegionVersion) -> dict[str, Any]:
    return {
        "code": region.code,
        "name": version.name,
        "version": version.version,
        "current_version": region.version,
        "buurt_codes": list(version.buurt_codes),
        "archived": region.archived_at is not None,
        "created_at": region.created_at.isoformat(),
        "updated_at": version.created_at.isoformat(),
        "created_by": version.created_by,
    }


def list_regions(
    session: Session, *, municipality_code: str, archived: bool = False
) -> list[dict[str, Any]]:
    query = sa.select(Region).where(Region.municipality_code == municipality_code)
    if not archived:
        query = query.where(Region.archived_at.is_(None))
    return [
        serialize_region(r, _version(session, r.code, r.version))
        for r in session.scalars(query.order_by(Region.code))
    ]


def get_region(
    session: Session, *, municipality_code: str, code: str, version: int | None = None
) -> dict[str, Any]:
    region = _get(session, municipality_code, code)
    return serialize_region(region, _version(session, code, version or region.version))


def for_poll(session: Session, *, municipality_code: str, codes: Iterable[str]) -> list[dict]:
    """The current versions of these regions, as a poll freezes them at publication:
    ``{code, name, version, buurt_codes}``. An unknown or archived region is refused."""
    out, errors = [], []
    for i, code in enumerate(dict.fromkeys(codes)):
        region = session.scalars(
            sa.select(Region).where(
                Region.code == code, Region.municipality_code == municipality_code
            )
        ).first()
        if region is None or region.archived_at is not None:
            errors.append(
                {
                    "field": f"audience.region_codes[{i}]",
                    "code": "unknown_region",
                    "message": f"{code} is not an active region of {municipality_code}",
                }
            )
            continue
        v = _version(session, code, region.version)
        out.append(
            {"code": code, "name": v.name, "version": v.version, "buurt_codes": v.buurt_codes}
        )
    if errors:
        raise InvalidInput("the audience names regions that cannot be used", errors)
    return out


# --- the municipality's areas ----------------------------------------------------------------


class Areas:
    """The current year's buurten and wijken of a municipality: inhabitants per buurt, buurten
    per wijk."""

    def __init__(self, session: Session, municipality_code: str) -> None:
        self.year = area_store.current_year(session, municipality_code)
        rows = session.execute(
            sa.select(Area.code, Area.level, Area.name, Area.parent_code, Area.population).where(
                Area.municipality_code == municipality_code, Area.year == self.year
            )
        ).all()
        self.names = {code: name for code, _, name, _, _ in rows}
        self.population = {
            code: population or 0 for code, level, _, _, population in rows if level == "buurt"
        }
        self.wijken: dict[str, set[str]] = {}
        for code, level, _, parent, _ in rows:
            if level == "buurt" and parent:
                self.wijken.setdefault(parent, set()).add(code)
        self.gemeente = municipality_code

    def inhabitants(self, buurten: Iterable[str]) -> int:
        return sum(self.population.get(b, 0) for b in buurten)

    def label(self, code: str) -> str:
        name = self.names.get(code)
        return f"{code} ({name})" if name else code


# --- checks ----------------------------------------------------------------------------------


def check_buurten(areas: Areas, buurt_codes: list[str]) -> list[str]:
    """The region's buurten, deduplicated and sorted; refused when empty or not ours."""
    codes = sorted(dict.fromkeys(buurt_codes))
    if not codes:
        raise _refuse("buurt_codes", "required", "a region needs at least one buurt")
    errors = [
        {
            "field": f"buurt_codes[{buurt_codes.index(c)}]",
            "code": "unknown_buurt",
            "message": f"{c} is not a buurt of {areas.gemeente} in {areas.year}",
        }
        for c in codes
        if c not in areas.population
    ]
    if errors:
        raise InvalidInput("the region lists buurten that are not ours", errors)
    return codes


def leaks(
    name: str,
    buurten: set[str],
    others: Mapping[str, tuple[str, set[str]]],
    areas: Areas,
    k: int,
) -> list[dict[str, Any]]:
    """Why a region with these buurten would give a small group away, one entry per area it
    nests with (or in) by a difference of fewer than ``MIN_DIFFERENCE_PER_K`` × k inhabitants.
    ``others``: code → (label, buurten) of the wijken, the gemeente and the other regions."""
    floor = MIN_DIFFERENCE_PER_K * k
    out = []
    for code, (label, theirs) in others.items():
        if buurten == theirs or not (buurten < theirs or buurten > theirs):
            continue  # the same buurten (difference 0), or an overlap that does not nest
        difference = sorted(buurten ^ theirs)
        people = areas.inhabitants(difference)
        if people >= floor:
            continue
        listed = ", ".join(areas.label(b) for b in difference[:5])
        more = f" and {len(difference) - 5} more" if len(difference) > 5 else ""
        out.append(
            {
                "field": "buurt_codes",
                "code": "small_difference",
                "message": (
                    f"region {name!r} differs from {label} only by {listed}{more}: "
                    f"{people} inhabitants (CBS {areas.year}), fewer than {floor} "
                    f"(= {MIN_DIFFERENCE_PER_K} × k, k = {k}); their answers could be "
                    "worked out by subtracting one area's figures from the other's"
                ),
                "area": code,
                # For a page to say what to fix in its own words (the message is English).
                "buurten": difference,
                "inhabitants": people,
            }
        )
    return out


def _others(
    session: Session, municipality_code: str, areas: Areas, exclude: str | None
) -> dict[str, tuple[str, set[str]]]:
    others: dict[str, tuple[str, set[str]]] = {
        areas.gemeente: (f"the gemeente {areas.gemeente}", set(areas.population))
    }
    for wijk, buurten in sorted(areas.wijken.items()):
        others[wijk] = (f"wijk {areas.label(wijk)}", set(buurten))
    active = session.scalars(
        sa.select(Region).where(
            Region.municipality_code == municipality_code, Region.archived_at.is_(None)
        )
    )
    for region in active:
        if region.code == exclude:
            continue
        v = _version(session, region.code, region.version)
        others[region.code] = (f"region {region.code} ({v.name!r})", set(v.buurt_codes))
    return others


def _check(
    session: Session, municipality_code: str, name: str, buurt_codes: list[str], code: str | None
) -> list[str]:
    areas = Areas(session, municipality_code)
    codes = check_buurten(areas, buurt_codes)
    k = int(get_municipality(session, municipality_code).settings.get("min_cell_size", 10))
    found = leaks(name, set(codes), _others(session, municipality_code, areas, code), areas, k)
    if found:
        raise InvalidInput(
            f"region {name!r} would give small groups away: {found[0]['message']}", found
        )
    return codes


# --- writing ---------------------------------------------------------------------------------


def _next_code(session: Session, municipality_code: str) -> str:
    prefix = "RG" + municipality_code[2:6]
    last = session.scalar(sa.select(sa.func.max(Region.code)).where(Region.code.like(prefix + "%")))
    number = int(last[6:]) + 1 if last else 1
    if number > 9999:
        raise Conflict("this municipality has used all 9999 region codes")
    return f"{prefix}{number:04d}"


def create_region(
    session: Session,
    *,
    municipality_code: str,
    data: Mapping[str, Any],
    now: datetime,
    created_by: str | None,
) -> dict[str, Any]:
    _lock(session, municipality_code)
    codes = _check(session, municipality_code, data["name"], data["buurt_codes"], None)
    code = _next_code(session, municipality_code)
    region = Region(
        code=code,
        municipality_code=municipality_code,
        version=1,
        archived_at=None,
        created_at=now,
        updated_at=now,
    )
    version = RegionVersion(
        code=code,
        version=1,
        name=data["name"],
        buurt_codes=codes,
        created_at=now,
        created_by=created_by,
    )
    session.add(region)
    session.flush()
    session.add(version)
    session.flush()
    return serialize_region(region, version)


def update_region(
    session: Session,
    *,
    municipality_code: str,
    code: str,
    changes: Mapping[str, Any],
    now: datetime,
    created_by: str | None,
) -> dict[str, Any]:
    """A new version with the changed name and/or buurten; polls published before keep theirs.
    Changing nothing writes nothing."""
    _lock(session, municipality_code)
    region = _get(session, municipality_code, code, lock=True)
    if region.archived_at is not None:
        raise Conflict(f"region {code} is archived")
    current = _version(session, code, region.version)
    name = changes.get("name", current.name)
    buurten = changes.get("buurt_codes", current.buurt_codes)
    codes = _check(session, municipality_code, name, list(buurten), code)
    if name == current.name and codes == list(current.buurt_codes):
        return serialize_region(region, current)
    region.version += 1
    region.updated_at = now
    version = RegionVersion(
        code=code,
        version=region.version,
        name=name,
        buurt_codes=codes,
        created_at=now,
        created_by=created_by,
    )
    session.add(version)
    session.flush()
    return serialize_region(region, version)


def archive_region(
    session: Session, *, municipality_code: str, code: str, now: datetime
) -> dict[str, Any]:
    """No new poll can use it; polls published with it keep their frozen copy."""
    region = _get(session, municipality_code, code, lock=True)
    version = _version(session, code, region.version)
    if region.archived_at is None:
        region.archived_at = now
        region.updated_at = now
        session.flush()
    return serialize_region(region, version)


# --- GeoJSON: a proposal to confirm ----------------------------------------------------------


def propose_from_geojson(
    session: Session, *, municipality_code: str, geojson: str
) -> list[dict[str, Any]]:
    """Per feature (``properties.name``, a Polygon or MultiPolygon in WGS84 lon/lat), the
    buurten whose area lies mostly (more than half) inside it, with each buurt's share, and
    the buurten that touch it but lie mostly outside. Nothing is stored: create the regions
    from the proposal you confirm (``create_region``), which checks them as always."""
    try:
        data = json.loads(geojson)
    except ValueError as exc:
        raise _refuse("geojson", "invalid_json", f"not JSON: {exc}") from None
    features = data.get("features") if isinstance(data, dict) else None
    if data.get("type") != "FeatureCollection" or not isinstance(features, list) or not features:
        raise _refuse("geojson", "not_a_feature_collection", "expected a FeatureCollection")
    errors: list[dict[str, str]] = []
    shapes: list[tuple[str, list[Polygon]]] = []
    for i, feature in enumerate(features):
        props = feature.get("properties") if isinstance(feature, dict) else None
        name = props.get("name") if isinstance(props, dict) else None
        if not isinstance(name, str) or not name.strip():
            errors.append(
                {
                    "field": f"features[{i}].properties.name",
                    "code": "missing_name",
                    "message": "every region needs properties.name",
                }
            )
            continue
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        polygons = cbs._parse_geometry(geometry, f"features[{i}].geometry", errors)
        if polygons is not None:
            shapes.append((name.strip(), polygons))
    if errors:
        raise InvalidInput("the GeoJSON is not a set of named polygons", errors)
    boundaries = area_store.buurt_boundaries(session, municipality_code=municipality_code)
    buurten = {code: _polygons(b) for code, b in boundaries["boundaries"].items() if b}
    samples = {code: _sample(polygons) for code, polygons in buurten.items()}
    proposals = []
    for name, polygons in shapes:
        inside, touching = [], []
        for code in sorted(samples):
            points = samples[code]
            if not points:
                continue
            hits = sum(any(point_in_polygon(p, x, y) for p in polygons) for x, y in points)
            share = hits / len(points)
            if share > 0.5:
                inside.append({"code": code, "share": round(share, 2)})
            elif share > 0:
                touching.append({"code": code, "share": round(share, 2)})
        proposals.append(
            {
                "name": name,
                "buurt_codes": [b["code"] for b in inside],
                "buurten": inside,
                "mostly_outside": touching,
                "year": boundaries["year"],
            }
        )
    return proposals


def _polygons(boundary: list[Any]) -> list[Polygon]:
    return [[[tuple(p) for p in ring] for ring in polygon] for polygon in boundary]


def _sample(polygons: list[Polygon]) -> list[tuple[float, float]]:
    """Points of a regular grid over the bounding box that lie in the area: each stands for
    the same part of its area (lon/lat cells are of equal size over a municipality)."""
    xs = [x for polygon in polygons for x, _ in polygon[0]]
    ys = [y for polygon in polygons for _, y in polygon[0]]
    if not xs:
        return []
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    points = []
    for i in range(GRID):
        for j in range(GRID):
            x = x0 + (x1 - x0) * (i + 0.5) / GRID
            y = y0 + (y1 - y0) * (j + 0.5) / GRID
            if any(point_in_polygon(p, x, y) for p in polygons):
                points.append((x, y))
    return points
