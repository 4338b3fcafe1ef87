"""Kink-aware dual maps: double-exponential rules on the pieces between kinks, in Numba.

For ``u = a z1``, ``v = b z1 + c z2`` (z1, z2 independent standard normals) the maps are
``E[f(u) I(z1)]`` with the inner expectation ``I(z1) = E[f(b z1 + c z2) | z1]``. Each
1-D integral is split at the points where its integrand may not be smooth: the kinks of
the activation (``z = (k - m) / c`` inside, ``z1 = k / a`` outside), where the inner
expectation has a smoothed kink (``z1 = k / b``, ``c/|b|`` wide: as ``c -> 0`` it becomes a
kink; one wider than 1 is left to the rule), where
the activation's argument is 0 (its own features sit there) and at ``z = 0`` (the
Gaussian's centre). The two outermost pieces are half-lines, integrated by the exp-sinh
map ``z = p +- l exp(pi/2 sinh t)``; the pieces between split points by tanh-sinh. Both
make the integrand of the trapezoid rule in ``t`` decay double exponentially at the
piece's ends, so the rule converges geometrically even though the integrand is only
piecewise smooth (Takahasi & Mori, Publ. RIMS 9, 1974; Bailey, Jeyabalan & Li,
Experimental Mathematics 14, 2005).

The step in ``t`` is halved (old nodes kept) until two successive rules agree to
``_TOL`` relative to the integral of the magnitude (or to rounding); the error of the
last rule is then far smaller than that gap (the rule doubles its correct digits per
halving once it converges). A pair that reaches ``_LEVELS`` halvings without agreeing
reports its last gap as its error estimate: :func:`ntksym.dual.kinked.kinked_maps` warns
with it where it exceeds 1e-12.

The activation and its derivative come in as C callbacks of type ``float64(float64)``
(first-class Numba functions): the kernels compile once, and Numba caches them on disk.

With a split ``f = r + sum_k s_k ramp_k`` (:mod:`ntksym.dual.split`: ``max(u - t_k, 0)``,
or ``max(t_k - u, 0)`` for ``t_k < 0``),
:func:`_split_one` needs only two 1-D rules of this kind over closed-form conditional
expectations of the ramps, and a smooth 2-D rule for r (:mod:`ntksym.dual.smooth_rule`).
"""

# The loops index small scratch arrays; short names follow the formulas.
# ruff: noqa: E741, N803, N806

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

from ntksym.dual.smooth_rule import smooth_pair

__all__ = ["pair_maps", "ZMAX"]

#: Nodes with |z| beyond this are dropped (the standard normal density is < 1e-22 there).
ZMAX = 10.0
_HALF_PI = 0.5 * math.pi
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_H0 = 0.5  # first step in t
_LEVELS = 6  # halvings: finest step 1/128
_TOL = 1e-8  # agreement of successive rules, relative to the integral of |g|
_EST = 1e-14  # and their estimated error (see _done)
_FLOOR = 8.9e-16  # rounding: 4 eps relative to the integral of |g|
_T_FIN = 3.2  # tanh-sinh: |t| <= 3.2 reaches within 2e-17 of the ends
_T_LO = -3.7  # half-lines: exp(t - exp(-t)) < 4e-18 below
_BROAD = 1.0  # the inner expectation's smoothed kink (width c/|b| in z1) split only below


@numba.njit(cache=True, error_model="numpy")
def _node(kind: int, p: float, q: float, l: float, t: float) -> tuple[float, float]:
    """Node z and weight dz/dt at t: kind 0 tanh-sinh on [p, q], +-1 exp-sinh from p."""
    if kind == 0:
        half = 0.5 * (q - p)
        s = _HALF_PI * math.sinh(t)
        e = math.exp(-2.0 * abs(s))
        d = 2.0 * e / (1.0 + e)  # 1 - tanh|s|, without cancellation
        z = q - half * d if t >= 0.0 else p + half * d
        return z, half * _HALF_PI * math.cosh(t) * 4.0 * e / ((1.0 + e) * (1.0 + e))
    ei = math.exp(-t)
    x = l * math.exp(t - ei)
    return p + kind * x, x * (1.0 + ei)


@numba.njit(cache=True, error_model="numpy")
def _span(kind: int, p: float, l: float) -> tuple[int, int]:
    """Indices of the first and last level-0 nodes of a piece (last < first: empty)."""
    if kind == 0:
        n = int(math.ceil(_T_FIN / _H0))
        return -n, n
    far = ZMAX - kind * p  # distance from p to the end of the window, in the piece's direction
    if far <= 0.0:
        return 1, 0
    hi = math.log(far / l) + 0.1  # (t - exp(-t) >= log(far / l) there, for far / l >= 1)
    if far < l:  # solve t - exp(-t) = log(far / l) < 0 by Newton's method from above
        y = math.log(far / l)
        hi = 0.0
        for _ in range(30):
            hi -= (hi - math.exp(-hi) - y) / (1.0 + math.exp(-hi))
    return int(math.floor(_T_LO / _H0)), int(math.ceil(hi / _H0))


@numba.njit(cache=True, error_model="numpy")
def _scale(p: float, small: float) -> float:
    """Scale l of the exp-sinh map from p: between the integrand's finest scale and the tail's.

    From p the Gaussian tail decays on the scale g = 1/max(1, |p|); the integrand may vary
    on a finer one, small. The map resolves scales around l best and loses resolution
    slowly (like the logarithm of the ratio) away from it: l is their geometric mean.
    """
    g = 1.0 / max(1.0, abs(p))
    return math.sqrt(min(small, g) * g)


@numba.njit(cache=True, error_model="numpy")
def _pieces(pts: Any, n: int, K: Any, P: Any, Q: Any, L: Any, small: float) -> int:
    """Pieces over the split points pts[:n] (sorted, at least one): half-lines and between."""
    K[0] = -1
    P[0] = pts[0]
    Q[0] = 0.0
    L[0] = _scale(pts[0], small)
    for i in range(n - 1):
        K[i + 1] = 0
        P[i + 1] = pts[i]
        Q[i + 1] = pts[i + 1]
        L[i + 1] = 1.0
    K[n] = 1
    P[n] = pts[n - 1]
    Q[n] = 0.0
    L[n] = _scale(pts[n - 1], small)
    return n + 1


@numba.njit(cache=True, error_model="numpy")
def _add_point(pts: Any, n: int, x: float) -> int:
    """Insert x into the sorted pts[:n] if it is inside the window and new; the new n."""
    if not abs(x) < ZMAX:  # (also drops NaN)
        return n
    i = n
    while i > 0 and pts[i - 1] > x:
        i -= 1
    if (i > 0 and pts[i - 1] == x) or (i < n and pts[i] == x):
        return n
    for j in range(n, i, -1):
        pts[j] = pts[j - 1]
    pts[i] = x
    return n + 1


@numba.njit(cache=True, error_model="numpy")
def _done(gap: float, prev: float, level: int) -> bool:
    """Whether a rule whose last two gaps (relative) are prev, gap has converged.

    Its error is estimated as gap^2 / prev (the rule squares its error per halving once it
    converges geometrically fast, and shrinks it by gap / prev per halving in any case);
    a smoothed kink close to a split point (rho near 1) converges slower than that.
    """
    if gap <= _FLOOR:
        return True
    return level > 1 and gap <= _TOL and gap * gap <= _EST * prev


@numba.njit(cache=True, error_model="numpy")
def _estimate(gap: float, prev: float) -> float:
    """Relative error estimate of a converged rule (see _done): gap^2 / prev, at most gap."""
    return min(gap, gap * gap / max(prev, 1e-300))


@numba.njit(cache=True, error_model="numpy")
def _inner(f: Any, df: Any, ntk: bool, m: float, c: float, kinks: Any, S: Any) -> Any:
    """E[f(m + c z)] and E[df(m + c z)], z ~ N(0, 1), c > 0, and whether both converged.

    S is scratch: rows 0..4 hold split points and the pieces (kind, start, end, scale).
    Returns (e0, e1, estimated relative error (see _estimate), E|f|, E|df|).
    """
    n = _add_point(S[0], 0, 0.0)
    n = _add_point(S[0], n, -m / c)
    for k in kinks:
        n = _add_point(S[0], n, (k - m) / c)
    npc = _pieces(S[0], n, S[1], S[2], S[3], S[4], max(1.0 / c, 1e-30))
    s0 = s1 = a0 = a1 = q0 = q1 = 0.0
    gap = 0.0
    h = _H0
    for level in range(_LEVELS + 1):
        step = 1 << level
        for i in range(npc):
            kind = int(S[1, i])
            lo, hi = _span(kind, S[2, i], S[4, i])
            first, stride = (lo, 1) if level == 0 else (lo * step + 1, 2)
            for j in range(first, hi * step + 1 if level == 0 else hi * step, stride):
                z, w = _node(kind, S[2, i], S[3, i], S[4, i], j * h)
                if not abs(z) < ZMAX:
                    continue
                w *= math.exp(-0.5 * z * z)
                v = m + c * z
                x = f(v)
                s0 += w * x
                a0 += w * abs(x)
                if ntk:
                    y = df(v)
                    s1 += w * y
                    a1 += w * abs(y)
        p0, p1 = q0, q1
        q0, q1 = h * s0, h * s1
        if level > 0:
            g0 = abs(q0 - p0) / max(h * a0, 1e-300)
            g1 = abs(q1 - p1) / max(h * a1, 1e-300) if ntk else 0.0
            prev, gap = gap, max(g0, g1)
            if _done(gap, prev, level):
                est = _estimate(gap, prev)
                hn = h * _INV_SQRT_2PI
                return q0 * _INV_SQRT_2PI, q1 * _INV_SQRT_2PI, est, a0 * hn, a1 * hn
        h *= 0.5
    hn = 2.0 * h * _INV_SQRT_2PI  # (the step of the last level)
    return q0 * _INV_SQRT_2PI, q1 * _INV_SQRT_2PI, gap, a0 * hn, a1 * hn


@numba.njit(cache=True, error_model="numpy")
def _ramps(m: float, c: float, T: Any, SL: Any, ntk: bool) -> Any:
    """E[p(m + c z)], E[p'(m + c z)], E|p(m + c z)| for p = sum SL[k] ramp_k, c >= 0.

    ramp_k = max(o (u - T[k]), 0) with o = 1 for T[k] >= 0, o = -1 below (pointing away
    from 0); its derivative is o H(o (u - T[k])). Truncated normal moments:
    E[max(x + c z, 0)] = c phi(x/c) + x Phi(x/c) and P(x + c z > 0) = Phi(x/c), with
    x = o (m - T[k]) (z and -z have the same law).
    """
    e0 = e1 = a0 = 0.0
    for k in range(T.size):
        o = 1.0 if T[k] >= 0.0 else -1.0
        if c == 0.0:  # the ramps themselves (a step of 1/2 at a corner, as Heaviside(0))
            x = o * (m - T[k])
            e0 += SL[k] * max(x, 0.0)
            a0 += abs(SL[k]) * max(x, 0.0)
            e1 += o * SL[k] * (1.0 if x > 0.0 else (0.5 if x == 0.0 else 0.0))
            continue
        x = o * (m - T[k]) / c
        cdf = 0.5 * math.erfc(-x * _INV_SQRT_2)
        ramp = c * (_INV_SQRT_2PI * math.exp(-0.5 * x * x) + x * cdf)
        e0 += SL[k] * ramp
        a0 += abs(SL[k]) * ramp
        if ntk:
            e1 += o * SL[k] * cdf
    return e0, e1, a0


@numba.njit(cache=True, error_model="numpy")
def _given(r: Any, dr: Any, ntk: bool, m: float, c: float, geo: Any, S: Any) -> Any:
    """E[sigma(m + c z)], E[sigma'(m + c z)] for sigma = r + ramps (geo); as _inner returns.

    The rule of _inner integrates r, split at geo[1]; the ramps geo[2], geo[3] (corners,
    slopes) are closed forms. The estimate and E|r|, E|r'| are r's: the ramps are exact.
    """
    i0, i1, est, m0, m1 = _inner(r, dr, ntk, m, c, geo[1], S)
    p0, p1, _ = _ramps(m, c, geo[2], geo[3], ntk)
    return i0 + p0, i1 + p1, est, m0, m1


@numba.njit(cache=True, error_model="numpy")
def _cond(
    f: Any, df: Any, r: Any, dr: Any, ntk: bool, m: float, c: float, geo: Any, S: Any, whole: bool
) -> Any:
    """The outer rule's inner expectation at m: of f (whole) or of the ramps of geo alone."""
    if not whole:
        p0, p1, _ = _ramps(m, c, geo[2], geo[3], ntk)
        return p0, p1, 0.0, 0.0, 0.0
    if c > 0.0:
        return _given(r, dr, ntk, m, c, geo, S)
    return f(m), (df(m) if ntk else 0.0), 0.0, 0.0, 0.0


@numba.njit(cache=True, error_model="numpy")
def _finest(a: float, b: float, c: float) -> float:
    """Finest scale of the outer integrand: of f(a z1), and of I(z1) near z1 = k/b (c/|b|)."""
    small = 1.0 / a
    if c > 0.0 and b != 0.0 and c / abs(b) < small:
        small = c / abs(b)
    return max(small, 1e-30)


@numba.njit(cache=True, error_model="numpy")
def _outer(
    f: Any,
    df: Any,
    r: Any,
    dr: Any,
    ntk: bool,
    a: float,
    b: float,
    c: float,
    geo: Any,
    S: Any,
    whole: bool = True,
    kinked: bool = True,
) -> Any:
    """E[f(u) f(v)], E[df(u) df(v)] for u = a z1, v = b z1 + c z2 (a > 0); error estimate.

    The inner expectations are _given's (f = r + ramps), or with ``whole`` false those of
    the ramps alone (E[f(u) p(v)]); the outer rule splits at geo[0] over b (where the
    inner expectation has a smoothed kink) and, where f is ``kinked`` there, over a.
    S is scratch: rows 0..4 the inner rule's, rows 5..9 the outer's.
    """
    n = _add_point(S[5], 0, 0.0)
    for k in geo[0]:
        if kinked:
            n = _add_point(S[5], n, k / a)
        if c < _BROAD * abs(b):  # (a kink smoothed over more than _BROAD is no split point)
            n = _add_point(S[5], n, k / b)
    npc = _pieces(S[5], n, S[6], S[7], S[8], S[9], _finest(a, b, c))
    s0 = s1 = a0 = a1 = q0 = q1 = 0.0
    gap = 0.0
    w0 = w1 = 0.0  # the inner rules' error estimates, weighted as the outer sums weigh them
    h = _H0
    for level in range(_LEVELS + 1):
        step = 1 << level
        for i in range(npc):
            kind = int(S[6, i])
            lo, hi = _span(kind, S[7, i], S[9, i])
            first, stride = (lo, 1) if level == 0 else (lo * step + 1, 2)
            for j in range(first, hi * step + 1 if level == 0 else hi * step, stride):
                z, w = _node(kind, S[7, i], S[8, i], S[9, i], j * h)
                if not abs(z) < ZMAX:
                    continue
                w *= math.exp(-0.5 * z * z)
                fu = f(a * z)
                gu = df(a * z) if ntk else 0.0
                if fu == 0.0 and gu == 0.0:
                    continue
                m = b * z
                i0, i1, est, m0, m1 = _cond(f, df, r, dr, ntk, m, c, geo, S, whole)
                w0 += w * abs(fu) * est * m0
                w1 += w * abs(gu) * est * m1
                x0 = fu * i0
                x1 = gu * i1
                s0 += w * x0
                s1 += w * x1
                a0 += w * abs(x0)
                a1 += w * abs(x1)
        p0, p1 = q0, q1
        q0, q1 = h * s0, h * s1
        if level > 0:
            g0 = abs(q0 - p0) / max(h * a0, 1e-300)
            g1 = abs(q1 - p1) / max(h * a1, 1e-300) if ntk else 0.0
            prev, gap = gap, max(g0, g1)
            if _done(gap, prev, level):
                gap = _estimate(gap, prev)
                break
        h *= 0.5
    inner = max(w0 / max(a0, 1e-300), w1 / max(a1, 1e-300))
    return q0 * _INV_SQRT_2PI, q1 * _INV_SQRT_2PI, max(gap, inner)


@numba.njit(cache=True, error_model="numpy")
def _one(
    f: Any,
    df: Any,
    r: Any,
    dr: Any,
    ntk: bool,
    s11: float,
    s12: float,
    s22: float,
    det: float,
    geo: Any,
    S: Any,
) -> Any:
    """Both maps of one covariance (the variances may be 0)."""
    if s11 > 0.0:
        a = math.sqrt(s11)
        return _outer(f, df, r, dr, ntk, a, s12 / a, math.sqrt(max(det, 0.0) / s11), geo, S)
    f0 = f(0.0)
    g0 = df(0.0) if ntk else 0.0
    if s22 > 0.0:  # u = 0
        i0, i1, est, _, _ = _given(r, dr, ntk, 0.0, math.sqrt(s22), geo, S)
        return f0 * i0, g0 * i1, est
    return f0 * f0, g0 * g0, 0.0


@numba.njit(cache=True, error_model="numpy")
def _split_one(
    f: Any,
    df: Any,
    r: Any,
    dr: Any,
    ntk: bool,
    s11: float,
    s12: float,
    s22: float,
    det: float,
    geo: Any,
    S: Any,
) -> Any:
    """Both maps of one covariance for f = p + r (r smooth): three terms, two of them 1-D.

    E[f f] = E[f(u) p(v)] + E[p(u) r(v)] + E[r(u) r(v)]: the first two are 1-D rules over
    the closed-form E[p | .] (conditioned on u, then on v), split at the corners; only
    the last is 2-D, on the smooth r, without split points. The same for f'.
    """
    if not (s11 > 0.0 and s22 > 0.0):
        return _one(f, df, r, dr, ntk, s11, s12, s22, det, geo, S)
    d = max(det, 0.0)
    a = math.sqrt(s11)
    e1, g1, x1 = _outer(f, df, r, dr, ntk, a, s12 / a, math.sqrt(d / s11), geo, S, False)
    sv = math.sqrt(s22)
    by_v = (geo[2], geo[1], geo[2], geo[3])
    e2, g2, x2 = _outer(r, dr, r, dr, ntk, sv, s12 / sv, math.sqrt(d / s22), by_v, S, False, False)
    e3, g3, x3 = smooth_pair(r, dr, ntk, a, s12 / a, math.sqrt(d / s11))
    # each estimate is relative to its own term: weighted by the terms' sizes
    n0 = max(abs(e1) + abs(e2) + abs(e3), 1e-300)
    n1 = max(abs(g1) + abs(g2) + abs(g3), 1e-300)
    x = (x1 * abs(e1) + x2 * abs(e2) + x3 * abs(e3)) / n0
    if ntk:
        x = max(x, (x1 * abs(g1) + x2 * abs(g2) + x3 * abs(g3)) / n1)
    return e1 + e2 + e3, g1 + g2 + g3, x


@numba.njit(cache=True, error_model="numpy")
def pair_maps(
    f: Any,
    df: Any,
    r: Any,
    dr: Any,
    ntk: bool,
    s11: Any,
    s12: Any,
    s22: Any,
    det: Any,
    geo: Any,
    e: Any,
    ed: Any,
    est: Any,
) -> None:
    """Both maps (ed only when ntk) of the covariances in 1-D arrays.

    ``f = r + sum_k geo[3][k] ramp(u, geo[2][k])`` (see _ramps) with derivatives df, dr; geo[0]
    holds the kinks of f, geo[1] those of r (empty when r is smooth). Without a split,
    r is f itself, geo[1] its kinks and geo[2], geo[3] are empty.

    Writes E[f f] to e, E[df df] to ed (0 unless ntk) and the relative error estimate of
    each to est: for a converged rule gap^2 / prev (see _done), otherwise the gap of its
    last two levels; the largest over the outer rule and its inner rules.
    """
    npts = 3 + 2 * max(geo[0].size, geo[1].size)
    S = np.empty((10, npts + 1))
    for i in range(s11.size):
        if geo[2].size:
            e[i], ed[i], est[i] = _split_one(
                f, df, r, dr, ntk, s11[i], s12[i], s22[i], det[i], geo, S
            )
        else:
            e[i], ed[i], est[i] = _one(f, df, r, dr, ntk, s11[i], s12[i], s22[i], det[i], geo, S)
