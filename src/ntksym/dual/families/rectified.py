"""Rectified monomials ``max(u, 0)**k`` (k >= 2): the arc-cosine kernels of degree k.

Cho & Saul (2009) give ``E[max(u,0)^k max(v,0)^k] = M^k J_k(theta) / (2 pi)`` with
``M = sqrt(S11 S22)`` and ``cos(theta) = S12 / M``. Here ``J_k`` is derived by Price's
theorem instead of their derivative formula: at unit variances
``kappa_k(t) = E[max(u,0)^k max(v,0)^k]`` has ``kappa_k'(t) = k^2 kappa_{k-1}(t)`` and
``kappa_k(-1) = 0`` (one of ``u``, ``v = -u`` is never positive), starting from the step's
``kappa_0 = phi / (2 pi)`` with ``phi = pi - arccos(t)``. Every ``kappa_k`` has the form
``(P_k(t) s + phi Q_k(t)) / (2 pi)`` with ``s = sqrt(1 - t^2)`` and polynomials
``P_k``, ``Q_k`` (:func:`arc_cosine_polynomials` solves for them exactly); homogeneity
then gives the maps at any variances. The derivative map of ``max(u,0)^k`` is
``k^2`` times the degree ``k - 1`` kernel.

The stable layer maps take ``theta = atan2(sqrt(D), S12)`` and ``phi = atan2(sqrt(D), -S12)``
from the carried determinant. Where the direct form cancels, near anti-parallel pairs
(``J_k(pi - phi)`` vanishes like ``phi^(2k+1)``) and in the next determinant's gap
``c M^k - E`` near parallel ones (``J_k(0) - J_k(theta)`` vanishes like ``theta^2``), they
use Taylor series of those differences with exact rational coefficients.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction
from typing import Any

import sympy as sp

from ntksym.activations import Activation
from ntksym.dual import derive as _d
from ntksym.dual.family import DualMaps, Family, NumericFn, stable_numeric
from ntksym.dual.sources import CHO_SAUL, PRICE
from ntksym.dual.stable import B2, N11, N22, S11, S12, S22, TINY, W2, D, LayerMap, U
from ntksym.errors import NoClosedFormError

__all__ = ["MAX_DEGREE", "arc_cosine_polynomials", "rectified_monomial", "FAMILY"]

#: Largest degree with a closed form here (beyond it, the series' terms and the factorial
#: sizes grow; such activations are integrated numerically instead).
MAX_DEGREE = 12

_t = sp.Symbol("t", real=True)
#: The gap's series is taken below this angle theta (radians), the direct form above it;
#: the anti-parallel series is taken for every ``S12 < 0`` (``phi < pi/2``).
_SWITCH = 1
_ANTI_SWITCH = math.pi / 2
#: Series terms are added until the next one is below this, relative, at ``_SWITCH``.
_SERIES_TOL = sp.Rational(1, 10**21)
#: The variance symbol of a diagonal map (``ntksym.codegen.spec.S``, equal by name and
#: assumptions; the codegen layer sits above this one).
_S = sp.Symbol("S", positive=True)


def _check_degree(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= MAX_DEGREE:
        raise NoClosedFormError(
            f"rectified monomials have closed forms here for integer degrees 0..{MAX_DEGREE}, "
            f"got {k!r}"
        )
    return k


def _integrate_step(p: sp.Poly, q: sp.Poly) -> tuple[sp.Poly, sp.Poly]:
    """``(A, B)`` with ``F = A s + phi B`` the antiderivative of ``P s + phi Q`` vanishing at -1.

    ``F' = A' s - t A / s + B / s + phi B'`` (``phi' = 1/s``, ``s' = -t/s``), so ``B' = Q`` and
    ``(1 - t^2) A' - t A = (1 - t^2) P - B``; the integration constant of ``B`` is the one
    that makes this solvable in polynomials. ``F(-1) = 0`` holds since ``s = phi = 0`` there.
    """
    const = sp.Symbol("c0")
    b = sp.integrate(q.as_expr(), _t) + const
    deg = max(p.degree() + 1, q.degree(), 0)
    coeffs = sp.symbols(f"a0:{deg + 1}")
    a = sum(c * _t**i for i, c in enumerate(coeffs))
    residual = sp.expand((1 - _t**2) * sp.diff(a, _t) - _t * a - (1 - _t**2) * p.as_expr() + b)
    eqs = sp.Poly(residual, _t).all_coeffs()
    sol = sp.solve(eqs, [*coeffs, const], dict=True)
    if len(sol) != 1:  # pragma: no cover - the recursion always has one solution
        raise NoClosedFormError("no polynomial antiderivative in the arc-cosine recursion")
    free = {c: 0 for c in (*coeffs, const) if c not in sol[0]}
    a_sol = sp.Poly(a.subs(sol[0]).subs(free), _t)
    return a_sol, sp.Poly(b.subs(sol[0]).subs(free), _t)


@functools.cache
def arc_cosine_polynomials(k: int) -> tuple[sp.Poly, sp.Poly]:
    """``(P_k, Q_k)`` in ``t``: ``2 pi E[max(u,0)^k max(v,0)^k] = P_k(t) s + phi Q_k(t)``.

    At unit variances with correlation ``t``, ``s = sqrt(1 - t^2)``, ``phi = pi - arccos t``.
    Degree 0 is the step (``P_0 = 0``, ``Q_0 = 1``); each degree integrates the previous one
    (see the module docstring).
    """
    k = _check_degree(k)
    p, q = sp.Poly(0, _t), sp.Poly(1, _t)
    for n in range(1, k + 1):
        a, b = _integrate_step(p, q)
        p, q = a * n**2, b * n**2
    return p, q


def _homogenised(poly: sp.Poly, degree: int) -> sp.Expr:
    """``M^degree poly(S12 / M)`` as a polynomial in ``S12`` and ``M^2 = S11 S22``."""
    m2 = S11 * S22
    out = sp.Integer(0)
    for (i,), c in poly.terms():
        # the parity of poly matches degree, so degree - i is even
        out += c * S12**i * m2 ** ((degree - i) // 2)
    return out


def _m_power(n: int) -> sp.Expr:
    """``M^n = (sqrt(S11) sqrt(S22))^n``."""
    return (sp.sqrt(S11) * sp.sqrt(S22)) ** n


def _horner(coeffs: list[sp.Expr], x: sp.Expr) -> sp.Expr:
    """``sum_i coeffs[i] x^i``, nested (SymPy keeps the nesting)."""
    out: sp.Expr = coeffs[-1]
    for c in reversed(coeffs[:-1]):
        out = c + x * out
    return out


def _truncated(a: list[Fraction], b: list[Fraction], order: int) -> list[Fraction]:
    """Product of two Taylor series (coefficient lists), up to ``x^(order-1)``."""
    out = [Fraction(0)] * order
    for i, ai in enumerate(a[:order]):
        if ai:
            for j, bj in enumerate(b[: order - i]):
                out[i + j] += ai * bj
    return out


def _composed(poly: sp.Poly, inner: list[Fraction], order: int) -> list[Fraction]:
    """Taylor series of ``poly(inner(x))`` (Horner, truncated)."""
    out = [Fraction(0)] * order
    for c in poly.all_coeffs():
        out = _truncated(out, inner, order)
        out[0] += Fraction(int(sp.numer(c)), int(sp.denom(c)))
    return out


def _trig(order: int, sign: int) -> tuple[list[Fraction], list[Fraction]]:
    """Taylor series of ``sign*cos x`` and ``sin x`` up to ``x^(order-1)``."""
    cos = [Fraction(0)] * order
    sin = [Fraction(0)] * order
    for i in range(order):
        term = Fraction((-1) ** (i // 2), math.factorial(i))
        (cos if i % 2 == 0 else sin)[i] = term * (sign if i % 2 == 0 else 1)
    return cos, sin


def _enough(coeffs: list[float], at: float) -> bool:
    """Whether the last terms at ``x = at`` are below :data:`_SERIES_TOL` of the sum."""
    terms = [abs(c) * at**i for i, c in enumerate(coeffs)]
    return sum(terms) > 0 and max(terms[-2:]) < _SERIES_TOL * sum(terms)


def _x_times(series: list[Fraction]) -> list[Fraction]:
    return [Fraction(0), *series[:-1]]


@functools.cache
def _anti_series(n: int) -> tuple[int, list[sp.Expr]]:
    """``J_n(pi - x) = x^lead * sum_i c_i x^(2i)`` (odd in x): ``(lead, c)``."""
    p, q = arc_cosine_polynomials(n)
    order = 16
    while True:
        cos, sin = _trig(order, -1)
        j = [
            a + b
            for a, b in zip(
                _truncated(_composed(p, cos, order), sin, order),
                _x_times(_composed(q, cos, order)),
                strict=True,
            )
        ]
        if _enough([float(c) for c in j], _ANTI_SWITCH):
            break
        order += 8
    lead = next(i for i, c in enumerate(j) if c != 0)
    return lead, [sp.Rational(c.numerator, c.denominator) for c in j[lead::2]]


@functools.cache
def _parallel_series(n: int) -> list[sp.Expr]:
    """``J_n(0) - J_n(x) = sum_i c_i x^i`` (no constant term), coefficients as floats.

    ``J_n(x) = P_n(cos x) sin x + (pi - x) Q_n(cos x)``; each coefficient is ``a + pi b``
    with rational ``a``, ``b``, rounded to 25 digits.
    """
    p, q = arc_cosine_polynomials(n)
    order = 16
    while True:
        cos, sin = _trig(order, 1)
        qc = _composed(q, cos, order)
        rational = [
            b - a
            for a, b in zip(
                _truncated(_composed(p, cos, order), sin, order), _x_times(qc), strict=True
            )
        ]
        with_pi = [-c for c in qc]
        with_pi[0] += Fraction(int(q.eval(1)))
        coeffs = [float(a) + math.pi * float(b) for a, b in zip(rational, with_pi, strict=True)]
        if _enough(coeffs, _SWITCH):
            break
        order += 8
    exact = [
        sp.Rational(a.numerator, a.denominator) + sp.pi * sp.Rational(b.numerator, b.denominator)
        for a, b in zip(rational, with_pi, strict=True)
    ]
    return [sp.Float(c.evalf(25), 25) for c in exact]


def _angles() -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    r = sp.sqrt(D)
    return r, sp.atan2(r, S12), sp.atan2(r, -S12)


def expectation(n: int) -> sp.Expr:
    """``E[max(u,0)^n max(v,0)^n]`` (n >= 1) in the stable inputs, without cancellation.

    The direct form ``(sqrt(D) M^(n-1) P_n + phi M^n Q_n) / (2 pi)`` for ``S12 >= 0``, where
    each of its terms is non-negative (``P_n``, ``Q_n`` have non-negative coefficients), and
    ``M^n J_n(pi - phi) / (2 pi)`` by its series for ``S12 < 0`` (``phi < pi/2``), where
    the direct form cancels down to ``phi^(2n+1)``.
    """
    p, q = arc_cosine_polynomials(n)
    r, _theta, phi = _angles()
    direct = (r * _homogenised(p, n - 1) + phi * _homogenised(q, n)) / (2 * sp.pi)
    lead, coeffs = _anti_series(n)
    anti = _m_power(n) * phi**lead * _horner(coeffs, phi**2) / (2 * sp.pi)
    return sp.Piecewise((anti, S12 < 0), (direct, True))


def _gap(n: int, e: sp.Expr) -> sp.Expr:
    """``c M^n - E`` (``c = (2n-1)!!/2``): by its series in theta for ``theta < 1``."""
    c = sp.factorial2(2 * n - 1) / 2
    _r, theta, _phi = _angles()
    series = _m_power(n) * _horner(_parallel_series(n), theta) / (2 * sp.pi)
    return sp.Piecewise((series, (S12 > 0) & (theta < _SWITCH)), (c * _m_power(n) - e, True))


def _det(n: int, e: sp.Expr) -> sp.Expr:
    """The next determinant ``N11 N22 - (W2 E + B2)^2`` as a product of two gaps.

    With ``P' = W2 c M^n + B2``: ``M'^2 - P'^2 = W2 B2 c (R11^n - R22^n)^2`` exactly
    (``N = W2 c S^n + B2``), and ``R11^n - R22^n = U sum_i R11^i R22^(n-1-i)``, so
    ``M' - S12' = q + W2 (c M^n - E)`` and ``M' + S12' = q + W2 (c M^n + E) + 2 B2`` with
    ``q = M' - P'`` formed without cancellation.
    """
    c = sp.factorial2(2 * n - 1) / 2
    r11, r22 = sp.sqrt(S11), sp.sqrt(S22)
    root_gap = U * sum(r11**i * r22 ** (n - 1 - i) for i in range(n))
    mn = sp.sqrt(N11 * N22)
    pn = W2 * c * _m_power(n) + B2
    q = W2 * B2 * c * root_gap**2 / sp.Max(mn + pn, TINY)
    return (q + W2 * _gap(n, e)) * (q + W2 * (c * _m_power(n) + e) + 2 * B2)


def rectified_monomial(k: int = 2) -> LayerMap:
    """``max(u, 0)**k``: the arc-cosine kernel of degree k (Cho & Saul 2009), for k >= 2.

    ``E = M^k J_k(theta) / (2 pi)`` and ``E[sigma' sigma'] = k^2 M^(k-1) J_(k-1)(theta) /
    (2 pi)``, ``J_k`` from Price's theorem (module docstring); see :func:`expectation` and
    :func:`_det` for the stable forms.

    Raises:
        NoClosedFormError: ``k`` is not an integer in 2..:data:`MAX_DEGREE`.
    """
    k = _check_degree(k)
    if k < 2:
        raise NoClosedFormError(f"rectified_monomial({k}) is the step or the relu, not k >= 2")
    e = expectation(k)
    ed = k**2 * expectation(k - 1)
    diag = sp.factorial2(2 * k - 1) / 2 * _S**k
    return LayerMap(e, ed, _det(k, e), "closed form", diag)


def dual_maps(act: Activation, k: int) -> DualMaps:
    """The SymPy dual maps of ``max(u,0)^k`` in :mod:`ntksym.dual.derive`'s symbols."""
    m = sp.sqrt(_d.S11 * _d.S22)
    phi = sp.pi - sp.acos(_d.S12 / m)
    s = sp.sqrt(_d.S11 * _d.S22 - _d.S12**2) / m

    def kernel(n: int) -> sp.Expr:
        p, q = arc_cosine_polynomials(n)
        t = _d.S12 / m
        return m**n * (p.as_expr().subs(_t, t) * s + phi * q.as_expr().subs(_t, t)) / (2 * sp.pi)

    return DualMaps(
        act,
        kernel(k),
        k**2 * kernel(k - 1),
        "derived: Price's theorem recursion from the degree-0 arc-cosine kernel",
        f"{CHO_SAUL}; {PRICE}",
        True,
    )


def _derive(act: Activation) -> tuple[DualMaps, NumericFn] | None:
    """The maps of a registered ``rectified_monomial(k)``; None beyond :data:`MAX_DEGREE`."""
    k = dict(act.params)["k"]
    if not 2 <= k <= MAX_DEGREE:
        return None
    return dual_maps(act, k), stable_numeric(rectified_monomial(k))


FAMILY = Family(
    name="rectified",
    members=("rectified_monomial",),
    derive=_derive,
    stable={"rectified_monomial": rectified_monomial},
)
