"""High-precision mpmath references for the dual kernels and the NTK recursion.

Everything here is computed in mpmath at a chosen number of decimal digits
(``dps``) and never relies on a closed-form dual kernel unless asked to
(``method="closed_form"``, or ``"auto"`` when one exists). It is the referee
against which the closed forms of :mod:`ntksym.dual` and the generated float64
kernels are checked.

The dual kernel ``E[sigma(u) sigma(v)]`` for ``(u, v) ~ N(0, [[s11, s12], [s12, s22]])``
is computed by one of two quadratures, both written from the definition:

* **Piecewise positively homogeneous activations** (ReLU, leaky ReLU, abs, step,
  sign, identity, monomials, ``max(0,u) + 0.1*u``, ...), i.e. ``sigma(t) = c+ t^a+``
  and ``sigma(-t) = c- t^a-`` for ``t > 0``. After whitening,
  ``u = sqrt(s11) r cos(phi)`` and ``v = sqrt(s22) r cos(phi - theta)`` with
  ``theta = atan2(sqrt(det), s12)`` the angle between the two inputs. The
  radial integral is done exactly,
  ``int_0^inf r^(a+b+1) exp(-r^2/2) dr = 2^((a+b)/2) Gamma((a+b)/2 + 1)``,
  and the angular integral is split at the four angles where ``u`` or ``v``
  changes sign; each of the four sectors is rewritten as
  ``int_0^g sin(p)^a sin(g - p)^b dp`` with ``g = theta`` or ``pi - theta``
  (each computed without cancellation), so the result stays accurate as
  ``|rho| -> 1``.
* **Everything else** (erf, tanh, GELU, user expressions, ...): iterated 1-D
  tanh-sinh quadrature, ``E = E_z1[sigma(u) E_z2[sigma(v)]]`` with
  ``u = sqrt(s11) z1`` and ``v = (s12/sqrt(s11)) z1 + sqrt(det/s11) z2``. Both
  integrals are split where an argument crosses a kink of ``sigma`` or zero.
  The inner quadrature's own error estimate is propagated through the outer one.

Derivative kernels ``E[sigma'(u) sigma'(v)]`` use the same two routes with
``sigma'``. Step-like activations (piecewise constant with a jump ``J`` at 0,
e.g. step and sign) have ``sigma' = J delta(u)``; for them the value is
``J^2 p(0, 0)`` with ``p(0, 0) = 1 / (2 pi sqrt(det))`` the Gaussian density at
the origin, which is the definition of the expectation, not a derived formula.

The determinant ``det = s11 s22 - s12^2`` is always formed exactly from the
(converted) inputs, so ``1 - rho^2 = det / (s11 s22)`` keeps its digits for
nearly parallel inputs.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np
import sympy as sp

from ntksym.activations import Activation, get_activation, u
from ntksym.errors import ActivationError, InputError, NoClosedFormError, NTKSymError

__all__ = [
    "QuadratureError",
    "Recursion",
    "dual",
    "dual_closed_form",
    "dual_quadrature",
    "kernel",
    "recursion",
]

mp = mpmath.mp

#: Extra decimal digits carried internally on top of the requested ``dps``.
GUARD_DIGITS = 15
#: Extra digits requested from each dual kernel inside the recursion.
LAYER_GUARD_DIGITS = 5
MIN_DPS = 15
MAX_DPS = 1000
METHODS = ("auto", "quadrature", "closed_form")

ActivationLike = str | Activation | sp.Expr


class QuadratureError(NTKSymError, ArithmeticError):
    """A quadrature whose error estimate is too large for the requested precision."""


# --------------------------------------------------------------------------- input checks
def _as_mpf(value: Any, what: str) -> mpmath.mpf:
    """Convert a real scalar exactly (floats, ints) or at working precision (strings)."""
    if isinstance(value, bool):
        raise InputError(f"{what} must be a real number, got a bool")
    if isinstance(value, mpmath.mpf):
        x = +value
    elif isinstance(value, (numbers.Integral, np.integer)):
        x = mpmath.mpf(int(value))
    elif isinstance(value, (numbers.Real, np.floating)):
        x = mpmath.mpf(float(value))
    elif isinstance(value, sp.Rational):
        x = mpmath.mpf(int(value.p)) / int(value.q)
    elif isinstance(value, sp.Float):
        x = mpmath.mpf(value._mpf_)
    elif isinstance(value, str):
        try:
            x = mpmath.mpf(value.strip())
        except (ValueError, TypeError):
            raise InputError(f"{what} must be a real number, got the string {value!r}") from None
    else:
        raise InputError(
            f"{what} must be a real number (int, float, mpf or decimal string), got "
            f"{type(value).__name__}"
        )
    if not mpmath.isfinite(x):
        raise InputError(f"{what} must be finite, got {value!r}")
    return x


def _check_dps(dps: Any) -> int:
    if isinstance(dps, bool) or not isinstance(dps, (int, np.integer)):
        raise InputError(f"dps must be an integer, got {dps!r}")
    if not MIN_DPS <= dps <= MAX_DPS:
        raise InputError(f"dps must be between {MIN_DPS} and {MAX_DPS}, got {dps}")
    return int(dps)


def _check_method(method: Any) -> str:
    if method not in METHODS:
        raise InputError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    return method


def _activation(activation: ActivationLike) -> Activation:
    return get_activation(activation)


def _covariance(s11: Any, s12: Any, s22: Any) -> tuple[Any, Any, Any, Any]:
    """Convert and validate a 2x2 covariance; return (s11, s12, s22, det) as mpf.

    ``det`` is formed at twice the working precision, hence exactly for inputs
    that are exact at working precision. A determinant that is negative only by
    rounding (|det| below 10^-(working dps) * max(s11, s22)^2: a covariance carries the
    rounding of the larger variance, even when the other one is exactly 0) is set to 0.
    """
    a = _as_mpf(s11, "s11")
    b = _as_mpf(s12, "s12")
    c = _as_mpf(s22, "s22")
    if a < 0 or c < 0:
        raise InputError(f"variances must be >= 0; got s11={s11!r}, s22={s22!r}")
    with mpmath.workprec(2 * mp.prec + 16):
        det = a * c - b * b
    scale = max(a, c) ** 2
    if det < 0:
        if -det <= scale * mpmath.mpf(10) ** (-(mp.dps - 2)):
            det = mpmath.mpf(0)
        else:
            raise InputError(
                "covariance [[s11, s12], [s12, s22]] is not positive semidefinite: "
                f"s12^2 > s11*s22 (s11={s11!r}, s12={s12!r}, s22={s22!r})"
            )
    return a, b, c, +det


# --------------------------------------------------------------------------- activation analysis
_T = sp.Symbol("t", positive=True)


def _sympy_to_mpf(x: sp.Expr) -> Any:
    if x.is_Rational:
        return mpmath.mpf(int(x.p)) / int(x.q)
    if isinstance(x, sp.Float):
        return mpmath.mpf(x._mpf_)
    return mpmath.mpf(sp.Float(x.evalf(mp.dps + 5), mp.dps + 5)._mpf_)


@dataclass(frozen=True)
class _Homogeneous:
    """``f(t) = cp t^ap`` and ``f(-t) = cm t^am`` for every ``t > 0`` (SymPy numbers)."""

    cp: sp.Expr
    ap: sp.Expr
    cm: sp.Expr
    am: sp.Expr


def _homogeneous_parts(expr: sp.Expr) -> _Homogeneous | None:
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
    return _Homogeneous(*parts)


_ANALYSIS_CACHE: dict[tuple[Activation, bool], _Homogeneous | None] = {}


def _analysis(act: Activation, derivative: bool) -> _Homogeneous | None:
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


def _pointwise(act: Activation, derivative: bool) -> Callable[[Any], Any]:
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


def _homogeneous_dual(h: _Homogeneous, a11: Any, a12: Any, a22: Any, det: Any) -> tuple[Any, Any]:
    cp, cm = _sympy_to_mpf(h.cp), _sympy_to_mpf(h.cm)
    ap, am = _sympy_to_mpf(h.ap), _sympy_to_mpf(h.am)
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


def _half_moment(h: _Homogeneous, var: Any) -> Any:
    """E[f(sqrt(var) z)], z ~ N(0, 1); E[|z|^a; z > 0] = 2^(a/2) Gamma((a+1)/2) / (2 sqrt(pi))."""
    total = mpmath.mpf(0)
    for c, a in ((h.cp, h.ap), (h.cm, h.am)):
        c, a = _sympy_to_mpf(c), _sympy_to_mpf(a)
        if c != 0:
            moment = (
                mpmath.power(2, a / 2) * mpmath.gamma((a + 1) / 2) / (2 * mpmath.sqrt(mpmath.pi))
            )
            total += c * _pow(var, a / 2) * moment
    return total


# --------------------------------------------------------------------------- general route
# Smooth activations: nested trapezoidal rules on the real line. For an integrand
# analytic in a strip around the real axis, the trapezoidal rule with step h converges
# like exp(-c/h), so halving h squares the error; the error of the finest level is
# estimated from the last three levels as mpmath's tanh-sinh rule does. The Gaussian
# weight makes the tails beyond |z| = Z negligible; that is checked, not assumed. When
# the rule does not converge quickly (kinks, very large variances, fast growth), the
# computation falls back to mpmath's adaptive tanh-sinh quadrature, split at the kinks.

#: Finest trapezoid level tried before falling back to tanh-sinh (step 2^-level).
MAX_TRAPEZOID_LEVEL = 6
#: Feature length (in standard deviations) below which nodes are placed by a sinh map.
SINH_MAP_BELOW = mpmath.mpf(1) / 4

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
        ks = range(-Z * denom, Z * denom + 1)
        if level > 0:
            ks = [k for k in ks if k % 2]
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


def _pieces(points: Sequence[Any], kinks: Sequence[Any], tol: Any) -> tuple[list[Any], str]:
    """Break points and rule for mpmath.quad over the real line.

    With kinks, the pieces between them are smooth, and Gauss-Legendre on the
    range truncated where the Gaussian weight is below ``tol`` converges fast.
    Without kinks this is only reached when the trapezoidal rule failed (very
    large variances, steep transitions): tanh-sinh on the whole line, split at
    the points, copes with boundary layers at the break points.
    """
    if kinks:
        Z = 2 * _tail_bound(tol)  # generous: the integrand may grow
        inside = sorted({p for p in points if -Z < p < Z})
        return [-Z, *inside, Z], "gauss-legendre"
    finite = sorted({p for p in points if mpmath.isfinite(p)})
    return [mpmath.ninf, *finite, mpmath.inf], "tanh-sinh"


def _gauss_expect_1d(
    f: Callable[[Any], Any],
    scale: Any,
    shift: Any,
    kinks: Sequence[Any],
    tol: Any,
    atol: Any = 0,
) -> tuple[Any, Any]:
    """E[f(shift + scale z)] for z ~ N(0, 1), with an error estimate."""
    if scale == 0:
        return f(shift), mpmath.mpf(0)
    if not kinks:
        res = _trapezoid(lambda z: (f(shift + scale * z), 0), tol, 1 / scale, -shift / scale, atol)
        if res is not None:
            return res[0], res[1]
    norm = 1 / mpmath.sqrt(2 * mpmath.pi)
    pts, method = _pieces([(k - shift) / scale for k in (*kinks, 0)], kinks, tol)

    def integrand(z: Any) -> Any:
        return f(shift + scale * z) * mpmath.exp(-z * z / 2)

    val, err = mpmath.quad(integrand, pts, error=True, method=method)
    return val * norm, err * norm


def _rms(f: Callable[[Any], Any], var: Any, kinks: Sequence[Any], tol: Any) -> Any:
    """sqrt(E[f(sqrt(var) z)^2]), to a few digits: a scale for absolute tolerances."""
    rough = max(tol, mpmath.mpf(10) ** -8)
    mean_sq, _ = _gauss_expect_1d(lambda x: f(x) ** 2, mpmath.sqrt(var), 0, kinks, rough)
    return mpmath.sqrt(abs(mean_sq))


def _general_dual(
    f: Callable[[Any], Any],
    kinks: Sequence[Any],
    a11: Any,
    a12: Any,
    a22: Any,
    det: Any,
    tol: Any,
) -> tuple[Any, Any, Any]:
    """Iterated quadrature; returns (value, error estimate, size of the integrand).

    The inner expectation E[sigma(v) | z1] is wanted to ``tol`` relative to the
    r.m.s. of sigma(v), not to its own (possibly tiny, cancelling) value, and
    more loosely where the outer weight phi(z1) |sigma(u)| is small: there an
    absolute error of ``tol * rms_u * rms_v / (2 Z phi(z1) |sigma(u)|)`` still
    adds at most ``tol * rms_u * rms_v`` to the outer integral over [-Z, Z].
    """
    sd1 = mpmath.sqrt(a11)
    beta = a12 / sd1  # v = beta*z1 + s*z2
    s = mpmath.sqrt(det / a11)
    rms_u, rms_v = _rms(f, a11, kinks, tol), _rms(f, a22, kinks, tol)
    budget = tol * rms_u * rms_v / (2 * _tail_bound(tol)) * mpmath.sqrt(2 * mpmath.pi)

    def outer(z1: Any) -> tuple[Any, Any]:
        fu = f(sd1 * z1)
        if fu == 0:
            return mpmath.mpf(0), mpmath.mpf(0)
        atol = max(tol * rms_v, budget * mpmath.exp(z1 * z1 / 2) / abs(fu))
        rtol = min(max(tol, atol / rms_v), mpmath.mpf(10) ** -6) if rms_v else tol
        inner, inner_err = _gauss_expect_1d(f, s, beta * z1, kinks, rtol, atol)
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

    pts = [k / sd1 for k in (*kinks, 0)]
    if beta != 0:
        pts += [k / beta for k in (*kinks, 0)]
    pieces, method = _pieces(pts, kinks, tol)
    res, err = mpmath.quad(outer_quad, pieces, error=True, method=method)
    return res.real, err + abs(res.imag), rms_u * rms_v


# --------------------------------------------------------------------------- public: quadrature
def dual_quadrature(
    activation: ActivationLike,
    s11: Any,
    s12: Any,
    s22: Any,
    *,
    dps: int = 30,
    derivative: bool = False,
    error: bool = False,
) -> Any:
    """Dual kernel of an activation by quadrature in mpmath, independent of any closed form.

    Computes ``E[sigma(u) sigma(v)]`` (or ``E[sigma'(u) sigma'(v)]`` when
    ``derivative``) for ``(u, v) ~ N(0, [[s11, s12], [s12, s22]])``. Piecewise
    positively homogeneous activations use whitened polar coordinates with the
    radial integral done exactly; all others an iterated 1-D tanh-sinh
    quadrature (see the module docstring). Zero variances are allowed: then
    ``u = 0`` and the value of ``sigma(0)`` follows SymPy's convention
    (``Heaviside(0) = 1/2``, ``sign(0) = 0``).

    Args:
        activation: A registered name, a user expression or an Activation.
        s11: Variance of ``u`` (>= 0); int, float, mpf or a decimal string.
            Floats are converted exactly.
        s12: Covariance of ``u`` and ``v`` with ``s12^2 <= s11*s22``.
        s22: Variance of ``v`` (>= 0).
        dps: Decimal digits of the result (15..1000); the work is done with
            15 guard digits.
        derivative: Use ``sigma'`` instead of ``sigma``.
        error: Also return an error estimate.

    Returns:
        The expectation as an ``mpf`` (rounded to ``dps`` digits), or
        ``(value, error_estimate)`` when ``error`` is true; the estimate bounds
        the quadrature error (as estimated from successive refinements) plus the
        final rounding.

    Raises:
        InputError: Non-finite or non-numeric input, negative variance, a
            covariance that is not positive semidefinite, a bad ``dps``, or a
            step-like derivative at ``|rho| = 1`` or a zero variance (where
            ``E[delta(u) delta(v)]`` is infinite).
        ActivationError: The activation is not real or cannot be evaluated, or
            its derivative contains a Dirac delta that is not a single jump at 0.
        QuadratureError: The quadrature's error estimate exceeds
            ``10^-(dps-5)`` relative to the size of the integrand.

    Example:
        >>> from mpmath import mp, nstr
        >>> nstr(dual_quadrature("relu", 1, 0, 1), 15)  # 1/(2 pi)
        '0.159154943091895'
    """
    act = _activation(activation)
    dps = _check_dps(dps)
    with mp.workdps(dps + GUARD_DIGITS):
        a11, a12, a22, det = _covariance(s11, s12, s22)
        value, err = _quadrature(act, a11, a12, a22, det, derivative, dps)
        with mp.workdps(dps):
            rounded = +value
        # the estimate also covers roundoff at working precision and the final rounding
        err += abs(value) * mpmath.mpf(10) ** (5 - mp.dps) + abs(value - rounded)
    with mp.workdps(dps):
        err = +err * (1 + mpmath.mpf(10) ** (3 - dps))  # round the estimate up
    return (rounded, err) if error else rounded


def _quadrature(
    act: Activation, a11: Any, a12: Any, a22: Any, det: Any, derivative: bool, dps: int
) -> tuple[Any, Any]:
    if derivative and act.has_distributional_derivative:
        return _delta_dual(act, a11, a22, det)
    h = _analysis(act, derivative)
    if a11 == 0 or a22 == 0:
        return _degenerate(act, derivative, h, a11, a22, dps)
    if h is not None:
        return _homogeneous_dual(h, a11, a12, a22, det)
    f = _pointwise(act, derivative)
    kinks = [mpmath.mpf(k) for k in act.kinks]
    value, err, size = _general_dual(f, kinks, a11, a12, a22, det, _target(dps))
    if err > mpmath.mpf(10) ** (-(dps - 5)) * max(abs(value), size):
        raise QuadratureError(
            f"quadrature for {act.name!r} at (s11, s12, s22) = ({mpmath.nstr(a11, 8)}, "
            f"{mpmath.nstr(a12, 8)}, {mpmath.nstr(a22, 8)}) did not converge: error estimate "
            f"{mpmath.nstr(err, 3)} for value {mpmath.nstr(value, 8)} at dps={dps}"
        )
    # never claim more than the accuracy the nested rules were asked for: their level
    # heuristics can be optimistic when inner errors, not the outer step, dominate
    return value, max(err, _target(dps) * max(abs(value), size))


def _target(dps: int) -> Any:
    """Relative accuracy asked of each quadrature: three digits beyond ``dps``."""
    return mpmath.mpf(10) ** (-(dps + 3))


def _degenerate(
    act: Activation, derivative: bool, h: _Homogeneous | None, a11: Any, a22: Any, dps: int
) -> tuple[Any, Any]:
    """One or both variances zero: u (or v) is 0 almost surely."""
    f = _pointwise(act, derivative)
    f0 = f(mpmath.mpf(0))
    var = a22 if a11 == 0 else a11
    if var == 0 or f0 == 0:
        return f0 * f0 if var == 0 else mpmath.mpf(0), mpmath.mpf(0)
    if h is not None:
        return f0 * _half_moment(h, var), mpmath.mpf(0)
    kinks = [mpmath.mpf(k) for k in act.kinks]
    val, err = _gauss_expect_1d(f, mpmath.sqrt(var), mpmath.mpf(0), kinks, _target(dps))
    return f0 * val, abs(f0) * err


def _delta_dual(act: Activation, a11: Any, a22: Any, det: Any) -> tuple[Any, Any]:
    """E[sigma'(u) sigma'(v)] for sigma piecewise constant with one jump J at 0: J^2 p(0, 0)."""
    h = _analysis(act, False)
    if h is None or h.ap != 0 or h.am != 0:
        raise ActivationError(
            f"the derivative of {act.name!r} is {act.derivative}, which contains a Dirac delta "
            "and is not a single jump at 0; no pointwise derivative exists, so "
            "E[sigma'(u) sigma'(v)] cannot be computed by quadrature"
        )
    jump = _sympy_to_mpf(h.cp) - _sympy_to_mpf(h.cm)
    if jump == 0:
        return mpmath.mpf(0), mpmath.mpf(0)
    if det == 0 or a11 == 0 or a22 == 0:
        raise InputError(
            f"E[sigma'(u) sigma'(v)] for {act.name!r} (sigma' = {jump} * delta(u)) is infinite "
            "when the covariance is singular (|rho| = 1 or a zero variance)"
        )
    return jump * jump / (2 * mpmath.pi * mpmath.sqrt(det)), mpmath.mpf(0)


# --------------------------------------------------------------------------- public: closed form
_CLOSED_FORM_CACHE: dict[tuple[Activation, bool], Callable[..., Any]] = {}


def _closed_form_function(act: Activation, derivative: bool) -> Callable[..., Any]:
    key = (act, derivative)
    if key not in _CLOSED_FORM_CACHE:
        from ntksym import dual as dual_module  # lazy: written alongside this module

        maps = dual_module.closed_form(act)
        expr = maps.ntk if derivative else maps.nngp
        symbols = (dual_module.S11, dual_module.S12, dual_module.S22)
        func = sp.lambdify(symbols, expr, modules="mpmath")
        _CLOSED_FORM_CACHE[key] = func
    return _CLOSED_FORM_CACHE[key]


def dual_closed_form(
    activation: ActivationLike,
    s11: Any,
    s12: Any,
    s22: Any,
    *,
    dps: int = 30,
    derivative: bool = False,
) -> Any:
    """Evaluate the closed-form dual kernel of :mod:`ntksym.dual` at ``dps`` digits.

    The SymPy expression ``closed_form(activation).nngp`` (or ``.ntk`` when
    ``derivative``) is lambdified to mpmath and evaluated at the exactly
    converted inputs with 15 guard digits.

    Args:
        activation: A registered name, a user expression or an Activation.
        s11: Variance of ``u``.
        s12: Covariance.
        s22: Variance of ``v``.
        dps: Decimal digits (15..1000).
        derivative: Evaluate the derivative map ``E[sigma'(u) sigma'(v)]``.

    Returns:
        The value as an ``mpf``.

    Raises:
        NoClosedFormError: No closed form is registered for the activation.
        InputError: Bad inputs, or the closed form is singular at this point.
    """
    act = _activation(activation)
    dps = _check_dps(dps)
    func = _closed_form_function(act, derivative)
    with mp.workdps(dps + GUARD_DIGITS):
        a11, a12, a22, _ = _covariance(s11, s12, s22)
        try:
            value = func(a11, a12, a22)
        except (ZeroDivisionError, ValueError) as exc:
            raise InputError(
                f"the closed form for {act.name!r} cannot be evaluated at (s11, s12, s22) = "
                f"({s11!r}, {s12!r}, {s22!r}): {exc}"
            ) from None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = mpmath.mpf(value)  # a constant closed form
        if isinstance(value, mpmath.mpc) and abs(value.imag) <= abs(value.real) * mpmath.eps * 16:
            value = value.real
        if not isinstance(value, mpmath.mpf) or not mpmath.isfinite(value):
            raise InputError(
                f"the closed form for {act.name!r} is not a finite real number at "
                f"(s11, s12, s22) = ({s11!r}, {s12!r}, {s22!r}): {value}"
            )
    with mp.workdps(dps):
        return +value


def _has_closed_form(act: Activation) -> bool:
    try:
        from ntksym import dual as dual_module
    except ImportError:
        return False
    try:
        return bool(dual_module.has_closed_form(act))
    except NTKSymError:
        return False


def dual(
    activation: ActivationLike,
    s11: Any,
    s12: Any,
    s22: Any,
    *,
    dps: int = 30,
    derivative: bool = False,
    method: str = "auto",
) -> Any:
    """Dual kernel ``E[sigma(u) sigma(v)]`` (or of ``sigma'``) at ``dps`` digits.

    Args:
        activation: A registered name, a user expression or an Activation.
        s11: Variance of ``u``.
        s12: Covariance.
        s22: Variance of ``v``.
        dps: Decimal digits (15..1000).
        derivative: Use ``sigma'``.
        method: ``"quadrature"`` (:func:`dual_quadrature`), ``"closed_form"``
            (:func:`dual_closed_form`) or ``"auto"``: the closed form when one
            exists and can be evaluated at this point, otherwise quadrature.

    Returns:
        The value as an ``mpf``.
    """
    method = _check_method(method)
    act = _activation(activation)
    if method == "closed_form":
        return dual_closed_form(act, s11, s12, s22, dps=dps, derivative=derivative)
    if method == "auto" and _has_closed_form(act):
        try:
            return dual_closed_form(act, s11, s12, s22, dps=dps, derivative=derivative)
        except (NoClosedFormError, InputError):
            pass  # quadrature below repeats the input checks with its own messages
    return dual_quadrature(act, s11, s12, s22, dps=dps, derivative=derivative)


# --------------------------------------------------------------------------- recursion
@dataclass(frozen=True)
class Recursion:
    """The NNGP/NTK recursion for one pair of inputs, in mpmath.

    Attributes:
        sigma: ``Sigma^(l)(x, x')`` for ``l = 1..L`` (``sigma[-1]`` is the NNGP).
        sigma_dot: ``Sigmadot^(l)(x, x')`` for ``l = 2..L`` (empty when ``L = 1``).
        theta: ``Theta^(l)(x, x')`` for ``l = 1..L`` (``theta[-1]`` is the NTK).
        var1: ``Sigma^(l)(x, x)`` for ``l = 1..L``.
        var2: ``Sigma^(l)(x', x')`` for ``l = 1..L``.
        dps: Decimal digits of every entry.
    """

    sigma: list
    sigma_dot: list
    theta: list
    var1: list
    var2: list
    dps: int


def _vector(x: Any, what: str) -> list[Any]:
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "iuf" and x.dtype != object:
            raise InputError(f"{what} must be a real vector, got dtype {x.dtype}")
        if x.ndim != 1:
            raise InputError(f"{what} must be 1-D, got shape {x.shape}")
        items = list(x)
    elif isinstance(x, (list, tuple)):
        items = list(x)
    else:
        raise InputError(f"{what} must be a 1-D sequence or array, got {type(x).__name__}")
    if not items:
        raise InputError(f"{what} is empty; an input needs at least one coordinate")
    return [_as_mpf(v, f"{what}[{i}]") for i, v in enumerate(items)]


def _check_std(value: Any, what: str) -> Any:
    x = _as_mpf(value, what)
    if x < 0:
        raise InputError(f"{what} must be >= 0, got {value!r}")
    return x


def _check_depth(depth: Any) -> int:
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 1:
        raise InputError(f"depth must be an integer >= 1 (number of affine layers), got {depth!r}")
    return int(depth)


def _inner(x: list[Any], y: list[Any]) -> Any:
    with mpmath.workprec(2 * mp.prec + 64):
        return mpmath.fsum(a * b for a, b in zip(x, y, strict=True))


class _Layer:
    """Dual maps with the layer scales applied, at ``dps`` (the caller's plus 5) digits."""

    def __init__(self, act: Activation, w2: Any, b2: Any, dps: int, method: str) -> None:
        self.act, self.w2, self.b2, self.dps, self.method = act, w2, b2, dps, method

    def _dual(self, s11: Any, s12: Any, s22: Any, derivative: bool) -> Any:
        return dual(
            self.act, s11, s12, s22, dps=self.dps, derivative=derivative, method=self.method
        )

    def nngp(self, s11: Any, s12: Any, s22: Any) -> Any:
        return self.w2 * self._dual(s11, s12, s22, False) + self.b2

    def dot(self, s11: Any, s12: Any, s22: Any) -> Any:
        return self.w2 * self._dual(s11, s12, s22, True)


def _first_layer(x: list[Any], y: list[Any], w2: Any, b2: Any) -> Any:
    return w2 * _inner(x, y) / len(x) + b2


def _diagonal_chain(layer: _Layer, x: list[Any], depth: int) -> list[Any]:
    var = [_first_layer(x, x, layer.w2, layer.b2)]
    for _ in range(depth - 1):
        var.append(layer.nngp(var[-1], var[-1], var[-1]))
    return var


def _pair_chain(
    layer: _Layer,
    x1: list[Any],
    x2: list[Any],
    var1: list[Any],
    var2: list[Any],
    ntk: bool = True,
) -> tuple[list[Any], list[Any], list[Any]]:
    sigma = [_first_layer(x1, x2, layer.w2, layer.b2)]
    theta = [sigma[0]]
    sigma_dot = []
    for level in range(len(var1) - 1):
        s11, s12, s22 = var1[level], sigma[-1], var2[level]
        sigma.append(layer.nngp(s11, s12, s22))
        if ntk:
            sigma_dot.append(layer.dot(s11, s12, s22))
            theta.append(theta[-1] * sigma_dot[-1] + sigma[-1])
    return sigma, sigma_dot, theta


def _setup(
    activation: ActivationLike, depth: Any, dps: Any, method: Any
) -> tuple[Activation, int, int, str]:
    return _activation(activation), _check_depth(depth), _check_dps(dps), _check_method(method)


def recursion(
    activation: ActivationLike,
    x1: Any,
    x2: Any,
    depth: int,
    bias_std: Any = 0.0,
    weight_std: Any = 1.0,
    *,
    dps: int = 30,
    method: str = "auto",
) -> Recursion:
    """The NNGP/NTK recursion (NTK parameterization) for one pair of inputs, in mpmath.

    ``Sigma^(1) = weight_std^2 x.x'/n0 + bias_std^2`` (from the exact inputs),
    ``Theta^(1) = Sigma^(1)``, and for each further layer
    ``Sigma^(l+1) = weight_std^2 E[sigma(u) sigma(v)] + bias_std^2``,
    ``Sigmadot^(l+1) = weight_std^2 E[sigma'(u) sigma'(v)]``,
    ``Theta^(l+1) = Theta^(l) Sigmadot^(l+1) + Sigma^(l+1)`` with
    ``(u, v) ~ N(0, Sigma^(l))`` on the pair (Jacot et al. 2018, Thm. 1).

    Args:
        activation: A registered name, a user expression or an Activation.
        x1: First input, a 1-D vector of finite reals.
        x2: Second input, same length.
        depth: Number of affine layers ``L >= 1``.
        bias_std: Bias scale ``beta >= 0``.
        weight_std: Weight scale ``>= 0``.
        dps: Decimal digits (15..1000).
        method: How each dual kernel is computed (see :func:`dual`).

    Returns:
        A :class:`Recursion` with every level rounded to ``dps`` digits.

    Raises:
        InputError: Bad vectors, depth, scales, dps or method.
    """
    act, depth, dps, method = _setup(activation, depth, dps, method)
    with mp.workdps(dps + GUARD_DIGITS):
        v1 = _vector(x1, "x1")
        v2 = _vector(x2, "x2")
        if len(v1) != len(v2):
            raise InputError(f"x1 and x2 must have the same length, got {len(v1)} and {len(v2)}")
        w = _check_std(weight_std, "weight_std")
        b = _check_std(bias_std, "bias_std")
        layer = _Layer(act, w * w, b * b, dps + LAYER_GUARD_DIGITS, method)
        var1 = _diagonal_chain(layer, v1, depth)
        var2 = _diagonal_chain(layer, v2, depth)
        sigma, sigma_dot, theta = _pair_chain(layer, v1, v2, var1, var2)
    with mp.workdps(dps):
        rounded = [[+x for x in seq] for seq in (sigma, sigma_dot, theta, var1, var2)]
    return Recursion(*rounded, dps=dps)


def _matrix(X: Any, what: str) -> list[list[Any]]:
    if isinstance(X, (list, tuple)):
        try:
            X = np.asarray(X, dtype=float)
        except (TypeError, ValueError):
            raise InputError(f"{what} must be a 2-D array of real numbers") from None
    if not isinstance(X, np.ndarray):
        raise InputError(f"{what} must be a 2-D array, got {type(X).__name__}")
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise InputError(f"{what} must be a non-empty 2-D array (N, n0), got shape {X.shape}")
    if X.dtype.kind not in "iuf":
        raise InputError(f"{what} must hold real numbers, got dtype {X.dtype}")
    if not np.all(np.isfinite(X)):
        raise InputError(f"{what} contains NaN or inf")
    return [[mpmath.mpf(float(v)) for v in row] for row in X]


def kernel(
    activation: ActivationLike,
    X1: Any,
    X2: Any = None,
    *,
    depth: int,
    bias_std: Any = 0.0,
    weight_std: Any = 1.0,
    dps: int = 30,
    method: str = "auto",
    ntk: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """NNGP and NTK Gram matrices computed in mpmath and rounded to float64.

    Meant as a referee for small ``N``: every entry runs the full recursion
    (the diagonal chains ``Sigma^(l)(x, x)`` are computed once per row).

    Args:
        activation: A registered name, a user expression or an Activation.
        X1: Inputs, shape ``(N1, n0)``, finite reals.
        X2: Inputs, shape ``(N2, n0)``; None means ``X1`` against itself (the
            result is then exactly symmetric).
        depth: Number of affine layers ``L >= 1``.
        bias_std: Bias scale ``>= 0``.
        weight_std: Weight scale ``>= 0``.
        dps: Decimal digits of the mpmath computation (15..1000).
        method: How each dual kernel is computed (see :func:`dual`).
        ntk: False to skip the NTK (for step and sign, whose NTK is infinite on
            the diagonal); it is then returned as NaN.

    Returns:
        ``(nngp, ntk)``, two float64 arrays of shape ``(N1, N2)``, each entry the
        correctly rounded ``Sigma^(L)`` and ``Theta^(L)``.

    Raises:
        InputError: Bad arrays, depth, scales, dps or method.
    """
    act, depth, dps, method = _setup(activation, depth, dps, method)
    A = _matrix(X1, "X1")
    B = A if X2 is None else _matrix(X2, "X2")
    if len(A[0]) != len(B[0]):
        raise InputError(
            f"X1 and X2 must have the same number of columns, got {len(A[0])} and {len(B[0])}"
        )
    nngp = np.empty((len(A), len(B)))
    theta_l = np.full((len(A), len(B)), np.nan)
    with mp.workdps(dps + GUARD_DIGITS):
        w = _check_std(weight_std, "weight_std")
        b = _check_std(bias_std, "bias_std")
        layer = _Layer(act, w * w, b * b, dps + LAYER_GUARD_DIGITS, method)
        var_a = [_diagonal_chain(layer, x, depth) for x in A]
        var_b = var_a if X2 is None else [_diagonal_chain(layer, x, depth) for x in B]
        for i, x in enumerate(A):
            for j, y in enumerate(B):
                if X2 is None and j < i:
                    nngp[i, j], theta_l[i, j] = nngp[j, i], theta_l[j, i]
                    continue
                sigma, _, theta = _pair_chain(layer, x, y, var_a[i], var_b[j], ntk=ntk)
                nngp[i, j] = _to_float(sigma[-1])
                if ntk:
                    theta_l[i, j] = _to_float(theta[-1])
    return nngp, theta_l


def _to_float(x: Any) -> float:
    value = float(x)  # mpf -> float rounds to nearest
    if not math.isfinite(value):
        raise InputError(f"kernel entry {mpmath.nstr(x, 10)} overflows float64")
    return value
