"""Numerically stable layer maps for the activations with closed-form dual kernels.

A *layer map* takes the 2x2 covariance of a pair at layer ``l`` and returns what
the next layer needs. Its inputs are the symbols of :data:`INPUTS`:

``S11, S22, S12``
    the covariance entries ``Sigma^(l)(x,x), Sigma^(l)(x',x'), Sigma^(l)(x,x')``;
``D``
    its determinant ``S11*S22 - S12**2``, carried *accurately* from layer to layer
    (formed without cancellation from the inputs at layer 1, see the templates);
``N11, N22``
    the next layer's diagonal variances (computed once per row and column);
``W2, B2``
    ``weight_std**2`` and ``bias_std**2``.

Its outputs are ``nngp = E[sigma(u) sigma(v)]``, ``ntk = E[sigma'(u) sigma'(v)]`` (or
None when sigma' is a Dirac delta) and ``det``, the next layer's determinant
``N11*N22 - (W2*nngp + B2)**2``, or None to let the template form it directly.

Why carry ``D``: for positively homogeneous activations (ReLU and relatives) the
pair's angle ``theta`` keeps shrinking like ``sqrt(1 - rho)`` through the layers, and
``rho = 1 - epsilon`` rounded to float64 gives ``arccos(rho)`` with an absolute error of
``sqrt(epsilon)`` ~ 1e-8 (the loss measured in DESIGN.md). Here every angle is
``atan2(sqrt(D), S12)`` and the next determinant is a product of two gaps,
``(M' - S12') (M' + S12')`` with ``M' = sqrt(N11 N22)``, each written as a sum of
non-negative terms, so no step subtracts nearly equal numbers.

The rules are data (:data:`RULES`, name -> function); each closed form cites its
source in the function's docstring.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

__all__ = [
    "Atan2Q",
    "LayerMap",
    "RULES",
    "INPUTS",
    "ROOTS",
    "S11",
    "S12",
    "S22",
    "D",
    "N11",
    "N22",
    "W2",
    "B2",
    "R11",
    "R22",
    "Q11",
    "Q22",
    "U",
]

S11, S22, N11, N22 = sp.symbols("S11 S22 N11 N22", nonnegative=True)
S12 = sp.Symbol("S12", real=True)
D = sp.Symbol("D", nonnegative=True)
W2, B2 = sp.symbols("W2 B2", nonnegative=True)

#: Every symbol a layer map may use, in the order the generated ``_pair`` takes them.
INPUTS: tuple[sp.Symbol, ...] = (S11, S22, S12, D, N11, N22, W2, B2)

R11, R22, Q11, Q22 = sp.symbols("R11 R22 Q11 Q22", nonnegative=True)
#: Square roots of the four variances. The templates compute them once per row, column
#: and layer and pass them to ``_pair`` after :data:`INPUTS`, so a layer map written with
#: ``sqrt(S11)`` etc. costs no square root per entry (see ``render.render_spec``).
ROOTS: dict[sp.Expr, sp.Symbol] = {
    sp.sqrt(S11): R11,
    sp.sqrt(S22): R22,
    sp.sqrt(N11): Q11,
    sp.sqrt(N22): Q22,
}


#: ``sqrt(S11) - sqrt(S22)``, signed. A map that uses it gets it as one more argument
#: after :data:`ROOTS`: ``R11 - R22`` past layer 1; at layer 1 the templates form it from
#: the inputs for the pairs with ``|rho| > 0.99``, ``c (|x| - |x'|)(|x| + |x'|) /
#: (R11 + R22)`` with ``|x| - |x'|`` as accurate as the first determinant. Its two
#: rounded variances alone would leave it an absolute error of ``2^-53 sqrt(S)``
#: (1e-10 at variance 1e12), which bounds near-parallel distances such as
#: :func:`_distances`.
U = sp.Symbol("U", real=True)


class Atan2Q(sp.Function):
    """``atan2(y, x)`` known to have ``y >= 0`` and ``x > 0`` (first quadrant).

    Printed as the generated module's cheaper ``_atan2q`` by the loop printer (see
    ``render.positive_variant``, which introduces it); SymPy leaves it unevaluated.
    """

    nargs = 2


#: Smallest positive normal float64; guards 0/0 when a variance is exactly zero.
_TINY = sp.Float("2.2250738585072014e-308", 17)


@dataclass(frozen=True)
class LayerMap:
    """One layer of the kernel recursion as SymPy expressions in :data:`INPUTS`.

    Attributes:
        nngp: ``E[sigma(u) sigma(v)]`` for the pair.
        ntk: ``E[sigma'(u) sigma'(v)]``, or None when sigma' has a Dirac delta.
        det: The next layer's determinant formed stably, or None (the template
            then forms ``N11*N22 - S12'**2`` directly).
        method: How the forms were obtained (shown in the generated docstring).
        diag: ``E[sigma(u)^2]`` in ``spec.S`` when given by hand; by default it is the
            nngp map on the diagonal, simplified by SymPy.
    """

    nngp: sp.Expr
    ntk: sp.Expr | None
    det: sp.Expr | None
    method: str
    diag: sp.Expr | None = None


def _angle_parts() -> tuple[sp.Expr, sp.Expr, sp.Expr, sp.Expr, sp.Expr]:
    """``M = sqrt(S11 S22)``, ``R = sqrt(D)``, and the gaps ``M - S12``, ``M + S12``.

    ``M - S12 = D / (M + S12)`` is used when ``S12 > 0`` (no cancellation there), and
    symmetrically for ``M + S12``.
    """
    m = sp.sqrt(S11 * S22)
    r = sp.sqrt(D)
    gap = sp.Piecewise((D / (m + S12), S12 > 0), (m - S12, True))
    anti = sp.Piecewise((D / (m - S12), S12 < 0), (m + S12, True))
    theta = sp.atan2(r, S12)
    return m, r, gap, anti, theta


def _det_from_gaps(c: sp.Expr, gap_e: sp.Expr, anti_e: sp.Expr) -> sp.Expr:
    """Next determinant for a positively homogeneous activation (E[sigma(u)^2] = c*S).

    With ``P' = W2*c*M + B2`` (the value of ``S12'`` at rho = 1),
    ``M' - P' = W2*B2*c*(sqrt(S11) - sqrt(S22))**2 / (M' + P')`` exactly, so
    ``M' - S12' = (M' - P') + W2*gap_e`` and ``M' + S12' = (M' - P') + W2*anti_e + 2*B2``
    with ``gap_e = c*M - E >= 0`` and ``anti_e = c*M + E >= 0``.
    """
    m = sp.sqrt(S11 * S22)
    mn = sp.sqrt(N11 * N22)
    pn = W2 * c * m + B2
    q = W2 * B2 * c * (sp.sqrt(S11) - sp.sqrt(S22)) ** 2 / sp.Max(mn + pn, _TINY)
    return (q + W2 * gap_e) * (q + W2 * anti_e + 2 * B2)


def _h(x: sp.Expr) -> sp.Expr:
    """``sin x - x cos x`` as its Taylor series, for ``0 <= x < 1`` (no cancellation there).

    ``sin x - x cos x = sum_k (-1)^(k+1) 2k x^(2k+1) / (2k+1)!``; 11 terms reach 1e-19
    relative at ``x = 1``. Callers use it below 1 only: above, the direct form they
    already have cancels by at most a factor 3.
    """
    # x^3 P(x^2) in Horner form (SymPy keeps the nesting; the generated code then needs
    # one multiply-add per term instead of a power each)
    coeffs = [(-1) ** (k + 1) * sp.Rational(2 * k, sp.factorial(2 * k + 1)) for k in range(1, 12)]
    poly: sp.Expr = coeffs[-1]
    for ck in reversed(coeffs[:-1]):
        poly = ck + x**2 * poly
    return x**3 * poly


def _arccos_parts() -> tuple[sp.Expr, ...]:
    """Angles and the degree-1 arc-cosine numerators, each without cancellation.

    ``theta = atan2(R, S12)`` and ``phi = pi - theta = atan2(R, -S12)`` (both accurate
    in absolute terms). ``kp = M (sin theta + phi cos theta)`` and
    ``kn = M (sin phi + theta cos phi)`` (the same with v -> -v); where the direct form
    would cancel (``phi < 1`` for ``kp``), ``kp = M (sin phi - phi cos phi)`` by its series.
    """
    m, r, gap, anti, theta = _angle_parts()
    phi = sp.atan2(r, -S12)
    # phi < 1 implies S12 < 0 (phi >= pi/2 otherwise), and there r + phi S12 = M h(phi)
    # cancels; for phi >= 1 the direct form loses at most a factor 3 (h(1) = 0.30 vs
    # sin 1 = 0.84) and needs no 1/M. Likewise for kn with theta.
    # (S12 < 0 is implied; spelling it out lets render.positive_variant drop the branch)
    kp = sp.Piecewise((m * _h(phi), (S12 < 0) & (phi < 1)), (r + phi * S12, True))
    kn = sp.Piecewise((m * _h(theta), (S12 > 0) & (theta < 1)), (r - theta * S12, True))
    return m, r, gap, anti, theta, phi, kp, kn


def relu() -> LayerMap:
    """ReLU: the arc-cosine kernel of degree 1 (Cho & Saul 2009).

    ``E[relu(u) relu(v)] = M (sin theta + (pi - theta) cos theta) / (2 pi)`` and
    ``E[H(u) H(v)] = (pi - theta) / (2 pi)`` with ``M = sqrt(S11 S22)``,
    ``theta = atan2(sqrt(D), S12)``; see :func:`_arccos_parts` for the stable forms.
    """
    m, r, gap, _anti, theta, phi, kp, _kn = _arccos_parts()
    e = kp / (2 * sp.pi)
    ed = phi / (2 * sp.pi)
    # M/2 - E = (pi (M - S12) - (sqrt(D) - theta S12)) / (2 pi); sqrt(D) - theta S12
    # = M (sin theta - theta cos theta) >= 0 and is small next to pi (M - S12).
    gap_e = (sp.pi * gap - (r - theta * S12)) / (2 * sp.pi)
    anti_e = m / 2 + e
    return LayerMap(e, ed, _det_from_gaps(sp.Rational(1, 2), gap_e, anti_e), "closed form")


def _leaky(a: sp.Expr) -> LayerMap:
    """``max(0,u) + a min(0,u) = relu(u) - a relu(-u)``, for slopes ``a >= 0``.

    ``E = ((1+a^2) M k(theta) - 2 a M k(pi - theta)) / (2 pi)`` with the degree-1
    arc-cosine function ``k(t) = sin t + (pi - t) cos t``, and
    ``E[sigma' sigma'] = ((1+a^2)(pi - theta) + 2 a theta) / (2 pi)`` (Cho & Saul 2009).
    """
    m, r, gap, _anti, theta, phi, kp, kn = _arccos_parts()
    c = (1 + a**2) / 2
    e = ((1 + a**2) * kp - 2 * a * kn) / (2 * sp.pi)
    ed = ((1 + a**2) * phi + 2 * a * theta) / (2 * sp.pi)
    gap_e = ((1 + a**2) * (sp.pi * gap - (r - theta * S12)) + 2 * a * kn) / (2 * sp.pi)
    anti_e = c * m + e
    return LayerMap(e, ed, _det_from_gaps(c, gap_e, anti_e), "closed form")


def _even_odd(ca: sp.Expr, cc: sp.Expr) -> LayerMap:
    """``A u + C |u|`` (``|u|``, the identity, leaky ReLU with a negative slope).

    ``E[|u||v|] = (2 sqrt(D) + (pi - 2 t) |S12|) / pi`` with ``t = atan2(sqrt(D), |S12|)``
    (Cho & Saul 2009 applied to ``|u| = relu(u) + relu(-u)``), ``E[uv] = S12``,
    ``E[u|v|] = 0``; ``E[sign u sign v] = (2/pi) asin(rho) = (2/pi) atan2(S12, sqrt(D))``.
    """
    c = ca**2 + cc**2
    m, r, gap, anti, _theta = _angle_parts()
    t = sp.atan2(r, sp.Abs(S12))
    e_abs = (2 * r + (sp.pi - 2 * t) * sp.Abs(S12)) / sp.pi
    small = sp.Min(gap, anti)  # M - |S12|
    gap_abs = (sp.pi * small - 2 * (r - t * sp.Abs(S12))) / sp.pi  # M - E|u||v| >= 0
    e = ca**2 * S12 + cc**2 * e_abs
    ed = ca**2 + cc**2 * 2 * sp.atan2(S12, r) / sp.pi
    gap_e = ca**2 * gap + cc**2 * gap_abs
    anti_e = ca**2 * anti + cc**2 * (m + e_abs)
    if cc == 0:  # the identity: E = S12, and the ntk is the constant A^2
        e, ed = ca**2 * S12, ca**2 + 0 * S12
    return LayerMap(e, ed, _det_from_gaps(c, gap_e, anti_e), "closed form")


def leaky_relu(slope: float = 0.01) -> LayerMap:
    """Leaky ReLU ``max(0,u) + slope*min(0,u)``; see :func:`_leaky` and :func:`_even_odd`."""
    a = sp.nsimplify(slope)
    if a < 0:
        return _even_odd((1 + a) / 2, (1 - a) / 2)
    return _leaky(a)


def absolute() -> LayerMap:
    """``|u|``: the even part of the arc-cosine kernel (Cho & Saul 2009)."""
    return _even_odd(sp.Integer(0), sp.Integer(1))


def identity() -> LayerMap:
    """The identity: ``E[uv] = S12``, ``E[1*1] = 1``."""
    return _even_odd(sp.Integer(1), sp.Integer(0))


def erf() -> LayerMap:
    """erf: Williams (1997), "Computing with infinite networks".

    ``E[erf(u) erf(v)] = (2/pi) asin(2 S12 / sqrt((1+2 S11)(1+2 S22)))`` and
    ``E[erf'(u) erf'(v)] = 4 / (pi sqrt((1+2 S11)(1+2 S22) - 4 S12^2))``. Both are written
    with ``(1+2 S11)(1+2 S22) - 4 S12^2 = 1 + 2 (S11 + S22) + 4 D``, which never cancels,
    and the arcsine as ``atan2(2 S12, sqrt(1 + 2 (S11 + S22) + 4 D))``. The next
    determinant is formed directly: after one erf layer every variance is at most
    ``W2 + B2`` and only enters through ``1 + 2 (S11 + S22) + 4 D``.
    """
    q = 1 + 2 * (S11 + S22) + 4 * D
    e = 2 * sp.atan2(2 * S12, sp.sqrt(q)) / sp.pi
    ed = 4 / (sp.pi * sp.sqrt(q))
    return LayerMap(e, ed, None, "closed form")


def step() -> LayerMap:
    """Heaviside step: ``E[H(u) H(v)] = (pi - theta) / (2 pi)`` (Cho & Saul 2009, degree 0).

    ``E[H'(u) H'(v)] = E[delta(u) delta(v)] = 1 / (2 pi sqrt(D))`` is infinite on the
    diagonal (D = 0), so no NTK is generated for the step: its NTK diverges for every
    input paired with itself, and a Gram matrix of it is not defined.
    """
    _m, _r, _gap, _anti, theta, phi, _kp, _kn = _arccos_parts()
    e = phi / (2 * sp.pi)
    # E[H^2] = 1/2 for every variance, so N11 = N22 = W2/2 + B2 and
    # N11 - S12' = W2 theta / (2 pi), N11 + S12' = W2 (1 - theta/(2 pi)) + 2 B2.
    det = (W2 * theta / (2 * sp.pi)) * (W2 * (sp.pi + phi) / (2 * sp.pi) + 2 * B2)
    return LayerMap(e, None, det, "closed form")


def sign() -> LayerMap:
    """Sign: ``E[sign u sign v] = (2/pi) asin(rho) = 1 - 2 theta / pi``.

    Like the step, its derivative is ``2 delta(u)`` and the NTK diverges on the
    diagonal, so only the NNGP is generated.
    """
    _m, r, _gap, _anti, theta, phi, _kp, _kn = _arccos_parts()
    e = 2 * sp.atan2(S12, r) / sp.pi
    # E[sign^2] = 1: N11 = N22 = W2 + B2; N11 - S12' = 2 W2 theta/pi,
    # N11 + S12' = 2 W2 (pi - theta)/pi + 2 B2.
    det = (2 * W2 * theta / sp.pi) * (2 * W2 * phi / sp.pi + 2 * B2)
    return LayerMap(e, None, det, "closed form")


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
    """``E[sin u sin v] = exp(-(S11+S22)/2) sinh(S12)`` (Rahimi & Recht 2007), overflow-safe.

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

    From the Gaussian moment generating function (Rahimi & Recht 2007). After one
    layer every variance is at most ``W2 + B2``, so the next determinant is formed
    directly.
    """
    return LayerMap(_sinh_part(), _cosh_part(), None, "closed form")


def cos() -> LayerMap:
    """cos: ``E[cos u cos v] = e^{-(S11+S22)/2} cosh S12`` and ``E[sin u sin v]`` with sinh.

    The mirror image of :func:`sin` (Rahimi & Recht 2007).
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


def _x_minus_sin(x: sp.Expr) -> sp.Expr:
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
    return _x_minus_sin(x_ang) / 2 - m / (rq1 * big_p)


def _gelu_det(e: sp.Expr, q1: sp.Expr, big_p: sp.Expr) -> sp.Expr:
    """Next determinant of GELU for ``S12 > 0``, a sum of terms that do not cancel.

    Write ``E(s)`` for the nngp map at covariance ``s`` (variances fixed), ``M =
    sqrt(S11 S22)``, ``E1 = E(M)`` (the pair made parallel, ``D = 0``) and ``g1, g2`` the
    diagonal maps. The next covariance is ``W2 [[g1, E], [E, g2]] + B2 11^T``, so its
    determinant is ``W2^2 (g1 g2 - E^2) + W2 B2 (g1 + g2 - 2 E)``, and with
    ``dE = E1 - E`` that is

    ``W2^2 (K1 + dE (E1 + E)) + W2 B2 (V1 + 2 dE)``,
    ``K1 = g1 g2 - E1^2 >= 0``, ``V1 = g1 + g2 - 2 E1 >= 0`` (Cauchy-Schwarz; both are 0
    when S11 = S22), every term non-negative. Then:

    * ``dE`` from the carried D. With ``2 pi E(s) = s psi + (S11 S22/P) sqrt(q) +
      s^2/(P sqrt q)``, ``q = P - s^2``, ``psi = atan2(sqrt q, -s)`` (so ``psi' = 1/sqrt q``),
      ``q1 = q(M) = 1 + S11 + S22`` and ``delta = M - s = D/(M + s)``,
      ``2 pi dE = delta psi1 - X + (q1/P) dq + D/(P sqrt(q1)) + s^2 dq/(P sqrt(q q1))``
      with ``dq = sqrt q - sqrt q1 = D/(sqrt q + sqrt q1)`` and
      ``X = int_s^M (psi1 - psi(t)) dt = 2 sqrt(q) sin^2(h/2) - s (h - sin h)``,
      ``h = psi1 - psi = atan2(delta sqrt(q) + s dq, s M + sqrt(q q1))`` (the angle between
      the two points ``(-s, sqrt q)``, ``(-M, sqrt q1)`` of the circle of radius sqrt P;
      the two arguments are ``P sin h`` and ``P cos h``, which give ``sin^2(h/2)``).
      For ``s > 0``, ``X <= delta psi1 / 2`` and the two terms of X cancel by at most
      a factor 2.4.
    * ``K1`` and ``V1`` from ``2 pi E1(a, b) = a b (pi - phi(a, b))`` (:func:`_gelu_phi`),
      ``a = sqrt(S11)``, ``b = sqrt(S22)``:
      ``2 pi V1 = pi (a - b)^2 - a^2 phi11 - b^2 phi22 + 2 a b phi12`` and
      ``K1 = Y (sqrt(g1 g2) + E1)`` with ``2 pi sqrt(g1 g2) = a b r``,
      ``r = sqrt((pi - phi11)(pi - phi22))`` and
      ``2 pi Y = a b (pi (2 phi12 - phi11 - phi22) + phi11 phi22 - phi12^2)/(r + pi - phi12)``.
      The phi's are O(S^-3/2) for large variances, so the errors of these small
      differences are O(eps) in absolute terms, not O(eps S) as in ``g1 g2 - E1^2``.
    """
    a, b = sp.sqrt(S11), sp.sqrt(S22)
    m = a * b
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
    x_int = rq * sin_h**2 / (big_p * (big_p + cos_h)) - s * _x_minus_sin(h)
    de = (delta * psi1 - x_int + q1 * dq / big_p + D / (big_p * rq1)
          + s**2 * dq / (big_p * rq * rq1)) / (2 * sp.pi)  # fmt: skip
    phi12 = _gelu_phi(2 * alpha, m, rq1, big_p)
    r11, r22 = sp.sqrt(1 + 2 * S11), sp.sqrt(1 + 2 * S22)
    phi11 = _gelu_phi(2 * sp.atan2(r11, S11), S11, r11, (1 + S11) ** 2)
    phi22 = _gelu_phi(2 * sp.atan2(r22, S22), S22, r22, (1 + S22) ** 2)
    rr = sp.sqrt((sp.pi - phi11) * (sp.pi - phi22))
    e1 = m * (sp.pi - phi12) / (2 * sp.pi)
    y = (m * (sp.pi * (2 * phi12 - phi11 - phi22) + phi11 * phi22 - phi12**2)
         / ((rr + sp.pi - phi12) * 2 * sp.pi))  # fmt: skip
    k1 = y * (m * rr / (2 * sp.pi) + e1)
    v1 = (sp.pi * (a - b) ** 2 - S11 * phi11 - S22 * phi22 + 2 * m * phi12) / (2 * sp.pi)
    return W2**2 * (k1 + de * (e1 + e)) + W2 * B2 * (v1 + 2 * de)


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
    neg = (S12 < 0) & (ang < 1)
    e_dir = S12 * ang / (2 * sp.pi) + (S11 * S22 * q + S12**2) / (2 * sp.pi * big_p * rq)
    e_neg = (sp.sqrt(big_p) * _h(ang)
             - ((q1 + S12) * (q1 - S12) + q1 * D) / (big_p * rq)) / (2 * sp.pi)  # fmt: skip
    e = sp.Piecewise((e_neg, neg), (e_dir, True))
    ed_dir = (ang / (2 * sp.pi) + S12 / (2 * sp.pi * q ** sp.Rational(3, 2))
              + S12 * (2 + S11 + S22) / (2 * sp.pi * big_p * rq))  # fmt: skip
    ed_neg = (_x_minus_sin(2 * ang) / 2 + S12 / (q * rq)
              - S12 * (D - 1) / (big_p * rq)) / (2 * sp.pi)  # fmt: skip
    ed = sp.Piecewise((ed_neg, S12 < 0), (ed_dir, True))
    direct = N11 * N22 - (W2 * e + B2) ** 2
    det = sp.Piecewise((_gelu_det(e_dir, q1, big_p), S12 > 0), (direct, True))
    # on the diagonal (S12 = S, D = 0), kept as atan2: SymPy would turn it into
    # atan(sqrt(1+2S)/(-S)) + pi, which divides by zero at S = 0
    s = sp.Symbol("S", positive=True)
    diag = (s * sp.atan2(sp.sqrt(1 + 2 * s), -s, evaluate=False) / (2 * sp.pi)
            + s**2 / (sp.pi * (1 + s) * sp.sqrt(1 + 2 * s)))  # fmt: skip
    return LayerMap(e, ed, det, "closed form", diag)


#: Registered activation name -> layer-map factory (taking the family's parameters).
RULES: dict[str, Callable[..., LayerMap]] = {
    "relu": relu,
    "leaky_relu": leaky_relu,
    "abs": absolute,
    "identity": identity,
    "erf": erf,
    "step": step,
    "sign": sign,
    "exp": exp,
    "sin": sin,
    "cos": cos,
    "gaussian": gaussian,
    "gelu": gelu,
}
