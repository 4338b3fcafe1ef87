"""erf: Williams (1997), derived by the Gaussian MGF and Price's theorem."""

from __future__ import annotations

import functools

import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

from ntksym.activations import Activation
from ntksym.dual import derive as _d
from ntksym.dual.family import DualMaps, Family, NumericFn, stable_numeric
from ntksym.dual.sources import PRICE, WILLIAMS
from ntksym.dual.stable import (
    B2,
    S11,
    S12,
    S22,
    TINY,
    W2,
    D,
    LayerMap,
    U,
)


def _erf(act: Activation) -> tuple[DualMaps, NumericFn]:
    """erf: derivative map by the Gaussian MGF, nngp map by Price's theorem (erf is odd)."""
    ntk = _d.exp_quadratic_expectation(act.derivative, act.derivative)
    nngp = _d.price_integrate(ntk, sp.Integer(0))
    maps = DualMaps(
        act,
        nngp,
        ntk,
        "derived: Gaussian MGF (ntk), Price's theorem (nngp)",
        f"{WILLIAMS}; {PRICE}",
        True,
    )

    return maps, stable_numeric(erf())


def _asin_derivative_polys(count: int) -> list[sp.Poly]:
    """``P_n`` with ``d^n/dt^n asin(e^t) = z P_n(z^2) / (1 - z^2)^(n - 1/2)``, ``z = e^t``.

    ``P_1 = 1`` and ``P_(n+1)(x) = (1 - x)(P_n + 2 x P_n') + (2n - 1) x P_n`` (differentiate
    ``z P(z^2) w^(1/2 - n)``, ``w = 1 - z^2``, with ``z d/dz``); every coefficient is
    positive, so the polynomials never cancel on ``0 <= x <= 1``.
    """
    x = sp.Symbol("x")
    polys = [sp.Poly(1, x)]
    for n in range(1, count):
        p = polys[-1]
        polys.append(sp.Poly((1 - x) * (p + 2 * x * p.diff(x)) + (2 * n - 1) * x * p, x))
    return polys


def _second_difference(p: sp.Expr, w: sp.Expr, step: sp.Expr, terms: int = 5) -> sp.Expr:
    """``f(mu + h) + f(mu - h) - 2 f(mu)`` for ``f(t) = asin(e^t)``, ``e^mu = p``, by Taylor.

    ``sum_k 2 f^(2k)(mu) h^(2k) / (2k)!`` with ``w = 1 - p^2``; the terms shrink like
    ``(h / mu)^2`` (``f`` is singular at ``t = 0``), and callers use it for
    ``|h| < 0.02 (1 - p) <= 0.02 |mu|``, where five terms reach 1e-17 relative.
    """
    polys = _asin_derivative_polys(2 * terms)
    total: sp.Expr = sp.Integer(0)
    for k in range(1, terms + 1):
        coeff = sp.horner(polys[2 * k - 1].as_expr()).subs(sp.Symbol("x"), p**2)
        deriv = p * coeff / w ** (2 * k - sp.Rational(1, 2))
        total += 2 * deriv * step ** (2 * k) / sp.factorial(2 * k)
    return total


def _asinc_coeffs(terms: int) -> list[sp.Rational]:
    """``c_k`` of ``asin(x)/x = sum_k c_k z^k``, ``z = x^2``: ``(2k)! / (4^k k!^2 (2k + 1))``."""
    return [
        sp.factorial(2 * k) / (4**k * sp.factorial(k) ** 2 * (2 * k + 1)) for k in range(terms + 1)
    ]


@functools.lru_cache(maxsize=1)
def _log_asinc_coeffs(terms: int = 32) -> tuple[sp.Rational, ...]:
    """``l_1..l_terms`` of ``log(asin(x)/x) = sum_k l_k z^k`` (``z = x^2``), all positive.

    From ``L' h = h'`` for ``h = sum c_k z^k``: ``k l_k = k c_k - sum_(j<k) j l_j c_(k-j)``.
    """
    c = _asinc_coeffs(terms)
    logs: list[sp.Rational] = []
    for k in range(1, terms + 1):
        acc = k * c[k] - sum(j * logs[j - 1] * c[k - j] for j in range(1, k))
        logs.append(acc / k)
    if not all(v > 0 for v in logs):  # the near-equal form below sums them as positive terms
        raise AssertionError("a coefficient of log(asin(x)/x) is not positive")
    return tuple(logs)


def _small_k1(lo: sp.Expr, hi: sp.Expr, alpha: sp.Expr, dz: sp.Expr) -> sp.Expr:
    """``(pi^2/4) K1 = asin(z1) asin(z2) - asin(sqrt(z1 z2))^2`` for ``z1, z2 < 1/2``.

    ``lo, hi`` are the smaller and the larger ``z``.

    With ``asin(x) = x h(x^2)`` and ``log h(t) = sum_k l_k t^k`` (:func:`_log_asinc_coeffs`),
    ``log h(z1^2) + log h(z2^2) - 2 log h(z1 z2) = sum_k l_k (z1^k - z2^k)^2``, so
    ``(pi^2/4) K1 = alpha^2 expm1(dz^2 sum_k l_k e_k^2)`` with ``alpha = asin(sqrt(z1 z2))``,
    ``dz = z1 - z2`` (from the root gap) and ``e_k = (z1^k - z2^k) / (z1 - z2)``: every
    term positive. 32 terms reach 2e-18 for ``z < 1/2``. Where ``z`` is small the differences
    that the general form takes cancel by ``1 / z^2`` (measured: 4e-4 of ``K1`` at
    variances 1e-6 and 1.3e-6, 3e-12 at 0.03).
    """
    # e_k = hi^(k-1) g_k with g_k = 1 + r g_(k-1) = 1 + r + ... + r^(k-1), r = lo / hi <= 1,
    # summed by Horner in hi^2: positive terms and no powers to take (NumPy's are slow)
    ratio = lo / sp.Max(hi, TINY)
    gs: list[sp.Expr] = [sp.Integer(1)]
    for _ in _log_asinc_coeffs()[1:]:
        gs.append(1 + ratio * gs[-1])
    total: sp.Expr = sp.Integer(0)
    for coeff, g_k in reversed(list(zip(_log_asinc_coeffs(), gs, strict=True))):
        total = coeff * g_k**2 + hi**2 * total
    return alpha**2 * expm1(dz**2 * total)


def _asinc_rem(z: sp.Expr, terms: int) -> sp.Expr:
    """``asin(x)/x - 1`` at ``z = x^2`` by its series (``terms`` terms), free of cancellation."""
    poly: sp.Expr = sp.Integer(0)
    for coeff in reversed(_asinc_coeffs(terms)[1:]):
        poly = coeff + z * poly
    return z * poly


def _unequal_k1(lo: sp.Expr, hi: sp.Expr, asin_hi: sp.Expr) -> sp.Expr:
    """``(pi^2/4) K1 = asin(lo) asin(hi) - asin(sqrt(lo hi))^2`` for ``4 lo < hi``, ``hi >= 1/2``.

    With ``asin(x) = x (1 + k(x^2))`` it is ``lo hi (kA + kB - 2 kC + kA kB - kC^2)`` at
    ``A = lo^2``, ``B = hi^2``, ``C = lo hi``: ``kB`` dominates (at worst ``(1 - 1/4)^-2``
    of rounding), where the differences ``d1``, ``d2`` cancel by ``y_hi / y_lo``. There
    ``A < 1/16`` and ``C < 1/4`` take the series (14 and 25 terms, 1e-17), and
    ``kB = asin(hi)/hi - 1`` loses at most 22 ulps (``B >= 1/4``).
    """
    ka = _asinc_rem(lo**2, 14)
    kb = asin_hi / sp.Max(hi, TINY) - 1
    kc = _asinc_rem(lo * hi, 25)
    return lo * hi * (ka + kb + ka * kb - kc * (2 + kc))


@functools.lru_cache(maxsize=4)
def erf_det(small: bool = True, unequal: bool = True) -> sp.Expr:
    """Next determinant after erf, ``W2^2 (g1 g2 - E^2) + W2 B2 (g1 + g2 - 2 E)``, stably.

    ``small`` and ``unequal`` select the forms of ``K1`` below for small and for very unequal
    variances (both in ntksym; off only to show what each mends).

    With ``y_i = sqrt(2 S_ii / (1 + 2 S_ii))`` every value of the map is an arcsine of a
    product: ``g_i = (2/pi) asin(y_i^2)`` (the diagonal) and ``E1 = (2/pi) asin(y1 y2)``
    (the pair made parallel, ``S12 = M = sqrt(S11 S22)``). Then, with ``d = E1 - |E|``,
    ``g1 g2 - E^2 = K1 + d (E1 + |E|)`` and ``g1 + g2 - 2E = V1 + 2 d`` (``S12 >= 0``; else
    ``g1 + g2 + 2 |E|``), where ``K1 = g1 g2 - E1^2`` and ``V1 = g1 + g2 - 2 E1``:

    * ``d`` from the carried D: ``asin x1 - asin x = atan2(x1 sqrt(1-x^2) - x sqrt(1-x1^2),
      ...)`` and ``M^2 q - S12^2 q1 = D (1 + 2 S11)(1 + 2 S22)`` (``q = q1 + 4D``,
      ``q1 = 1 + 2 (S11 + S22)``), so the numerator is a multiple of D;
    * ``d1 = asin(y1^2) - asin(y1 y2)`` and ``d2 = asin(y1 y2) - asin(y2^2)`` likewise, with
      numerators multiples of ``y1^2 - y2^2 = 2 (S11 - S22) / ((1 + 2 S11)(1 + 2 S22))``;
    * ``pi V1 / 2 = d1 - d2`` and ``pi^2 K1 / 4 = asin(y1 y2) (d1 - d2) - d1 d2``;
      ``d1 - d2`` is the second difference of ``asin(e^t)`` at step
      ``log(y1 / y2) = log1p((S11 - S22) / (S22 (1 + 2 S11))) / 2``, by its Taylor series
      where the step is small (:func:`_second_difference`), else ``d1 - d2`` directly;
    * where both ``y^2 < 1/2``, ``K1`` from :func:`_small_k1`; else where ``y1^2`` and
      ``y2^2`` are 4 or more apart, from :func:`_unequal_k1`
      instead (the two terms above cancel by ``y2 / y1`` there: 3e-11 of the determinant for
      parallel inputs 1000 apart in norm).
    """
    a, b = 1 + 2 * S11, 1 + 2 * S22
    q1 = 1 + 2 * (S11 + S22)
    q = q1 + 4 * D
    m = sp.sqrt(S11 * S22)
    s = sp.Abs(S12)
    y1, y2 = sp.sqrt(2 * S11 / a), sp.sqrt(2 * S22 / b)
    p = y1 * y2
    asin1, asin2 = sp.atan2(2 * S11, sp.sqrt(1 + 4 * S11)), sp.atan2(2 * S22, sp.sqrt(1 + 4 * S22))
    g1, g2 = 2 * asin1 / sp.pi, 2 * asin2 / sp.pi
    alpha = sp.atan2(2 * m, sp.sqrt(q1))
    e1 = 2 * alpha / sp.pi
    e_abs = 2 * sp.atan2(2 * s, sp.sqrt(q)) / sp.pi
    num = 2 * D * a * b / sp.Max(m * sp.sqrt(q) + s * sp.sqrt(q1), TINY)
    d = 2 * sp.atan2(num, sp.sqrt(q * q1) + 4 * m * s) / sp.pi
    diff = U * (sp.sqrt(S11) + sp.sqrt(S22))  # (S11 - S22 from the root gap)
    dy2 = 2 * diff / (a * b)
    c1, c2 = sp.sqrt(1 + 4 * S11) / a, sp.sqrt(1 + 4 * S22) / b
    cb = sp.sqrt(q1 / (a * b))
    d1 = sp.atan2(y1 * dy2 / sp.Max(y1 * cb + y2 * c1, TINY), c1 * cb + y1**3 * y2)
    d2 = sp.atan2(y2 * dy2 / sp.Max(y1 * c2 + y2 * cb, TINY), cb * c2 + y1 * y2**3)
    step = log1p(diff / sp.Max(S22 * a, TINY)) / 2
    series = _second_difference(p, q1 / (a * b), step)
    dd = sp.Piecewise((series, sp.Abs(step) < (1 - p) / 50), (d1 - d2, True))
    lo, hi = sp.Min(2 * S11 / a, 2 * S22 / b), sp.Max(2 * S11 / a, 2 * S22 / b)  # the y^2
    k1_forms = [(alpha * dd - d1 * d2, sp.true)]
    if unequal:
        k1_forms.insert(0, (_unequal_k1(lo, hi, sp.Max(asin1, asin2)), 4 * lo < hi))
    if small:
        k1_forms.insert(0, (_small_k1(lo, hi, alpha, dy2), hi < sp.Rational(1, 2)))
    k1 = 4 * sp.Piecewise(*k1_forms) / sp.pi**2
    v1 = 2 * dd / sp.pi
    # far from parallel (E^2 < 0.9 g1 g2) the direct forms lose at most 10 ulps, where K1's terms
    # do for very unequal variances (1e-3 apart: 6.7e-13 of the determinant)
    far = 10 * e_abs**2 < 9 * g1 * g2
    x_part = sp.Piecewise((g1 * g2 - e_abs**2, far), (k1 + d * (e1 + e_abs), True))
    y_part = sp.Piecewise(
        (g1 + g2 - 2 * e_abs, far & (S12 >= 0)), (v1 + 2 * d, S12 >= 0), (g1 + g2 + 2 * e_abs, True)
    )
    return W2**2 * x_part + W2 * B2 * y_part


def erf() -> LayerMap:
    """erf: Williams (1997), "Computing with infinite networks".

    ``E[erf(u) erf(v)] = (2/pi) asin(2 S12 / sqrt((1+2 S11)(1+2 S22)))`` and
    ``E[erf'(u) erf'(v)] = 4 / (pi sqrt((1+2 S11)(1+2 S22) - 4 S12^2))``. Both are written
    with ``(1+2 S11)(1+2 S22) - 4 S12^2 = 1 + 2 (S11 + S22) + 4 D``, which never cancels,
    and the arcsine as ``atan2(2 S12, sqrt(1 + 2 (S11 + S22) + 4 D))``. The next
    determinant is formed directly: after one erf layer every variance is at most
    ``W2 + B2`` and only enters through ``1 + 2 (S11 + S22) + 4 D``; the next determinant
    accurate for a kinked layer that follows is :func:`erf_det` (``carried``).
    """
    q = 1 + 2 * (S11 + S22) + 4 * D
    e = 2 * sp.atan2(2 * S12, sp.sqrt(q)) / sp.pi
    ed = 4 / (sp.pi * sp.sqrt(q))
    return LayerMap(e, ed, None, "closed form", carried=erf_det())


FAMILY = Family(name="erf", members=("erf",), derive=_erf, stable={"erf": erf})
