"""Activations integrated by the Gaussian moment generating function.

exp, sin, cos and the Gaussian bump (registered, with stable float64 and SymPy layer maps),
and any sum of ``c u**j exp(a u - p u**2/2)`` typed as an expression (sinh, cosh, ...).
"""

from __future__ import annotations

import sympy as sp

from ntksym.activations import Activation
from ntksym.dual import derive as _d
from ntksym.dual.family import DualMaps, Family, NumericFn, lambdified, stable_numeric
from ntksym.dual.sources import MGF, MGF_SOURCES
from ntksym.dual.stable import (
    S11,
    S12,
    S22,
    D,
    LayerMap,
    U,
)


def _derive_registered(act: Activation) -> tuple[DualMaps, NumericFn]:
    """exp, sin, cos, gaussian: both maps by the Gaussian MGF, stable float64 forms."""
    nngp = _d.exp_quadratic_expectation(act.expr, act.expr)
    ntk = _d.exp_quadratic_expectation(act.derivative, act.derivative)
    source = MGF_SOURCES.get(str(act.registered_base), MGF)
    maps = DualMaps(act, nngp, ntk, "derived: Gaussian MGF", source, True)
    return maps, stable_numeric(FAMILY.stable[str(act.registered_base)]())


def _smooth_expression(act: Activation) -> bool:
    """Whether ``act`` has no kinks, so that the MGF form may apply."""
    return not act.expr.has(sp.Max, sp.Min, sp.Abs, sp.Heaviside, sp.sign, sp.Piecewise)


def _derive_expression(act: Activation) -> tuple[DualMaps, NumericFn] | None:
    """Sums of ``c u**j exp(a u - p u**2/2)``: both maps by the Gaussian MGF, or None."""
    nngp_d = _d.exp_quadratic_expectation(act.expr, act.expr, with_det=True)
    ntk_d = _d.exp_quadratic_expectation(act.derivative, act.derivative, with_det=True)
    if nngp_d is None or ntk_d is None:
        return None
    sub = {_d.DET: _d.S11 * _d.S22 - _d.S12**2}
    nngp, ntk = sp.simplify(nngp_d.subs(sub)), sp.simplify(ntk_d.subs(sub))
    maps = DualMaps(act, nngp, ntk, "derived: Gaussian MGF", MGF, True)
    return maps, lambdified(nngp_d, ntk_d)


def _half_sum() -> sp.Expr:
    return (S11 + S22) / 2


def _distances() -> tuple[sp.Expr, sp.Expr]:
    """``S11 + S22 - 2 S12`` and ``S11 + S22 + 2 S12`` (the variances of u - v and u + v).

    Each is ``U^2 + 2 (M -+ S12)`` (``U = sqrt(S11) - sqrt(S22)``, see :data:`U`) with
    ``M - S12 = D / (M + S12)`` where ``S12 > 0`` (and symmetrically), so a near-parallel
    pair at large variance gets its small distance from the carried determinant and the
    accurate root gap instead of from a difference of two large rounded numbers.
    """
    m = sp.sqrt(S11 * S22)
    sq = U**2
    minus = sp.Piecewise((sq + 2 * D / (m + S12), S12 > 0), (S11 + S22 - 2 * S12, True))
    plus = sp.Piecewise((sq + 2 * D / (m - S12), S12 < 0), (S11 + S22 + 2 * S12, True))
    return minus, plus


def exp() -> LayerMap:
    """The exponential: ``E[e^u e^v] = e^((S11 + S22)/2 + S12)`` (Gaussian moment generating fn).

    sigma' = sigma, so both maps are the same; the exponent is half the variance of
    u + v (:func:`_distances`). The determinant is not used after that, so the next one
    is formed directly.
    """
    _minus, plus = _distances()
    e = sp.exp(plus / 2)
    return LayerMap(e, e, None, "closed form")


def _sinh_part() -> sp.Expr:
    """``E[sin u sin v] = exp(-(S11+S22)/2) sinh(S12)`` (Gaussian MGF), overflow-safe.

    ``sinh`` itself for ``|S12| < 1`` (no cancellation), else
    ``(exp(-|u - v|^2/2) - exp(-|u + v|^2/2))/2`` in terms of the variances of u -+ v
    (:func:`_distances`), which cancels by at most ``e^-2`` and never overflows.
    """
    minus, plus = _distances()
    direct = sp.exp(-_half_sum()) * sp.sinh(S12)
    split = (sp.exp(-minus / 2) - sp.exp(-plus / 2)) / 2
    return sp.Piecewise((direct, sp.Abs(S12) < 1), (split, True))


def _cosh_part() -> sp.Expr:
    """``E[cos u cos v] = exp(-(S11+S22)/2) cosh(S12)``, as a sum of two exponentials."""
    minus, plus = _distances()
    return (sp.exp(-minus / 2) + sp.exp(-plus / 2)) / 2


def sin() -> LayerMap:
    """sin: ``E[sin u sin v] = e^{-(S11+S22)/2} sinh S12``, ``E[cos u cos v]`` with cosh.

    From the Gaussian moment generating function (as in Neural Tangents' stax.Sin). After one
    layer every variance is at most ``W2 + B2``, so the next determinant is formed
    directly.
    """
    return LayerMap(_sinh_part(), _cosh_part(), None, "closed form")


def cos() -> LayerMap:
    """cos: ``E[cos u cos v] = e^{-(S11+S22)/2} cosh S12`` and ``E[sin u sin v]`` with sinh.

    The mirror image of :func:`sin` (as in Neural Tangents' stax.Cos).
    """
    return LayerMap(_cosh_part(), _sinh_part(), None, "closed form")


def gaussian() -> LayerMap:
    """``exp(-u^2/2)``: ``E = 1/sqrt(q)``, ``E[sigma' sigma'] = S12 / q^(3/2)``.

    With ``q = det(I + Sigma) = 1 + S11 + S22 + D`` (Gaussian moment generating function),
    written with the carried determinant so that nothing cancels. After one layer every
    variance is at most ``W2 + B2``, so the next determinant is formed directly.
    """
    q = 1 + S11 + S22 + D
    return LayerMap(1 / sp.sqrt(q), S12 / q ** sp.Rational(3, 2), None, "closed form")


FAMILY = Family(
    name="mgf",
    members=("exp", "sin", "cos", "gaussian"),
    derive=_derive_registered,
    stable={"exp": exp, "sin": sin, "cos": cos, "gaussian": gaussian},
)

#: The same method for expressions a user types (tried after the polynomials).
EXPRESSIONS = Family(
    name="mgf_expression",
    members=(),
    derive=_derive_expression,
    matches=_smooth_expression,
)
