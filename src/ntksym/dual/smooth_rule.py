"""E[r(u) r(v)] and E[r'(u) r'(v)] for a smooth r: a sinh-mapped trapezoid rule, in Numba.

The smooth remainder of a split activation (:mod:`ntksym.dual.split`) is analytic near
the real line, so the trapezoid rule converges geometrically and needs no split points
(Trefethen & Weideman, SIAM Review 56, 2014). Each 1-D expectation E[g(m + c z)] is the
rule in t after ``z = z0 + R asinh(kappa sinh t)``: nodes ``l h`` apart near z0 (where
the argument of g is 0 and g changes on its own scale, l = min(R, 1/c)), at most ``R h``
apart far from it, so the rule keeps its accuracy at large variances. The step is
halved (old nodes kept) until two successive rules agree to ``_TOL`` relative to the
integral of |g|; the finer rule then has about twice the correct digits. This is the
scheme of the generated quadrature modules (``ntksym.codegen.runtime``), which the dual
box cannot import; here the integrand is a compiled function passed in.
"""

# Short names follow the formulas.
# ruff: noqa: E741, N803, N806

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

__all__ = ["smooth_pair"]

_Z = 9.0  # nodes cover |z| <= 9
_R = 3.0  # widest spacing _R h
_H0 = 0.3  # first step in t
_TOL = 1e-8  # agreement of two successive rules, relative to the integral of |g|
_FLOOR = 8.9e-16  # rounding: 4 eps relative to the integral of |g|
_LEVELS = 6
_TABLED = 3  # nodes of levels 0.._TABLED come from a table built once per covariance
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


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
def _table(kap: float) -> tuple[int, Any, Any]:
    """The map at the nodes of level _TABLED for every centre z0 in [-_Z, _Z]."""
    _, hi = _span(-_Z, kap)
    half = (hi + 1) << _TABLED
    h = _H0 / (1 << _TABLED)
    ZT = np.empty(2 * half + 1)
    WT = np.empty(2 * half + 1)
    for j in range(-half, half + 1):
        ZT[j + half], WT[j + half] = _map(j * h, kap)
    return half, ZT, WT


@numba.njit(cache=True, error_model="numpy")
def _converged(q: float, p: float, n: float, top: float) -> float:
    """Relative gap of two successive rules q, p (n: integral of |g|), or -1 if converged."""
    gap = abs(q - p)
    if gap <= _TOL * n or gap <= _FLOOR * top:
        return -1.0
    return gap / max(n, 1e-300)


@numba.njit(cache=True, error_model="numpy")
def _expect(r: Any, dr: Any, ntk: bool, m: float, c: float, kap: float, tab: Any) -> Any:
    """E[r(m + c z)], E[r'(m + c z)], z ~ N(0, 1), c > 0; gap; E|r|, E|r'|."""
    half, ZT, WT = tab
    z0 = min(_Z, max(-_Z, -m / c))
    lo, hi = _span(z0, kap)
    s0 = s1 = a0 = a1 = q0 = q1 = 0.0
    gap = 1.0
    h = _H0
    for level in range(_LEVELS + 1):
        k = 1 << level
        first, stride = (lo, 1) if level == 0 else (lo * k + 1, 2)
        for j in range(first, hi * k + 1, stride):
            p = j * (1 << (_TABLED - level)) + half if level <= _TABLED else -1
            if 0 <= p < ZT.size:
                off, dz = ZT[p], WT[p]
            else:
                off, dz = _map(j * h, kap)
            z = z0 + off
            w = dz * math.exp(-0.5 * z * z)
            v = m + c * z
            x = r(v)
            s0 += w * x
            a0 += w * abs(x)
            if ntk:
                y = dr(v)
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
