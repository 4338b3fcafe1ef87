"""The general route: iterated one-dimensional quadrature of E[f(u) g(v)].

Both integrals are split at kinks and at zero, and graded around narrow features (steep smooth
terms; near ``|rho| = 1`` the smoothed image of a kink of sigma(v) in the outer variable, see
:mod:`ntksym.reference.features`); the inner error estimate is carried through the outer one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import mpmath

from ntksym.reference.features import (
    GRADE_BELOW,
    PERIODS_PER_PIECE,
    Feature,
    graded_points,
    split_periods,
)

__all__ = ["gauss_expect_1d", "general_dual", "oscillation_beyond_reach"]


mp = mpmath.mp


#: Finest trapezoid level tried before falling back to tanh-sinh (step 2^-level).
MAX_TRAPEZOID_LEVEL = 6
#: Feature length (in standard deviations) below which nodes are placed by a sinh map.
SINH_MAP_BELOW = mpmath.mpf(1) / 4


#: Most radians of an oscillation on one piece of a kinked inner integral (whose pieces
#: are not cut by period): [-8, -4] at degree 8 resolves about 16 periods.
INNER_RADIANS = 32 * math.pi
#: Most outer pieces cut by period (each about 190 outer nodes, each an inner integral).
MAX_PERIOD_PIECES = 2000

#: Split points (in standard deviations) of every Gauss-Legendre integral over the line.
_SCALES = (-8, -4, -2, 2, 4, 8)
#: Largest mpmath.quad degree (None: mpmath's default); lowered only to test the failure path.
QUAD_MAXDEGREE: int | None = None


_NODE_CACHE: dict[tuple[int, int, int], tuple[list[Any], list[Any]]] = {}


def _tail_bound(tol: Any) -> int:
    """Integer half-width Z with exp(-Z^2/2) below tol / 100."""
    digits = -float(mpmath.log10(tol)) + 2
    return int(math.ceil(math.sqrt(2 * math.log(10) * digits)))


def _level_nodes(level: int, Z: int) -> tuple[list[Any], list[Any]]:
    """Nodes new at ``level`` (step 2^-level) on [-Z, Z] and their N(0,1) densities."""
    key = (mp.prec, level, Z)
    if key not in _NODE_CACHE:
        denom = 2**level
        ks = [k for k in range(-Z * denom, Z * denom + 1) if level == 0 or k % 2]
        nodes = [mpmath.mpf(k) / denom for k in ks]
        norm = 1 / mpmath.sqrt(2 * mpmath.pi)
        weights = [mpmath.exp(-z * z / 2) * norm for z in nodes]
        _NODE_CACHE[key] = (nodes, weights)
    return _NODE_CACHE[key]


def _level_error(results: list[Any], scale: Any) -> Any:
    """Error of the last trapezoid result, from the last three (mpmath's tanh-sinh heuristic)."""
    if len(results) < 3:
        return mpmath.inf
    d1, d2 = abs(results[-1] - results[-2]), abs(results[-1] - results[-3])
    floor = scale * mpmath.eps * 8
    if d1 <= floor:
        return floor
    if d2 == 0:
        return d1
    e1, e2 = mpmath.log(d1 / scale, 10), mpmath.log(d2 / scale, 10)
    if e2 >= 0:
        return d1
    return max(d1**2 / scale if d1 < scale else d1, scale * mpmath.power(10, e1**2 / e2), floor)


class _Tails(Exception):
    """The integrand is not negligible at the ends of the truncated range."""


def _trapezoid(
    F: Callable[[Any], tuple[Any, Any]],
    tol: Any,
    scale: Any = 1,
    center: Any = 0,
    atol: Any = 0,
) -> tuple[Any, Any, Any] | None:
    """Integrate F(z) * phi(z) over the real line (phi the N(0,1) density).

    ``F`` returns (value, extra_error); extra errors (from inner integrals) are
    integrated with the same weights and added to the estimate. ``F`` is
    assumed to vary on the length ``scale`` around ``center`` (e.g. a sigmoid
    of ``(z - center) / scale``): for ``scale < SINH_MAP_BELOW`` the rule runs
    in ``t`` with ``z = center + scale * sinh(t)``, which puts the nodes where
    they are needed and keeps the integrand analytic in a strip. The range is
    truncated where the Gaussian is below ``tol``, and widened (up to 4x) when
    ``F`` grows fast enough that the ends still matter.

    Returns:
        (integral, error estimate, integral of |F| phi), or None when the rule
        has not reached ``tol * size + atol`` by the finest level.
    """
    Z = _tail_bound(tol)
    for _ in range(4):
        try:
            if scale >= SINH_MAP_BELOW or abs(center) >= Z:
                return _trapezoid_uniform(F, tol, atol, Z)
            return _trapezoid_sinh(F, tol, atol, Z, scale, center)
        except _Tails:
            Z = int(math.ceil(Z * 1.5))
    return None


def _trapezoid_sinh(
    F: Callable[[Any], tuple[Any, Any]], tol: Any, atol: Any, Z: int, scale: Any, center: Any
) -> tuple[Any, Any, Any] | None:
    lo, hi = mpmath.asinh((-Z - center) / scale), mpmath.asinh((Z - center) / scale)
    h0 = mpmath.mpf(1) / 2
    k_lo, k_hi = int(mpmath.floor(lo / h0)) - 1, int(mpmath.ceil(hi / h0)) + 1
    norm = 1 / mpmath.sqrt(2 * mpmath.pi)

    def nodes(level: int) -> Any:
        step = 2**level
        for k in range(k_lo * step, k_hi * step + 1):
            if level == 0 or k % 2:
                et = mpmath.exp(mpmath.mpf(k) / step * h0)
                z = center + scale * (et - 1 / et) / 2
                yield z, scale * (et + 1 / et) / 2 * mpmath.exp(-z * z / 2) * norm

    return _trapezoid_levels(F, tol, atol, nodes, h0)


def _trapezoid_uniform(
    F: Callable[[Any], tuple[Any, Any]], tol: Any, atol: Any, Z: int
) -> tuple[Any, Any, Any] | None:
    def nodes(level: int) -> Any:
        return zip(*_level_nodes(level, Z), strict=True)

    return _trapezoid_levels(F, tol, atol, nodes, mpmath.mpf(1))


def _trapezoid_levels(
    F: Callable[[Any], tuple[Any, Any]],
    tol: Any,
    atol: Any,
    nodes: Callable[[int], Any],
    h0: Any,
) -> tuple[Any, Any, Any] | None:
    total = extra = absolute = mpmath.mpf(0)
    results: list[Any] = []
    for level in range(MAX_TRAPEZOID_LEVEL + 1):
        h = h0 / 2**level
        ends = []
        for z, w in nodes(level):
            val, err = F(z)
            total += w * val
            extra += w * err
            absolute += w * abs(val)
            if level == 0:
                ends.append(abs(w * val))
        if level == 0 and max(ends[0], ends[-1]) * h > tol * absolute * h / 100 + atol:
            raise _Tails
        results.append(total * h)
        size = absolute * h
        if size == 0:
            return mpmath.mpf(0), extra * h, size
        err = _level_error(results, size)
        if err <= tol * size + atol:
            return results[-1], err + extra * h, size
    return None


def _pieces(
    features: Sequence[Feature], graded: bool, tol: Any, period: Any = 0
) -> tuple[list[Any], str]:
    """Break points and rule for mpmath.quad over the real line.

    ``features`` are (centre, width) in standard deviations, kinks with width 0. With kinks
    or narrow features (``graded``), the pieces between the graded points
    (:func:`~ntksym.reference.features.graded_points`) are smooth on their own length, and
    Gauss-Legendre on the range truncated where the Gaussian weight is below ``tol``
    converges fast. Otherwise this is only reached when the trapezoidal rule failed (very
    large variances, steep transitions): tanh-sinh on the whole line, split at the centres,
    copes with boundary layers at the break points. A ``period`` (in standard deviations) of
    an oscillation of the integrand cuts the pieces where the Gaussian weight is above ``tol``
    into a few periods each (:func:`~ntksym.reference.features.split_periods`).
    """
    if graded or period:
        Z = 2 * _tail_bound(tol)  # generous: the integrand may grow
        digits = -float(mpmath.log10(tol))
        # the Gaussian weight itself: pieces no longer than its scale far out keep the
        # Gauss-Legendre degree low on the long range
        scales = [
            (mpmath.mpf(0), mpmath.mpf(0)),
            *((mpmath.mpf(c), mpmath.mpf(0)) for c in _SCALES),
        ]
        points = graded_points([*features, *scales], Z, digits)
        return split_periods([-Z, *points, Z], period, _tail_bound(tol) + 1), "gauss-legendre"
    finite = sorted({c for c, _ in features if mpmath.isfinite(c)})
    return [mpmath.ninf, *finite, mpmath.inf], "tanh-sinh"


def _needs_grading(features: Sequence[Feature]) -> bool:
    return any(0 < w < GRADE_BELOW for _, w in features)


def _quad(integrand: Callable[[Any], Any], pieces: list[Any], method: str) -> tuple[Any, Any]:
    """mpmath.quad with its error estimate (the difference between its last two degrees).

    At least two degrees are always run: after one, mpmath reports an error of 0.
    """
    if QUAD_MAXDEGREE is None:
        return mpmath.quad(integrand, pieces, error=True, method=method)
    degree = max(2, QUAD_MAXDEGREE)
    return mpmath.quad(integrand, pieces, error=True, method=method, maxdegree=degree)


def gauss_expect_1d(
    f: Callable[[Any], Any],
    scale: Any,
    shift: Any,
    kinks: Sequence[Any],
    tol: Any,
    atol: Any = 0,
    features: Sequence[Feature] = (),
) -> tuple[Any, Any]:
    """E[f(shift + scale z)] for z ~ N(0, 1), with an error estimate.

    ``kinks`` and the (centre, width) ``features`` are in the units of the argument of f.
    """
    if scale == 0:
        return f(shift), mpmath.mpf(0)
    # a kink beyond every range the trapezoidal rule may use is not a kink of this integral
    # (the inner integrals near |rho| = 1, where s is tiny, mostly have none)
    reach = 4 * _tail_bound(tol)
    kinks = [k for k in kinks if abs(k - shift) < reach * scale]
    feats = [((k - shift) / scale, mpmath.mpf(0)) for k in (*kinks, 0)]
    feats += [((c - shift) / scale, w / scale) for c, w in features]
    narrow = [(c, w) for c, w in feats[len(kinks) + 1 :] if w < SINH_MAP_BELOW]
    if not kinks:
        centre, width = min(narrow, key=lambda cw: cw[1]) if narrow else (-shift / scale, 1 / scale)
        res = _trapezoid(lambda z: (f(shift + scale * z), 0), tol, width, centre, atol)
        if res is not None:
            return res[0], res[1]
    norm = 1 / mpmath.sqrt(2 * mpmath.pi)
    pts, method = _pieces(feats, bool(kinks) or _needs_grading(narrow), tol)

    def integrand(z: Any) -> Any:
        return f(shift + scale * z) * mpmath.exp(-z * z / 2)

    val, err = _quad(integrand, pts, method)
    return val * norm, err * norm


def _rms(
    f: Callable[[Any], Any], var: Any, kinks: Sequence[Any], tol: Any, features: Sequence[Feature]
) -> Any:
    """sqrt(E[f(sqrt(var) z)^2]), to a few digits: a scale for absolute tolerances."""
    rough = max(tol, mpmath.mpf(10) ** -8)
    mean_sq, _ = gauss_expect_1d(
        lambda x: f(x) ** 2, mpmath.sqrt(var), 0, kinks, rough, features=features
    )
    return mpmath.sqrt(abs(mean_sq))


def general_dual(
    f: Callable[[Any], Any],
    kinks: Sequence[Any],
    a11: Any,
    a12: Any,
    a22: Any,
    det: Any,
    tol: Any,
    features: Sequence[Feature] = (),
    frequency: Any = 0,
) -> tuple[Any, Any, Any]:
    """Iterated quadrature; returns (value, error estimate, size of the integrand).

    ``kinks`` and the smooth ``features`` (centre, width) are in units of u (and v). The
    outer integral over ``z1`` is split at the kinks and features of ``f(u)`` and at those
    of ``E[f(v) | z1]``: a kink ``k`` of ``f(v)`` is a step of width ``s / |beta|`` around
    ``z1 = k / beta`` there (``s`` the conditional standard deviation, tiny as ``|rho|``
    tends to 1), graded so that the narrow direction is resolved.

    The inner expectation E[sigma(v) | z1] is wanted to ``tol`` relative to the
    r.m.s. of sigma(v), not to its own (possibly tiny, cancelling) value, and
    more loosely where the outer weight phi(z1) |sigma(u)| is small: there an
    absolute error of ``tol * rms_u * rms_v / (2 Z phi(z1) |sigma(u)|)`` still
    adds at most ``tol * rms_u * rms_v`` to the outer integral over [-Z, Z].

    ``frequency`` is the largest ``|a|`` of a ``sin(a u + b)`` term of f (0: none). Then
    ``f(sd1 z1)`` oscillates with ``a sd1`` in z1 and ``E[f(v) | z1]`` with ``a |beta|``
    (damped by ``exp(-(a s)^2 / 2)``): their product with the sum, whose period bounds the
    outer Gauss-Legendre pieces (near ``rho = 1`` at variance 1e4, 200 radians per standard
    deviation).
    """
    sd1 = mpmath.sqrt(a11)
    beta = a12 / sd1  # v = beta*z1 + s*z2
    s = mpmath.sqrt(det / a11)
    rms_u, rms_v = _rms(f, a11, kinks, tol, features), _rms(f, a22, kinks, tol, features)
    budget = tol * rms_u * rms_v / (2 * _tail_bound(tol)) * mpmath.sqrt(2 * mpmath.pi)

    def outer(z1: Any) -> tuple[Any, Any]:
        fu = f(sd1 * z1)
        if fu == 0:
            return mpmath.mpf(0), mpmath.mpf(0)
        atol = max(tol * rms_v, budget * mpmath.exp(z1 * z1 / 2) / abs(fu))
        rtol = min(max(tol, atol / rms_v), mpmath.mpf(10) ** -6) if rms_v else tol
        inner, inner_err = gauss_expect_1d(f, s, beta * z1, kinks, rtol, atol, features)
        return fu * inner, abs(fu) * inner_err

    if not kinks:
        res = _trapezoid(outer, tol, 1 / sd1, 0, tol * rms_u * rms_v)
        if res is not None:
            return res[0], res[1], max(res[2], rms_u * rms_v)
    norm = 1 / mpmath.sqrt(2 * mpmath.pi)

    def outer_quad(z1: Any) -> Any:
        val, err = outer(z1)
        w = mpmath.exp(-z1 * z1 / 2) * norm
        # the imaginary part carries the inner error, integrated with the same weights
        return mpmath.mpc(w * val, w * err)

    feats = _outer_features(kinks, features, sd1, beta, s)
    pieces, method = _pieces(
        feats,
        bool(kinks) or _needs_grading(feats),
        tol,
        _outer_period(frequency, sd1, beta, s, tol),
    )
    res, err = _quad(outer_quad, pieces, method)
    return res.real, err + abs(res.imag), rms_u * rms_v


def _outer_features(
    kinks: Sequence[Any], features: Sequence[Feature], sd1: Any, beta: Any, s: Any
) -> list[Feature]:
    """Features of the outer integrand in z1: those of f(sd1 z1) and of E[f(v) | z1]."""
    feats = [(k / sd1, mpmath.mpf(0)) for k in (*kinks, 0)]
    feats += [(c / sd1, w / sd1) for c, w in features]
    if beta != 0:
        feats += [(k / beta, s / abs(beta)) for k in kinks]
        feats += [(c / beta, mpmath.sqrt(w * w + s * s) / abs(beta)) for c, w in features]
    return feats


def _outer_period(frequency: Any, sd1: Any, beta: Any, s: Any, tol: Any) -> Any:
    """Period in z1 of the fastest oscillation of ``f(sd1 z1) E[f(v) | z1]`` (0: none).

    The inner expectation's oscillation is left out where its damping ``exp(-(a s)^2/2)``
    is below ``tol``.
    """
    if not frequency:
        return 0
    speed = frequency * sd1
    if (frequency * s) ** 2 / 2 < -mpmath.log(tol):
        speed += frequency * abs(beta)
    return 2 * mpmath.pi / speed


def oscillation_beyond_reach(
    frequency: Any, kinks: Sequence[Any], a11: Any, a12: Any, det: Any, tol: Any
) -> str | None:
    """Why the iterated rule cannot resolve an oscillation of ``f`` here, or None.

    Two cases are refused before any work (each would run for hours and then fail its
    error estimate): the inner integral ``E[f(v) | z1]`` has a kink within reach and its
    pieces (the longest inside the Gaussian range is 4 standard deviations) would see more
    than :data:`INNER_RADIANS` of ``sin(a v)``, i.e. ``4 a s > INNER_RADIANS`` with ``s``
    the conditional standard deviation; or the outer integral needs more than
    :data:`MAX_PERIOD_PIECES` pieces of :data:`PERIODS_PER_PIECE` periods.
    """
    if not frequency:
        return None
    sd1 = mpmath.sqrt(a11)
    beta, s = a12 / sd1, mpmath.sqrt(det / a11)
    if kinks and 4 * frequency * s > INNER_RADIANS:
        return (
            f"E[f(v) | u] has a kink and oscillates with {mpmath.nstr(frequency * s, 3)} "
            "radians per conditional standard deviation, more than its pieces resolve "
            f"({INNER_RADIANS / 4:.3g})"
        )
    period = _outer_period(frequency, sd1, beta, s, tol)
    pieces = 2 * (_tail_bound(tol) + 1) / (PERIODS_PER_PIECE * period)
    if pieces > MAX_PERIOD_PIECES:
        return (
            f"the outer integrand oscillates {mpmath.nstr(pieces * PERIODS_PER_PIECE, 3)} "
            f"times in the Gaussian range, more than {MAX_PERIOD_PIECES * PERIODS_PER_PIECE}"
        )
    return None
