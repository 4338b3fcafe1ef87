"""Activations integrated by the Gaussian moment generating function.

exp, sin, cos and the Gaussian bump (registered, with stable float64 and SymPy layer maps),
and any sum of ``c u**j exp(a u - p u**2/2)`` typed as an expression (sinh, cosh, ...).
"""

from __future__ import annotations

import sympy as sp
from sympy.codegen.cfunctions import expm1

from ntksym.activations import Activation
from ntksym.dual import derive as _d
from ntksym.dual.family import DualMaps, Family, NumericFn, stable_numeric
from ntksym.dual.sources import MGF, MGF_SOURCES
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
    angle_parts,
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
    """Sums of ``c u**j exp(a u - p u**2/2)``: both maps by the Gaussian MGF, or None.

    Both maps are written so that they stay finite wherever they are (:func:`_finite`):
    SymPy's form multiplies ``exp(-b^2 (S11 + S22)/2)`` by ``exp(b^2 S12)`` for
    ``sin(b u + c)``, 0 times infinity at variances ~1e3. The float64 maps read the
    distances of the pair from the carried determinant and root gap (:func:`_finite` with
    ``stable=True``).
    """
    nngp_d = _d.exp_quadratic_expectation(act.expr, act.expr, with_det=True)
    ntk_d = _d.exp_quadratic_expectation(act.derivative, act.derivative, with_det=True)
    if nngp_d is None or ntk_d is None:
        return None
    sub = {_d.DET: _d.S11 * _d.S22 - _d.S12**2}
    nngp, ntk = sp.simplify(nngp_d.subs(sub)), sp.simplify(ntk_d.subs(sub))
    maps = DualMaps(act, _finite(nngp), _finite(ntk), "derived: Gaussian MGF", MGF, True)
    return maps, stable_numeric(_layer_map(nngp_d, ntk_d))


def _layer_map(nngp_d: sp.Expr, ntk_d: sp.Expr) -> LayerMap:
    """The stable layer map of both MGF maps (written with ``DET``), by :func:`_finite`."""
    to_stable = {_d.S11: S11, _d.S12: S12, _d.S22: S22, _d.DET: D}
    nngp, ntk = (_finite(e.xreplace(to_stable), stable=True) for e in (nngp_d, ntk_d))
    return LayerMap(nngp, ntk, None, "Gaussian MGF, one distance exponent per term")


def expression_layer_map(act: Activation) -> LayerMap | None:
    """A typed MGF expression's stable layer map (the generated kernels print it).

    Each exponential reads the pair's distances from the carried determinant and the root
    gap (:func:`_distance_exponent`), so ``a sin(b u + c)`` keeps its digits for coincident
    and near-parallel pairs at any variance. The next determinant is formed directly.
    """
    nngp_d = _d.exp_quadratic_expectation(act.expr, act.expr, with_det=True)
    ntk_d = _d.exp_quadratic_expectation(act.derivative, act.derivative, with_det=True)
    if nngp_d is None or ntk_d is None:
        return None
    return _layer_map(nngp_d, ntk_d)


def _distance_exponent(arg: sp.Expr, stable: bool) -> sp.Expr | None:
    """``alpha S11 + beta S12 + gamma S22 + c`` as ``c + k (variance of a u -+ g v)``, or None.

    A Gaussian-MGF term ``exp(a u) exp(g v)`` (``a``, ``g`` real or imaginary) has the
    exponent ``Var(a u + g v) / 2``, so ``beta^2 = 4 alpha gamma``. With ``k`` the sign of
    ``alpha``, ``a = sqrt|alpha|``, ``g = sqrt|gamma|`` it is
    ``c + k ((a sqrt(S11) - g sqrt(S22))^2 + 2 a g (M -+ S12))``, ``M = sqrt(S11 S22)``,
    the sign of the gap that of ``-k beta``: a sum of terms of one sign, which for a
    decaying term (``k < 0``, sin and cos) never overflows. ``stable`` takes the gaps
    ``M -+ S12`` from the carried determinant and, for ``alpha = gamma``, the root
    difference from the root gap ``U`` (:func:`ntksym.dual.stable.angle_parts`).
    """
    s11, s12, s22 = (S11, S12, S22) if stable else (_d.S11, _d.S12, _d.S22)
    if not arg.is_polynomial(s11, s12, s22) or sp.Poly(arg, s11, s12, s22).total_degree() > 1:
        return None
    poly = sp.Poly(arg, s11, s12, s22)
    if not all(c.is_number for c in poly.coeffs()):
        return None
    alpha, beta, gamma = (poly.coeff_monomial(m) for m in (s11, s12, s22))
    const = poly.coeff_monomial(1)
    if alpha * gamma <= 0 or abs(beta**2 - 4 * alpha * gamma) > 1e-12 * abs(4 * alpha * gamma):
        return None
    k = sp.sign(alpha)
    a, g = sp.sqrt(abs(alpha)), sp.sqrt(abs(gamma))
    m = sp.sqrt(s11) * sp.sqrt(s22)
    if stable:
        _m, _r, gap, anti, _theta = angle_parts()
        root = abs(alpha) * U**2 if alpha == gamma else (a * sp.sqrt(S11) - g * sp.sqrt(S22)) ** 2
    else:
        gap, anti = m - s12, m + s12
        root = (a * sp.sqrt(s11) - g * sp.sqrt(s22)) ** 2
    side = gap if k * beta < 0 else anti
    return const + k * (root + abs(beta) * side)


def _finite(expr: sp.Expr, stable: bool = False) -> sp.Expr:
    """``expr`` with each product of exponentials merged into one distance exponent.

    Where every exponential SymPy wrote has an argument of size at most 1 its own form is
    kept (it may hold ``sinh S12``, accurate where the merged terms would cancel);
    elsewhere the sum of single exponentials of :func:`_distance_exponent`, each finite.
    Terms with a Gaussian factor (``p != 0``: the determinant in a denominator) are left.
    """
    merged = sp.powsimp(sp.expand(expr.rewrite(sp.exp)), combine="exp")
    done = True

    def rewrite(e: sp.Expr) -> sp.Expr:
        nonlocal done
        dist = _distance_exponent(e.args[0], stable)
        done = done and dist is not None
        return e if dist is None else sp.exp(dist)

    finite = merged.replace(lambda e: isinstance(e, sp.exp), rewrite)
    small = [sp.Abs(f.args[0]) <= 1 for f in expr.atoms(sp.exp, sp.sinh, sp.cosh)]
    if not done or not small or finite == expr:
        return expr
    return sp.Piecewise((expr, sp.And(*small)), (finite, True))


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
    is formed directly; :func:`exp_det` is the accurate one, for a kinked layer after.
    """
    _minus, plus = _distances()
    e = sp.exp(plus / 2)
    return LayerMap(e, e, None, "closed form", carried=exp_det())


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
    directly; :func:`sin_det` is the accurate one, for a kinked layer after.
    """
    return LayerMap(_sinh_part(), _cosh_part(), None, "closed form", carried=sin_det())


def cos() -> LayerMap:
    """cos: ``E[cos u cos v] = e^{-(S11+S22)/2} cosh S12`` and ``E[sin u sin v]`` with sinh.

    The mirror image of :func:`sin` (as in Neural Tangents' stax.Cos); accurate next
    determinant :func:`cos_det`.
    """
    return LayerMap(_cosh_part(), _sinh_part(), None, "closed form", carried=cos_det())


def gaussian() -> LayerMap:
    """``exp(-u^2/2)``: ``E = 1/sqrt(q)``, ``E[sigma' sigma'] = S12 / q^(3/2)``.

    With ``q = det(I + Sigma) = 1 + S11 + S22 + D`` (Gaussian moment generating function),
    written with the carried determinant so that nothing cancels. After one layer every
    variance is at most ``W2 + B2``, so the next determinant is formed directly;
    :func:`gaussian_det` is the accurate one, for a kinked layer after.
    """
    q = 1 + S11 + S22 + D
    nngp, ntk = 1 / sp.sqrt(q), S12 / q ** sp.Rational(3, 2)
    return LayerMap(nngp, ntk, None, "closed form", carried=gaussian_det())


def _exp_rem(x: sp.Expr) -> sp.Expr:
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
    big_u = (S11 - S22) / sp.Max(r1 + r2, TINY)
    return {
        "m": m,
        "s": s,
        "u2": big_u**2,
        "gap": D / sp.Max(m + s, TINY),
        "p": (r1 + r2) ** 2 / 2,
        "w": sp.Abs(S11 - S22) / 2,
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
    near = e1 * (pp["u2"] + _exp_rem(pp["x1"]) + _exp_rem(pp["x2"]) - 2 * expm1(-pp["gap"]))
    far = expm1(2 * S11) + expm1(2 * S22) - 2 * expm1((S11 + S22) / 2 + S12)
    return _next_det(x_part, sp.Piecewise((near, S12 > 0), (far, True)))


def _scaled_rem(x: sp.Expr, p: sp.Expr, exponent: sp.Expr) -> sp.Expr:
    """``e^-p r(x)`` with ``exponent = x - p <= 0`` given exactly (no overflow for large x)."""
    far = sp.exp(exponent) - sp.exp(-p) * (1 + x)
    return sp.Piecewise((sp.exp(-p) * _exp_rem(x), sp.Abs(x) < sp.Rational(1, 2)), (far, True))


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
    """Next determinant after sin, stably (see :func:`_next_det`); sin is odd.

    ``g = (1 - e^(-2S))/2``, ``E1 = e^(-u) (1 - e^(-2M))/2`` (the pair made parallel),
    ``d = E1 - |E| = (e^(-U^2/2) + e^(-(S11 + S22 + 2|S12|)/2)) (1 - e^-gap)/2``;
    ``g1 g2 - E^2 = K1 + d (2 E1 - d)`` and, for ``S12 >= 0``, ``g1 + g2 - 2E = V1 + 2d``
    (else ``g1 + g2 + 2|E|``) with ``K1 = g1 g2 - E1^2 = e^(-(S11+S22)) (sinh P sinh u -
    sinh^2 w)`` (by ``sinh(x)/x - 1`` series for ``P < 1``, where the two products nearly
    agree; expanded into exponentials for ``u >= 1``) and
    ``2 V1 = 2 (1 - e^-u) + e^-P (U^2 - r(-x1) - r(-x2))``.
    """
    pp = _pair_parts()
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
    k1 = sp.Piecewise((small, p < 1), (large, u < 1), (far, True))
    v1 = (-2 * expm1(-u) + pp["u2"] * sp.exp(-p) - rem) / 2
    y_part = sp.Piecewise((v1 + 2 * d, S12 >= 0), (g1 + g2 + 2 * (e1 - d), True))
    return _next_det(k1 + d * (2 * e1 - d), y_part)


def cos_det() -> sp.Expr:
    """Next determinant after cos, stably (see :func:`_next_det`); cos is even.

    ``g = (1 + e^(-2S))/2``, ``E1 = (e^-u + e^-P)/2``,
    ``d = E1 - E = e^(-U^2/2) (1 - e^-gap)(1 - e^(-(M + |S12|)))/2``, and
    ``g1 g2 - E^2 = K1 + d (2 E1 - d)``, ``g1 + g2 - 2E = V1 + 2d`` for either sign, with
    ``K1 = e^(-(S11+S22)) (sinh P sinh u + sinh^2 w)`` (positive terms) and
    ``2 V1 = U^2 (1 - e^-P) - 2 r(-u) + e^-P (r(-x1) + r(-x2))`` (``r(-u) = O(U^4)``;
    ``U^2 - 2 r(-u) = 2 (1 - e^-u)`` for ``u >= 1``).
    """
    pp = _pair_parts()
    p, u, w = pp["p"], pp["u2"] / 2, pp["w"]
    lead, rem, sinh_part = _trig_parts(pp)
    d = -lead * expm1(-(pp["m"] + pp["s"]))
    e1 = (sp.exp(-u) + sp.exp(-p)) / 2
    k1 = sinh_part / 2 + (sp.exp(-sp.Min(S11, S22)) * expm1(-2 * w)) ** 2 / 4
    near = -pp["u2"] * expm1(-p) - 2 * _exp_rem(-u)
    v1 = (sp.Piecewise((near, u < 1), (-2 * expm1(-u) - pp["u2"] * sp.exp(-p), True)) + rem) / 2
    return _next_det(k1 + d * (2 * e1 - d), v1 + 2 * d)


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
    delta2 = (S11 - S22) ** 2
    d = D / ((rq + rq1) * rq * rq1)
    k1 = delta2 / ((q1 + ra * rb) * q1 * ra * rb)
    v1 = 2 * delta2 * (1 + rq1 / (ra + rb)) / (rq1 * (rq1 + ra) * ra * (rq1 + rb) * rb)
    return _next_det(k1 + d * (1 / rq1 + 1 / rq), v1 + 2 * d)


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
    layer_map=expression_layer_map,
)
