"""Weighting of respondents to CBS population margins: raking, trimming, Kish n, Wilson.

Pure functions, standard library only. The method, with formulas and a worked example, is
described for municipal researchers in docs/methods.md; this module is its reference.

A *cell* is a stratum ``(age_band, sex)`` of one area (a wijk). ``age_band`` is one of
``AGE_BANDS`` or unknown (``None``, or ``"?"`` as the aggregate tables store it); ``sex`` is one of
``SEXES`` or unknown (``None`` / ``"?"``). Margins are one area's CBS figures as in the
``areas_imported`` event: ``{"age": {band: n}, "sex": {"man": n, "vrouw": n}}``, where a value
may be ``None`` (CBS ``.``) and a missing key counts as ``None``.

The 15+ rule: panel members are 15 or older, so the ``0_14`` age margin is dropped and the age
targets are the shares of the four 15+ bands in the 15+ population. CBS publishes sex for all
ages only (no sex × age at wijk level), so the sex targets are the man/vrouw shares of the whole
population. With the usual ~51% boys among under-15s, the man share of the 15+ population is at
most 0.6 percentage point below the all-ages share in Utrecht's wijken (KWB 2024).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.common.events import AGE_BANDS, SEXES

Cell = tuple[str | None, str | None]

UNKNOWN = "?"  # how the aggregate tables store an unknown age band or sex
RAKED_AGE_BANDS: tuple[str, ...] = tuple(b for b in AGE_BANDS if b != "0_14")
RAKED_SEXES: tuple[str, ...] = ("man", "vrouw")  # the categories CBS publishes
DEFAULT_TRIM: tuple[float, float] = (0.2, 5.0)
TRIM_ROUNDS = 5  # trim-and-rake rounds of the fallback when the bounds cannot be met
Z95 = 1.959964  # two-sided 95% normal quantile

_WEIGHT_FLOOR = 1e-12  # numeric guard only; reached only when the margins cannot be met
_BOUND_SLACK = 1e-9  # relative float slack when checking trimming bounds


@dataclass(frozen=True)
class RakeResult:
    """Weights for one area's respondents and how they were obtained.

    ``weights`` maps every cell with at least one respondent to the weight of each respondent in
    it; weights average 1 over respondents (``sum(count * weight) == n``). One respondent with
    weight w stands for ``w * population_scale`` residents aged 15+.
    """

    weights: dict[Cell, float]
    iterations: int  # raking passes (an age step and a sex step each), plus trimming steps
    converged: bool  # max_margin_error < tolerance for the weights returned
    max_margin_error: float  # max |weighted share / target share - 1| over raked categories
    trimmed: bool  # a raked weight broke a bound, so the weights were re-solved within them
    unmatched: tuple[tuple[str, str], ...]  # (dimension, category): population, no respondents
    method: str  # "raking" or "unweighted"
    n: int = 0  # respondents
    effective_n: float = 0.0  # Kish
    dimensions: tuple[str, ...] = ()  # dimensions actually raked: "age", "sex"
    collapsed: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (dimension, merged categories)
    population: int | None = None  # 15+ population of the area, when all four bands are known
    population_scale: float | None = None  # population / n
    notes: tuple[str, ...] = ()  # plain-language remarks for the results page


@dataclass(frozen=True)
class _Dimension:
    name: str
    groups: tuple[tuple[str, ...], ...]  # raked groups (a group is one category or a merge)
    shares: tuple[float, ...]  # population share of each group, summing to 1
    index: tuple[int | None, ...]  # per respondent cell: its group, or None (not raked here)


# --------------------------------------------------------------------------- input checks


def _age_of(cell: Cell) -> str | None:
    age = cell[0]
    if age is None or age == UNKNOWN:
        return None
    if age not in AGE_BANDS:
        raise ValueError(f"unknown age band {age!r} in cell {cell!r}")
    return age if age in RAKED_AGE_BANDS else None  # 0_14 cannot be raked on the 15+ margin


def _sex_of(cell: Cell) -> str | None:
    sex = cell[1]
    if sex is None or sex == UNKNOWN:
        return None
    if sex not in SEXES:
        raise ValueError(f"unknown sex {sex!r} in cell {cell!r}")
    return sex if sex in RAKED_SEXES else None  # anders / onbekend: CBS has no margin for them


def _count(value: Any, cell: Cell) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"count for {cell!r} must be a finite number, not {value!r}")
    if value < 0 or value != int(value):
        raise ValueError(f"count for {cell!r} must be a whole number >= 0, not {value!r}")
    return int(value)


def _population(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"population for {where} must be a number or None, not {value!r}")
    if value < 0:
        raise ValueError(f"population for {where} must be >= 0, not {value!r}")
    return float(value)


# --------------------------------------------------------------------------- margins


def _dimension(
    name: str,
    order: Sequence[str],
    margin: Any,
    categories: list[str | None],
    counts: list[int],
) -> tuple[_Dimension | None, list[tuple[str, str]], list[tuple[str, tuple[str, ...]]], list[str]]:
    """Raking groups and target shares for one dimension, or None when it cannot be raked.

    Rules, in this order:
    1. a category whose population is None (or absent) has no target: its respondents are not
       raked on this dimension (like respondents whose category is unknown);
    2. a category with zero population but with respondents is merged with its neighbour in
       ``order`` (the one before it; the first category merges with the next), repeatedly,
       until every group with respondents has a positive population;
    3. a group with population but no respondents cannot be matched: it is left out, the other
       groups are raked to their shares among themselves, and it is reported as unmatched;
    4. fewer than two groups left means there is nothing to rake on: the dimension is dropped.
    """
    notes: list[str] = []
    if not isinstance(margin, Mapping):
        return None, [], [], [f"no {name} margin: not weighted on {name}"]
    pops = {c: _population(margin.get(c), f"{name} {c}") for c in order}
    resp = {c: 0 for c in order}
    for cat, k in zip(categories, counts, strict=True):
        if cat is not None:
            resp[cat] += k
    for c in order:
        if pops[c] is None and resp[c] > 0:
            # Without the number: a note stands beside published figures, and a group of 1..k-1
            # respondents must not be told there (issue 15: every figure through suppression).
            notes.append(
                f"no CBS figure for {name} {c}: its respondents are not weighted on {name}"
            )
    groups = [[c] for c in order if pops[c] is not None]
    if not groups:
        return None, [], [], [*notes, f"no CBS figures for {name}: not weighted on {name}"]

    def pop(g: list[str]) -> float:
        return sum(pops[c] or 0.0 for c in g)

    def got(g: list[str]) -> int:
        return sum(resp[c] for c in g)

    while True:
        i = next((i for i, g in enumerate(groups) if pop(g) == 0 and got(g) > 0), None)
        if i is None:
            break
        if len(groups) == 1:
            notes.append(f"no population in the {name} categories that have respondents")
            return None, [], [], notes
        j = i - 1 if i > 0 else i + 1
        lo, hi = min(i, j), max(i, j)
        groups[lo] = groups[lo] + groups[hi]
        del groups[hi]
    collapsed = [(name, tuple(g)) for g in groups if len(g) > 1 and got(g) > 0]
    for _, merged in collapsed:
        notes.append(
            f"{name} {' + '.join(merged)} merged: a category had respondents but no population"
        )
    active = [g for g in groups if pop(g) > 0 and got(g) > 0]
    unmatched = [(name, "+".join(g)) for g in groups if pop(g) > 0 and got(g) == 0]
    for _, cat in unmatched:
        notes.append(f"no respondents in {name} {cat}: the other {name} groups are weighted")
    if len(active) < 2:
        notes.append(f"fewer than two {name} groups with respondents: not weighted on {name}")
        return None, unmatched, collapsed, notes
    total = sum(pop(g) for g in active)
    member = {c: k for k, g in enumerate(active) for c in g}
    dim = _Dimension(
        name=name,
        groups=tuple(tuple(g) for g in active),
        shares=tuple(pop(g) / total for g in active),
        index=tuple(None if c is None else member.get(c) for c in categories),
    )
    return dim, unmatched, collapsed, notes


# --------------------------------------------------------------------------- raking core


def _group_totals(w: list[float], counts: list[int], dim: _Dimension) -> list[float]:
    totals = [0.0] * len(dim.groups)
    for g, k, wi in zip(dim.index, counts, w, strict=True):
        if g is not None:
            totals[g] += k * wi
    return totals


def _unknown_mass(w: list[float], counts: list[int], dim: _Dimension) -> float:
    """Total weight of the respondents not raked on this dimension."""
    return math.fsum(k * wi for g, k, wi in zip(dim.index, counts, w, strict=True) if g is None)


def _margin_error(
    w: list[float], counts: list[int], dims: list[_Dimension], keep: list[float] | None = None
) -> float:
    """max |W_g / W_d / s_g - 1| (see ``rake``); with ``keep``, also max |U_d / keep_d - 1|
    for the total weight U_d of the respondents unknown on d."""
    err = 0.0
    for j, dim in enumerate(dims):
        totals = _group_totals(w, counts, dim)
        known = sum(totals)
        for t, s in zip(totals, dim.shares, strict=True):
            err = max(err, abs(t / known / s - 1.0))
        if keep is not None and keep[j] > 0:
            err = max(err, abs(_unknown_mass(w, counts, dim) / keep[j] - 1.0))
    return err


def _project(w: list[float], counts: list[int], dim: _Dimension, keep: float | None = None) -> None:
    """One raking step: the I-projection (closest in Kullback-Leibler terms) onto 'the weighted
    shares of this dimension's groups, among respondents whose group is known, equal the targets'.

    Group g is multiplied by f_g = (s_g / W_g) * prod_h (W_h / s_h)^(s_h), so that the weighted
    shares become s_g and the share-weighted geometric mean of the factors is 1; respondents not
    raked on this dimension keep their weight (factor 1).

    With ``keep`` (used after trimming) the step is classic IPF on fixed totals instead: the
    respondents unknown on this dimension are scaled to total ``keep`` and group g to
    s_g * (n - keep).
    """
    totals = _group_totals(w, counts, dim)
    if keep is None:
        log_k = sum(
            s * (math.log(t) - math.log(s)) for t, s in zip(totals, dim.shares, strict=True)
        )
        factors = [
            math.exp(math.log(s) - math.log(t) + log_k)
            for t, s in zip(totals, dim.shares, strict=True)
        ]
        unknown = 1.0
    else:
        known = sum(counts) - keep
        factors = [s * known / t for t, s in zip(totals, dim.shares, strict=True)]
        mass = _unknown_mass(w, counts, dim)
        unknown = keep / mass if mass > 0 else 1.0
    for i, g in enumerate(dim.index):
        w[i] = max(w[i] * (unknown if g is None else factors[g]), _WEIGHT_FLOOR)


def _normalise(w: list[float], counts: list[int]) -> None:
    scale = sum(counts) / math.fsum(k * wi for k, wi in zip(counts, w, strict=True))
    for i in range(len(w)):
        w[i] *= scale


def _rake_from(
    base: list[float],
    counts: list[int],
    dims: list[_Dimension],
    max_iter: int,
    tol: float,
    keep: list[float] | None = None,
) -> tuple[list[float], int, float]:
    w = list(base)
    _normalise(w, counts)
    err = _margin_error(w, counts, dims, keep)
    iterations = 0
    while err >= tol and iterations < max_iter:
        iterations += 1
        for j, dim in enumerate(dims):
            _project(w, counts, dim, None if keep is None else keep[j])
        _normalise(w, counts)
        err = _margin_error(w, counts, dims, keep)
    return w, iterations, err


def _within(w: list[float], low: float, high: float) -> bool:
    return all(low * (1 - _BOUND_SLACK) <= x <= high * (1 + _BOUND_SLACK) for x in w)


def _cap(w: list[float], counts: list[int], low: float, high: float) -> list[float]:
    """Weights clip(c * w, low, high) with c chosen so that they average 1 again.

    The mean of clip(c * w) is continuous, piecewise linear and non-decreasing in c, from
    ``low`` to ``high``; with low <= 1 <= high it reaches 1 on one linear piece, found among the
    breakpoints low/w_i and high/w_i and solved exactly there.
    """
    n = sum(counts)

    def total(c: float) -> float:
        return math.fsum(k * min(high, max(low, c * x)) for k, x in zip(counts, w, strict=True))

    points = sorted({b / x for x in w for b in (low, high)})
    c_lo = c = points[0]
    for c in points:
        if total(c) >= n:
            break
        c_lo = c
    if c_lo == c or total(c) == n:
        c_star = c
    else:
        probe = (c_lo + c) / 2  # inside the linear piece between two breakpoints
        fixed = inner = 0.0
        for k, x in zip(counts, w, strict=True):
            if probe * x <= low:
                fixed += k * low
            elif probe * x >= high:
                fixed += k * high
            else:
                inner += k * x
        c_star = (n - fixed) / inner if inner > 0 else c
    return [min(high, max(low, c_star * x)) for x in w]


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """a x = b by Gaussian elimination with partial pivoting (a is small and symmetric PD)."""
    size = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for col in range(size):
        piv = max(range(col, size), key=lambda r: abs(m[r][col]))
        m[col], m[piv] = m[piv], m[col]
        if m[col][col] == 0:
            m[col][col] = 1e-300
        for r in range(col + 1, size):
            f = m[r][col] / m[col][col]
            if f:
                for c in range(col, size + 1):
                    m[r][c] -= f * m[col][c]
    x = [0.0] * size
    for r in range(size - 1, -1, -1):
        x[r] = (m[r][size] - sum(m[r][c] * x[c] for c in range(r + 1, size))) / m[r][r]
    return x


def _features(n_cells: int, dims: list[_Dimension]) -> list[list[float]]:
    """x_i = (1, [1(i in g) - s_g * 1(i known on d)] for every dimension d and all but one
    group g of d): the constraints sum_i n_i w_i x_i = (n, 0, ..., 0) say "weights average 1"
    and "weighted shares among the known equal the targets"."""
    rows = []
    for i in range(n_cells):
        x = [1.0]
        for d in dims:
            g = d.index[i]
            x += [
                0.0 if g is None else float(g == k) - d.shares[k] for k in range(len(d.groups) - 1)
            ]
        rows.append(x)
    return rows


def _bounded_rake(
    w_raked: list[float],
    counts: list[int],
    dims: list[_Dimension],
    keep: list[float] | None,
    low: float,
    high: float,
    max_iter: int,
    tol: float,
) -> tuple[list[float], int, float]:
    """Raking with the weights held inside [low, high]: w_i = clip(exp(x_i . lam), low, high).

    lam solves the dual of "minimise sum n_i (w_i log w_i - w_i + 1) subject to the margins,
    mean 1, (with ``keep``) the total weight of respondents unknown on each dimension as raking
    left it, and low <= w_i <= high" — the bounded version of the problem raking solves (with
    low = 0, high = inf and no ``keep`` it is that problem). Newton's method with a backtracking
    line search on the (concave) dual, started from the raking weights, whose log-weights are
    exactly x_i . lam for some lam. Returns early when progress stalls (no solution exists).
    """
    x = _features(len(counts), dims)
    t = [float(sum(counts))] + [0.0] * (len(x[0]) - 1)
    # Respondents with an unknown category on a dimension keep the total weight raking gave
    # them (``keep``), so that trimming does not shift weight between the known and the unknown.
    columns: list[list[float]] = []
    for d, mass in zip(dims, keep or [0.0] * len(dims), strict=True):
        col = [1.0 if g is None else 0.0 for g in d.index]
        if mass > 0 and col not in columns:
            columns.append(col)
            t.append(mass)
    x = [xi + [col[i] for col in columns] for i, xi in enumerate(x)]
    size = len(t)

    def weights_at(lam: list[float]) -> tuple[list[float], list[float]]:
        u = [max(-700.0, min(700.0, sum(a * b for a, b in zip(xi, lam, strict=True)))) for xi in x]
        return u, [min(high, max(low, math.exp(ui))) for ui in u]

    def dual(lam: list[float]) -> float:
        u, w = weights_at(lam)
        return math.fsum(
            k * (wi * math.log(wi) - wi + 1 - ui * wi)
            for k, ui, wi in zip(counts, u, w, strict=True)
        ) + sum(a * b for a, b in zip(lam, t, strict=True))

    # Warm start: least squares of log w on x (exact for raking weights).
    gram = [
        [math.fsum(k * xi[r] * xi[c] for k, xi in zip(counts, x, strict=True)) for c in range(size)]
        for r in range(size)
    ]
    rhs = [
        math.fsum(k * xi[r] * math.log(wi) for k, xi, wi in zip(counts, x, w_raked, strict=True))
        for r in range(size)
    ]
    ridge = 1e-12 * max(gram[r][r] for r in range(size))
    lam = _solve(
        [[g + (ridge if r == c else 0.0) for c, g in enumerate(row)] for r, row in enumerate(gram)],
        rhs,
    )
    steps = best_step = 0
    best = math.inf
    while True:
        u, w = weights_at(lam)
        err = _margin_error(w, counts, dims, keep)
        mean_err = abs(math.fsum(k * wi for k, wi in zip(counts, w, strict=True)) / t[0] - 1)
        if (err < tol and mean_err < tol) or steps >= max_iter:
            return w, steps, err
        if err < 0.99 * best:
            best, best_step = err, steps
        elif steps - best_step >= 8:  # stalled: the bounds and margins cannot both hold
            return w, steps, err
        steps += 1
        grad = [
            t[r] - math.fsum(k * xi[r] * wi for k, xi, wi in zip(counts, x, w, strict=True))
            for r in range(size)
        ]
        # Curvature of the dual: cells strictly inside the bounds; clipped cells count a little
        # so that the system stays solvable (any positive definite matrix gives an ascent step).
        hess = [[0.0] * size for _ in range(size)]
        for k, xi, ui, wi in zip(counts, x, u, w, strict=True):
            h = k * wi * (1.0 if low < math.exp(ui) < high else 1e-6)
            for r in range(size):
                for c in range(size):
                    hess[r][c] += h * xi[r] * xi[c]
        ridge = 1e-12 * max(hess[r][r] for r in range(size))
        for r in range(size):
            hess[r][r] += ridge
        delta = _solve(hess, grad)
        slope = sum(a * b for a, b in zip(grad, delta, strict=True))
        q0 = dual(lam)
        alpha = 1.0
        while True:
            trial = [a + alpha * b for a, b in zip(lam, delta, strict=True)]
            if dual(trial) >= q0 + 1e-4 * alpha * slope:
                break
            alpha /= 2
            if alpha < 1e-9:  # no progress: the bounds and margins cannot both hold
                return w, steps, err
        lam = trial


# --------------------------------------------------------------------------- public API


def rake(
    cells: Mapping[Cell, int],
    margins: Mapping[str, Any] | None,
    *,
    max_iter: int = 50,
    tolerance: float = 1e-6,
    trim: tuple[float, float] | None = DEFAULT_TRIM,
) -> RakeResult:
    """Rake one area's respondents to its CBS margins for age band (15+) and sex.

    **Targets.** Age: the shares of 15_24, 25_44, 45_64 and 65_plus in the 15+ population
    (0_14 dropped, the rest renormalised). Sex: the man/vrouw shares (CBS, all ages).

    **Raking.** Weights start at 1. One pass (one "iteration") is an age step then a sex step;
    each step multiplies the weights of each group of the dimension by a factor so that, among
    respondents whose category on that dimension is known, the weighted shares equal the targets
    (see ``_project``). After the pass the weights are rescaled to average 1. In sparse tables
    raking can crawl: if it has not converged after ``max_iter`` passes, Newton's method solves
    the same problem from there (at most ``max_iter`` steps; see ``_bounded_rake``, unbounded).

    **Convergence rule.** After each pass, e = max over raked dimensions d and groups g of
    |W_g / W_d / s_g - 1|, where W_g is the weighted count of group g, W_d the weighted count of
    respondents whose category on d is known and s_g the target share. Raking stops when
    e < ``tolerance`` (checked before the first pass too) or after ``max_iter`` passes (and
    steps).
    ``converged`` says whether the weights returned meet e < ``tolerance``;
    ``max_margin_error`` is their e.

    **Unknown age or sex.** Respondents whose sex is anders, onbekend or unknown, or whose age is
    unknown (or 0_14), have no CBS target on that dimension: they are raked on the dimensions
    they have and get factor 1 on the other. Because every step's factors have a share-weighted
    geometric mean of 1, "factor 1" is neutral: the result is the minimum-discrimination (KL)
    solution, of the form w = c * A(age) * B(sex) with A = B = 1 for a missing category. So
    without trimming, a respondent of unknown sex in band a gets exactly
    w(a, man)^s_man * w(a, vrouw)^s_vrouw, and one with unknown age and sex gets c.

    **Empty or missing margins.** See ``_dimension``: None categories are not raked; a zero
    population with respondents is merged with its neighbour band (for sex: man and vrouw merge,
    i.e. no sex weighting); a group with population but no respondents is left out and reported
    in ``unmatched``; a dimension with fewer than two groups left is not raked. With no usable
    dimension (margins missing): all weights 1, ``method="unweighted"``.

    **Trimming.** With ``trim=(low, high)`` (0 < low <= 1 <= high; None disables it), weights
    must lie in [low, high] times the mean (the mean is 1). When a raked weight falls outside,
    the raking is redone with the bounds: weights w = clip(c * A(age) * B(sex), low, high), with
    the factors chosen so that the margins still hold and the respondents unknown on a dimension
    keep the total weight raking gave them (so A and B for a missing category are now factors of
    their own). That is where "cap the weights that break a bound, rake again, repeat" is
    heading: weights that would break a bound sit on it, the others are raked, the margins
    hold. It is computed by Newton's method on the dual problem (a few steps, at most
    ``max_iter``), see ``_bounded_rake``. When no such weights exist (too few respondents in a
    group to reach its share without a weight above the bound), the better of that attempt and
    ``TRIM_ROUNDS`` plain cap-then-rake rounds is kept, capped once more: the bounds always hold,
    ``converged`` is False, and ``max_margin_error`` and a note tell how far the margins are off.
    """
    _check_options(max_iter, tolerance, trim)
    keys, counts = _respondent_cells(cells)
    n = sum(counts)
    margins = margins if isinstance(margins, Mapping) else {}
    population = _population_15_plus(margins.get("age"))
    if n == 0:
        return RakeResult(
            weights={},
            iterations=0,
            converged=True,
            max_margin_error=0.0,
            trimmed=False,
            unmatched=(),
            method="unweighted",
            population=population,
            notes=("no respondents",),
        )
    scale = population / n if population is not None else None
    notes: list[str] = []
    if any(c[0] == "0_14" for c in keys):
        notes.append("respondents in band 0_14 are not weighted on age (the panel is 15+)")
    dims, unmatched, collapsed, dim_notes = _raked_dimensions(keys, counts, margins)
    notes += dim_notes
    if not dims:
        return RakeResult(
            weights=dict.fromkeys(keys, 1.0),
            iterations=0,
            converged=True,
            max_margin_error=0.0,
            trimmed=False,
            unmatched=tuple(unmatched),
            method="unweighted",
            n=n,
            effective_n=float(n),
            collapsed=tuple(collapsed),
            population=population,
            population_scale=scale,
            notes=tuple(notes),
        )

    w, iterations, err = _rake_to_margins(counts, dims, max_iter, tolerance)
    trimmed = False
    if trim is not None and not _within(w, *trim):
        trimmed = True
        w, steps, err = _trim_to_bounds(w, counts, dims, trim, max_iter, tolerance)
        iterations += steps
        if err >= tolerance:
            notes.append(
                f"the margins cannot be met with weights in [{trim[0]:g}, {trim[1]:g}] x mean: "
                f"they are off by up to {err:.1%}"
            )
    return RakeResult(
        weights=dict(zip(keys, w, strict=True)),
        iterations=iterations,
        converged=err < tolerance,
        max_margin_error=err,
        trimmed=trimmed,
        unmatched=tuple(unmatched),
        method="raking",
        n=n,
        effective_n=kish_effective_n(zip(w, counts, strict=True)),
        dimensions=tuple(d.name for d in dims),
        collapsed=tuple(collapsed),
        population=population,
        population_scale=scale,
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------- rake's phases


def _check_options(max_iter: int, tolerance: float, trim: tuple[float, float] | None) -> None:
    if not isinstance(max_iter, int) or max_iter < 0:
        raise ValueError("max_iter must be an integer >= 0")
    if not (isinstance(tolerance, int | float) and tolerance >= 0):
        raise ValueError("tolerance must be >= 0")
    if trim is not None:
        low, high = trim
        if not (0 < low <= 1 <= high and math.isfinite(high)):
            raise ValueError(f"trim bounds must satisfy 0 < low <= 1 <= high, not {trim!r}")


def _respondent_cells(cells: Mapping[Cell, int]) -> tuple[list[Cell], list[int]]:
    """The cells with respondents and their counts, in input order; every cell is checked."""
    keys: list[Cell] = []
    counts: list[int] = []
    for cell, value in cells.items():
        if not (isinstance(cell, tuple) and len(cell) == 2):
            raise ValueError(f"a cell is (age_band, sex), not {cell!r}")
        k = _count(value, cell)
        _age_of(cell)  # validates
        _sex_of(cell)
        if k > 0:
            keys.append(cell)
            counts.append(k)
    return keys, counts


def _population_15_plus(age_margin: Any) -> int | None:
    """The area's 15+ population, when CBS gives all four 15+ bands (checked even so)."""
    if not isinstance(age_margin, Mapping):
        return None
    pops15 = [_population(age_margin.get(b), f"age {b}") for b in RAKED_AGE_BANDS]
    if any(p is None for p in pops15):
        return None
    return int(sum(p for p in pops15 if p is not None))


def _raked_dimensions(
    keys: list[Cell], counts: list[int], margins: Mapping[str, Any]
) -> tuple[list[_Dimension], list[tuple[str, str]], list[tuple[str, tuple[str, ...]]], list[str]]:
    """Age, then sex, as ``_dimension`` makes them: those that can be raked, what is unmatched,
    what was merged, and the notes."""
    dims: list[_Dimension] = []
    unmatched: list[tuple[str, str]] = []
    collapsed: list[tuple[str, tuple[str, ...]]] = []
    notes: list[str] = []
    for name, order, margin, of in (
        ("age", RAKED_AGE_BANDS, margins.get("age"), _age_of),
        ("sex", RAKED_SEXES, margins.get("sex"), _sex_of),
    ):
        dim, unm, col, dim_notes = _dimension(name, order, margin, [of(c) for c in keys], counts)
        if dim is not None:
            dims.append(dim)
        unmatched += unm
        collapsed += col
        notes += dim_notes
    return dims, unmatched, collapsed, notes


def _rake_to_margins(
    counts: list[int], dims: list[_Dimension], max_iter: int, tolerance: float
) -> tuple[list[float], int, float]:
    """Raking from weights 1; where it crawls (sparse tables), Newton's method finishes the
    same problem, and is kept if it got closer. (weights, passes + steps, margin error)"""
    w, iterations, err = _rake_from([1.0] * len(counts), counts, dims, max_iter, tolerance)
    if err >= tolerance:
        finished, steps, finished_err = _bounded_rake(
            w, counts, dims, None, 0.0, math.inf, max_iter, tolerance
        )
        iterations += steps
        _normalise(finished, counts)
        finished_err = _margin_error(finished, counts, dims)
        if finished_err < err and all(0 < x < math.inf for x in finished):
            w, err = finished, finished_err
    return w, iterations, err


def _trim_to_bounds(
    raked: list[float],
    counts: list[int],
    dims: list[_Dimension],
    trim: tuple[float, float],
    max_iter: int,
    tolerance: float,
) -> tuple[list[float], int, float]:
    """Raking redone with the weights inside ``trim`` (see ``rake``, **Trimming**): first with
    the respondents of unknown age or sex keeping the weight raking gave them, then with that
    weight free, then the plain cap-and-rake compromise, keeping the best. (weights, steps,
    margin error on the margins alone)"""
    keep = [_unknown_mass(raked, counts, d) for d in dims]
    w, iterations, err = _bounded_rake(raked, counts, dims, keep, *trim, max_iter, tolerance)
    w = _cap(w, counts, *trim)  # exact mean 1 inside the bounds (a no-op once solved)
    _normalise(w, counts)
    err = _margin_error(w, counts, dims, keep)
    if err >= tolerance and any(mass > 0 for mass in keep):
        # Respondents of unknown age or sex kept the total weight raking gave them; with
        # that weight free (they have no margin to meet) an exact fit within the bounds
        # may exist where the kept one has none.
        free, steps, _ = _bounded_rake(raked, counts, dims, None, *trim, max_iter, tolerance)
        iterations += steps
        free = _cap(free, counts, *trim)
        _normalise(free, counts)
        if _margin_error(free, counts, dims) < _margin_error(w, counts, dims):
            w = free
            keep = [_unknown_mass(w, counts, d) for d in dims]
            err = _margin_error(w, counts, dims, keep)
    if err >= tolerance:
        # No weights within the bounds meet the margins: take the better of this and the
        # plain trim-and-rake compromise.
        alt, steps, alt_err = _cap_and_rake(raked, counts, dims, keep, trim, max_iter, tolerance)
        iterations += steps
        if alt_err < err:
            w = alt
    return w, iterations, _margin_error(w, counts, dims)


def _cap_and_rake(
    raked: list[float],
    counts: list[int],
    dims: list[_Dimension],
    keep: list[float],
    trim: tuple[float, float],
    max_iter: int,
    tolerance: float,
) -> tuple[list[float], int, float]:
    """``TRIM_ROUNDS`` rounds of "cap the weights, rake again", capped once more at the end.
    (weights, raking passes, margin error with ``keep``)"""
    alt = raked
    iterations = 0
    for _ in range(TRIM_ROUNDS):
        alt = _cap(alt, counts, *trim)
        alt, steps, _err = _rake_from(alt, counts, dims, max_iter, tolerance, keep)
        iterations += steps
    alt = _cap(alt, counts, *trim)
    _normalise(alt, counts)
    return alt, iterations, _margin_error(alt, counts, dims, keep)


def kish_effective_n(weights_with_counts: Iterable[tuple[float, float]]) -> float:
    """Kish's effective sample size (sum w)^2 / sum w^2 over respondents.

    Takes (weight, number of respondents with that weight) pairs, e.g.
    ``((w, cells[c]) for c, w in result.weights.items())``. 0.0 when there is nobody.
    """
    s1 = s2 = 0.0
    for w, k in weights_with_counts:
        s1 += k * w
        s2 += k * w * w
    return s1 * s1 / s2 if s2 > 0 else 0.0


def wilson_interval(p: float, n_eff: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion p observed on an effective sample size n_eff.

    (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n), with n = n_eff (may be fractional).
    n_eff <= 0 carries no information: the interval is the whole range (0.0, 1.0).
    """
    if not (isinstance(p, int | float) and 0.0 <= p <= 1.0):
        raise ValueError(f"p must be in [0, 1], not {p!r}")
    if not (isinstance(n_eff, int | float) and not math.isnan(n_eff)):
        raise ValueError(f"n_eff must be a number, not {n_eff!r}")
    if n_eff <= 0:
        return (0.0, 1.0)
    z2n = z * z / n_eff
    centre = (p + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(p * (1 - p) / n_eff + z2n / (4 * n_eff))
    low = 0.0 if p == 0 else max(0.0, centre - half)
    high = 1.0 if p == 1 else min(1.0, centre + half)
    return (low, high)


@dataclass(frozen=True)
class OptionShare:
    """One answer option: unweighted and weighted percentage, 95% Wilson interval (percent)."""

    option: Hashable
    count: int  # respondents who chose it (unweighted)
    percent: float | None  # count / n * 100
    weighted_percent: float | None  # sum(count * w) / sum(base * w) * 100
    ci_low: float | None  # Wilson on the weighted proportion and Kish effective n
    ci_high: float | None


@dataclass(frozen=True)
class Shares:
    n: int  # respondents to the question (unweighted base)
    effective_n: float  # Kish, over the base
    options: tuple[OptionShare, ...]


def weighted_share(
    counts: Mapping[tuple[Cell, Hashable], int],
    weights: Mapping[Cell, float],
    *,
    base: Mapping[Cell, int] | None = None,
    options: Sequence[Hashable] | None = None,
    z: float = Z95,
) -> Shares:
    """Weighted and unweighted percentage per option, from counts per (cell, option).

    ``weights`` are per-respondent cell weights (``RakeResult.weights``). ``base`` is the number
    of respondents per cell who answered the question; by default the sum of the counts per cell,
    which is right for single-choice questions (pass it for multiple choice, where a respondent
    counts under several options). ``options`` lists options to show even with zero count, in
    that order; others follow in the order first seen. No small-cell suppression here.
    """
    per_cell: dict[Cell, int] = {}
    per_option: dict[Hashable, int] = {}
    weighted: dict[Hashable, float] = {}
    for opt in options or ():
        per_option.setdefault(opt, 0)
        weighted.setdefault(opt, 0.0)
    for (cell, opt), value in counts.items():
        k = _count(value, cell)
        if k == 0:
            per_option.setdefault(opt, 0)
            weighted.setdefault(opt, 0.0)
            continue
        if cell not in weights:
            raise ValueError(f"no weight for cell {cell!r}")
        per_cell[cell] = per_cell.get(cell, 0) + k
        per_option[opt] = per_option.get(opt, 0) + k
        weighted[opt] = weighted.get(opt, 0.0) + k * weights[cell]
    if base is None:
        base_cells = per_cell
    else:
        base_cells = {cell: _count(k, cell) for cell, k in base.items() if k}
        for cell in base_cells:
            if cell not in weights:
                raise ValueError(f"no weight for cell {cell!r}")
    n = sum(base_cells.values())
    w_total = math.fsum(k * weights[c] for c, k in base_cells.items())
    n_eff = kish_effective_n((weights[c], k) for c, k in base_cells.items())
    rows = []
    for opt, k in per_option.items():
        if n == 0 or w_total <= 0:
            rows.append(OptionShare(opt, k, None, None, None, None))
            continue
        p = min(1.0, weighted[opt] / w_total)
        lo, hi = wilson_interval(p, n_eff, z)
        rows.append(OptionShare(opt, k, 100.0 * k / n, 100.0 * p, 100.0 * lo, 100.0 * hi))
    return Shares(n=n, effective_n=n_eff, options=tuple(rows))
