"""Kink-aware dual maps: double-exponential rules on the pieces between kinks, in Numba.

For ``u = a z1``, ``v = b z1 + c z2`` (z1, z2 independent standard normals) the maps are
``E[f(u) I(z1)]`` with the inner expectation ``I(z1) = E[f(b z1 + c z2) | z1]``. Each
1-D integral is split at the points where its integrand may not be smooth: the kinks of
the activation (``z = (k - m) / c`` inside, ``z1 = k / a`` outside), where the inner
expectation has a smoothed kink (``z1 = k / b``, ``c/|b|`` wide: as ``c -> 0`` it becomes a
kink; one wider than 1 is left to the rule), where
the activation's argument is 0 (its own features sit there) and at ``z = 0`` (the
Gaussian's centre). The pieces (:mod:`ntksym.dual.de_pieces`: exp-sinh on the two
half-lines, tanh-sinh between split points) make the integrand of the trapezoid rule in
``t`` decay double exponentially at their ends, so the rule converges geometrically even
though the integrand is only piecewise smooth (Takahasi & Mori, Publ. RIMS 9, 1974;
Bailey, Jeyabalan & Li, Experimental Mathematics 14, 2005).

The step in ``t`` is halved (old nodes kept) piece by piece, until each piece's two
successive rules agree to 1e-8 of the integral of the magnitude (or to rounding) and
their gaps shrink as a converging rule's do (:func:`ntksym.dual.de_pieces.settle`); the
error estimate of the whole is the sum of the pieces' (``gap^2 / prev`` each) plus the
inner rules' estimates, weighted as the outer sum weighs them. A piece that reaches the
last level without converging reports its last gap: :func:`ntksym.dual.kinked.kinked_maps`
warns where the estimate exceeds 1e-12.

The activation and its derivative come in as C callbacks of type ``float64(float64)``
(first-class Numba functions): the kernels compile once, and Numba caches them on disk.

With a split ``f = r + sum_k s_k ramp_k`` (:mod:`ntksym.dual.split`: ``max(u - t_k, 0)``,
or ``max(t_k - u, 0)`` for ``t_k < 0``),
:func:`_split_sum` needs only two 1-D rules of this kind over closed-form conditional
expectations of the ramps, and a smooth 2-D rule for r (:mod:`ntksym.dual.smooth_rule`).
"""

# The loops index small scratch arrays; short names follow the formulas.
# ruff: noqa: E741, N803, N806

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

from ntksym.dual import de_pieces as dp
from ntksym.dual.de_pieces import ZMAX
from ntksym.dual.smooth_rule import smooth_pair

__all__ = ["pair_maps", "ZMAX"]

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_BROAD = 1.0  # the inner expectation's smoothed kink (width c/|b| in z1) split only below
_OUT = dp.ROWS  # the outer rule's block of scratch rows (the inner rule's starts at 0)
_ROUND = 4.4e-16  # rounding of a sum of three terms, relative to their magnitudes (2 eps)
_RESCALE = 1e-13  # an estimate above this is restated against the Cauchy-Schwarz scale (_one)
_CANCEL = 64.0  # terms this much larger than the scale: the rule on f itself (_split_one)


@numba.njit(cache=True, error_model="numpy")
def _inner(f: Any, df: Any, ntk: bool, m: float, c: float, kinks: Any, S: Any) -> Any:
    """E[f(m + c z)] and E[df(m + c z)], z ~ N(0, 1), c > 0, and whether both converged.

    S is scratch: its first block (see :mod:`ntksym.dual.de_pieces`) holds the split
    points and the pieces. Returns (e0, e1, the estimated relative error of each, E|f|,
    E|df|).
    """
    n = dp.add_point(S, 0, 0, 0.0)
    n = dp.add_point(S, 0, n, -m / c)
    for k in kinks:
        n = dp.add_point(S, 0, n, (k - m) / c)
    npc = dp.pieces(S, 0, n, max(1.0 / c, 1e-30))
    h = dp.H0
    x0 = x1 = -1.0
    for level in range(dp.LEVELS + 1):
        for i in range(npc):
            if S[dp.EST, i] >= 0.0:
                continue  # (converged)
            kind, p, q, l = int(S[dp.KIND, i]), S[dp.P, i], S[dp.Q, i], S[dp.L, i]
            first, stop, stride = dp.sweep(S, 0, i, level)
            s0 = s1 = a0 = a1 = 0.0
            for j in range(first, stop, stride):
                z, w = dp.node(kind, p, q, l, j * h)
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
            S[dp.S0, i] += s0
            S[dp.S1, i] += s1
            S[dp.B0, i] += a0
            S[dp.B1, i] += a1
        x0, x1 = dp.settle(S, 0, npc, h, level)
        if x0 >= 0.0:
            break
        h *= 0.5
    q0, q1, m0, m1 = dp.total(S, 0, npc)
    k = _INV_SQRT_2PI
    return q0 * k, q1 * k, x0, x1, m0 * k, m1 * k


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
    slopes) are closed forms. The estimates and E|r|, E|r'| are r's: the ramps are exact.
    """
    i0, i1, x0, x1, m0, m1 = _inner(r, dr, ntk, m, c, geo[1], S)
    p0, p1, _ = _ramps(m, c, geo[2], geo[3], ntk)
    return i0 + p0, i1 + p1, x0, x1, m0, m1


@numba.njit(cache=True, error_model="numpy")
def _cond(
    f: Any, df: Any, r: Any, dr: Any, ntk: bool, m: float, c: float, geo: Any, S: Any, whole: bool
) -> Any:
    """The outer rule's inner expectation at m: of f (whole) or of the ramps of geo alone."""
    if not whole:
        p0, p1, _ = _ramps(m, c, geo[2], geo[3], ntk)
        return p0, p1, 0.0, 0.0, 0.0, 0.0
    if c > 0.0:
        return _given(r, dr, ntk, m, c, geo, S)
    return f(m), (df(m) if ntk else 0.0), 0.0, 0.0, 0.0, 0.0


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
    """E[f(u) f(v)], E[df(u) df(v)] for u = a z1, v = b z1 + c z2 (a > 0); their estimates.

    Each map's relative error estimate counts its own inner estimates only; it is relative
    to the integral of the magnitude of its outer integrand, returned last (each map's).
    The inner expectations are _given's (f = r + ramps), or with ``whole`` false those of
    the ramps alone (E[f(u) p(v)]); the outer rule splits at geo[0] over b (where the
    inner expectation has a smoothed kink) and, where f is ``kinked`` there, over a.
    S is scratch: its first block of rows the inner rule's, the second (_OUT) the outer's.
    """
    n = dp.add_point(S, _OUT, 0, 0.0)
    for k in geo[0]:
        if kinked:
            n = dp.add_point(S, _OUT, n, k / a)
        if c < _BROAD * abs(b):  # (a kink smoothed over more than _BROAD is no split point)
            n = dp.add_point(S, _OUT, n, k / b)
    npc = dp.pieces(S, _OUT, n, _finest(a, b, c))
    h = dp.H0
    x0 = x1 = -1.0
    w0 = w1 = a0 = a1 = 0.0  # the inner rules' error estimates, weighted as the sums weigh them
    for level in range(dp.LEVELS + 1):
        for i in range(npc):
            if S[_OUT + dp.EST, i] >= 0.0:
                continue  # (converged)
            kind, p = int(S[_OUT + dp.KIND, i]), S[_OUT + dp.P, i]
            q, l = S[_OUT + dp.Q, i], S[_OUT + dp.L, i]
            first, stop, stride = dp.sweep(S, _OUT, i, level)
            s0 = s1 = b0 = b1 = 0.0
            for j in range(first, stop, stride):
                z, w = dp.node(kind, p, q, l, j * h)
                if not abs(z) < ZMAX:
                    continue
                w *= math.exp(-0.5 * z * z)
                fu = f(a * z)
                gu = df(a * z) if ntk else 0.0
                if fu == 0.0 and gu == 0.0:
                    continue
                i0, i1, e0, e1, m0, m1 = _cond(f, df, r, dr, ntk, b * z, c, geo, S, whole)
                w0 += w * abs(fu) * e0 * m0  # (each map's inner estimate weighs that map)
                w1 += w * abs(gu) * e1 * m1
                s0 += w * fu * i0
                s1 += w * gu * i1
                b0 += w * abs(fu * i0)
                b1 += w * abs(gu * i1)
            S[_OUT + dp.S0, i] += s0
            S[_OUT + dp.S1, i] += s1
            S[_OUT + dp.B0, i] += b0
            S[_OUT + dp.B1, i] += b1
            a0 += b0
            a1 += b1
        x0, x1 = dp.settle(S, _OUT, npc, h, level)
        if x0 >= 0.0:
            break
        h *= 0.5
    q0, q1, m0, m1 = dp.total(S, _OUT, npc)
    x0 += w0 / max(a0, 1e-300)
    x1 += w1 / max(a1, 1e-300)
    k = _INV_SQRT_2PI
    return q0 * k, q1 * k, x0, x1, m0 * k, m1 * k


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
    """Both maps of one covariance (the variances may be 0), and the larger estimate.

    An estimate above _RESCALE is restated relative to the Cauchy-Schwarz scale
    sqrt(E[f(u)^2] E[f(v)^2]) (the diagonals: 1-D rules), never larger than the integral
    of the magnitude it was relative to: where E[f'(v) | u] cancels (f' odd, as for
    max(min(u, 1), -1) tanh(u)), that integral is 2.6e-7 of the scale at (1e4, 0.3, 1e4),
    and an estimate of 3e-17 of the scale read as 1.2e-10.
    """
    if s11 > 0.0:
        a = math.sqrt(s11)
        c = math.sqrt(max(det, 0.0) / s11)
        e, g, x0, x1, m0, m1 = _outer(f, df, r, dr, ntk, a, s12 / a, c, geo, S)
        if max(x0, x1) > _RESCALE and s22 > 0.0:
            sv = math.sqrt(s22)
            du = _outer(f, df, r, dr, ntk, a, a, 0.0, geo, S)
            dv = _outer(f, df, r, dr, ntk, sv, sv, 0.0, geo, S)
            x0 = min(x0, x0 * m0 / max(math.sqrt(abs(du[0] * dv[0])), 1e-300))
            x1 = min(x1, x1 * m1 / max(math.sqrt(abs(du[1] * dv[1])), 1e-300))
        return e, g, max(x0, x1)
    f0 = f(0.0)
    g0 = df(0.0) if ntk else 0.0
    if s22 > 0.0:  # u = 0
        i0, i1, x0, x1, _, _ = _given(r, dr, ntk, 0.0, math.sqrt(s22), geo, S)
        return f0 * i0, g0 * i1, max(x0, x1)
    return f0 * f0, g0 * g0, 0.0


@numba.njit(cache=True, error_model="numpy")
def _split_sum(
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
    """Both maps for f = p + r (r smooth, s11, s22 > 0): three terms, two of them 1-D.

    E[f f] = E[f(u) p(v)] + E[p(u) r(v)] + E[r(u) r(v)]: the first two are 1-D rules over
    the closed-form E[p | .] (conditioned on u, then on v), split at the corners; only
    the last is 2-D, on the smooth r, without split points. The same for f'. Returns the
    two sums, their absolute error estimates (each term's, relative to itself, times its
    size, and the rounding of the sum) and the sums of the terms' magnitudes.
    """
    d = max(det, 0.0)
    a = math.sqrt(s11)
    c1 = math.sqrt(d / s11)
    e1, g1, x1, y1, _, _ = _outer(f, df, r, dr, ntk, a, s12 / a, c1, geo, S, False)
    sv = math.sqrt(s22)
    by_v = (geo[2], geo[1], geo[2], geo[3])
    c2 = math.sqrt(d / s22)
    e2, g2, x2, y2, _, _ = _outer(r, dr, r, dr, ntk, sv, s12 / sv, c2, by_v, S, False, False)
    e3, g3, x3 = smooth_pair(r, dr, ntk, a, s12 / a, math.sqrt(d / s11))
    n0 = abs(e1) + abs(e2) + abs(e3)
    n1 = abs(g1) + abs(g2) + abs(g3)
    a0 = x1 * abs(e1) + x2 * abs(e2) + x3 * abs(e3) + _ROUND * n0
    a1 = y1 * abs(g1) + y2 * abs(g2) + x3 * abs(g3) + _ROUND * n1
    return e1 + e2 + e3, g1 + g2 + g3, a0, a1, n0, n1


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
    """Both maps of one covariance for f = p + r (see _split_sum), and the estimate.

    Where the terms cancel (their magnitudes more than _CANCEL times the Cauchy-Schwarz
    scale sqrt(E[f(u)^2] E[f(v)^2]), from the diagonals: 1-D rules), the rule on f itself
    (split at its kinks) answers instead: for two corners r = u + ... grows like u, and
    at variance 1e4 the terms are 1e4 times the scale (E[r r] ~ s12), so rounding alone
    left 4e-13 to 9.4e-13 of the scale (2.4e-12 of the value at variance 2e4), which no
    term's estimate counts (each is relative to its own term).
    """
    if not (s11 > 0.0 and s22 > 0.0):
        return _one(f, df, r, dr, ntk, s11, s12, s22, det, geo, S)
    e, g, a0, a1, n0, n1 = _split_sum(f, df, r, dr, ntk, s11, s12, s22, det, geo, S)
    x = a0 / max(n0, 1e-300)
    if ntk:
        x = max(x, a1 / max(n1, 1e-300))
    if n0 > _CANCEL * abs(e) or (ntk and n1 > _CANCEL * abs(g)):
        du = _split_sum(f, df, r, dr, ntk, s11, s11, s11, 0.0, geo, S)
        dv = _split_sum(f, df, r, dr, ntk, s22, s22, s22, 0.0, geo, S)
        c0 = math.sqrt(abs(du[0] * dv[0]))
        c1 = math.sqrt(abs(du[1] * dv[1]))
        if n0 > _CANCEL * c0 or (ntk and n1 > _CANCEL * c1):
            whole = (geo[0], geo[0], geo[2][:0], geo[3][:0])
            return _one(f, df, f, df, ntk, s11, s12, s22, det, whole, S)
        x = a0 / max(c0, 1e-300)
        if ntk:
            x = max(x, a1 / max(c1, 1e-300))
    return e, g, x


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
    S = np.empty((2 * dp.ROWS, npts + 1))
    for i in range(s11.size):
        if geo[2].size:
            e[i], ed[i], est[i] = _split_one(
                f, df, r, dr, ntk, s11[i], s12[i], s22[i], det[i], geo, S
            )
        else:
            e[i], ed[i], est[i] = _one(f, df, r, dr, ntk, s11[i], s12[i], s22[i], det[i], geo, S)
