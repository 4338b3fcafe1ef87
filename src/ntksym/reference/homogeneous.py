"""The whitened-polar route for piecewise positively homogeneous activations.

ReLU, leaky ReLU, abs, step, sign and monomials: the radial integral in closed form, the
angular one by sectors, accurate as |rho| -> 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mpmath
import sympy as sp

from ntksym.activations import Activation, u
from ntksym.errors import ActivationError

__all__ = [
    "sympy_to_mpf",
    "Homogeneous",
    "analysis",
    "pointwise",
    "homogeneous_dual",
    "half_moment",
]


mp = mpmath.mp


# --------------------------------------------------------------------------- activation analysis
_T = sp.Symbol("t", positive=True)


def sympy_to_mpf(x: sp.Expr) -> Any:
    """A SymPy number as mpf at the working precision (rationals exactly)."""
    if x.is_Rational:
        return mpmath.mpf(int(x.p)) / int(x.q)
    if isinstance(x, sp.Float):
        return mpmath.mpf(x._mpf_)
    return mpmath.mpf(sp.Float(x.evalf(mp.dps + 5), mp.dps + 5)._mpf_)


@dataclass(frozen=True)
class Homogeneous:
    """``f(t) = cp t^ap`` and ``f(-t) = cm t^am`` for every ``t > 0`` (SymPy numbers)."""

    cp: sp.Expr
    ap: sp.Expr
    cm: sp.Expr
    am: sp.Expr


def _homogeneous_parts(expr: sp.Expr) -> Homogeneous | None:
    """Recognise a piecewise positively homogeneous function of ``u``, else None."""
    if expr.has(sp.DiracDelta):
        return None
    parts = []
    for side in (1, -1):
        try:
            e = sp.expand(sp.powsimp(expr.subs(u, side * _T)))
            coeff, degree = e.as_coeff_exponent(_T)
        except (TypeError, ValueError, NotImplementedError):  # pragma: no cover - defensive
            return None
        if coeff.has(_T) or degree.has(_T) or not (coeff.is_number and degree.is_number):
            return None
        if coeff.is_real is not True or degree.is_real is not True:
            return None
        if coeff == 0:
            degree = sp.Integer(0)
        if degree < 0:
            return None
        parts += [coeff, degree]
    return Homogeneous(*parts)


_ANALYSIS_CACHE: dict[tuple[Activation, bool], Homogeneous | None] = {}


def analysis(act: Activation, derivative: bool) -> Homogeneous | None:
    """The homogeneous parts of sigma (or sigma'), cached; None if it is not homogeneous."""
    key = (act, derivative)
    if key not in _ANALYSIS_CACHE:
        expr = act.derivative if derivative else act.expr
        _ANALYSIS_CACHE[key] = _homogeneous_parts(expr)
    return _ANALYSIS_CACHE[key]


def _real(value: Any, at: Any, act: Activation) -> Any:
    if isinstance(value, mpmath.mpf):
        return value
    if isinstance(value, mpmath.mpc):
        if value.imag == 0:
            return value.real
        raise ActivationError(f"{act.name!r} is not real at u = {mpmath.nstr(at, 8)}: {value}")
    if isinstance(value, (int, float)):
        return mpmath.mpf(value)
    try:
        return mpmath.mpf(value)
    except (TypeError, ValueError):
        raise ActivationError(
            f"{act.name!r} gave a non-numeric value at u = {mpmath.nstr(at, 8)}: {value!r}"
        ) from None


def pointwise(act: Activation, derivative: bool) -> Callable[[Any], Any]:
    """A checked mpmath evaluator of sigma or sigma' (always returns an mpf)."""
    f = act.mpmath_derivative if derivative else act.mpmath

    def g(x: Any) -> Any:
        try:
            val = f(x)
        except (ValueError, ZeroDivisionError, OverflowError) as exc:
            raise ActivationError(
                f"{act.name!r} cannot be evaluated at u = {mpmath.nstr(x, 8)}: {exc}"
            ) from None
        return _real(val, x, act)

    return g


# --------------------------------------------------------------------------- homogeneous route
def _radial(a: Any, b: Any) -> Any:
    """(1/2pi) int_0^inf r^(a+b+1) e^(-r^2/2) dr."""
    s = a + b
    return mpmath.power(2, s / 2) * mpmath.gamma(s / 2 + 1) / (2 * mpmath.pi)


def _sector(a: Any, b: Any, gamma: Any) -> tuple[Any, Any]:
    """int_0^gamma sin(p)^a sin(gamma - p)^b dp and its quadrature error estimate."""
    if gamma == 0:
        return mpmath.mpf(0), mpmath.mpf(0)
    if a == 0 and b == 0:
        return +gamma, mpmath.mpf(0)

    def f(p: Any) -> Any:
        return mpmath.sin(p) ** a * mpmath.sin(gamma - p) ** b

    val, err = mpmath.quad(f, [0, gamma / 2, gamma], error=True)
    return val, err


def homogeneous_dual(h: Homogeneous, a11: Any, a12: Any, a22: Any, det: Any) -> tuple[Any, Any]:
    """E[f(u) f(v)] for a piecewise homogeneous f by whitened polar integration."""
    cp, cm = sympy_to_mpf(h.cp), sympy_to_mpf(h.cm)
    ap, am = sympy_to_mpf(h.ap), sympy_to_mpf(h.am)
    sqdet = mpmath.sqrt(det)
    theta = mpmath.atan2(sqdet, a12)  # angle between the inputs, in [0, pi]
    theta_c = mpmath.atan2(sqdet, -a12)  # pi - theta, without cancellation
    # (sign of u, sign of v, angular width)
    sectors = ((1, -1, theta), (-1, 1, theta), (1, 1, theta_c), (-1, -1, theta_c))
    coef = {1: cp, -1: cm}
    deg = {1: ap, -1: am}
    total = mpmath.mpf(0)
    error = mpmath.mpf(0)
    for su, sv, width in sectors:
        c = coef[su] * coef[sv]
        if c == 0:
            continue
        a, b = deg[su], deg[sv]
        scale = c * _radial(a, b) * _pow(a11, a / 2) * _pow(a22, b / 2)
        val, err = _sector(a, b, width)
        total += scale * val
        error += abs(scale) * err
    return total, error


def _pow(x: Any, e: Any) -> Any:
    return mpmath.mpf(1) if e == 0 else mpmath.power(x, e)


def half_moment(h: Homogeneous, var: Any) -> Any:
    """E[f(sqrt(var) z)], z ~ N(0, 1); E[|z|^a; z > 0] = 2^(a/2) Gamma((a+1)/2) / (2 sqrt(pi))."""
    total = mpmath.mpf(0)
    for c, a in ((h.cp, h.ap), (h.cm, h.am)):
        c, a = sympy_to_mpf(c), sympy_to_mpf(a)
        if c != 0:
            moment = (
                mpmath.power(2, a / 2) * mpmath.gamma((a + 1) / 2) / (2 * mpmath.sqrt(mpmath.pi))
            )
            total += c * _pow(var, a / 2) * moment
    return total
