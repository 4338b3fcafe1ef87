"""Pieces of a double-exponential rule over split points, each refined until it converges.

A 1-D Gaussian expectation split at points where its integrand may not be smooth is a sum
over pieces: the two outermost are half-lines, integrated by the exp-sinh map
``z = p +- l exp(t - exp(-t))``, those between split points by tanh-sinh (Takahasi & Mori,
Publ. RIMS 9, 1974; Bailey, Jeyabalan & Li, Experimental Mathematics 14, 2005). The step in
``t`` is halved (old nodes kept) **piece by piece**: a piece stops when its own last two
rules agree (:func:`settle`), the others go on.

Why per piece: the pieces converge at different rates. A piece that ends at a smoothed
kink of width 1e-6 (the inner expectation near ``|rho| = 1``) gains its digits slowly,
about a factor 4 per halving until the step resolves the kink, while the large smooth
pieces square their error per halving. Judged on the sum, the estimate ``gap^2 / prev``
took its ``prev`` from the smooth pieces' first gap and its ``gap`` from the slow piece:
it claimed 5e-16 where the error was 1.2e-10 (``max(min(u, 1), -1) + 0.1 tanh(u)``, its
derivative map at ``(2, -(1 - 1e-12), 0.5)`` without the split). Each piece's estimate
comes from its own gaps now, and the sum's estimate is the sum of theirs.

Each map keeps its own estimate: the two maps, like the pieces, converge at different
rates and on different scales (the derivative map of a saturating activation, far from
its kinks, is a difference 1 - tanh^2 at the level of rounding, 1e-14 of the value map),
so a relative estimate of one map, applied to the other, says nothing about it: the
inner expectations of ``max(min(u, 1), -1)*tanh(u)`` at variance 1e4 gave the value
map an estimate of 8e-8 (its error 3e-16) from their derivative maps' 1.6e-5 at
``|u| = 16``, where ``sigma'(u) ~ 1e-14``.

Scratch layout: a block of :data:`ROWS` rows of ``S`` from row ``base``: the split points,
the pieces (kind, start, end, scale) and their running sums, last values, last gap and
estimate (negative while the piece is refined), and the estimate of each map.

Numba's disk cache of a module that calls these functions is keyed on that module's own
source: after editing this one, clear the ``__pycache__`` entries of
:mod:`ntksym.dual.kinked_rule` (its compiled code keeps the old functions and constants).
"""

# The loops index small scratch arrays; short names follow the formulas.
# ruff: noqa: N803

from __future__ import annotations

import math
from typing import Any

import numba

__all__ = ["ZMAX", "ROWS", "node", "span", "sweep", "add_point", "pieces", "settle", "total"]

#: Nodes with |z| beyond this are dropped (the standard normal density is < 1e-22 there).
ZMAX = 10.0
H0 = 0.5  # first step in t
LEVELS = 6  # halvings: finest step 1/128
_HALF_PI = 0.5 * math.pi
_TOL = 1e-8  # agreement of successive rules, relative to the integral of |g|
_EST = 1e-14  # and their estimated error (see _done)
_FLOOR = 8.9e-16  # rounding: 4 eps relative to the integral of |g|
_T_FIN = 3.2  # tanh-sinh: |t| <= 3.2 reaches within 2e-17 of the ends
_T_LO = -3.7  # half-lines: exp(t - exp(-t)) < 4e-18 below

# rows of a block (offsets from its base): split points, pieces, raw sums of w g, w g',
# w |g|, w |g'| over the nodes so far, the last values (step times the sums), the last gaps
PTS, KIND, P, Q, L = 0, 1, 2, 3, 4
S0, S1, B0, B1, Q0, Q1, M0, M1, GAP0, GAP1, EST, E0, E1 = range(5, 18)
ROWS = 18


@numba.njit(cache=True, error_model="numpy")
def node(kind: int, p: float, q: float, l: float, t: float) -> tuple[float, float]:  # noqa: E741
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
def span(kind: int, p: float, l: float) -> tuple[int, int]:  # noqa: E741
    """Indices of the first and last level-0 nodes of a piece (last < first: empty)."""
    if kind == 0:
        n = int(math.ceil(_T_FIN / H0))
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
    return int(math.floor(_T_LO / H0)), int(math.ceil(hi / H0))


@numba.njit(cache=True, error_model="numpy")
def sweep(S: Any, base: int, i: int, level: int) -> tuple[int, int, int]:
    """range(first, stop, stride): indices (times the step) of the nodes level adds to piece i."""
    lo, hi = span(int(S[base + KIND, i]), S[base + P, i], S[base + L, i])
    if level == 0:
        return lo, hi + 1, 1
    step = 1 << level
    return lo * step + 1, hi * step, 2


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
def add_point(S: Any, base: int, n: int, x: float) -> int:
    """Insert x into the sorted split points S[base, :n] if inside the window and new; new n."""
    pts = S[base + PTS]
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
def pieces(S: Any, base: int, n: int, small: float) -> int:
    """Pieces over the split points (at least one): half-lines and between; sums cleared."""
    pts = S[base + PTS]
    for i in range(n + 1):
        S[base + KIND, i] = 0.0
        S[base + P, i] = pts[i - 1] if i > 0 else pts[0]
        S[base + Q, i] = pts[i] if i < n else 0.0
        S[base + L, i] = 1.0
        for r in range(S0, ROWS):
            S[base + r, i] = 0.0
        S[base + EST, i] = -1.0
    S[base + KIND, 0] = -1.0
    S[base + Q, 0] = 0.0
    S[base + L, 0] = _scale(pts[0], small)
    S[base + KIND, n] = 1.0
    S[base + L, n] = _scale(pts[n - 1], small)
    return n + 1


@numba.njit(cache=True, error_model="numpy")
def _done(gap: float, prev: float, level: int) -> bool:
    """Whether a rule whose last two gaps (relative) are prev, gap has converged.

    Its error is estimated as gap^2 / prev (the rule squares its error per halving once it
    converges geometrically fast, and shrinks it by gap / prev per halving in any case).
    """
    if gap <= _FLOOR:
        return True
    return level > 1 and gap <= _TOL and gap * gap <= _EST * prev


@numba.njit(cache=True, error_model="numpy")
def total(S: Any, base: int, npc: int) -> tuple[float, float, float, float]:
    """Sums over the pieces of their last values and of their integrals of |g|, |g'|."""
    q0 = q1 = m0 = m1 = 0.0
    for i in range(npc):
        q0 += S[base + Q0, i]
        q1 += S[base + Q1, i]
        m0 += S[base + M0, i]
        m1 += S[base + M1, i]
    return q0, q1, m0, m1


@numba.njit(cache=True, error_model="numpy")
def _judge(S: Any, row: int, i: int, gap: float, level: int) -> float:
    """One map's gap on one piece: its estimate if converged (see :func:`_done`), else -1."""
    prev = S[row, i]
    S[row, i] = gap
    if level == 0:
        return -1.0
    if _done(gap, prev, level):
        return min(gap, gap * gap / max(prev, 1e-300))
    return gap if level == LEVELS else -1.0


@numba.njit(cache=True, error_model="numpy")
def settle(S: Any, base: int, npc: int, h: float, level: int) -> tuple[float, float]:
    """After a level with step h: new values of the active pieces, and which have converged.

    A piece's gap in each map is the change of its value relative to the integral of |g|
    (|g'|) over all pieces; it has converged when both maps have, each judged on its own
    gaps (the two maps, like the pieces, converge at different rates: judged together, the
    faster one's first gap would vouch for the slower one's last), each map's estimate
    gap^2 / prev (at most gap). On the last level a piece that has not converged keeps
    its last gaps. Returns each map's sum of the pieces' estimates (relative to the
    integral of |g|, |g'|) once every piece has converged, else (-1, -1).
    """
    for i in range(npc):
        if S[base + EST, i] < 0.0:
            S[base + M0, i] = h * S[base + B0, i]
            S[base + M1, i] = h * S[base + B1, i]
    _, _, m0, m1 = total(S, base, npc)
    x0 = x1 = 0.0
    done = True
    for i in range(npc):
        if S[base + EST, i] < 0.0:
            v0, v1 = h * S[base + S0, i], h * S[base + S1, i]
            e0 = _judge(S, base + GAP0, i, abs(v0 - S[base + Q0, i]) / max(m0, 1e-300), level)
            e1 = _judge(S, base + GAP1, i, abs(v1 - S[base + Q1, i]) / max(m1, 1e-300), level)
            S[base + Q0, i], S[base + Q1, i] = v0, v1
            if e0 >= 0.0 and e1 >= 0.0:
                S[base + E0, i], S[base + E1, i] = e0, e1
                S[base + EST, i] = max(e0, e1)
        done = done and S[base + EST, i] >= 0.0
        x0 += S[base + E0, i]
        x1 += S[base + E1, i]
    return (x0, x1) if done else (-1.0, -1.0)
