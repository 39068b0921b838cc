"""CBS areas as every service and the gateway see them: the codes and how they nest, and which
area contains a point.

Pure functions, standard library only. The panel service imports areas (``services/panel/
areas.py``: the KWB figures and the boundary files); the gateway checks that a location answer
lies inside the municipality with an ``AreaLocator`` over the boundaries panel gives it;
responses, polls and feedback read levels and parents from the codes.

CBS codes nest: BU0344NNMM lies in WK0344NN, which lies in GM0344 — the four digits after the
prefix are the municipality's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

LEVEL_CODE = {
    "gemeente": re.compile(r"^GM\d{4}$"),
    "wijk": re.compile(r"^WK\d{6}$"),
    "buurt": re.compile(r"^BU\d{8}$"),
}
ANY_AREA_CODE = re.compile(r"^(GM\d{4}|WK\d{6}|BU\d{8})$")
PARENT_LEVEL = {"wijk": "gemeente", "buurt": "wijk"}
_LEVEL_OF_PREFIX = {"GM": "gemeente", "WK": "wijk", "BU": "buurt", "RG": "regio"}

# A ring is a closed list of (lon, lat) positions; a polygon is [exterior, hole, hole, ...].
Ring = list[tuple[float, float]]
Polygon = list[Ring]
Boundaries = dict[str, list[Polygon]]


# --- codes -------------------------------------------------------------------------------------


def level_of(code: str) -> str:
    """gemeente, wijk, buurt or regio (a municipality's own set of buurten), from the code's
    prefix (KeyError for another prefix)."""
    return _LEVEL_OF_PREFIX[code[:2]]


def parent_of(code: str) -> str | None:
    """CBS codes nest: BU0344NNMM ⊂ WK0344NN ⊂ GM0344. A region (RG…) has no parent: it is a
    set of buurten beside the tree."""
    if code.startswith("BU"):
        return f"WK{code[2:8]}"
    if code.startswith("WK"):
        return f"GM{code[2:6]}"
    return None


def in_municipality(code: str, municipality_code: str) -> bool:
    """Whether a GM, WK, BU or RG (region) code carries the municipality's four digits."""
    return code[2:6] == municipality_code[2:6]


# --- point in polygon ------------------------------------------------------------------------


def _in_ring(x: float, y: float, ring: Ring) -> bool:
    """Ray casting (even-odd): count crossings of a ray from (x, y) towards +x."""
    inside = False
    x1, y1 = ring[-1]
    for x2, y2 in ring:  # with a closed ring the first edge is degenerate, which is harmless
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
        x1, y1 = x2, y2
    return inside


def point_in_polygon(polygon: Polygon, lon: float, lat: float) -> bool:
    """Inside the exterior ring and in none of the holes. Orientation does not matter."""
    if not polygon or not _in_ring(lon, lat, polygon[0]):
        return False
    return not any(_in_ring(lon, lat, hole) for hole in polygon[1:])


class AreaLocator:
    """Which area contains a point? Built from buurt (or any area) boundaries.

    The boundaries are CBS's *generalised* ones (about 100 m precision, small inner-city buurten
    several times off in area), so near a border the buurt found is a suggestion for the
    resident to confirm, never a fact to record unasked.

    Index: a uniform grid of cells, each listing the polygons whose bounding box touches it;
    chosen because buurten tile a municipality with similar sizes, so a grid gives a handful of
    candidates per lookup with a few lines of stdlib code (an R-tree gains nothing at ~100-1000
    polygons).
    """

    CELLS_PER_POLYGON = 4

    def __init__(self, boundaries: Boundaries):
        self._polygons: list[tuple[str, tuple[float, float, float, float], Polygon]] = []
        self._by_code: dict[str, list[Polygon]] = {}
        for code in sorted(boundaries):
            self._by_code[code] = []
            for polygon in boundaries[code]:
                rings = [_closed(ring) for ring in polygon if ring]
                if not rings:
                    continue
                xs = [x for x, _ in rings[0]]
                ys = [y for _, y in rings[0]]
                self._polygons.append((code, (min(xs), min(ys), max(xs), max(ys)), rings))
                self._by_code[code].append(rings)
        self._build_grid()

    def _build_grid(self) -> None:
        if not self._polygons:
            self.bbox = (0.0, 0.0, 0.0, 0.0)
            self._nx = self._ny = 0
            self._cells: list[list[int]] = []
            return
        x0 = min(b[0] for _, b, _ in self._polygons)
        y0 = min(b[1] for _, b, _ in self._polygons)
        x1 = max(b[2] for _, b, _ in self._polygons)
        y1 = max(b[3] for _, b, _ in self._polygons)
        self.bbox = (x0, y0, x1, y1)
        width, height = max(x1 - x0, 1e-9), max(y1 - y0, 1e-9)
        side = math.sqrt(width * height / (self.CELLS_PER_POLYGON * len(self._polygons)))
        self._nx = max(1, math.ceil(width / side))
        self._ny = max(1, math.ceil(height / side))
        self._cw, self._ch = width / self._nx, height / self._ny
        self._cells = [[] for _ in range(self._nx * self._ny)]
        for i, (_, (bx0, by0, bx1, by1), _) in enumerate(self._polygons):
            cx0, cy0 = self._cell_xy(bx0, by0)
            cx1, cy1 = self._cell_xy(bx1, by1)
            for cy in range(cy0, cy1 + 1):
                for cx in range(cx0, cx1 + 1):
                    self._cells[cy * self._nx + cx].append(i)

    def _cell_xy(self, x: float, y: float) -> tuple[int, int]:
        cx = min(self._nx - 1, max(0, int((x - self.bbox[0]) / self._cw)))
        cy = min(self._ny - 1, max(0, int((y - self.bbox[1]) / self._ch)))
        return cx, cy

    @property
    def codes(self) -> list[str]:
        return list(self._by_code)

    @property
    def grid_shape(self) -> tuple[int, int]:
        """(columns, rows) of the index grid."""
        return self._nx, self._ny

    def locate(self, lat: float, lon: float) -> str | None:
        """The code of the area containing (lat, lon), or None outside every area.

        If areas overlap (CBS buurten do not) the lowest code wins. A point exactly on a shared
        border goes to one of the two, by the ray-casting convention.
        """
        if not self._cells or not (math.isfinite(lat) and math.isfinite(lon)):
            return None
        x0, y0, x1, y1 = self.bbox
        if not (x0 <= lon <= x1 and y0 <= lat <= y1):
            return None
        cx, cy = self._cell_xy(lon, lat)
        for i in self._cells[cy * self._nx + cx]:
            code, (bx0, by0, bx1, by1), polygon = self._polygons[i]
            if bx0 <= lon <= bx1 and by0 <= lat <= by1 and point_in_polygon(polygon, lon, lat):
                return code
        return None

    def contains(self, code: str, lat: float, lon: float) -> bool:
        """Whether area ``code`` contains (lat, lon). KeyError for a code it does not know."""
        if code not in self._by_code:
            raise KeyError(f"no boundary for {code}")
        if not (math.isfinite(lat) and math.isfinite(lon)):
            return False
        return any(point_in_polygon(p, lon, lat) for p in self._by_code[code])

    def covers(self, lat: float, lon: float) -> bool:
        """Inside any area: with buurten, "inside the municipality" for location questions."""
        return self.locate(lat, lon) is not None


def _closed(ring: Iterable[tuple[float, float]]) -> Ring:
    points = [(float(x), float(y)) for x, y in ring]
    if points and points[0] != points[-1]:
        points.append(points[0])
    return points
