"""Charts and the buurt map for the staff dashboard, as SVG made on the server (no JavaScript,
no inline style: presentation attributes only, which the CSP allows). Every chart has a title
and stands beside an HTML table with the same figures (screen readers, print); the SVG itself
is ``role="img"`` named by its caption.

    bar_chart(rows, ...)     horizontal bars with 95% intervals; hidden rows hatched
    buurt_map(...)           the buurten shaded by a percentage; hidden buurten hatched
    audience_map(...)        the buurten in a poll's audience filled, the others light grey,
                             each wijk's name over its buurten (MapGroup)
    trend_chart(points, ...) one value per wave with its 95% interval; hidden waves hatched
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

TEXT = "#0b0c0c"
MUTED = "#505a5f"
BAR = "#1f4e79"
GRID = "#b1b4b6"
NO_DATA = "#f3f2f1"
CHOSEN = "#1f4e79"  # in the audience: 3:1 and more against NO_DATA and the white borders
# Sequential classes of 20 percentage points (ColorBrewer Blues, colour-blind safe); the text
# colour is never drawn on them (labels sit outside the shapes).
CLASSES = (
    (0, 20, "#eff3ff"),
    (20, 40, "#bdd7e7"),
    (40, 60, "#6baed6"),
    (60, 80, "#3182bd"),
    (80, 100.01, "#08519c"),
)
HATCH_ID = "bp-hatch"


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None  # percentage (or any value up to ``maximum``); None: hidden or none
    low: float | None = None
    high: float | None = None
    hidden: bool = False  # suppressed: hatched, with the word for it
    reference: float | None = None  # e.g. the unweighted percentage, a tick on the bar


@dataclass(frozen=True)
class Point:
    label: str  # the wave, under the axis
    value: float | None  # percentage; None: hidden
    low: float | None = None
    high: float | None = None
    hidden: bool = False  # suppressed: a hatched column with the word for it


@dataclass(frozen=True)
class MapGroup:
    """A wijk on a buurt map: its ``label`` drawn over its buurten (``members``, buurt codes),
    with ``tooltip`` as its title; the text carries ``data-wijk-code`` (app.js: a click ticks
    the whole wijk in the audience list)."""

    code: str
    label: str
    tooltip: str
    members: Sequence[str]


def _short(text: str, length: int = 34) -> str:
    return text if len(text) <= length else text[: length - 1].rstrip() + "…"


def _number(value: float, decimals: int = 0) -> str:
    return f"{value:.{decimals}f}".replace(".", ",")


def hatch_pattern(pattern_id: str = HATCH_ID) -> str:
    return (
        f'<pattern id="{pattern_id}" width="8" height="8" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)">'
        f'<rect width="8" height="8" fill="#ffffff"/><rect width="3" height="8" fill="{MUTED}"/>'
        "</pattern>"
    )


def bar_chart(
    rows: Sequence[Bar],
    *,
    title: str,
    hidden_word: str,
    none_word: str,
    maximum: float = 100.0,
    unit: str = "%",
    chart_id: str = "chart",
) -> Markup:
    """Horizontal bars, one per row, with the 95% interval as a whisker and the reference value
    (unweighted) as a tick. A hidden row is a hatched bar with ``hidden_word``."""
    label_w, bar_w, value_w, row_h, top = 230, 300, 160, 30, 24
    width = label_w + bar_w + value_w
    height = top + row_h * max(len(rows), 1) + 8
    pattern = f"{chart_id}-hatch"
    out = [
        f'<svg class="bp-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-labelledby="{chart_id}-title" '
        f'font-family="system-ui, sans-serif" font-size="14">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f"<defs>{hatch_pattern(pattern)}</defs>",
    ]
    for tick in (0, 25, 50, 75, 100):
        x = label_w + bar_w * tick / 100
        out.append(
            f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{height - 8}" '
            f'stroke="{GRID}" stroke-width="1"/>'
            f'<text x="{x:.1f}" y="{top - 10}" text-anchor="middle" fill="{MUTED}" '
            f'font-size="12">{_number(maximum * tick / 100)}{escape(unit)}</text>'
        )
    for i, row in enumerate(rows):
        y = top + i * row_h
        mid = y + row_h / 2
        out.append(
            f'<text x="{label_w - 8}" y="{mid + 5:.1f}" text-anchor="end" fill="{TEXT}">'
            f"<title>{escape(row.label)}</title>{escape(_short(row.label))}</text>"
        )
        if row.hidden:
            out.append(
                f'<rect x="{label_w}" y="{y + 6}" width="{bar_w}" height="{row_h - 12}" '
                f'fill="url(#{pattern})" stroke="{MUTED}"/>'
                f'<text x="{label_w + bar_w + 8}" y="{mid + 5:.1f}" fill="{TEXT}">'
                f"{escape(hidden_word)}</text>"
            )
            continue
        if row.value is None:
            out.append(
                f'<text x="{label_w + bar_w + 8}" y="{mid + 5:.1f}" fill="{TEXT}">'
                f"{escape(none_word)}</text>"
            )
            continue
        w = bar_w * max(0.0, min(row.value, maximum)) / maximum
        out.append(
            f'<rect x="{label_w}" y="{y + 6}" width="{w:.1f}" height="{row_h - 12}" fill="{BAR}"/>'
        )
        if row.low is not None and row.high is not None:
            x1 = label_w + bar_w * max(0.0, row.low) / maximum
            x2 = label_w + bar_w * min(maximum, row.high) / maximum
            out.append(
                f'<line x1="{x1:.1f}" y1="{mid:.1f}" x2="{x2:.1f}" y2="{mid:.1f}" stroke="{TEXT}" '
                f'stroke-width="2"/><line x1="{x1:.1f}" y1="{mid - 7:.1f}" x2="{x1:.1f}" '
                f'y2="{mid + 7:.1f}" stroke="{TEXT}" stroke-width="2"/><line x1="{x2:.1f}" '
                f'y1="{mid - 7:.1f}" x2="{x2:.1f}" y2="{mid + 7:.1f}" stroke="{TEXT}" '
                'stroke-width="2"/>'
            )
        if row.reference is not None:
            xr = label_w + bar_w * max(0.0, min(row.reference, maximum)) / maximum
            out.append(f'<path d="M{xr:.1f} {y + 2} l-5 -0 l5 7 l5 -7 z" fill="{MUTED}"/>')
        out.append(
            f'<text x="{label_w + bar_w + 8}" y="{mid + 5:.1f}" fill="{TEXT}">'
            f"{_number(row.value)}{escape(unit)}</text>"
        )
    out.append("</svg>")
    return Markup("".join(out))  # noqa: S704 - every text in it went through escape()


def class_of(value: float) -> str:
    for low, high, colour in CLASSES:
        if low <= value < high:
            return colour
    return CLASSES[-1][2]


def _rings(geometry: Any) -> Iterable[Sequence[Sequence[float]]]:
    """The rings of a MultiPolygon's coordinates (or a Polygon's)."""
    if not geometry:
        return
    first = geometry[0]
    if first and isinstance(first[0][0], (int, float)):  # a Polygon: [ring, ...]
        yield from geometry
        return
    for polygon in geometry:
        yield from polygon


Ring = Sequence[tuple[float, float]]


def _edges(ring: Ring) -> Iterable[tuple[tuple[float, float], tuple[float, float]]]:
    return zip(ring, [*ring[1:], *ring[:1]], strict=True)


def _ring_area_centroid(ring: Ring) -> tuple[float, float, float]:
    """A ring's area (unsigned) and centroid (shoelace); a degenerate ring: its first point."""
    twice, cx, cy = 0.0, 0.0, 0.0
    for (x0, y0), (x1, y1) in _edges(ring):
        cross = x0 * y1 - x1 * y0
        twice += cross
        cx += (x0 + x1) * cross
        cy += (y0 + y1) * cross
    if abs(twice) < 1e-9:
        return 0.0, ring[0][0], ring[0][1]
    return abs(twice) / 2, cx / (3 * twice), cy / (3 * twice)


def _crossings(shape: Sequence[Ring], y: float) -> list[float]:
    """Where the horizontal line at ``y`` crosses the shape's rings, left to right."""
    return sorted(
        x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        for ring in shape
        for (x0, y0), (x1, y1) in _edges(ring)
        if (y0 > y) != (y1 > y)
    )


def _widest_inside(shapes: Sequence[Sequence[Ring]], y: float) -> tuple[float, float] | None:
    """The middle of the widest stretch of the line at ``y`` inside one of the shapes."""
    best: tuple[float, float] | None = None
    for shape in shapes:
        xs = _crossings(shape, y)
        for a, b in zip(xs[::2], xs[1::2], strict=False):
            if best is None or b - a > best[1] - best[0]:
                best = (a, b)
    return ((best[0] + best[1]) / 2, y) if best else None


def label_point(shapes: Sequence[Sequence[Ring]]) -> tuple[float, float] | None:
    """Where a group of shapes (each a buurt's rings, in map coordinates) gets its label: their
    area-weighted centroid when it falls inside one of them (even-odd, as the paths are
    filled); else, as a U-shaped wijk's centroid lies outside it, the middle of the widest
    stretch inside them on the centroid's height, or on the largest ring's."""
    parts = [(*_ring_area_centroid(ring), shape) for shape in shapes for ring in shape if ring]
    if not parts:
        return None
    total = sum(part[0] for part in parts)
    largest = max(parts, key=lambda part: part[0])
    if total <= 0:
        return largest[1], largest[2]
    y = sum(part[0] * part[2] for part in parts) / total
    centre = (sum(part[0] * part[1] for part in parts) / total, y)
    if any(sum(1 for x in _crossings(shape, y) if x < centre[0]) % 2 for shape in shapes):
        return centre  # an odd number of edges to its left: inside
    return (
        _widest_inside(shapes, y)
        or _widest_inside([largest[3]], largest[2])
        or (largest[1], largest[2])
    )


def buurt_map(
    boundaries: Mapping[str, Any],
    shading: Mapping[str, Mapping[str, Any]],
    *,
    title: str,
    map_id: str = "map",
    width: int = 640,
    fills: Mapping[str, str] | None = None,
    data_codes: bool = False,
    groups: Sequence[MapGroup] = (),
) -> Markup:
    """The buurten as paths, each filled by ``shading[code]``: ``{"state": "shown", "value":
    percentage}``, ``{"state": "hidden"}`` (hatched) or anything else (no figure: light grey);
    ``"label"`` is its tooltip. ``groups`` (the wijken) are drawn over them as names, dark
    with a white halo (readable on every fill). Longitude is scaled by cos(latitude) around
    the centre, enough for one municipality."""
    points = [pt for geometry in boundaries.values() for ring in _rings(geometry) for pt in ring]
    if not points:
        return Markup("")
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    west, east, south, north = min(lons), max(lons), min(lats), max(lats)
    scale_x = math.cos(math.radians((south + north) / 2))
    span_x = (east - west) * scale_x or 1e-9
    span_y = (north - south) or 1e-9
    pad = 4
    k = (width - 2 * pad) / span_x
    height = round(span_y * k + 2 * pad)
    pattern = f"{map_id}-hatch"

    def project(pt: Sequence[float]) -> tuple[float, float]:
        return pad + (pt[0] - west) * scale_x * k, pad + (north - pt[1]) * k

    def xy(pt: Sequence[float]) -> str:
        x, y = project(pt)
        return f"{x:.1f} {y:.1f}"

    out = [
        f'<svg class="bp-map-svg" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} '
        f'{height}" width="{width}" height="{height}" role="img" '
        f'aria-labelledby="{map_id}-title">',
        f'<title id="{map_id}-title">{escape(title)}</title>',
        f"<defs>{hatch_pattern(pattern)}</defs>",
    ]
    for code in sorted(boundaries):
        shade = shading.get(code, {})
        state = shade.get("state")
        if fills and isinstance(state, str) and state in fills:
            fill = fills[state]
        elif state == "shown" and shade.get("value") is not None:
            fill = class_of(float(shade["value"]))
        elif state == "hidden":
            fill = f"url(#{pattern})"
        else:
            fill = NO_DATA
        d = " ".join(
            "M" + " L".join(xy(pt) for pt in ring) + " Z" for ring in _rings(boundaries[code])
        )
        code_attr = f' data-code="{escape(code)}"' if data_codes else ""
        out.append(
            f'<path{code_attr} d="{d}" fill="{fill}" fill-rule="evenodd" stroke="#ffffff" '
            f'stroke-width="1"><title>{escape(shade.get("label", code))}</title></path>'
        )
    font = 13
    for group in groups:
        shapes = [
            [[project(pt) for pt in ring] for ring in _rings(boundaries[code])]
            for code in group.members
            if code in boundaries
        ]
        point = label_point(shapes)
        if point is None:
            continue
        # Kept inside the map (a guess at the text's width: bold, about 0.6 em a letter).
        half = 0.33 * font * len(group.label)
        x = min(max(point[0], half), width - half) if 2 * half < width else width / 2
        y = min(max(point[1], font), height - font / 2)
        out.append(
            f'<text class="bp-map-label" data-wijk-code="{escape(group.code)}" x="{x:.1f}" '
            f'y="{y:.1f}" text-anchor="middle" dominant-baseline="middle" font-size="{font}" '
            f'font-weight="700" fill="{TEXT}" stroke="#ffffff" stroke-width="3" '
            f'stroke-linejoin="round" paint-order="stroke">'
            f"<title>{escape(group.tooltip)}</title>{escape(group.label)}</text>"
        )
    out.append("</svg>")
    return Markup("".join(out))  # noqa: S704 - every text in it went through escape()


def audience_map(
    boundaries: Mapping[str, Any],
    chosen: set[str],
    labels: Mapping[str, str],
    *,
    title: str,
    map_id: str = "map-audience",
    width: int = 640,
    groups: Sequence[MapGroup] = (),
) -> Markup:
    """The buurten as paths, those in ``chosen`` filled dark, the others light grey; each path
    carries ``data-code`` (app.js ticks that buurt's checkbox in the list on a click: the map
    is a way to use the list, which works alone) and ``labels[code]`` as its tooltip; the
    wijken in ``groups`` are named over their buurten (a click on a name ticks the wijk)."""
    shading = {
        code: {"state": "chosen" if code in chosen else "other", "label": labels.get(code, code)}
        for code in boundaries
    }
    return buurt_map(
        boundaries,
        shading,
        title=title,
        map_id=map_id,
        width=width,
        fills={"chosen": CHOSEN, "other": NO_DATA},
        data_codes=True,
        groups=groups,
    )


def swatch(fill: str, pattern_id: str) -> Markup:
    """A legend's sample of a fill (decorative: the legend's text says what it means)."""
    defs = f"<defs>{hatch_pattern(pattern_id)}</defs>" if fill == "hatch" else ""
    paint = f"url(#{pattern_id})" if fill == "hatch" else escape(fill)
    return Markup(  # noqa: S704 - fixed markup; the fill is escaped
        '<svg class="bp-swatch" xmlns="http://www.w3.org/2000/svg" width="24" height="16" '
        f'viewBox="0 0 24 16" aria-hidden="true" focusable="false">{defs}'
        f'<rect x="0.5" y="0.5" width="23" height="15" fill="{paint}" stroke="{MUTED}"/></svg>'
    )


def trend_chart(
    points: Sequence[Point],
    *,
    title: str,
    hidden_word: str,
    unit: str = "%",
    chart_id: str = "trend",
) -> Markup:
    """One column per wave: the value as a dot with its 95% interval as a vertical whisker,
    consecutive shown values joined by a line; a hidden wave is a hatched column with
    ``hidden_word``. The vertical axis runs from 0 to the next 10 above the highest interval
    (at most 100), so that small shares stay readable."""
    left, right, top, bottom, column = 48, 16, 16, 40, 110
    width = left + right + column * max(len(points), 1)
    plot_h = 200
    height = top + plot_h + bottom
    highest = max([p.high or p.value or 0 for p in points if not p.hidden] or [0])
    maximum = min(100.0, max(10.0, math.ceil((highest + 1) / 10) * 10))
    pattern = f"{chart_id}-hatch"

    def y(value: float) -> float:
        return top + plot_h * (1 - max(0.0, min(value, maximum)) / maximum)

    out = [
        f'<svg class="bp-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} '
        f'{height}" width="{width}" height="{height}" role="img" '
        f'aria-labelledby="{chart_id}-title" font-family="system-ui, sans-serif" font-size="14">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f"<defs>{hatch_pattern(pattern)}</defs>",
    ]
    for i in range(5):
        tick = maximum * i / 4
        out.append(
            f'<line x1="{left}" y1="{y(tick):.1f}" x2="{width - right}" y2="{y(tick):.1f}" '
            f'stroke="{GRID}" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" fill="{MUTED}" '
            f'font-size="12">{_number(tick)}{escape(unit)}</text>'
        )
    previous: tuple[float, float] | None = None
    for i, p in enumerate(points):
        x = left + column * i + column / 2
        out.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 24}" text-anchor="middle" fill="{TEXT}">'
            f"{escape(_short(p.label, 14))}</text>"
        )
        if p.hidden or p.value is None:
            out.append(
                f'<rect x="{x - 20:.1f}" y="{top}" width="40" height="{plot_h}" '
                f'fill="url(#{pattern})" stroke="{MUTED}"/>'
                f'<text x="{x:.1f}" y="{top + plot_h / 2:.1f}" text-anchor="middle" '
                f'fill="{TEXT}" stroke="#ffffff" stroke-width="4" paint-order="stroke">'
                f"{escape(hidden_word)}</text>"
            )
            previous = None
            continue
        here = (x, y(p.value))
        if previous is not None:
            out.append(
                f'<line x1="{previous[0]:.1f}" y1="{previous[1]:.1f}" x2="{here[0]:.1f}" '
                f'y2="{here[1]:.1f}" stroke="{MUTED}" stroke-width="2" stroke-dasharray="4 3"/>'
            )
        if p.low is not None and p.high is not None:
            y1, y2 = y(p.low), y(p.high)
            out.append(
                f'<line x1="{x:.1f}" y1="{y1:.1f}" x2="{x:.1f}" y2="{y2:.1f}" stroke="{TEXT}" '
                f'stroke-width="2"/><line x1="{x - 7:.1f}" y1="{y1:.1f}" x2="{x + 7:.1f}" '
                f'y2="{y1:.1f}" stroke="{TEXT}" stroke-width="2"/><line x1="{x - 7:.1f}" '
                f'y1="{y2:.1f}" x2="{x + 7:.1f}" y2="{y2:.1f}" stroke="{TEXT}" stroke-width="2"/>'
            )
        out.append(
            f'<circle cx="{here[0]:.1f}" cy="{here[1]:.1f}" r="6" fill="{BAR}"/>'
            f'<text x="{x + 12:.1f}" y="{here[1] - 8:.1f}" fill="{TEXT}">'
            f"{_number(p.value, 1)}{escape(unit)}</text>"
        )
        previous = here
    out.append("</svg>")
    return Markup("".join(out))  # noqa: S704 - every text in it went through escape()
