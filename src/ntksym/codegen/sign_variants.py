"""A layer map specialised to the sign of the covariance ``S12``, for cheaper kernels.

Past the first layer most pairs have ``S12 > 0`` (always, for ReLU-like activations), and
random inputs give both signs at the first activation. The generated Numba kernels run
:func:`positive_variant` for a row whose covariances are all positive and, in a row with
both signs, :func:`positive_variant` where ``S12 > 0`` and :func:`negative_variant`
elsewhere, in one loop (docs/performance.md, session 14). Each variant drops the branches of
a ``Piecewise`` that SymPy decides under its sign and writes each ``atan2`` whose quadrant
the sign decides with the first-quadrant :class:`~ntksym.dual.stable.Atan2Q`: exact
identities, so the values differ from the general map by rounding only.
"""

from __future__ import annotations

import functools

import sympy as sp

from ntksym.codegen.shared_xreplace import shared_xreplace
from ntksym.dual.stable import S12, Atan2Q

__all__ = ["negative_variant", "positive_variant"]

#: Stand-ins for S12 under S12 > 0, and for -S12 under S12 <= 0.
_S12_POS = sp.Symbol("S12_pos", positive=True)
_S12_NEG = sp.Symbol("S12_neg", nonnegative=True)


def _specialise(expr: sp.Expr, to: sp.Expr, stand: sp.Symbol, back: sp.Expr) -> sp.Expr:
    """``expr`` under the sign that ``S12 -> to`` states, mapped back by ``stand -> back``.

    The branches and ``atan2`` quadrants that the sign decides are resolved. Where ``S12``
    may be 0 (``stand`` not positive), ``atan2``'s ``x`` may be 0 too.
    """
    axis = not stand.is_positive

    def quadrant(e: sp.Expr) -> sp.Expr:
        y, x = e.args
        ys, xs = y.xreplace({S12: to}), x.xreplace({S12: to})
        if ys.is_nonnegative and (xs.is_positive or (axis and xs.is_nonnegative)):
            return Atan2Q(y, x)
        if ys.is_nonnegative and (xs.is_negative or (axis and xs.is_nonpositive)):
            return sp.pi - Atan2Q(y, -x)
        return e

    hold = sp.Function("atan2_hold")  # keeps SymPy from rewriting atan2(y, S12) again

    def convert(e: sp.Expr) -> sp.Expr:
        q = quadrant(e)
        return hold(*q.args) if isinstance(q, sp.atan2) else q

    out = expr.replace(lambda e: isinstance(e, sp.atan2), convert)
    # (xreplace, not subs: a symbol for a symbol; the same result, without subs's
    # comparisons of every branch)
    out = shared_xreplace(shared_xreplace(out, {S12: to}), {stand: back})
    return out.replace(lambda e: isinstance(e, hold), lambda e: sp.atan2(*e.args))


@functools.lru_cache(maxsize=64)
def positive_variant(expr: sp.Expr) -> sp.Expr:
    """``expr`` specialised to a positive covariance ``S12 > 0``.

    ``atan2(y, x)`` with ``y >= 0, x > 0`` becomes ``Atan2Q(y, x)``, and ``atan2(y, -x)``
    becomes ``pi - Atan2Q(y, x)``. Memoised: the fused module of a network prints a
    carrying activation's maps twice, with and without the determinant.
    """
    return _specialise(expr, _S12_POS, _S12_POS, S12)


@functools.lru_cache(maxsize=64)
def negative_variant(expr: sp.Expr) -> sp.Expr:
    """``expr`` specialised to ``S12 <= 0``.

    ``atan2(y, -S12)`` with ``y >= 0`` becomes ``Atan2Q(y, -S12)`` and ``atan2(y, S12)``
    becomes ``pi - Atan2Q(y, -S12)``; ``Atan2Q`` is then also taken on the axis ``x = 0``
    (the generated ``_atan2q`` gives ``pi/2`` there, and 0 at ``(0, 0)``).
    """
    return _specialise(expr, -_S12_NEG, _S12_NEG, -S12)
