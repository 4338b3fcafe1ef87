"""GELU ``u Phi(u)``: Price's theorem twice and an arcsine ansatz."""

from __future__ import annotations

import functools

import sympy as sp

from ntksym.activations import Activation, u
from ntksym.dual import derive as _d
from ntksym.dual.family import DualMaps, Family, NumericFn, stable_numeric
from ntksym.dual.sources import PRICE, TSUCHIDA
from ntksym.dual.stable import (
    B2,
    N11,
    N22,
    S11,
    S12,
    S22,
    TINY,
    W2,
    D,
    LayerMap,
    U,
    h_series,
)
from ntksym.errors import NoClosedFormError


def _gelu(act: Activation) -> tuple[DualMaps, NumericFn]:
    """GELU u Phi(u): Price's theorem twice from sigma'' = (2 - u^2) phi(u), arcsine ansatz.

    With c = (1+s11)(1+s22), r = sqrt(c - s12^2) and A = asin(s12/sqrt c) the
    derivation gives

        E[sigma sigma]   = s12/4 + (s12 A + (s11 s22 - 1) r/c + 1/r) / (2 pi),
        E[sigma' sigma'] = 1/4 + (A + s12 (2 + s11 + s22)/(c r) + s12/r^3) / (2 pi).
    """
    derived = _d.price_twice(act.expr, act.derivative, sp.diff(act.derivative, u))
    if derived is None:  # pragma: no cover - the registry's gelu always fits
        raise NoClosedFormError("GELU's second derivative is not of the Gaussian MGF form")
    nngp_r, ntk_r, c = derived
    maps = DualMaps(
        act,
        _d.arcsine_functions(nngp_r, c),
        _d.arcsine_functions(ntk_r, c),
        "derived: Price's theorem + ansatz integration",
        f"{TSUCHIDA}; {PRICE}",
        True,
    )
    return maps, stable_numeric(gelu())


def x_minus_sin(x: sp.Expr) -> sp.Expr:
    """``x - sin x`` for ``0 <= x <= pi`` by its Taylor series (no sine, no branch).

    ``x - sin x = sum_k (-1)^(k+1) x^(2k+1) / (2k+1)!``; 15 terms reach 3e-19 relative at
    ``x = pi``, where the terms' magnitudes add up to 2.8 times the sum (the direct form
    cancels by ~x^2/6 as x -> 0). Every argument passed here lies in ``[0, pi]``.
    """
    coeffs = [sp.Rational((-1) ** (k + 1), sp.factorial(2 * k + 1)) for k in range(1, 16)]
    poly: sp.Expr = coeffs[-1]
    for ck in reversed(coeffs[:-1]):
        poly = ck + x**2 * poly
    return x**3 * poly


def _gelu_phi(x_ang: sp.Expr, m: sp.Expr, rq1: sp.Expr, big_p: sp.Expr) -> sp.Expr:
    """``pi - 2 pi E1/M`` for a parallel pair (see :func:`_gelu_det`), without cancellation.

    With ``alpha = atan2(sqrt(q1), M)`` (``x_ang = 2 alpha``) this is
    ``atan t - t/(1 + t^2) - M/(sqrt(q1) P)``, ``t = tan alpha``, i.e.
    ``(x - sin x)/2 - M/(sqrt(q1) P)``. Both terms are O(t^3) for large variances, where
    the first is at least 8/3 times the second, and they cancel by at most a factor 1.6
    anywhere (checked in mpmath on a grid of ``a, b`` from 1e-6 to 1e7): phi is small
    and accurate exactly where GELU is nearly ReLU.
    """
    return x_minus_sin(x_ang) / 2 - m / (rq1 * big_p)


def _gelu_det(e: sp.Expr, q1: sp.Expr, big_p: sp.Expr) -> sp.Expr:
    """Next determinant of GELU for ``S12 > 0``, a sum of terms that do not cancel.

    Write ``E(s)`` for the nngp map at covariance ``s`` (variances fixed), ``M =
    sqrt(S11 S22)``, ``E1 = E(M)`` (the pair made parallel, ``D = 0``) and ``g1, g2`` the
    diagonal maps. The next covariance is ``W2 [[g1, E], [E, g2]] + B2 11^T``, so its
    determinant is ``W2^2 (g1 g2 - E^2) + W2 B2 (g1 + g2 - 2 E)``, and with
    ``dE = E1 - E`` that is

    ``W2^2 (K1 + dE (E1 + E)) + W2 B2 (V1 + 2 dE)``,
    ``K1 = g1 g2 - E1^2 >= 0``, ``V1 = g1 + g2 - 2 E1 >= 0`` (Cauchy-Schwarz; both are 0
    when S11 = S22), every term non-negative. ``dE`` is :func:`_gelu_de`; ``K1`` and ``V1``
    are :func:`_gelu_k1_v1`, accurate in absolute terms (O(eps)), which suffices for the
    homogeneous kernels (the next GELU reads D only through ``q``); :func:`gelu_det` makes
    them accurate relative to themselves for nearly equal variances.
    """
    de, e1, phi12 = _gelu_de(q1, big_p)
    k1, v1 = _gelu_k1_v1(e1, phi12)
    return W2**2 * (k1 + de * (e1 + e)) + W2 * B2 * (v1 + 2 * de)


def _gelu_de(q1: sp.Expr, big_p: sp.Expr) -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    """``dE = E1 - E`` from the carried D (and ``E1``, ``phi12`` of :func:`_gelu_phi`).

    With ``2 pi E(s) = s psi + (S11 S22/P) sqrt(q) + s^2/(P sqrt q)``, ``q = P - s^2``,
    ``psi = atan2(sqrt q, -s)`` (so ``psi' = 1/sqrt q``), ``q1 = q(M) = 1 + S11 + S22`` and
    ``delta = M - s = D/(M + s)``,
    ``2 pi dE = delta psi1 - X + (q1/P) dq + D/(P sqrt(q1)) + s^2 dq/(P sqrt(q q1))``
    with ``dq = sqrt q - sqrt q1 = D/(sqrt q + sqrt q1)`` and
    ``X = int_s^M (psi1 - psi(t)) dt = 2 sqrt(q) sin^2(h/2) - s (h - sin h)``,
    ``h = psi1 - psi = atan2(delta sqrt(q) + s dq, s M + sqrt(q q1))`` (the angle between
    the two points ``(-s, sqrt q)``, ``(-M, sqrt q1)`` of the circle of radius sqrt P;
    the two arguments are ``P sin h`` and ``P cos h``, which give ``sin^2(h/2)``).
    For ``s > 0``, ``X <= delta psi1 / 2`` and the two terms of X cancel by at most
    a factor 2.4.
    """
    m = sp.sqrt(S11) * sp.sqrt(S22)
    s = S12
    q = q1 + D
    rq, rq1 = sp.sqrt(q), sp.sqrt(q1)
    alpha = sp.atan2(rq1, m)
    psi1 = sp.pi - alpha
    delta = D / (m + s)
    dq = D / (rq + rq1)
    # P sin h and P cos h (cross and dot products of the two points), so that
    # 2 sin^2(h/2) = 1 - cos h = sin_h^2 / (P (P + cos_h)) needs no trigonometric call
    sin_h = delta * rq + s * dq
    cos_h = s * m + rq * rq1
    h = sp.atan2(sin_h, cos_h)
    x_int = rq * sin_h**2 / (big_p * (big_p + cos_h)) - s * x_minus_sin(h)
    de = (delta * psi1 - x_int + q1 * dq / big_p + D / (big_p * rq1)
          + s**2 * dq / (big_p * rq * rq1)) / (2 * sp.pi)  # fmt: skip
    phi12 = _gelu_phi(2 * alpha, m, rq1, big_p)
    return de, m * (sp.pi - phi12) / (2 * sp.pi), phi12


def _gelu_k1_v1(e1: sp.Expr, phi12: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """``K1`` and ``V1`` from ``2 pi E1(a, b) = a b (pi - phi(a, b))`` (:func:`_gelu_phi`).

    ``a = sqrt(S11)``, ``b = sqrt(S22)``:
    ``2 pi V1 = pi (a - b)^2 - a^2 phi11 - b^2 phi22 + 2 a b phi12`` and
    ``K1 = Y (sqrt(g1 g2) + E1)`` with ``2 pi sqrt(g1 g2) = a b r``,
    ``r = sqrt((pi - phi11)(pi - phi22))`` and
    ``2 pi Y = a b (pi (2 phi12 - phi11 - phi22) + phi11 phi22 - phi12^2)/(r + pi - phi12)``.
    The phi's are O(S^-3/2) for large variances, so the errors of these small
    differences are O(eps) in absolute terms, not O(eps S) as in ``g1 g2 - E1^2``; but
    relative to ``K1`` (which is O((a - b)^2)) about ``20 eps / p^2``, ``p = |S11 - S22| /
    (1 + S11 + S22)`` (measured against mpmath: 1e-13 at ``p = 0.17``).
    """
    a, b = sp.sqrt(S11), sp.sqrt(S22)
    m = a * b
    r11, r22 = sp.sqrt(1 + 2 * S11), sp.sqrt(1 + 2 * S22)
    phi11 = _gelu_phi(2 * sp.atan2(r11, S11), S11, r11, (1 + S11) ** 2)
    phi22 = _gelu_phi(2 * sp.atan2(r22, S22), S22, r22, (1 + S22) ** 2)
    rr = sp.sqrt((sp.pi - phi11) * (sp.pi - phi22))
    y = (m * (sp.pi * (2 * phi12 - phi11 - phi22) + phi11 * phi22 - phi12**2)
         / ((rr + sp.pi - phi12) * 2 * sp.pi))  # fmt: skip
    k1 = y * (m * rr / (2 * sp.pi) + e1)
    v1 = (sp.pi * (a - b) ** 2 - S11 * phi11 - S22 * phi22 + 2 * m * phi12) / (2 * sp.pi)
    return k1, v1


#: Gauss-Legendre nodes of :func:`_psi_steps` (used for ``p < 3/10``, see :func:`gelu_det`).
_PSI_NODES = 10


@functools.lru_cache(maxsize=1)
def _psi_rule(count: int) -> tuple[tuple[float, float], ...]:
    """Gauss-Legendre nodes and weights ``(t, w)`` on ``[0, 1]`` (mpmath, rounded to doubles)."""
    import mpmath

    ctx = mpmath.mp.clone()
    ctx.dps = 40
    xs = sorted(ctx.polyroots(ctx.taylor(lambda z: ctx.legendre(count, z), 0, count)[::-1]))
    rule = []
    for x in xs:
        dp = ctx.diff(lambda z: ctx.legendre(count, z), x)
        rule.append((float((x + 1) / 2), float(1 / ((1 - x**2) * dp**2))))
    return tuple(rule)


def _psi_steps(mid: sp.Expr, step: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """``(psi(mid + k) - psi(mid - k)) / 2`` and ``psi(mid + k) + psi(mid - k) - 2 psi(mid)``.

    ``psi(s) = phi`` on the diagonal (:func:`_gelu_phi` at ``M = s``, ``q1 = 1 + 2s``),
    ``psi(s) = atan2(sqrt(1 + 2s), s) - 2s / (sqrt(1 + 2s) (1 + s))``, has algebraic
    derivatives of one sign for ``s >= 0``:
    ``psi' = -(3 + 5s) / ((1 + 2s)^(3/2) (1 + s)^2)`` and
    ``psi'' = (10 + 31 s + 25 s^2) / ((1 + 2s)^(5/2) (1 + s)^3)``. So both steps are
    integrals of one-signed functions (the second by Taylor's remainder), which no
    rounding cancels,

    ``o = (k/2) int_0^1 (psi'(mid + k t) + psi'(mid - k t)) dt``,
    ``e2 = k^2 int_0^1 (1 - t) (psi''(mid + k t) + psi''(mid - k t)) dt``,

    here by :data:`_PSI_NODES`-point Gauss-Legendre quadrature (positive weights). ``psi``
    is analytic but at ``s = -1/2`` and ``s = -1``, at a distance ``1/p`` (in units of ``k``,
    ``p = |k| / (mid + 1/2)``) from the nodes, so the error falls like ``rho^(-2 n)``,
    ``rho = a + sqrt(a^2 - 1)``, ``a = 2/p - 1`` (``rho = 11`` at ``p = 3/10``: 1e-20 for
    10 nodes). Scaled so that nothing over- or underflows for variances up to 1e300: with
    ``y = 1/(1 + mid)``, ``r = k / (1 + 2 mid)``, ``base = y / sqrt(1 + 2 mid)`` and, at
    ``s = mid +- k t``, ``a = 1 +- t k y``, ``b = 1 +- 2 t r``, ``sigma = s y``,
    ``k psi'(s) = -r base (3y + 5 sigma) / (a^2 b^(3/2))`` and
    ``k^2 psi''(s) = r^2 base (10 y^2 + 31 y sigma + 25 sigma^2) / (a^3 b^(5/2))``.
    (Before: 32 terms of the Taylor series about ``mid``, 528 coefficients, whose
    printed form took most of the fused kernel's compile time.)
    """
    y = 1 / (1 + mid)
    ratio = step / (1 + 2 * mid)
    ky, x = step * y, mid * y
    odd: sp.Expr = sp.Integer(0)
    even: sp.Expr = sp.Integer(0)
    for t_node, w_node in _psi_rule(_PSI_NODES):
        t, w = sp.Float(t_node, 17), sp.Float(w_node, 17)
        for sign in (1, -1):
            a, b, sigma = 1 + sign * t * ky, 1 + sign * 2 * t * ratio, x + sign * t * ky
            root = b * sp.sqrt(b) * a**2
            odd += w * (3 * y + 5 * sigma) / root
            even += w * (1 - t) * (10 * y**2 + 31 * y * sigma + 25 * sigma**2) / (root * a * b)
    base = y / sp.sqrt(1 + 2 * mid)
    return -ratio * base * odd / 2, ratio**2 * base * even


def _atan_rem(z: sp.Expr) -> sp.Expr:
    """``(z - atan z) / z = z^2/3 - z^4/5 + ...`` by 8 terms of its series.

    In :func:`_gelu_k1_v1_near` ``z`` stays below about 0.25 (small variances, ``p``
    near 1/5), where the truncation is 1e-11 of a term that is a few percent of ``Q``;
    for large variances ``z`` is tiny.
    """
    poly: sp.Expr = sp.Rational(-1, 17)
    for j in range(7, 0, -1):
        poly = sp.Rational((-1) ** (j + 1), 2 * j + 1) + z**2 * poly
    return z**2 * poly


def _gelu_k1_v1_near(phi12: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """``K1`` and ``V1`` accurate relative to themselves for nearly equal variances.

    In ``(M, q1)`` (``P = q1 + M^2``) the pair made parallel has ``2 pi E1 = M (pi - phi(M,
    q1))`` with ``phi`` of :func:`_gelu_phi`; the diagonal points lie on the line
    ``(s, 1 + 2s)``, where ``phi = psi(s)`` (:func:`_psi_polys`), at ``s = S11, S22``, and the
    pair at ``(m, q1)``, ``m = sqrt(S11 S22)``, next to the midpoint ``(mid, q1)`` of that
    line, ``mid = (S11 + S22)/2``: ``mid - m = U^2/2``, ``U = (S11 - S22)/(sqrt(S11) +
    sqrt(S22))``. Along ``M`` at fixed ``q1``,
    ``phi(mid) - phi(m) = (U^2/2) Q``, ``Q = -N/(r X P1 P2) + (r/X)(z - atan z)/z``
    (``r = sqrt(q1)``, ``X = q1 + mid m``, ``z = r U^2/(2X)``, ``P1, P2`` at ``mid, m``,
    ``N = 2 q1^3 + q1^2 (1 + mid^2 + m^2) - mid^2 m^2 > 0``), and along the line the odd
    and even steps ``o, e2`` of :func:`_psi_steps` (``k = (S11 - S22)/2``). With
    ``H = e2/2 + (U^2/2) Q`` (so ``psi(S11) - phi12 = H + o``, ``psi(S22) - phi12 = H - o``),
    ``4 pi^2 K1 = S11 S22 ((pi - psi11)(pi - psi22) - (pi - phi12)^2)
    = -S11 S22 (2 H (pi - phi12 - H/2) + o^2)`` and
    ``2 pi V1 = pi U^2 - mid e2 - 2 k o - U^2 (phi12 + (U^2/2 + m) Q)``:
    every piece is O(k) or O(k^2) by itself, none a difference of O(1) values.
    Measured against mpmath where :func:`gelu_det` uses it (variances 1e-5..1e5): K1
    within 1.3e-14 (its terms cancel by up to ~10 for large variances), V1 within 1.3e-15.
    """
    a, b = sp.sqrt(S11), sp.sqrt(S22)
    # (S11 - S22 from the root gap U, accurate where the rounded variances' difference is not)
    m, mid, k = a * b, (S11 + S22) / 2, U * (a + b) / 2
    half_u2 = U**2 / 2
    q1 = 1 + S11 + S22
    r, x_dot = sp.sqrt(q1), q1 + mid * m
    p1, p2 = q1 + mid**2, (1 + S11) * (1 + S22)
    n_pos = 2 * q1**3 + q1**2 * (1 + mid**2 + m**2) - mid**2 * m**2
    dq = -n_pos / (r * x_dot * p1 * p2) + r / x_dot * _atan_rem(r * half_u2 / x_dot)
    odd, even = _psi_steps(mid, k)
    h = even / 2 + half_u2 * dq
    k1 = -S11 * S22 * (2 * h * (sp.pi - phi12 - h / 2) + odd**2) / (4 * sp.pi**2)
    v1 = (2 * sp.pi * half_u2 - mid * even - 2 * k * odd
          - 2 * half_u2 * (phi12 + (half_u2 + m) * dq)) / (2 * sp.pi)  # fmt: skip
    return k1, v1


def _gelu_nngp() -> tuple[sp.Expr, sp.Expr]:
    """GELU's nngp map: the direct form, and the map :func:`gelu` prints.

    The latter is the direct form or, for anti-parallel pairs, the form that does not
    cancel there (see :func:`gelu`).
    """
    q1 = 1 + S11 + S22
    q = q1 + D
    big_p = (1 + S11) * (1 + S22)
    rq = sp.sqrt(q)
    ang = sp.atan2(rq, -S12)
    neg = (S12 < 0) & (ang < 1)
    e_dir = S12 * ang / (2 * sp.pi) + (S11 * S22 * q + S12**2) / (2 * sp.pi * big_p * rq)
    e_neg = (sp.sqrt(big_p) * h_series(ang)
             - ((q1 + S12) * (q1 - S12) + q1 * D) / (big_p * rq)) / (2 * sp.pi)  # fmt: skip
    return e_dir, sp.Piecewise((e_neg, neg), (e_dir, True))


@functools.lru_cache(maxsize=1)
def gelu_det() -> sp.Expr:
    """Next determinant after GELU accurate relative to itself (``LayerMap.carried``).

    :func:`_gelu_det`'s sum of non-negative terms, with ``K1`` and ``V1`` from
    :func:`_gelu_k1_v1_near` where ``p = |S11 - S22| / (1 + S11 + S22) < 1/5`` (``< 3/10``
    for ``S11 + S22 > 1``) and from :func:`_gelu_k1_v1` elsewhere (accurate to about
    ``20 eps / p^2`` for large variances, to a few eps for small ones); for ``S12 <= 0``
    :func:`_gelu_det_anti`. Measured worst against mpmath: 4.9e-14 (variances 1e-8..1e12,
    ``p`` up to 0.6), as with the 32-term Taylor steps that :func:`_psi_steps` replaced.
    """
    q1 = 1 + S11 + S22
    big_p = (1 + S11) * (1 + S22)
    e_dir, _e = _gelu_nngp()
    de, e1, phi12 = _gelu_de(q1, big_p)
    k1_far, v1_far = _gelu_k1_v1(e1, phi12)
    k1_near, v1_near = _gelu_k1_v1_near(phi12)
    p = sp.Abs(S11 - S22) / q1
    near = (p < sp.Rational(1, 5)) | ((p < sp.Rational(3, 10)) & (S11 + S22 > 1))
    k1 = sp.Piecewise((k1_near, near), (k1_far, True))
    v1 = sp.Piecewise((v1_near, near), (v1_far, True))
    carried = W2**2 * (k1 + de * (e1 + e_dir)) + W2 * B2 * (v1 + 2 * de)
    return sp.Piecewise((carried, S12 > 0), (_gelu_det_anti(), True))


def _rho_diag(v: sp.Expr) -> sp.Expr:
    """``E[rho(u)^2]`` at variance ``v`` (:func:`_gelu_det_anti`), a sum of positive terms."""
    w = sp.sqrt(1 + 2 * v)
    return (v * sp.atan2(v, w) + 2 * v**2 / ((1 + v) * w)) / (2 * sp.pi)


def _gelu_det_anti() -> sp.Expr:
    """The next determinant for ``S12 <= 0``, where GELU's near-linearity cancels.

    ``gelu(u) = u/2 + rho(u)`` with ``rho(u) = u (Phi(u) - 1/2)`` even, so
    ``E = S12/4 + R`` with ``R = E[rho rho]``, even in ``S12``:
    ``2 pi R = s atan2(s, sqrt q) + (S11 S22 q + s^2)/(P sqrt q)``, ``s = |S12|`` (the map of
    :func:`gelu` less ``S12/4``, all terms positive), and ``g_i = S_ii/4 + R_ii``. For
    small variances an anti-parallel pair has ``E ~ -sqrt(g1 g2)``; the gap is
    ``sqrt(g1 g2) + E = (S11 R22 + S22 R11 + 4 R11 R22)/(4 sqrt(g1 g2) + M)
    + D/(4 (M + s)) + R`` (``g1 g2 - M^2/16`` expanded), a sum of positive terms, and
    ``g1 g2 - E^2 = gap (sqrt(g1 g2) - E)``, ``g1 + g2 - 2E = (sqrt g1 - sqrt g2)^2 +
    2 (sqrt(g1 g2) - E)`` (``sqrt(g1 g2) - E >= s/4``: ``R <= sqrt(R11 R22)``).
    """
    s = -S12
    q = 1 + S11 + S22 + D
    rq, big_p = sp.sqrt(q), (1 + S11) * (1 + S22)
    r_pair = (s * sp.atan2(s, rq) + (S11 * S22 * q + s**2) / (big_p * rq)) / (2 * sp.pi)
    r11, r22 = _rho_diag(S11), _rho_diag(S22)
    g1, g2 = S11 / 4 + r11, S22 / 4 + r22
    m, rg = sp.sqrt(S11) * sp.sqrt(S22), sp.sqrt(g1 * g2)
    gap = ((S11 * r22 + S22 * r11 + 4 * r11 * r22) / sp.Max(4 * rg + m, TINY)
           + D / sp.Max(4 * (m + s), TINY) + r_pair)  # fmt: skip
    far = rg + s / 4 - r_pair
    v = (g1 - g2) ** 2 / sp.Max((sp.sqrt(g1) + sp.sqrt(g2)) ** 2, TINY) + 2 * far
    return W2**2 * gap * far + W2 * B2 * v


def gelu() -> LayerMap:
    """GELU ``u Phi(u)``: the closed form derived by ntksym.dual (Tsuchida et al. 2021).

    With ``P = (1 + S11)(1 + S22)``, ``q = P - S12^2 = 1 + S11 + S22 + D`` and
    ``asin(S12/sqrt(P)) = atan2(S12, sqrt q)``, the derived form reads
    ``E = S12/4 + S12 asin(..)/(2 pi) + 1/(2 pi sqrt q) + (S11 S22 - 1) sqrt(q)/(2 pi P)``.
    Rearranged here so that nothing cancels for small variances (the last two terms
    nearly cancel as S -> 0):
    ``S12/4 + S12 atan2(S12, sqrt q)/(2 pi) = S12 atan2(sqrt q, -S12)/(2 pi)`` and
    ``P + (S11 S22 - 1) q = S11 S22 q + S12^2``, so with ``psi = atan2(sqrt q, -S12)``

    ``E[gelu gelu] = S12 psi/(2 pi) + (S11 S22 q + S12^2)/(2 pi P sqrt q)``,
    ``E[gelu' gelu'] = psi/(2 pi) + S12/(2 pi q^(3/2)) + S12 (2 + S11 + S22)/(2 pi P sqrt q)``.

    ``q`` is formed from the carried determinant, so no ``1 - rho^2`` appears. For
    ``S12 < 0`` and ``psi < 1`` (anti-parallel pairs at variances above ~1) the first
    terms of both maps cancel; there, with ``c1 = 1 + S11 + S22`` and
    ``sqrt(P) (sin psi - psi cos psi) = sqrt(q) + S12 psi``,

    ``2 pi E = sqrt(P) (sin psi - psi cos psi) - ((c1 + S12)(c1 - S12) + c1 D)/(P sqrt q)``,
    ``2 pi E' = (2 psi - sin 2 psi)/2 + S12/q^(3/2) - S12 (D - 1)/(P sqrt q)``

    (the small differences by their series), which cancel by a factor ~2.6 at most
    for anti-parallel pairs. The second form of ``E'`` is used for every ``S12 < 0``:
    its terms' magnitudes never add up to more than those of the first (checked in
    mpmath); both forms cancel badly only near the zero crossings of the maps.

    The next determinant (:func:`_gelu_det` for ``S12 > 0``) is a sum of non-negative
    terms built from the carried D, accurate to O(eps) relative to ``q`` at any variance
    (``q`` is the only place it enters the next layer): GELU behaves like ReLU for large
    inputs, variances grow like ReLU's, and the direct ``N11 N22 - S12'^2`` (still used
    for ``S12 <= 0``, where it does not cancel at large variances) errs by
    ``eps N11 N22`` there. It is not accurate relative to itself at small variances
    (its error stays below eps there, next to ``q >= 1``); with weight_std > 2, where
    variances grow from small to large over the layers, that error is carried along.

    Measured (``benchmarks/bench_accuracy.py --ours-only --acts gelu``: norms 1e-6..1e6,
    depths 1..20, see docs/performance.md): NNGP within 5.8e-15, NTK within 8.2e-14
    relative of the mpmath reference; the worst NTK entries are anti-parallel pairs of
    very different norms at depth 3, where ``Theta^(2) Sigmadot^(3) + Sigma^(3)`` itself
    cancels by a factor ~70. Before, 4e-10 (NNGP) and 1.3e-9 (NTK).
    """
    q1 = 1 + S11 + S22
    q = q1 + D
    big_p = (1 + S11) * (1 + S22)
    rq = sp.sqrt(q)
    ang = sp.atan2(rq, -S12)
    e_dir, e = _gelu_nngp()
    ed_dir = (ang / (2 * sp.pi) + S12 / (2 * sp.pi * q ** sp.Rational(3, 2))
              + S12 * (2 + S11 + S22) / (2 * sp.pi * big_p * rq))  # fmt: skip
    ed_neg = (x_minus_sin(2 * ang) / 2 + S12 / (q * rq)
              - S12 * (D - 1) / (big_p * rq)) / (2 * sp.pi)  # fmt: skip
    ed = sp.Piecewise((ed_neg, S12 < 0), (ed_dir, True))
    direct = N11 * N22 - (W2 * e + B2) ** 2
    det = sp.Piecewise((_gelu_det(e_dir, q1, big_p), S12 > 0), (direct, True))
    # on the diagonal (S12 = S, D = 0), kept as atan2: SymPy would turn it into
    # atan(sqrt(1+2S)/(-S)) + pi, which divides by zero at S = 0
    s = sp.Symbol("S", positive=True)
    diag = (s * sp.atan2(sp.sqrt(1 + 2 * s), -s, evaluate=False) / (2 * sp.pi)
            + s**2 / (sp.pi * (1 + s) * sp.sqrt(1 + 2 * s)))  # fmt: skip
    return LayerMap(e, ed, det, "closed form", diag, carried=gelu_det())


FAMILY = Family(name="gelu", members=("gelu",), derive=_gelu, stable={"gelu": gelu})
