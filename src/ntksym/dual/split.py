"""A kinked activation as a piecewise-linear part plus a smooth remainder.

Where sigma has corners only (jumps in sigma', none in sigma), it is written
``sigma = p + r`` with ``p(u) = sum_k s_k ramp_k(u)`` (t_k the corners, s_k the jumps of
sigma' there) and ``r = sigma - p``. The ramps point away from 0, ``max(u - t_k, 0)`` for
``t_k >= 0`` and ``max(t_k - u, 0)`` for ``t_k < 0`` (both with slope jump +1 at t_k), so p
vanishes between the corners around 0 and r equals sigma there: with ramps all pointing
right, ``max(min(u, 1), -1)`` would leave ``r = -1 + ...`` and ``p = 1 + ...`` near 0, and the
terms of the rule would cancel (O(1) terms for a map of 1e-5 at variance 1e-4, 7e-12 of its
scale lost to rounding). When r is one analytic expression on the
whole line (each branch of its Piecewise form is the same function), the conditional
expectations of p are closed forms (truncated normal moments) and r needs no split
points, so the rule of :mod:`ntksym.dual.kinked_rule` integrates r with a few dozen
nodes instead of a few hundred per dimension. An activation where r is not smooth
(``max(u, 0)*tanh(u)``: its second derivative jumps) has no split and keeps the
kink-aware rule on sigma itself.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import sympy as sp

from ntksym.activations import Activation
from ntksym.activations.expr import u
from ntksym.dual.kinks import kink_points

__all__ = ["Split", "split_of", "ramp_sum"]

#: Points where p + r is compared with sigma (an independent check of the split).
_CHECK_POINTS = (-3.7, -1.3, -0.41, 0.27, 0.9, 2.2, 5.1)


class Split(NamedTuple):
    """``sigma = sum_k slopes[k] ramp(u, corners[k]) + remainder`` (remainder smooth).

    ``ramp(u, t) = max(u - t, 0)`` for ``t >= 0``, ``max(t - u, 0)`` for ``t < 0``.
    """

    corners: tuple[float, ...]
    slopes: tuple[float, ...]
    remainder: sp.Expr


def _ramp(t: float) -> sp.Expr:
    """The ramp with a slope jump of +1 at t, pointing away from 0 (zero at u = 0)."""
    return sp.Max(u - sp.Float(t), 0) if t >= 0 else sp.Max(sp.Float(t) - u, 0)


def ramp_sum(corners: tuple[float, ...], slopes: tuple[float, ...]) -> sp.Expr:
    """The piecewise-linear part ``sum_k slopes[k] ramp(u, corners[k])`` (see :class:`Split`)."""
    return sp.Add(*(sp.Float(s) * _ramp(t) for t, s in zip(corners, slopes, strict=True)))


def _branch_at(pw: sp.Expr, x: float) -> sp.Expr | None:
    """The expression of the branch of the Piecewise ``pw`` that holds at u = x."""
    if not isinstance(pw, sp.Piecewise):
        return pw
    for expr, cond in pw.args:
        held = cond.subs(u, x) if isinstance(cond, sp.Basic) else cond
        if held is sp.true or held is True:
            return expr
        if held is not sp.false and held is not False:
            return None
    return None


def _folded(expr: sp.Expr) -> sp.Expr:
    return sp.piecewise_fold(expr.rewrite(sp.Piecewise))


def _slope_jumps(act: Activation, corners: tuple[float, ...]) -> tuple[float, ...] | None:
    """sigma'(t+) - sigma'(t-) at each corner, from the branches on either side."""
    pw = _folded(act.expr)
    edges = [-math.inf, *corners, math.inf]
    jumps = []
    for i, t in enumerate(corners):
        left = 0.5 * (t + max(edges[i], t - 1.0))
        right = 0.5 * (t + min(edges[i + 2], t + 1.0))
        lo, hi = _branch_at(pw, left), _branch_at(pw, right)
        if lo is None or hi is None:
            return None
        vlo, vhi = (sp.N(b.subs(u, t)) for b in (lo, hi))
        if not (vlo - vhi).is_zero and abs(float(vlo - vhi)) > 1e-14 * (1 + abs(float(vlo))):
            return None  # a jump in sigma itself
        jumps.append(float(sp.N(sp.diff(hi, u).subs(u, t) - sp.diff(lo, u).subs(u, t))))
    return tuple(jumps)


def _interior_points(corners: tuple[float, ...]) -> list[float]:
    """One point inside each interval between (and beyond) the sorted corners."""
    pts = [corners[0] - 1.0, corners[-1] + 1.0]
    pts += [0.5 * (a + b) for a, b in zip(corners, corners[1:], strict=False)]
    return pts


def _smooth_remainder(r: sp.Expr, corners: tuple[float, ...]) -> sp.Expr | None:
    """The remainder as one expression without Max/Min/Abs/steps, or None where its pieces differ.

    The branch of r's Piecewise form that holds inside each interval between corners is
    taken; r is smooth when they are all the same function.
    """
    pw = _folded(r)
    branches = [_branch_at(pw, x) for x in _interior_points(corners)]
    if any(b is None for b in branches):
        return None
    first = sp.simplify(branches[0])
    for other in branches[1:]:
        if sp.simplify(other - first) != 0:
            return None
    kinky = (sp.Max, sp.Min, sp.Abs, sp.Heaviside, sp.sign, sp.Piecewise, sp.DiracDelta)
    if first.atoms(*kinky) or not first.free_symbols <= {u}:
        return None
    return first


@functools.lru_cache(maxsize=32)
def _split_cached(name: str, expr: sp.Expr) -> Split | None:
    act = Activation(name, expr)
    corners = kink_points(act)
    if not corners or act.has_distributional_derivative:
        return None
    slopes = _slope_jumps(act, corners)
    if slopes is None:
        return None
    remainder = _smooth_remainder(act.expr - ramp_sum(corners, slopes), corners)
    if remainder is None:
        return None
    whole = sp.lambdify(u, act.expr, "math")
    part = sp.lambdify(u, ramp_sum(corners, slopes) + remainder, "math")
    for x in _CHECK_POINTS:
        want, got = float(whole(x)), float(part(x))
        if not abs(got - want) <= 1e-13 * (1.0 + abs(want)):
            return None  # (the symbolic steps above disagree with sigma: no split)
    return Split(corners, slopes, remainder)


def split_of(act: Activation) -> Split | None:
    """The split ``sigma = p + r`` of a kinked activation, or None where there is none.

    Args:
        act: The activation.

    Returns:
        The corners, the slope jumps and the smooth remainder, checked against sigma at
        a few points; None when sigma has no corner, a jump in value, a Dirac delta
        derivative, or a remainder that is not one smooth expression.
    """
    return _split_cached(act.name, act.expr)
