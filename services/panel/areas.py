"""CBS areas for the panel: parse the KWB figures and buurt boundaries, locate a point.

Pure functions, standard library only: no database, no broker, no shapely. The panel service
will import a municipality's areas with ``parse_kwb_csv`` + ``parse_boundaries``, publish
``margins_payload`` as the ``areas_imported`` event, show ``check_consistency`` warnings to
staff, and answer "which buurt is this location in?" with an ``AreaLocator``.

The file formats are those of data/areas/README.md (CBS Kerncijfers wijken en buurten, CC BY 4.0,
"Bron: CBS"; generalised CBS/Kadaster buurt boundaries in WGS84 GeoJSON).

Problems are reported as ``{"field", "code", "message"}`` dicts (the shape PollSpecError uses),
with English messages: they are for municipal staff, not residents.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.common.areas import (
    ANY_AREA_CODE,
    LEVEL_CODE,
    PARENT_LEVEL,
    AreaLocator,
    Boundaries,
    Polygon,
    Ring,
)
from services.common.events import AGE_BANDS, LEVELS

DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "areas"


AGE_COLUMNS = {band: f"age_{band}" for band in AGE_BANDS}  # "0_14" -> "age_0_14", ...
SEX_COLUMNS = {"man": "male", "vrouw": "female"}
COUNT_COLUMNS = ("population", *SEX_COLUMNS.values(), *AGE_COLUMNS.values(), "households")
REQUIRED_COLUMNS = (
    "year",
    "level",
    "code",
    "name",
    "parent_code",
    "municipality_code",
    *COUNT_COLUMNS,
)

# CBS rounds wijk and buurt counts at random to a multiple of 5, so each is off by at most 4.
# Comparing a rounded total with the sum of n rounded parts, the gap is at most 4(n + 1), and a
# multiple of 5; 5n is never below that for n >= 1, so "5 per summed part" never warns about
# rounding alone. Gemeente totals are not rounded (tolerance 0 for their own margins).
CBS_ROUNDING = 5

_INTEGER = re.compile(r"^[+-]?\d+$")


class AreaImportError(ValueError):
    """An import file was refused; ``errors`` lists every problem found, not only the first."""

    def __init__(self, errors: list[dict[str, str]]):
        self.errors = errors
        shown = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        super().__init__(f"{len(errors)} problem(s): {shown}{more}")


def _error(field: str, code: str, message: str) -> dict[str, str]:
    return {"field": field, "code": code, "message": message}


@dataclass(frozen=True)
class AreaRecord:
    """One row of a KWB file: a gemeente, wijk or buurt and its population margins.

    Counts are None where CBS publishes '.' (unknown, unreliable or confidential). ``sex`` has
    the keys "man"/"vrouw" (CBS male/female), ``age`` the keys of AGE_BANDS.
    """

    year: int
    level: str
    code: str
    name: str
    parent_code: str | None
    municipality_code: str
    population: int | None
    sex: dict[str, int | None]
    age: dict[str, int | None]
    households: int | None


# --- KWB CSV -----------------------------------------------------------------------------------


def parse_kwb_csv(text: str) -> list[AreaRecord]:
    """Parse a CBS KWB extract (one municipality, one year) or raise AreaImportError.

    Columns beyond REQUIRED_COLUMNS (district_code, area_total_ha, ...) are allowed and ignored.
    Cells are stripped; an empty cell is None. Line numbers in ``field`` count the header as 1.
    """
    text = text.removeprefix("\ufeff")
    reader = csv.reader(text.splitlines())
    header = [h.strip() for h in next(reader, [])]
    if not any(header):
        raise AreaImportError([_error("header", "empty_file", "the file is empty")])
    errors: list[dict[str, str]] = []
    for name, n in Counter(header).items():
        if n > 1 and name:
            errors.append(
                _error(f"header: {name}", "duplicate_column", f"column {name!r} appears {n} times")
            )
    for name in REQUIRED_COLUMNS:
        if name not in header:
            errors.append(
                _error(f"header: {name}", "missing_column", f"required column {name!r} is missing")
            )
    if errors:
        raise AreaImportError(errors)  # without the right columns the rows cannot be read

    rows: list[tuple[int, dict[str, str]]] = []
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue  # blank line, e.g. a trailing newline
        if len(cells) != len(header):
            errors.append(
                _error(
                    f"line {line}",
                    "row_length",
                    f"{len(cells)} cells where the header has {len(header)}",
                )
            )
            continue
        rows.append((line, {h: c.strip() for h, c in zip(header, cells, strict=True)}))
    if not rows and not errors:
        raise AreaImportError([_error("line 2", "no_rows", "the file has a header but no areas")])

    records = [_parse_row(line, row, errors) for line, row in rows]
    _check_file(rows, errors)
    if errors:
        raise AreaImportError(errors)
    return [record for record in records if record is not None]


def _parse_row(line: int, row: dict[str, str], errors: list[dict[str, str]]) -> AreaRecord | None:
    """One row to an AreaRecord; problems local to the row go to ``errors``."""
    n_before = len(errors)

    def err(column: str, code: str, message: str) -> None:
        errors.append(_error(f"line {line}: {column}", code, message))

    for column in ("year", "level", "code", "name", "municipality_code"):
        if not row[column]:
            err(column, "required", f"{column} is empty")

    year = None
    if row["year"]:
        if not _valid_year(row["year"]):
            err("year", "bad_year", f"year {row['year']!r} is not a year between 2000 and 2100")
        else:
            year = int(row["year"])

    level, code = row["level"], row["code"]
    if level and level not in LEVELS:
        err("level", "unknown_level", f"level {level!r} is not one of {', '.join(LEVELS)}")
    if code:
        pattern = LEVEL_CODE.get(level)
        if pattern is not None and not pattern.match(code):
            example = {"gemeente": "GM0344", "wijk": "WK034401", "buurt": "BU03440111"}[level]
            err("code", "bad_code", f"{code!r} is not a CBS {level} code like {example}")
        elif pattern is None and not ANY_AREA_CODE.match(code):
            err("code", "bad_code", f"{code!r} is not a CBS area code (GM…, WK…, BU…)")

    municipality = row["municipality_code"]
    if municipality:
        if not LEVEL_CODE["gemeente"].match(municipality):
            err(
                "municipality_code",
                "bad_code",
                f"{municipality!r} is not a CBS municipality code like GM0344",
            )
        elif ANY_AREA_CODE.match(code) and code[2:6] != municipality[2:6]:
            err(
                "code",
                "municipality_mismatch",
                f"{code} is not in municipality {municipality} "
                f"(its municipality digits are {code[2:6]})",
            )

    counts: dict[str, int | None] = {}
    for column in COUNT_COLUMNS:
        value = row[column]
        if value == "":
            counts[column] = None
        elif not _INTEGER.match(value):
            err(column, "not_an_integer", f"{value!r} is not a whole number")
        elif int(value) < 0:
            err(column, "negative_count", f"{value} is negative")
        else:
            counts[column] = int(value)

    if len(errors) > n_before or year is None:
        return None
    return AreaRecord(
        year=year,
        level=level,
        code=code,
        name=row["name"],
        parent_code=row["parent_code"] or None,
        municipality_code=municipality,
        population=counts["population"],
        sex={key: counts[column] for key, column in SEX_COLUMNS.items()},
        age={band: counts[column] for band, column in AGE_COLUMNS.items()},
        households=counts["households"],
    )


def _valid_year(value: str) -> bool:
    return bool(_INTEGER.match(value)) and 2000 <= int(value) <= 2100


def _check_file(rows: list[tuple[int, dict[str, str]]], errors: list[dict[str, str]]) -> None:
    """Checks across rows: one year, one municipality, unique codes, parents in the file.

    Runs on the raw rows, so a row refused for another reason (say a negative count) still
    counts as present: its buurten are not also reported as orphans.
    """
    first: dict[str, tuple[int, str]] = {}  # "year"/"municipality_code" -> (line, value)
    first_line: dict[str, int] = {}
    level_of: dict[str, str] = {}
    for line, row in rows:
        for column, code, what in (
            ("year", "multiple_years", "year"),
            ("municipality_code", "multiple_municipalities", "municipality"),
        ):
            value = row[column]
            valid = _valid_year if column == "year" else LEVEL_CODE["gemeente"].match
            if not valid(value):
                continue  # empty or malformed: refused on its own line
            if column not in first:
                first[column] = (line, value)
            elif value != first[column][1]:
                errors.append(
                    _error(
                        f"line {line}: {column}",
                        code,
                        f"{value}, but line {first[column][0]} has "
                        f"{first[column][1]}: one file holds one {what}",
                    )
                )
        code = row["code"]
        if not code:
            continue
        if code in first_line:
            errors.append(
                _error(
                    f"line {line}: code",
                    "duplicate_code",
                    f"{code} is already on line {first_line[code]}",
                )
            )
        else:
            first_line[code] = line
            level_of[code] = row["level"]

    for line, row in rows:
        level, code, parent = row["level"], row["code"], row["parent_code"]
        field = f"line {line}: parent_code"
        if level == "gemeente":
            if parent:
                errors.append(_error(field, "bad_parent", "a gemeente has no parent_code"))
            continue
        if level not in PARENT_LEVEL or not LEVEL_CODE[level].match(code):
            continue  # already refused for its level or code
        # CBS codes nest: WK0344NN belongs to GM0344, BU0344NNMM to WK0344NN.
        expected = "GM" + code[2:6] if level == "wijk" else "WK" + code[2:8]
        if not parent:
            errors.append(
                _error(field, "missing_parent", f"a {level} needs a parent_code ({expected})")
            )
        elif parent not in level_of:
            errors.append(_error(field, "missing_parent", f"parent {parent} is not in the file"))
        elif level_of[parent] not in LEVELS:
            continue  # the parent's row is refused for its level
        elif level_of[parent] != PARENT_LEVEL[level] or parent != expected:
            errors.append(
                _error(
                    field, "bad_parent", f"the parent of {level} {code} is {expected}, not {parent}"
                )
            )


# --- GeoJSON boundaries --------------------------------------------------------------------------


def parse_boundaries(geojson_text: str) -> Boundaries:
    """Parse a GeoJSON FeatureCollection of areas: code -> polygons, or raise AreaImportError.

    Each polygon is a list of (lon, lat) rings: the first the exterior, the others holes. A
    Polygon gives one polygon, a MultiPolygon several. Coordinates must be WGS84 lon/lat
    (RFC 7946); a file in RD New metres is refused. Rings must be closed, with 4+ positions.
    """
    try:
        data = json.loads(geojson_text)
    except ValueError as exc:
        raise AreaImportError([_error("geojson", "invalid_json", f"not JSON: {exc}")]) from None
    if (
        not isinstance(data, dict)
        or data.get("type") != "FeatureCollection"
        or not isinstance(data.get("features"), list)
    ):
        raise AreaImportError(
            [
                _error(
                    "geojson",
                    "not_a_feature_collection",
                    "expected a GeoJSON FeatureCollection with features",
                )
            ]
        )
    errors: list[dict[str, str]] = []
    result: Boundaries = {}
    first_index: dict[str, int] = {}
    for i, feature in enumerate(data["features"]):
        where = f"features[{i}]"
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            errors.append(_error(where, "bad_feature", "not a GeoJSON Feature"))
            continue
        props = feature.get("properties")
        code = props.get("code") if isinstance(props, dict) else None
        if not isinstance(code, str) or not code.strip():
            errors.append(
                _error(
                    f"{where}.properties.code", "missing_code", "the feature has no properties.code"
                )
            )
            code = None
        elif not ANY_AREA_CODE.match(code.strip()):
            errors.append(
                _error(
                    f"{where}.properties.code",
                    "bad_code",
                    f"{code!r} is not a CBS area code (GM…, WK…, BU…)",
                )
            )
            code = None
        else:
            code = code.strip()
            if code in first_index:
                errors.append(
                    _error(
                        f"{where}.properties.code",
                        "duplicate_code",
                        f"{code} is already features[{first_index[code]}]",
                    )
                )
                code = None
            else:
                first_index[code] = i
        polygons = _parse_geometry(feature.get("geometry"), f"{where}.geometry", errors)
        if code is not None and polygons is not None:
            result[code] = polygons
    if errors:
        raise AreaImportError(errors)
    return result


def _parse_geometry(
    geometry: Any, where: str, errors: list[dict[str, str]]
) -> list[Polygon] | None:
    kind = geometry.get("type") if isinstance(geometry, dict) else None
    if kind not in ("Polygon", "MultiPolygon"):
        errors.append(
            _error(
                f"{where}.type",
                "unsupported_geometry",
                f"geometry type {kind!r}: only Polygon and MultiPolygon",
            )
        )
        return None
    coords = geometry.get("coordinates")
    parts = [coords] if kind == "Polygon" else coords
    if (
        not isinstance(parts, list)
        or not parts
        or not all(isinstance(p, list) and p for p in parts)
    ):
        errors.append(
            _error(
                f"{where}.coordinates",
                "bad_coordinates",
                f"a {kind} needs a non-empty list of rings",
            )
        )
        return None
    n_before = len(errors)
    polygons: list[Polygon] = []
    for p, rings in enumerate(parts):
        polygon: Polygon = []
        for r, ring in enumerate(rings):
            at = f"{where}.coordinates" + (f"[{p}]" if kind == "MultiPolygon" else "") + f"[{r}]"
            parsed = _parse_ring(ring, at, errors)
            if parsed is not None:
                polygon.append(parsed)
        polygons.append(polygon)
    return polygons if len(errors) == n_before else None


def _parse_ring(ring: Any, at: str, errors: list[dict[str, str]]) -> Ring | None:
    if not isinstance(ring, list):
        errors.append(_error(at, "bad_coordinates", "a ring must be a list of positions"))
        return None
    points: Ring = []
    for k, position in enumerate(ring):
        if not isinstance(position, list) or len(position) < 2:
            errors.append(_error(f"{at}[{k}]", "bad_coordinates", "a position must be [lon, lat]"))
            return None
        lon, lat = position[0], position[1]
        if not all(_is_number(v) for v in (lon, lat)):
            errors.append(
                _error(
                    f"{at}[{k}]",
                    "non_numeric_coordinate",
                    f"{position[:2]!r} is not a pair of finite numbers",
                )
            )
            return None
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            errors.append(
                _error(
                    f"{at}[{k}]",
                    "not_wgs84",
                    f"{position[:2]!r} is not WGS84 lon/lat (RD New metres?)",
                )
            )
            return None
        points.append((float(lon), float(lat)))
    if len(points) < 4 or points[0] != points[-1]:
        errors.append(
            _error(
                at, "bad_ring", "a ring must be closed (last position = first) with 4+ positions"
            )
        )
        return None
    return points


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def match_boundaries(
    records: Iterable[AreaRecord], boundaries: Boundaries, level: str = "buurt"
) -> list[dict[str, str]]:
    """Errors where the areas of ``level`` in a KWB file and the boundary file disagree."""
    codes = {r.code for r in records if r.level == level}
    shapes = {c for c in boundaries if LEVEL_CODE[level].match(c)}
    return [
        _error(f"{c}", "missing_boundary", f"{level} {c} has no boundary")
        for c in sorted(codes - shapes)
    ] + [
        _error(f"{c}", "unknown_area", f"boundary {c} is not a {level} in the KWB file")
        for c in sorted(shapes - codes)
    ]


# --- the areas_imported event and consistency ----------------------------------------------------


def margins_payload(records: list[AreaRecord]) -> dict[str, Any]:
    """The ``areas_imported`` payload (AreasImportedV1) for one municipality and year."""
    if not records:
        raise ValueError("no areas to publish")
    years = {r.year for r in records}
    municipalities = {r.municipality_code for r in records}
    if len(years) != 1 or len(municipalities) != 1:
        raise ValueError(
            f"one municipality and one year per event, not {sorted(municipalities)}"
            f" / {sorted(years)}"
        )
    return {
        "municipality_code": municipalities.pop(),
        "year": years.pop(),
        "areas": [
            {
                "code": r.code,
                "level": r.level,
                "name": r.name,
                "parent_code": r.parent_code,
                "population": r.population,
                "sex": {"man": r.sex.get("man"), "vrouw": r.sex.get("vrouw")},
                "age": {band: r.age.get(band) for band in AGE_BANDS},
            }
            for r in records
        ],
    }


def check_consistency(records: list[AreaRecord]) -> list[dict[str, Any]]:
    """Warnings for staff after an import: sums that CBS rounding cannot explain.

    - a wijk's population against the sum of its buurten (tolerance 5 per buurt);
    - the gemeente against the sum of its wijken, one-sided: residents without an address in a
      buurt are counted at gemeente level only, so the gemeente may exceed the sum, but the sum
      may exceed the gemeente by at most 5 per wijk;
    - male + female and the sum of the age bands against population (5 per summed part for a
      rounded wijk or buurt, exact for the unrounded gemeente);
    - a wijk without buurten.
    Checks with a missing count (CBS '.') are skipped. Each warning has field, code, message,
    expected (the total), actual (the sum) and tolerance.
    """
    warnings: list[dict[str, Any]] = []

    def warn(
        field: str, code: str, expected: int, actual: int, tolerance: int, message: str
    ) -> None:
        warnings.append(
            {
                "field": field,
                "code": code,
                "message": message,
                "expected": expected,
                "actual": actual,
                "tolerance": tolerance,
            }
        )

    children: dict[str, list[AreaRecord]] = {}
    for r in records:
        if r.parent_code is not None:
            children.setdefault(r.parent_code, []).append(r)

    for r in records:
        field = f"{r.code}: population"
        kids = children.get(r.code, [])
        if r.level == "wijk" and not kids:
            warnings.append(
                {
                    "field": field,
                    "code": "wijk_without_buurten",
                    "message": f"wijk {r.code} {r.name} has no buurten in the file",
                    "expected": None,
                    "actual": None,
                    "tolerance": None,
                }
            )
        if r.population is not None and kids and all(k.population is not None for k in kids):
            total = sum(k.population for k in kids if k.population is not None)
            tolerance = CBS_ROUNDING * len(kids)
            gap = total - r.population
            if r.level == "wijk" and abs(gap) > tolerance:
                warn(
                    field,
                    "buurten_sum_mismatch",
                    r.population,
                    total,
                    tolerance,
                    f"{r.code} {r.name}: population {r.population}, its {len(kids)} buurten "
                    f"add up to {total}; CBS rounding explains at most {tolerance}",
                )
            elif r.level == "gemeente" and gap > tolerance:
                warn(
                    field,
                    "wijken_sum_mismatch",
                    r.population,
                    total,
                    tolerance,
                    f"{r.code} {r.name}: population {r.population}, but its {len(kids)} "
                    f"wijken add up to {total}, more than rounding ({tolerance}) explains",
                )
        rounded = r.level != "gemeente"
        for what, parts in (("sex", r.sex), ("age", r.age)):
            if r.population is None or any(v is None for v in parts.values()):
                continue
            total = sum(v for v in parts.values() if v is not None)
            tolerance = CBS_ROUNDING * len(parts) if rounded else 0
            if abs(total - r.population) > tolerance:
                label = "male + female" if what == "sex" else "the age bands"
                warn(
                    f"{r.code}: {what}",
                    f"{what}_sum_mismatch",
                    r.population,
                    total,
                    tolerance,
                    f"{r.code} {r.name}: {label} add up to {total}, population is "
                    f"{r.population}; rounding explains at most {tolerance}",
                )
    return warnings


# --- the project's copy of the data ----------------------------------------------------------


def load_project_data(year: int = 2024) -> tuple[list[AreaRecord], AreaLocator]:
    """Records of data/areas/*_kwb<year>_areas.csv and a locator over the buurt boundaries.

    Uses the boundaries of the same year, or else the latest ones: the copy only has 2024
    boundaries, which fit 2023 too (CBS ind_wbi = 1 for every Utrecht row). The buurt codes of
    the figures and the boundaries must match exactly (AreaImportError otherwise).
    """
    csvs = sorted(DATA_DIR.glob(f"*_kwb{year}_areas.csv"))
    if len(csvs) != 1:
        raise FileNotFoundError(
            f"expected one *_kwb{year}_areas.csv in {DATA_DIR}, found {len(csvs)}"
        )
    prefix = csvs[0].name.removesuffix(f"_kwb{year}_areas.csv")  # e.g. utrecht_GM0344
    shapes = (
        sorted(DATA_DIR.glob(f"{prefix}_buurten_{year}.geojson"))
        or sorted(DATA_DIR.glob(f"{prefix}_buurten_*.geojson"))[-1:]
    )
    if not shapes:
        raise FileNotFoundError(f"no {prefix}_buurten_*.geojson in {DATA_DIR}")
    records = parse_kwb_csv(csvs[0].read_text(encoding="utf-8"))
    boundaries = parse_boundaries(shapes[-1].read_text(encoding="utf-8"))
    mismatch = match_boundaries(records, boundaries)
    if mismatch:
        raise AreaImportError(mismatch)
    return records, AreaLocator(boundaries)
