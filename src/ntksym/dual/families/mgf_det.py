"""Next determinants after the Gaussian-MGF activations, accurate relative to themselves.

A kinked layer after a smooth one reads ``sqrt(D')`` of the next covariance
``W2 [[g1, E], [E, g2]] + B2``, and a deep chain of smooth layers that spreads a
near-parallel pair (``Rbf``) amplifies every rounding of its distance; both need
``D' = N11 N22 - S12'^2`` to full relative precision. Each function here writes it from the
carried determinant ``D`` (:mod:`ntksym.dual.stable`) as ``W2^2 K + W2 B2 V``
(:func:`_next_det`) with ``K = g1 g2 - E^2`` and ``V = g1 + g2 - 2 E`` sums of terms of one
sign: exp, sin, cos and the Gaussian bump (``LayerMap.carried`` of the registered members,
:mod:`ntksym.dual.families.mgf`), and ``sin(u + c)`` with any phase (:func:`phase_det`,
for the typed ``a sin(b u + c)``, ``a cos(b u + c)`` and ``Rbf``). The maps themselves come
from the Gaussian moment generating function (``E[e^(a u + g v)] = e^(Var(a u + g v)/2)``).
"""

from __future__ import annotations

import sympy as sp
from sympy.codegen.cfunctions import expm1

from ntksym.dual.stable import B2, S11, S12, S22, TINY, W2, D, U

__all__ = ["cos_det", "exp_det", "exp_rem", "gaussian_det", "phase_det", "sin_det"]


def exp_rem(x: sp.Expr) -> sp.Expr:
    """``e^x - 1 - x >= 0``: its Taylor series for ``|x| < 1/2`` (16 terms), else directly."""
    poly: sp.Expr = 1 / sp.factorial(17)
    for k in range(16, 1, -1):
        poly = 1 / sp.factorial(k) + x * poly
    return sp.Piecewise((x**2 * poly, sp.Abs(x) < sp.Rational(1, 2)), (expm1(x) - x, True))


def _sinhc_rem(x: sp.Expr) -> sp.Expr:
    """``sinh(x)/x - 1 = sum_k x^(2k) / (2k+1)!`` for ``0 <= x < 1`` (10 terms, 1e-19)."""
    poly: sp.Expr = 1 / sp.factorial(21)
    for k in range(9, 0, -1):
        poly = 1 / sp.factorial(2 * k + 1) + x**2 * poly
    return x**2 * poly


def _pair_parts() -> dict[str, sp.Expr]:
    """Pieces shared by the next determinants, each free of cancellation.

    ``U = sqrt(S11) - sqrt(S22) = (S11 - S22) / (sqrt(S11) + sqrt(S22))`` (the difference of
    two inputs is exact where they are close, that of their rounded roots is not),
    ``gap = M - |S12| = D / (M + |S12|)`` from the carried D, ``P = (sqrt(S11) +
    sqrt(S22))^2 / 2``, ``u = U^2 / 2``, ``w = |S11 - S22| / 2 = sqrt(P u)`` and
    ``x1 = 2 S11 - P``, ``x2 = 2 S22 - P`` (``x1 + x2 = U^2``) by their factored forms.
    """
    r1, r2 = sp.sqrt(S11), sp.sqrt(S22)
    m = r1 * r2
    s = sp.Abs(S12)
    big_u = U
    return {
        "m": m,
        "s": s,
        "u2": big_u**2,
        "gap": D / sp.Max(m + s, TINY),
        "p": (r1 + r2) ** 2 / 2,
        "w": sp.Abs(U) * (r1 + r2) / 2,
        "x1": (3 * r1 + r2) * big_u / 2,
        "x2": -(3 * r2 + r1) * big_u / 2,
    }


def _next_det(x_part: sp.Expr, y_part: sp.Expr) -> sp.Expr:
    """``W2^2 (g1 g2 - E^2) + W2 B2 (g1 + g2 - 2 E)`` from its two brackets.

    The next covariance is ``W2 [[g1, E], [E, g2]] + B2`` (``g`` the diagonal map, ``E`` the
    pair's), whose determinant is this; each bracket is a sum of non-negative terms.
    """
    return W2**2 * x_part + W2 * B2 * y_part


def exp_det() -> sp.Expr:
    """Next determinant after exp, stably (see :func:`_next_det`).

    ``g1 g2 - E^2 = g1 g2 (1 - e^(-|u - v|^2))`` with ``|u - v|^2 = S11 + S22 - 2 S12``
    (``U^2 + 2 gap`` for ``S12 > 0``). With ``E1 = e^P`` the pair made parallel,
    ``E = E1 e^(-gap)`` and ``g1 + g2 - 2 E = E1 (U^2 + r(x1) + r(x2)) + 2 E1 (1 - e^(-gap))``,
    ``r(x) = e^x - 1 - x >= 0``, for ``S12 > 0``; ``expm1`` of each exponent otherwise.
    """
    pp = _pair_parts()
    minus = sp.Piecewise((pp["u2"] + 2 * pp["gap"], S12 > 0), (S11 + S22 - 2 * S12, True))
    x_part = -sp.exp(2 * (S11 + S22)) * expm1(-minus)
    e1 = sp.exp(pp["p"])
    near = e1 * (pp["u2"] + exp_rem(pp["x1"]) + exp_rem(pp["x2"]) - 2 * expm1(-pp["gap"]))
    far = expm1(2 * S11) + expm1(2 * S22) - 2 * expm1((S11 + S22) / 2 + S12)
    return _next_det(x_part, sp.Piecewise((near, S12 > 0), (far, True)))


def _scaled_rem(x: sp.Expr, p: sp.Expr, exponent: sp.Expr) -> sp.Expr:
    """``e^-p r(x)`` with ``exponent = x - p <= 0`` given exactly (no overflow for large x)."""
    far = sp.exp(exponent) - sp.exp(-p) * (1 + x)
    return sp.Piecewise((sp.exp(-p) * exp_rem(x), sp.Abs(x) < sp.Rational(1, 2)), (far, True))


def _trig_parts(pp: dict[str, sp.Expr]) -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    """Pieces of sin's and cos's determinants, finite at any variance.

    ``e^(-U^2/2) (1 - e^-gap)/2`` (``= e^(-(U^2 + gap)/2) sinh(gap/2)``),
    ``e^-P (r(-x1) + r(-x2))`` and ``e^(-2u)``-free ``sinh(u) e^-u (1 - e^-2P) =
    (1 - e^-2u)(1 - e^-2P)/2``.
    """
    p, u = pp["p"], pp["u2"] / 2
    lead = -sp.exp(-u) * expm1(-pp["gap"]) / 2
    rem = _scaled_rem(-pp["x1"], p, -2 * S11) + _scaled_rem(-pp["x2"], p, -2 * S22)
    return lead, rem, expm1(-2 * u) * expm1(-2 * p) / 2


def sin_det() -> sp.Expr:
    """Next determinant after sin, stably (see :func:`_next_det` and :func:`_sin_parts`)."""
    k, v, *_rest = _sin_parts(_pair_parts())
    return _next_det(k, v)


def cos_det() -> sp.Expr:
    """Next determinant after cos, stably (see :func:`_next_det` and :func:`_cos_parts`)."""
    k, v, *_rest = _cos_parts(_pair_parts())
    return _next_det(k, v)


def _sin_parts(pp: dict[str, sp.Expr]) -> tuple[sp.Expr, ...]:
    """``(K, V, |E|, g1, g2)`` of sin (``K = g1 g2 - E^2``, ``V = g1 + g2 - 2E``); sin is odd.

    ``g = (1 - e^(-2S))/2``, ``E1 = e^(-u) (1 - e^(-2M))/2`` (the pair made parallel),
    ``d = E1 - |E| = (e^(-U^2/2) + e^(-(S11 + S22 + 2|S12|)/2)) (1 - e^-gap)/2``;
    ``g1 g2 - E^2 = K1 + d (2 E1 - d)`` and, for ``S12 >= 0``, ``g1 + g2 - 2E = V1 + 2d``
    (else ``g1 + g2 + 2|E|``) with ``K1 = g1 g2 - E1^2 = e^(-(S11+S22)) (sinh P sinh u -
    sinh^2 w)`` (by ``sinh(x)/x - 1`` series for ``P < 1``, where the two products nearly
    agree; expanded into exponentials for ``u >= 1``; :func:`_sin_unequal_k1` where the
    variances are 6 or more apart) and ``2 V1 = 2 (1 - e^-u) + e^-P (U^2 - r(-x1) - r(-x2))``.
    """
    p, u, w = pp["p"], pp["u2"] / 2, pp["w"]
    lead, rem, sinh_part = _trig_parts(pp)
    half = (S11 + S22) / 2
    d = lead + sp.exp(-(2 * half + 2 * pp["s"]) / 2) * (-expm1(-pp["gap"])) / 2
    e1 = -sp.exp(-u) * expm1(-2 * pp["m"]) / 2
    g1, g2 = -expm1(-2 * S11) / 2, -expm1(-2 * S22) / 2
    sr_p, sr_u, sr_w = _sinhc_rem(p), _sinhc_rem(u), _sinhc_rem(w)
    small = sp.exp(-2 * half) * p * u * (sr_p * (1 + sr_u) + sr_u - sr_w * (2 + sr_w))
    large = sinh_part / 2 - (sp.exp(-sp.Min(S11, S22)) * expm1(-2 * w)) ** 2 / 4
    # u >= 1: the same, expanded (2 (u + P) = 4 half, P - u = 2 M)
    lo, hi = sp.Min(S11, S22), sp.Max(S11, S22)
    far = (-expm1(-2 * lo) - sp.exp(-2 * u) - sp.exp(-2 * p) + sp.exp(-4 * half)
           + 2 * sp.exp(-2 * half) - sp.exp(-2 * hi)) / 4  # fmt: skip
    k1 = sp.Piecewise(
        (_sin_unequal_k1(g1, g2, e1, pp["m"], hi), 6 * lo < hi),
        (small, p < 1),
        (large, u < 1),
        (far, True),
    )
    v1 = (-2 * expm1(-u) + pp["u2"] * sp.exp(-p) - rem) / 2
    y_part = sp.Piecewise((v1 + 2 * d, S12 >= 0), (g1 + g2 + 2 * (e1 - d), True))
    return k1 + d * (2 * e1 - d), y_part, e1 - d, g1, g2


def _sin_unequal_k1(g1: sp.Expr, g2: sp.Expr, e1: sp.Expr, m: sp.Expr, hi: sp.Expr) -> sp.Expr:
    """Sin's ``K1 = e^(-(S11+S22)) (sinh S11 sinh S22 - sinh^2 M)`` for ``6 min S < max S``.

    The same ``K1`` as :func:`_sin_parts`' (``sinh P sinh u - sinh^2 w`` has the same value:
    both are ``(cosh(S11 + S22) - cosh 2M)/2 - sinh^2 M``), but its three arguments now sit
    far apart (``S11 < M < S22``), where ``P``, ``u``, ``w`` nearly agree and their terms
    cancel by ``(S22 / S11)``. Below 1: ``S11 S22 e^(-(S11+S22))`` times ``(1 + r(S11))(1 +
    r(S22)) - (1 + r(M))^2`` with ``r(x) = sinh(x)/x - 1``, whose largest term dominates (at
    worst ``(1 - 1/sqrt 6)^-2``); from 1 on, ``g1 g2 - E1^2`` directly (``E1^2 < 0.9 g1 g2``).
    ``m = sqrt(S11 S22)`` and ``hi = max S`` are :func:`_sin_parts`'.
    """
    ra, rb, rm = _sinhc_rem(S11), _sinhc_rem(S22), _sinhc_rem(m)
    small = S11 * S22 * sp.exp(-(S11 + S22)) * (ra + rb + ra * rb - rm * (2 + rm))
    return sp.Piecewise((small, hi < 1), (g1 * g2 - e1**2, True))


def _cos_parts(pp: dict[str, sp.Expr]) -> tuple[sp.Expr, ...]:
    """``(K, V, E, g1, g2)`` of cos (as :func:`_sin_parts`); cos is even, ``E > 0``.

    ``g = (1 + e^(-2S))/2``, ``E1 = (e^-u + e^-P)/2``,
    ``d = E1 - E = e^(-U^2/2) (1 - e^-gap)(1 - e^(-(M + |S12|)))/2``, and
    ``g1 g2 - E^2 = K1 + d (2 E1 - d)``, ``g1 + g2 - 2E = V1 + 2d`` for either sign, with
    ``K1 = e^(-(S11+S22)) (sinh P sinh u + sinh^2 w)`` (positive terms) and
    ``2 V1 = U^2 (1 - e^-P) - 2 r(-u) + e^-P (r(-x1) + r(-x2))`` (``r(-u) = O(U^4)``;
    ``U^2 - 2 r(-u) = 2 (1 - e^-u)`` for ``u >= 1``).
    """
    p, u, w = pp["p"], pp["u2"] / 2, pp["w"]
    lead, rem, sinh_part = _trig_parts(pp)
    d = -lead * expm1(-(pp["m"] + pp["s"]))
    e1 = (sp.exp(-u) + sp.exp(-p)) / 2
    k1 = sinh_part / 2 + (sp.exp(-sp.Min(S11, S22)) * expm1(-2 * w)) ** 2 / 4
    near = -pp["u2"] * expm1(-p) - 2 * exp_rem(-u)
    v1 = (sp.Piecewise((near, u < 1), (-2 * expm1(-u) - pp["u2"] * sp.exp(-p), True)) + rem) / 2
    g1, g2 = (1 + sp.exp(-2 * S11)) / 2, (1 + sp.exp(-2 * S22)) / 2
    return k1 + d * (2 * e1 - d), v1 + 2 * d, e1 - d, g1, g2


def gaussian_det() -> sp.Expr:
    """Next determinant after ``exp(-u^2/2)``, stably (see :func:`_next_det`); it is even.

    ``g = 1/sqrt(a)``, ``a = 1 + 2 S11`` (``b`` likewise), ``E1 = 1/sqrt(q1)``,
    ``q1 = 1 + S11 + S22``, ``E = 1/sqrt(q1 + D)``, so ``d = E1 - E =
    D / ((sqrt q + sqrt q1) sqrt(q q1))``, ``K1 = (S11 - S22)^2 / ((q1 + sqrt(ab)) q1 sqrt(ab))``
    (``q1^2 - ab = (S11 - S22)^2``) and
    ``V1 = 2 (S11 - S22)^2 (1 + sqrt(q1)/(sqrt a + sqrt b)) / (sqrt(q1) (sqrt q1 + sqrt a)
    sqrt(a) (sqrt q1 + sqrt b) sqrt(b))``; every term is positive.
    """
    a, b = 1 + 2 * S11, 1 + 2 * S22
    q1 = 1 + S11 + S22
    q = q1 + D
    ra, rb, rq, rq1 = sp.sqrt(a), sp.sqrt(b), sp.sqrt(q), sp.sqrt(q1)
    delta2 = (U * (sp.sqrt(S11) + sp.sqrt(S22))) ** 2  # ((S11 - S22)^2, from the root gap)
    d = D / ((rq + rq1) * rq * rq1)
    k1 = delta2 / ((q1 + ra * rb) * q1 * ra * rb)
    v1 = 2 * delta2 * (1 + rq1 / (ra + rb)) / (rq1 * (rq1 + ra) * ra * (rq1 + rb) * rb)
    return _next_det(k1 + d * (1 / rq1 + 1 / rq), v1 + 2 * d)


def phase_det(kappa: sp.Expr) -> sp.Expr:
    """Next determinant after ``sin(u + c)``, ``kappa = cos 2c`` (a number), stably.

    By the Gaussian moment generating function ``g_i = (1 - kappa e^(-2 S_ii))/2`` and
    ``E = (e^(-m/2) - kappa e^(-p/2))/2``, ``m, p = S11 + S22 -+ 2 S12`` (the variances of
    ``u -+ v``). Both are linear in ``kappa``, so the pair's covariance is the mixture
    ``(1 - |kappa|) X + |kappa| Y`` of ``X = [[1, e^(-m/2)], [e^(-m/2), 1]]/2`` (``kappa =
    0``: ``E[cos(u - v)]/2``) and the covariance ``Y`` of sin (``kappa > 0``) or cos
    (``kappa < 0``, since ``sin(u + c)^2`` then has the sign of ``cos^2``). For 2x2 ``X, Y``,
    ``det(a X + b Y) = a^2 det X + b^2 det Y + a b C`` with
    ``C = X11 Y22 + X22 Y11 - 2 X12 Y12 = (sqrt(Y11) - sqrt(Y22))^2/2 + e^(-m/2) gY +
    M_Y (1 - e^(-m/2))``, ``M_Y = sqrt(Y11 Y22)``, ``gY = M_Y - Y12`` (``K_Y / (M_Y + Y12)``
    where ``Y12 > 0``): every term non-negative. ``det X = (1 - e^-m)/4``, ``det Y`` and
    ``V_Y`` are sin's or cos's (:func:`_sin_parts`, :func:`_cos_parts`), and the trace-like
    part ``V = g1 + g2 - 2E`` is the same mixture of ``1 - e^(-m/2)`` and ``V_Y``.
    Written out, ``g1 g2 - E^2 = (1 - e^-m)(1 - kappa^2 e^-p)/4 - kappa (e^(-S11) -
    e^(-S22))^2/4``, which cancels for ``kappa > 0``; the mixture does not.
    """
    pp = _pair_parts()
    same: sp.Basic
    if kappa > 0:
        k_y, v_y, e_y, g1, g2 = _sin_parts(pp)
        same = S12 > 0
    else:
        k_y, v_y, e_y, g1, g2 = _cos_parts(pp)
        same = sp.true
    minus = sp.Piecewise((pp["u2"] + 2 * pp["gap"], S12 > 0), (S11 + S22 - 2 * S12, True))
    v_x = -expm1(-minus / 2)
    m_y = sp.sqrt(g1 * g2)
    gap_y = sp.Piecewise((k_y / sp.Max(m_y + e_y, TINY), same), (m_y + e_y, True))
    # (sqrt(Y11) - sqrt(Y22))^2, with |Y11 - Y22| = e^(-2 min S) (1 - e^(-2 |S11 - S22|))/2
    diff = sp.exp(-2 * sp.Min(S11, S22)) * expm1(-4 * pp["w"]) / 2
    roots = diff**2 / sp.Max((sp.sqrt(g1) + sp.sqrt(g2)) ** 2, TINY)
    cross = roots / 2 + sp.exp(-minus / 2) * gap_y + m_y * v_x
    b = sp.Abs(kappa)
    k = (1 - b) ** 2 * (-expm1(-minus)) / 4 + b**2 * k_y + (1 - b) * b * cross
    return _next_det(k, (1 - b) * v_x + b * v_y)
