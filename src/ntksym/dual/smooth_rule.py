"""E[r(u) r(v)] and E[r'(u) r'(v)] for a smooth r: a sinh-mapped trapezoid rule, in Numba.

The smooth remainder of a split activation (:mod:`ntksym.dual.split`) is analytic near
the real line, so the trapezoid rule converges geometrically and needs no split points
(Trefethen & Weideman, SIAM Review 56, 2014). This is the rule of the generated
quadrature modules, with its parameters from
:data:`ntksym.codegen.runtime.quadrature_rule.RULE` (one definition for both): each 1-D
expectation E[g(m + c z)] is the rule in t after ``z = z0 + R asinh(kappa sinh t)``,
nodes ``l h`` apart near z0 (where the argument of g is 0 and g changes on its own scale,
l = min(R, 1/c), kappa = l/R), at most ``R h`` apart far from it; the step is halved (old
nodes kept) until two successive rules agree to ``TOL`` relative to the integral of |g|
(or to rounding), and the finer rule then has about twice the correct digits. The
runtime's own node functions are private to the regions it copies into standalone
modules, which call a fixed activation; here r is a compiled callback, so the map (two
lines, :func:`_map`) is written out.

The inner rule of a pair is centred at ``z0 = -m/c``, so its nodes are
``v = m + c z = c (z - z0)``: the same points for every outer node. r and r' there are
tabled once per covariance (levels up to ``TABLE``) and each inner rule costs one
exponential per node, not two callbacks.
"""

# Short names follow the formulas.
# ruff: noqa: E741, N803, N806

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

from ntksym.codegen.runtime.quadrature_rule import RULE

__all__ = ["smooth_pair"]

_Z = RULE.Z  # nodes cover |z| <= _Z
_R = RULE.R  # widest spacing _R h
_H0 = RULE.H0  # first step in t
_TOL = RULE.TOL  # agreement of two successive rules, relative to the integral of |g|
_FLOOR = RULE.FLOOR  # rounding: 4 eps relative to the integral of |g|
_LEVELS = RULE.LEVELS
_TABLE = RULE.TABLE  # nodes (and r, r' there) of levels 0.._TABLE tabled per covariance
_INV_SQRT_2PI = RULE.INV_SQRT_2PI


@numba.njit(cache=True, error_model="numpy")
def _map(t: float, kap: float) -> tuple[float, float]:
    """Offset z - z0 and dz/dt of the map at t."""
    q = kap * math.sinh(t)
    return _R * math.asinh(q), _R * kap * math.cosh(t) / math.sqrt(1.0 + q * q)


@numba.njit(cache=True, error_model="numpy")
def _span(z0: float, kap: float) -> tuple[int, int]:
    """First and last node index at step _H0 covering -_Z <= z <= _Z."""
    lo = math.asinh(math.sinh((-_Z - z0) / _R) / kap)
    hi = math.asinh(math.sinh((_Z - z0) / _R) / kap)
    return int(math.floor(lo / _H0)), int(math.ceil(hi / _H0))


@numba.njit(cache=True, error_model="numpy")
def _table(kap: float) -> tuple[Any, int, Any]:
    """An empty table of one pair's inner rules, for every centre z0 in [-_Z, _Z].

    Row ``j 2^(_TABLE - level) + half`` holds, for node j of a level up to _TABLE, the
    offset z - z0, dz/dt, and r, r' at ``v = c (z - z0)``; :func:`_fill` fills a level.
    The last item holds the last level filled.
    """
    _, hi = _span(-_Z, kap)
    half = (hi + 1) << _TABLE
    return np.empty((2 * half + 1, 4)), half, np.full(1, -1)


@numba.njit(cache=True, error_model="numpy")
def _fill(r: Any, dr: Any, ntk: bool, c: float, kap: float, tab: Any, level: int) -> None:
    """Fill the rows of the nodes new at ``level`` (all of level 0) of the table tab."""
    T, half, last = tab
    step = 1 << (_TABLE - level)
    k = 1 << level
    h = _H0 / k
    n = half // step
    for j in range(-n, n + 1):
        if level > 0 and j % 2 == 0:
            continue  # (a node of a coarser level)
        p = j * step + half
        off, dz = _map(j * h, kap)
        v = c * off
        T[p, 0] = off
        T[p, 1] = dz
        T[p, 2] = r(v)
        T[p, 3] = dr(v) if ntk else 0.0
    last[0] = level


@numba.njit(cache=True, error_model="numpy")
def _converged(q: float, p: float, n: float, top: float) -> float:
    """Relative gap of two successive rules q, p (n: integral of |g|), or -1 if converged."""
    gap = abs(q - p)
    if gap <= _TOL * n or gap <= _FLOOR * top:
        return -1.0
    return gap / max(n, 1e-300)


@numba.njit(cache=True, error_model="numpy")
def _expect(r: Any, dr: Any, ntk: bool, m: float, c: float, kap: float, tab: Any) -> Any:
    """E[r(m + c z)], E[r'(m + c z)], z ~ N(0, 1), c > 0; gap; E|r|, E|r'|.

    Where the centre -m/c is inside the window, the nodes of levels up to _TABLE and r, r'
    there come from the pair's table tab; elsewhere (and at finer levels) r is called.
    """
    T, half, last = tab
    z0 = -m / c
    tabled = abs(z0) <= _Z
    z0 = min(_Z, max(-_Z, z0))
    lo, hi = _span(z0, kap)
    s0 = s1 = a0 = a1 = q0 = q1 = 0.0
    gap = 1.0
    h = _H0
    for level in range(_LEVELS + 1):
        k = 1 << level
        first, stride = (lo, 1) if level == 0 else (lo * k + 1, 2)
        if tabled and level <= _TABLE:
            if last[0] < level:
                _fill(r, dr, ntk, c, kap, tab, level)
            step = 1 << (_TABLE - level)
            for j in range(first, hi * k + 1, stride):
                p = j * step + half
                z = z0 + T[p, 0]
                w = T[p, 1] * math.exp(-0.5 * z * z)
                x, y = T[p, 2], T[p, 3]
                s0 += w * x
                a0 += w * abs(x)
                s1 += w * y
                a1 += w * abs(y)
        else:
            for j in range(first, hi * k + 1, stride):
                off, dz = _map(j * h, kap)
                z = z0 + off
                w = dz * math.exp(-0.5 * z * z)
                v = m + c * z
                x = r(v)
                y = dr(v) if ntk else 0.0
                s0 += w * x
                a0 += w * abs(x)
                s1 += w * y
                a1 += w * abs(y)
        p0, p1 = q0, q1
        q0, q1 = h * s0, h * s1
        if level > 0:
            g0 = _converged(q0, p0, h * a0, h * a0)
            g1 = _converged(q1, p1, h * a1, h * a1) if ntk else -1.0
            gap = max(g0, g1)
            if gap < 0.0:
                gap = 0.0
                break
        h *= 0.5
    hn = h * _INV_SQRT_2PI
    return q0 * _INV_SQRT_2PI, q1 * _INV_SQRT_2PI, gap, a0 * hn, a1 * hn


@numba.njit(cache=True, error_model="numpy")
def smooth_pair(r: Any, dr: Any, ntk: bool, a: float, b: float, c: float) -> Any:
    """E[r(u) r(v)], E[r'(u) r'(v)] for u = a z1, v = b z1 + c z2 (a > 0); error estimate.

    The rule in z1 is centred at 0 on the finer of the scales of u and v; for each node
    _expect integrates over z2 (or r(b z1) when c = 0). The estimate is the relative gap
    of the outer rule if it did not converge (else 0: a converged rule is accurate to
    about the square of _TOL) or the inner rules' gaps, weighted as the outer sum weighs
    them, whichever is larger.
    """
    l = min(_R, 1.0 / max(a, abs(b)))
    kap = l / _R
    lo, hi = _span(0.0, kap)
    ikap = min(_R, 1.0 / c) / _R if c > 0.0 else 1.0
    tab = _table(ikap)
    s0 = s1 = a0 = a1 = q0 = q1 = 0.0
    w0 = w1 = 0.0  # the inner rules' gaps, weighted as the outer sums weigh them
    h = _H0
    for level in range(_LEVELS + 1):
        k = 1 << level
        first, stride = (lo, 1) if level == 0 else (lo * k + 1, 2)
        for j in range(first, hi * k + 1, stride):
            z, dz = _map(j * h, kap)
            w = dz * math.exp(-0.5 * z * z)
            m = b * z
            if c > 0.0:
                i0, i1, g, m0, m1 = _expect(r, dr, ntk, m, c, ikap, tab)
            else:
                i0, i1, g, m0, m1 = r(m), (dr(m) if ntk else 0.0), 0.0, 0.0, 0.0
            f = r(a * z)
            x0 = f * i0
            s0 += w * x0
            a0 += w * abs(x0)
            w0 += w * abs(f) * g * m0
            if ntk:
                f = dr(a * z)
                x1 = f * i1
                s1 += w * x1
                a1 += w * abs(x1)
                w1 += w * abs(f) * g * m1
        p0, p1 = q0, q1
        q0, q1 = h * s0, h * s1
        if level > 0:
            g0 = _converged(q0, p0, h * a0, h * a0)
            g1 = _converged(q1, p1, h * a1, h * a1) if ntk else -1.0
            gap = max(g0, g1, 0.0)
            if max(g0, g1) < 0.0:
                break
        h *= 0.5
    inner = max(w0 / max(a0, 1e-300), w1 / max(a1, 1e-300))
    return q0 * _INV_SQRT_2PI, q1 * _INV_SQRT_2PI, max(gap, inner)
