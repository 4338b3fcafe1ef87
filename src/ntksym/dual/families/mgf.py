"""Activations integrated by the Gaussian moment generating function.

exp, sin, cos and the Gaussian bump (registered, with stable float64 and SymPy layer maps),
and any sum of ``c u**j exp(a u - p u**2/2)`` typed as an expression (sinh, cosh, ...).
"""

from __future__ import annotations

import functools
from dataclasses import replace

import sympy as sp

from ntksym.activations import Activation, u
from ntksym.dual import derive as _d
from ntksym.dual.families.mgf_det import cos_det, exp_det, gaussian_det, phase_det, sin_det
from ntksym.dual.family import DualMaps, Family, NumericFn, stable_numeric
from ntksym.dual.sources import MGF, MGF_SOURCES
from ntksym.dual.stable import S11, S12, S22, W2, D, LayerMap, U, angle_parts

#: Re-exported: the accurate next determinants of the registered members.
__all__ = ["EXPRESSIONS", "FAMILY", "cos_det", "exp_det", "gaussian_det", "sin_det"]


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


@functools.lru_cache(maxsize=32)
def expression_layer_map(act: Activation) -> LayerMap | None:
    """A typed MGF expression's stable layer map (the generated kernels print it).

    Each exponential reads the pair's distances from the carried determinant and the root
    gap (:func:`_distance_exponent`), so ``a sin(b u + c)`` keeps its digits for coincident
    and near-parallel pairs at any variance. For ``a sin(b u + c)`` and ``a cos(b u + c)``
    (``Sin``, ``Cos`` and ``Rbf`` of ``ntksym.stax``) the accurate next determinant is
    ``carried`` (:func:`phase_carried`); for the other expressions it is formed directly.
    """
    nngp_d = _d.exp_quadratic_expectation(act.expr, act.expr, with_det=True)
    ntk_d = _d.exp_quadratic_expectation(act.derivative, act.derivative, with_det=True)
    if nngp_d is None or ntk_d is None:
        return None
    lm = _layer_map(nngp_d, ntk_d)
    return replace(lm, carried=phase_carried(act.expr))


def phase_form(expr: sp.Expr) -> tuple[sp.Expr, sp.Expr, sp.Expr] | None:
    """``(a, b, kappa)`` with ``expr = a sin(b u + c)``, ``kappa = cos 2c``, or None.

    ``a cos(b u + c)`` is ``a sin(b u + c + pi/2)``, so its ``kappa`` is ``-cos 2c``. Only
    real numbers ``a``, ``c`` and ``b != 0`` are accepted.
    """
    wa, wb, wc = (sp.Wild(n, exclude=[u]) for n in "abc")
    for fn, sign in ((sp.sin, 1), (sp.cos, -1)):
        found = expr.match(wa * fn(wb * u + wc))
        if not found or any(k not in found for k in (wa, wb, wc)):
            continue
        a, b, c = found[wa], found[wb], found[wc]
        if all(x.is_number and x.is_real for x in (a, b, c)) and b != 0:
            return a, b, sign * sp.cos(2 * c)
    return None


def phase_carried(expr: sp.Expr) -> sp.Expr | None:
    """The accurate next determinant after ``a sin(b u + c)`` (or ``a cos``), else None.

    :func:`~ntksym.dual.families.mgf_det.phase_det` of ``sin(u + c)`` at ``b^2 Sigma``
    (``S -> b^2 S``, ``D -> b^4 D``), in a network whose weight variance is ``a^2 W2``
    (as :func:`ntksym.dual.families.affine.scaled_layer_map` scales a base family's).
    """
    form = phase_form(expr)
    if form is None:
        return None
    a, b, kappa = form
    sub = {S11: b**2 * S11, S22: b**2 * S22, S12: b**2 * S12, D: b**4 * D, W2: a**2 * W2}
    sub[U] = sp.Abs(b) * U  # (the root gap scales as a standard deviation)
    return phase_det(kappa).xreplace(sub)


def _linear_coeffs(arg: sp.Expr, stable: bool) -> tuple[sp.Expr, ...] | None:
    """``(alpha, beta, gamma, c)`` of ``arg = alpha S11 + beta S12 + gamma S22 + c``, or None."""
    s11, s12, s22 = (S11, S12, S22) if stable else (_d.S11, _d.S12, _d.S22)
    if not arg.is_polynomial(s11, s12, s22) or sp.Poly(arg, s11, s12, s22).total_degree() > 1:
        return None
    poly = sp.Poly(arg, s11, s12, s22)
    if not all(c.is_number for c in poly.coeffs()):
        return None
    return (*(poly.coeff_monomial(m) for m in (s11, s12, s22)), poly.coeff_monomial(1))


def _one_variance(arg: sp.Expr, stable: bool) -> bool:
    """Whether ``arg`` is ``alpha S11 + c`` or ``gamma S22 + c`` (one variable's factor).

    ``u e^(i u)`` in ``sin(u) + u`` gives ``E[v e^(i u)] = i S12 e^(-S11/2)``, whose
    exponential needs no distance between the two variables.
    """
    coeffs = _linear_coeffs(arg, stable)
    return coeffs is not None and coeffs[1] == 0 and coeffs[0] * coeffs[2] == 0


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
    coeffs = _linear_coeffs(arg, stable)
    if coeffs is None:
        return None
    alpha, beta, gamma, const = coeffs
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
    kept if it holds ``sinh`` or ``cosh`` (``sinh S12`` is accurate where the merged terms
    would cancel); elsewhere, and everywhere for a form of plain exponentials (which
    cancels as the merged one does, at twice the cost where both branches are computed),
    the sum of single exponentials of :func:`_distance_exponent`, each finite. Terms with a
    Gaussian factor (``p != 0``: the determinant in a denominator) are left.
    """
    merged = sp.powsimp(sp.expand(expr.rewrite(sp.exp)), combine="exp")
    done = True

    def rewrite(e: sp.Expr) -> sp.Expr:
        nonlocal done
        if _one_variance(e.args[0], stable):  # (no distance in it: nothing cancels)
            return e
        dist = _distance_exponent(e.args[0], stable)
        done = done and dist is not None
        return e if dist is None else sp.exp(dist)

    finite = merged.replace(lambda e: isinstance(e, sp.exp), rewrite)
    small = [sp.Abs(f.args[0]) <= 1 for f in expr.atoms(sp.exp, sp.sinh, sp.cosh)]
    if not done or not small or finite == expr:
        return expr
    if not expr.has(sp.sinh, sp.cosh):
        return finite
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
