"""services/panel/areas.py and services/common/areas.py (the locator) against the real Utrecht
data (data/areas, CBS, CC BY 4.0) and bad input.

Point-in-polygon is checked against an independent winding-number implementation written here,
over every polygon without the index, so neither the grid nor the ray casting is trusted.
"""

import dataclasses
import json
import math
import random

import pytest

from services.common.areas import AreaLocator
from services.common.events import AGE_BANDS, EventValidationError, validate_payload
from services.panel.areas import (
    DATA_DIR,
    REQUIRED_COLUMNS,
    AreaImportError,
    check_consistency,
    load_project_data,
    margins_payload,
    match_boundaries,
    parse_boundaries,
    parse_kwb_csv,
)

BUURTEN_GEOJSON = (DATA_DIR / "utrecht_GM0344_buurten_2024.geojson").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def utrecht():
    return load_project_data(2024)


@pytest.fixture(scope="module")
def records(utrecht):
    return utrecht[0]


@pytest.fixture(scope="module")
def locator(utrecht):
    return utrecht[1]


@pytest.fixture(scope="module")
def boundaries():
    return parse_boundaries(BUURTEN_GEOJSON)


# --- an independent point-in-polygon: winding number, holes subtract ------------------------------


def winding(ring, x, y):
    """Winding number of a closed ring around (x, y) (Sunday's algorithm)."""
    w = 0
    for (x1, y1), (x2, y2) in zip(ring, ring[1:], strict=False):
        cross = (x2 - x1) * (y - y1) - (x - x1) * (y2 - y1)
        if y1 <= y < y2 and cross > 0:
            w += 1
        elif y2 <= y < y1 and cross < 0:
            w -= 1
    return w


def brute_force(boundaries, lat, lon):
    """Every code whose polygon contains the point, testing every polygon."""
    return sorted(
        code
        for code, polygons in boundaries.items()
        if any(
            winding(p[0], lon, lat) != 0 and not any(winding(h, lon, lat) for h in p[1:])
            for p in polygons
        )
    )


def border_distance(boundaries, lat, lon):
    """Distance in degrees from the point to the nearest edge of any polygon."""
    best = math.inf
    for polygons in boundaries.values():
        for polygon in polygons:
            for ring in polygon:
                for (x1, y1), (x2, y2) in zip(ring, ring[1:], strict=False):
                    dx, dy = x2 - x1, y2 - y1
                    t = ((lon - x1) * dx + (lat - y1) * dy) / (dx * dx + dy * dy)
                    t = max(0.0, min(1.0, t))
                    best = min(best, math.hypot(lon - x1 - t * dx, lat - y1 - t * dy))
    return best


# --- the real Utrecht figures --------------------------------------------------------------------


def test_utrecht_2024_has_one_gemeente_ten_wijken_and_111_buurten(records):
    assert len(records) == 122
    levels = [r.level for r in records]
    assert (levels.count("gemeente"), levels.count("wijk"), levels.count("buurt")) == (1, 10, 111)
    assert {(r.year, r.municipality_code) for r in records} == {(2024, "GM0344")}


def test_parent_links_nest_buurt_in_wijk_in_gemeente(records):
    by_code = {r.code: r for r in records}
    (gemeente,) = [r for r in records if r.level == "gemeente"]
    assert gemeente.code == "GM0344" and gemeente.parent_code is None
    for r in records:
        if r.level == "wijk":
            assert r.parent_code == "GM0344"
        elif r.level == "buurt":
            assert by_code[r.parent_code].level == "wijk"
            assert r.parent_code == "WK" + r.code[2:8]
    per_wijk = {
        w.code: sum(1 for r in records if r.parent_code == w.code)
        for w in records
        if w.level == "wijk"
    }
    assert sum(per_wijk.values()) == 111 and min(per_wijk.values()) >= 7
    assert per_wijk["WK034401"] == 11  # Wijk 01 West


def test_gemeente_has_sex_and_age_margins(records):
    gemeente = records[0]
    assert gemeente.name == "Utrecht"
    assert gemeente.population == 374238
    assert gemeente.sex == {"man": 182799, "vrouw": 191439}
    assert gemeente.age == {
        "0_14": 59098,
        "15_24": 58219,
        "25_44": 137446,
        "45_64": 79214,
        "65_plus": 40261,
    }
    assert gemeente.households == 193267
    assert list(gemeente.age) == list(AGE_BANDS)


def test_both_years_parse_with_the_same_codes():
    r2023, _ = load_project_data(2023)
    r2024, _ = load_project_data(2024)
    assert [r.code for r in r2023] == [r.code for r in r2024]
    assert r2023[0].population == 367947


@pytest.mark.parametrize("year", [2023, 2024])
def test_real_data_is_consistent_within_cbs_rounding(year):
    """No warnings. What rounding does produce (checked below): buurten vs wijk at most 15 apart,
    male + female vs population at most 10, age bands at most 15; the gemeente's own margins
    add up exactly; the gemeente exceeds its wijken by the residents without a buurt."""
    records, _ = load_project_data(year)
    assert check_consistency(records) == []
    pop = {r.code: r.population for r in records}
    wijken = [r for r in records if r.level == "wijk"]
    gaps = [
        sum(pop[b.code] for b in records if b.parent_code == w.code) - w.population for w in wijken
    ]
    assert max(abs(g) for g in gaps) == {2023: 15, 2024: 10}[year]
    assert all(g % 5 == 0 for g in gaps)
    rounded = [r for r in records if r.level != "gemeente"]
    assert max(abs(sum(r.sex.values()) - r.population) for r in rounded) == 10
    assert max(abs(sum(r.age.values()) - r.population) for r in rounded) == 15
    unlocated = records[0].population - sum(w.population for w in wijken)
    assert unlocated == {2023: 192, 2024: 23}[year]


def test_consistency_warns_beyond_rounding(records):
    wijk = next(r for r in records if r.code == "WK034401")  # 11 buurten: tolerance 55
    buurt = next(r for r in records if r.code == "BU03440111")
    gemeente = records[0]
    changed = {
        wijk.code: dataclasses.replace(wijk, population=wijk.population + 61),
        buurt.code: dataclasses.replace(
            buurt, sex={"man": buurt.sex["man"] + 20, "vrouw": buurt.sex["vrouw"]}
        ),
        gemeente.code: dataclasses.replace(
            gemeente, population=gemeente.population - 100, age={**gemeente.age, "65_plus": 0}
        ),
    }
    warnings = check_consistency([changed.get(r.code, r) for r in records])
    found = {
        (w["field"], w["code"]): (w["expected"], w["actual"], w["tolerance"]) for w in warnings
    }
    assert found == {
        ("WK034401: population", "buurten_sum_mismatch"): (29771, 29715, 55),
        # the raised population no longer matches the wijk's own margins either
        ("WK034401: sex", "sex_sum_mismatch"): (29771, 29705, 10),
        ("WK034401: age", "age_sum_mismatch"): (29771, 29705, 25),
        ("BU03440111: sex", "sex_sum_mismatch"): (
            buurt.population,
            sum(buurt.sex.values()) + 20,
            10,
        ),
        # the wijken (374215 + 61) exceed the lowered gemeente by 138 > 5 per wijk
        ("GM0344: population", "wijken_sum_mismatch"): (374138, 374276, 50),
        ("GM0344: sex", "sex_sum_mismatch"): (374138, 374238, 0),
        ("GM0344: age", "age_sum_mismatch"): (374138, 374238 - 40261, 0),
    }
    # within tolerance, or unknown counts: no warning. WK034401's buurten are 5 over already;
    # 40 more is 45, within 5 x 11.
    quiet = dataclasses.replace(
        buurt,
        population=buurt.population + 40,
        sex={**buurt.sex, "man": buurt.sex["man"] + 40},
        age={**buurt.age, "25_44": buurt.age["25_44"] + 40},
    )
    other = next(r for r in records if r.code == "BU03440211")
    unknown = dataclasses.replace(other, population=None)
    changed = {buurt.code: quiet, other.code: unknown}
    assert check_consistency([changed.get(r.code, r) for r in records]) == []


def test_margins_payload_validates_against_the_catalogue(records):
    payload = margins_payload(records)
    validate_payload("areas_imported", payload)
    assert payload["municipality_code"] == "GM0344" and payload["year"] == 2024
    assert len(payload["areas"]) == 122
    assert payload["areas"][0] == {
        "code": "GM0344",
        "level": "gemeente",
        "name": "Utrecht",
        "parent_code": None,
        "population": 374238,
        "sex": {"man": 182799, "vrouw": 191439},
        "age": {"0_14": 59098, "15_24": 58219, "25_44": 137446, "45_64": 79214, "65_plus": 40261},
    }
    json.dumps(payload)  # goes on the wire as is


def test_margins_payload_with_unknown_counts_still_validates(records):
    blank = dataclasses.replace(
        records[5], population=None, sex={"man": None, "vrouw": None}, age=dict.fromkeys(AGE_BANDS)
    )
    validate_payload("areas_imported", margins_payload([*records[:5], blank]))


def test_margins_payload_refuses_a_mix_and_the_catalogue_refuses_junk(records):
    with pytest.raises(ValueError):
        margins_payload([records[0], dataclasses.replace(records[1], year=2023)])
    with pytest.raises(ValueError):
        margins_payload([])
    bad = margins_payload(records[:2])
    bad["areas"][1]["age"]["66_plus"] = 3
    with pytest.raises(EventValidationError):
        validate_payload("areas_imported", bad)


# --- locating a point ----------------------------------------------------------------------------


LANDMARKS = [  # (lat, lon), buurt; each at least ~150 m from any generalised border
    ((52.0907, 5.1214), "BU03440611"),  # Domtoren: Domplein, Neude, Janskerkhof
    ((52.0863, 5.1790), "BU03440533"),  # UMC Utrecht: Utrecht Science Park
    ((52.1080, 5.0060), "BU03441013"),  # station Vleuten: Vleuten
]


@pytest.mark.parametrize(("point", "code"), LANDMARKS)
def test_locate_landmarks(locator, boundaries, point, code):
    assert border_distance(boundaries, *point) > 0.0015
    assert brute_force(boundaries, *point) == [code]
    assert locator.locate(*point) == code
    assert locator.contains(code, *point) and locator.covers(*point)


def test_locate_a_point_well_inside_every_tenth_buurt(locator, boundaries):
    """For a spread of buurten, the grid point of its box farthest from any border."""
    for code in sorted(boundaries)[::10]:
        (exterior, *_), *_ = boundaries[code]
        xs, ys = [x for x, _ in exterior], [y for _, y in exterior]
        grid = [
            (y0 + (max(ys) - y0) * j / 12, x0 + (max(xs) - x0) * i / 12)
            for x0 in [min(xs)]
            for y0 in [min(ys)]
            for i in range(1, 12)
            for j in range(1, 12)
        ]
        inside = [p for p in grid if brute_force(boundaries, *p) == [code]]
        lat, lon = max(inside, key=lambda p: border_distance(boundaries, *p))
        assert border_distance(boundaries, lat, lon) > 0.0005, code
        assert locator.locate(lat, lon) == code
        assert locator.contains(code, lat, lon)


def test_far_away_is_nowhere(locator):
    assert locator.locate(52.37, 4.90) is None  # Amsterdam
    assert not locator.covers(52.37, 4.90)
    assert not locator.contains("BU03440611", 52.37, 4.90)
    assert locator.locate(math.nan, 5.12) is None
    with pytest.raises(KeyError):
        locator.contains("BU99999999", 52.09, 5.12)


def test_index_agrees_with_brute_force_on_2000_random_points(locator, boundaries):
    rng = random.Random(344)
    x0, y0, x1, y1 = locator.bbox
    found = 0
    for _ in range(2000):
        lat, lon = rng.uniform(y0, y1), rng.uniform(x0, x1)
        expected = brute_force(boundaries, lat, lon)
        assert len(expected) <= 1  # buurten do not overlap
        assert locator.locate(lat, lon) == (expected[0] if expected else None), (lat, lon)
        assert locator.covers(lat, lon) == bool(expected)
        found += bool(expected)
    assert 800 < found < 1800  # the box is partly outside Utrecht: both branches are exercised


def test_wijk_boundaries_contain_their_buurten(records, locator):
    wijken = AreaLocator(
        parse_boundaries(
            (DATA_DIR / "utrecht_GM0344_wijken_2024.geojson").read_text(encoding="utf-8")
        )
    )
    parent = {r.code: r.parent_code for r in records}
    rng = random.Random(7)
    x0, y0, x1, y1 = locator.bbox
    for _ in range(300):
        lat, lon = rng.uniform(y0, y1), rng.uniform(x0, x1)
        buurt = locator.locate(lat, lon)
        if buurt is not None and wijken.locate(lat, lon) is not None:
            assert wijken.locate(lat, lon) == parent[buurt]


def square(x0, y0, x1, y1, clockwise=False):
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    return ring[::-1] if clockwise else ring


def feature(code, geometry):
    return {"type": "Feature", "properties": {"code": code}, "geometry": geometry}


def collection(*features):
    return json.dumps({"type": "FeatureCollection", "features": list(features)})


def test_holes_and_multipolygons():
    text = collection(
        # a donut: exterior 0..10, hole 4..6 (hole clockwise, as RFC 7946 wants)
        feature(
            "BU00010001",
            {
                "type": "Polygon",
                "coordinates": [square(0, 0, 10, 10), square(4, 4, 6, 6, clockwise=True)],
            },
        ),
        # the hole filled by another buurt, and a detached second part far away
        feature(
            "BU00010002",
            {
                "type": "MultiPolygon",
                "coordinates": [[square(4, 4, 6, 6)], [square(20, 20, 21, 21)]],
            },
        ),
    )
    boundaries = parse_boundaries(text)
    assert len(boundaries["BU00010001"]) == 1 and len(boundaries["BU00010001"][0]) == 2
    assert len(boundaries["BU00010002"]) == 2
    loc = AreaLocator(boundaries)
    assert loc.locate(lat=2, lon=2) == "BU00010001"
    assert loc.locate(lat=5, lon=5) == "BU00010002"  # in the hole
    assert not loc.contains("BU00010001", 5, 5)
    assert loc.locate(lat=20.5, lon=20.5) == "BU00010002"
    assert loc.locate(lat=15, lon=15) is None  # in the box, between the parts
    without_filler = AreaLocator({"BU00010001": boundaries["BU00010001"]})
    assert without_filler.locate(5, 5) is None and without_filler.locate(2, 2) == "BU00010001"
    # unclosed rings passed straight to the locator are closed for it
    assert AreaLocator({"BU00010003": [[[(0, 0), (1, 0), (1, 1), (0, 1)]]]}).locate(0.5, 0.5)


def test_boundaries_and_figures_match(records, boundaries):
    assert match_boundaries(records, boundaries) == []
    errors = match_boundaries(records[:-1], boundaries)
    assert [(e["field"], e["code"]) for e in errors] == [(records[-1].code, "unknown_area")]
    fewer = {c: p for c, p in boundaries.items() if c != "BU03440111"}
    errors = match_boundaries(records, fewer)
    assert [(e["field"], e["code"]) for e in errors] == [("BU03440111", "missing_boundary")]


# --- refusing bad KWB files ---------------------------------------------------------------------

COLUMNS = [*REQUIRED_COLUMNS, "district_code"]


def row(**values):
    base = dict.fromkeys(COLUMNS, "")
    base.update(
        year="2024",
        municipality_code="GM0344",
        population="100",
        male="50",
        female="50",
        age_0_14="20",
        age_15_24="20",
        age_25_44="20",
        age_45_64="20",
        age_65_plus="20",
        households="40",
    )
    base.update(values)
    return base


GOOD_ROWS = [  # lines 2..5
    row(
        level="gemeente",
        code="GM0344",
        name="Utrecht",
        population="200",
        male="100",
        female="100",
        age_0_14="40",
        age_15_24="40",
        age_25_44="40",
        age_45_64="40",
        age_65_plus="40",
    ),
    row(
        level="wijk",
        code="WK034401",
        name="Wijk 01 West",
        parent_code="GM0344",
        population="200",
        male="100",
        female="100",
        age_0_14="40",
        age_15_24="40",
        age_25_44="40",
        age_45_64="40",
        age_65_plus="40",
    ),
    row(level="buurt", code="BU03440111", name="Welgelegen", parent_code="WK034401"),
    row(level="buurt", code="BU03440112", name="Oog in Al", parent_code="WK034401", households=""),
]


def to_csv(rows, columns=COLUMNS):
    lines = [",".join(columns)] + [",".join(r.get(c, "") for c in columns) for r in rows]
    return "\n".join(lines) + "\n"


def with_change(line, **values):
    rows = [dict(r) for r in GOOD_ROWS]
    rows[line - 2].update(values)
    return to_csv(rows)


def refused(text):
    with pytest.raises(AreaImportError) as info:
        parse_kwb_csv(text)
    return [(e["field"], e["code"]) for e in info.value.errors]


def test_the_small_good_file_parses_with_empty_cells_as_none():
    records = parse_kwb_csv("\ufeff" + to_csv(GOOD_ROWS))
    assert [r.code for r in records] == ["GM0344", "WK034401", "BU03440111", "BU03440112"]
    assert records[3].households is None and records[2].households == 40
    assert records[2].sex == {"man": 50, "vrouw": 50}
    assert check_consistency(records) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (with_change(3, level="district"), [("line 3: level", "unknown_level")]),
        (
            with_change(3, code="WK03441"),  # so its buurten have no parent in the file either
            [
                ("line 3: code", "bad_code"),
                ("line 4: parent_code", "missing_parent"),
                ("line 5: parent_code", "missing_parent"),
            ],
        ),
        (
            with_change(4, code="WK034401"),  # a wijk code on a buurt row, also a duplicate
            [("line 4: code", "bad_code"), ("line 4: code", "duplicate_code")],
        ),
        (
            with_change(2, code="BU03440000"),
            [("line 2: code", "bad_code"), ("line 3: parent_code", "missing_parent")],
        ),
        (
            with_change(5, code="BU03630111", parent_code="WK036301"),
            [("line 5: code", "municipality_mismatch"), ("line 5: parent_code", "missing_parent")],
        ),
        (with_change(5, code="BU03440111"), [("line 5: code", "duplicate_code")]),
        (with_change(4, parent_code="WK034409"), [("line 4: parent_code", "missing_parent")]),
        (with_change(4, parent_code=""), [("line 4: parent_code", "missing_parent")]),
        (with_change(4, parent_code="GM0344"), [("line 4: parent_code", "bad_parent")]),
        (with_change(2, parent_code="GM0344"), [("line 2: parent_code", "bad_parent")]),
        (with_change(4, male="-5"), [("line 4: male", "negative_count")]),
        (with_change(4, age_25_44="12.5"), [("line 4: age_25_44", "not_an_integer")]),
        (with_change(4, population="."), [("line 4: population", "not_an_integer")]),
        (with_change(4, households="1_000"), [("line 4: households", "not_an_integer")]),
        (with_change(5, year="2023"), [("line 5: year", "multiple_years")]),
        (with_change(5, year="24"), [("line 5: year", "bad_year")]),
        (
            with_change(5, municipality_code="GM0363"),
            [
                ("line 5: code", "municipality_mismatch"),
                ("line 5: municipality_code", "multiple_municipalities"),
            ],
        ),
        (with_change(5, municipality_code="Utrecht"), [("line 5: municipality_code", "bad_code")]),
        (with_change(4, name=""), [("line 4: name", "required")]),
        (
            to_csv(GOOD_ROWS, [c for c in COLUMNS if c not in ("female", "age_65_plus")]),
            [("header: female", "missing_column"), ("header: age_65_plus", "missing_column")],
        ),
        (to_csv(GOOD_ROWS, [*COLUMNS, "male"]), [("header: male", "duplicate_column")]),
        (to_csv(GOOD_ROWS).replace("Oog in Al,", "Oog in Al,,", 1), [("line 5", "row_length")]),
        ("", [("header", "empty_file")]),
        (to_csv([]), [("line 2", "no_rows")]),
    ],
)
def test_bad_kwb_files_are_refused_with_field_and_code(text, expected):
    assert refused(text) == expected


def test_every_problem_is_reported_at_once():
    rows = [dict(r) for r in GOOD_ROWS]
    rows[1].update(level="stadsdeel")
    rows[2].update(male="-1", female="x")
    rows[3].update(year="2023", parent_code="WK034409")
    errors = refused(to_csv(rows))
    assert errors == [
        ("line 3: level", "unknown_level"),
        ("line 4: male", "negative_count"),
        ("line 4: female", "not_an_integer"),
        ("line 5: year", "multiple_years"),
        ("line 5: parent_code", "missing_parent"),
    ]
    with pytest.raises(AreaImportError) as info:
        parse_kwb_csv(to_csv(rows))
    assert all(e["message"] for e in info.value.errors)
    assert "5 problem(s)" in str(info.value)


# --- refusing bad boundary files -----------------------------------------------------------------


GOOD_POLYGON = {"type": "Polygon", "coordinates": [square(5.0, 52.0, 5.1, 52.1)]}


@pytest.mark.parametrize(
    ("features", "expected"),
    [
        (
            [{"type": "Feature", "properties": {"name": "Oog in Al"}, "geometry": GOOD_POLYGON}],
            [("features[0].properties.code", "missing_code")],
        ),
        (
            [{"type": "Feature", "properties": None, "geometry": GOOD_POLYGON}],
            [("features[0].properties.code", "missing_code")],
        ),
        ([feature("Oog in Al", GOOD_POLYGON)], [("features[0].properties.code", "bad_code")]),
        (
            [feature("BU03440111", GOOD_POLYGON), feature("BU03440111", GOOD_POLYGON)],
            [("features[1].properties.code", "duplicate_code")],
        ),
        (
            [
                feature(
                    "BU03440111",
                    {
                        "type": "Polygon",
                        "coordinates": [[[5.0, 52.0], [5.1, "52.0"], [5.1, 52.1], [5.0, 52.0]]],
                    },
                )
            ],
            [("features[0].geometry.coordinates[0][1]", "non_numeric_coordinate")],
        ),
        (
            [
                feature(
                    "BU03440111",
                    {
                        "type": "MultiPolygon",
                        "coordinates": [
                            [square(5.0, 52.0, 5.1, 52.1)],
                            [[[5.2, 52.0], [None, 52.0], [5.3, 52.1], [5.2, 52.0]]],
                        ],
                    },
                )
            ],
            [("features[0].geometry.coordinates[1][0][1]", "non_numeric_coordinate")],
        ),
        (
            [
                feature(
                    "BU03440111",
                    {
                        "type": "Polygon",
                        "coordinates": [[[5.0, 52.0], [True, 52.0], [5.1, 52.1], [5.0, 52.0]]],
                    },
                )
            ],
            [("features[0].geometry.coordinates[0][1]", "non_numeric_coordinate")],
        ),
        (
            [
                feature(
                    "BU03440111",
                    {"type": "Polygon", "coordinates": [square(136000, 455000, 137000, 456000)]},
                )
            ],  # RD New metres
            [("features[0].geometry.coordinates[0][0]", "not_wgs84")],
        ),
        (
            [
                feature(
                    "BU03440111",
                    {
                        "type": "Polygon",
                        "coordinates": [[[5.0, 52.0], [5.1, 52.0], [5.1, 52.1], [5.0, 52.1]]],
                    },
                )
            ],
            [("features[0].geometry.coordinates[0]", "bad_ring")],
        ),
        (
            [feature("BU03440111", {"type": "Polygon", "coordinates": [[5.0, 52.0]]})],
            [("features[0].geometry.coordinates[0][0]", "bad_coordinates")],
        ),
        (
            [feature("BU03440111", {"type": "Polygon", "coordinates": []})],
            [("features[0].geometry.coordinates", "bad_coordinates")],
        ),
        (
            [feature("BU03440111", {"type": "Point", "coordinates": [5.0, 52.0]})],
            [("features[0].geometry.type", "unsupported_geometry")],
        ),
        ([feature("BU03440111", None)], [("features[0].geometry.type", "unsupported_geometry")]),
        (["BU03440111"], [("features[0]", "bad_feature")]),
    ],
)
def test_bad_boundaries_are_refused_with_field_and_code(features, expected):
    with pytest.raises(AreaImportError) as info:
        parse_boundaries(collection(*features))
    assert [(e["field"], e["code"]) for e in info.value.errors] == expected


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("{not json", "invalid_json"),
        ('{"type": "Feature"}', "not_a_feature_collection"),
        ('{"type": "FeatureCollection", "features": {}}', "not_a_feature_collection"),
        (
            '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": '
            '{"code": "BU03440111"}, "geometry": {"type": "Polygon", "coordinates": '
            "[[[5.0, 52.0], [NaN, 52.0], [5.1, 52.1], [5.0, 52.0]]]}}]}",
            "non_numeric_coordinate",
        ),
    ],
)
def test_unreadable_geojson_is_refused(text, code):
    with pytest.raises(AreaImportError) as info:
        parse_boundaries(text)
    assert [e["code"] for e in info.value.errors] == [code]


def test_real_boundaries_parse(boundaries):
    assert len(boundaries) == 111 and all(c.startswith("BU0344") for c in boundaries)
    assert all(len(polygons) == 1 and len(polygons[0]) == 1 for polygons in boundaries.values())
