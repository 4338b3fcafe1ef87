"""The next determinant after a typed Gaussian-MGF expression, derived without cancellation.

After an activation ``sigma`` the next covariance is ``W2 [[g1, E], [E, g2]] + B2`` with
``E = E[sigma(u) sigma(v)]`` and ``gi = E[sigma(u_i)^2]``, so its determinant is
``D' = W2^2 K + W2 B2 V`` with ``K = g1 g2 - E^2`` and ``V = g1 + g2 - 2 E``
(:func:`ntksym.dual.families.mgf_det._next_det` for the registered members). Formed from
the rounded ``g1, g2, E`` it is the difference of two numbers of size ``N^2``: for
``sin(u) + u`` at variances near 1e8 an error of about 4 in a ``D'`` of about 3 for a pair
1e-8 apart, which the next layer's ``exp(-D'/N)`` turns into 1e-8 of the kernel.

This module derives ``K`` and ``V`` mechanically for any sum of ``c u^j e^(a u)``
(:func:`ntksym.dual.derive.exp_quadratic_terms` without a Gaussian factor):

1. ``E``, ``g1`` and ``g2`` from the Gaussian moment generating function, each a sum of
   polynomials times single exponentials of linear forms in the variances;
2. the variances written by the quantities the kernels carry accurately: the root ``R``
   of ``S22``, the root gap ``U = sqrt(S11) - R`` and the gap ``gamma = sqrt(S11 S22) -
   |S12| = D / (sqrt(S11 S22) + |S12|)``, so ``S11 = (R + U)^2``, ``S22 = R^2`` and
   ``S12 = +-(R (R + U) - gamma)``, one branch for each sign of ``S12``;
3. each exponential split at the coincident pair (``U = gamma = 0``) as
   ``e^(a0) (1 + X)`` with ``X = expm1(a - a0)``, and the whole expanded as a polynomial
   in ``R, U, gamma`` and the ``X``: the terms that cancel at the coincident pair cancel
   symbolically (checked: what is left vanishes there), and every term left carries a
   factor ``U``, ``gamma`` or ``X`` that is small exactly where ``D'`` is;
4. ``e^(a0) X`` evaluated as ``e^(a0) expm1(d)`` for ``|d| < 1`` and as
   ``e^(a0 + d) - e^(a0)`` otherwise (no overflow of ``X`` beside an underflowing
   ``e^(a0)``: the second is the original exponential, which the map itself holds).

A branch whose quantity does not vanish at its pair (``K`` at the anti-parallel pair of a
function that is not odd, ``V`` there for an odd one) has no cancellation to remove and is
formed directly. After Williams (1997) and Jacot et al. (2018) for the maps; the
arrangement is this project's.
"""

from __future__ import annotations

import functools

import sympy as sp

from ntksym.activations import u
from ntksym.dual import derive as _d
from ntksym.dual.families.mgf_det import exp_rem
from ntksym.dual.stable import B2, W2, U

__all__ = ["GAP", "MAX_WEIGHT", "ROOT", "expression_det"]

#: The heaviest expression derived (:func:`_weight`): ``sin(u) + u`` weighs 4, its forms
#: 1.2e5 nodes (derived in a few seconds); ``sin(u) + 0.3 u^3`` (6) and ``u sin(u)`` (8)
#: come to 3.4e5 nodes and more in half a minute, ``u^2 sin(u) + u`` (20) to 3.2e6 in 48 s,
#: all beyond what :mod:`.mgf_expr_check` certifies (its ``MAX_NODES``).
MAX_WEIGHT = 5

#: The root of ``S22``, the root gap ``U`` and the gap ``sqrt(S11 S22) - |S12|`` (from ``D``).
_R, _U, _G = sp.symbols("R_ U_ gamma_", real=True)
ROOT, GAP = _R, _G


@functools.lru_cache(maxsize=64)
def expression_det(expr: sp.Expr) -> tuple[sp.Expr, sp.Expr] | None:
    """``N11 N22 - S12'^2`` after ``sigma = expr`` without cancellation, or None.

    Two forms, for ``S12 > 0`` and for ``S12 <= 0``, in :data:`ROOT` (``sqrt(S22)``), the
    root gap ``U`` and :data:`GAP` (``D / (sqrt(S11 S22) + |S12|)``, which the caller
    forms: a quotient inside the form would be evaluated on branches not taken), and
    ``W2, B2``. None when ``expr`` is not a sum of ``c u^j e^(a u)`` with real exponentials
    in its maps (a Gaussian factor ``e^(-p u^2/2)`` puts ``D`` in a denominator instead),
    and None when it is heavier than :data:`MAX_WEIGHT` (its forms would be too large) or
    has a coefficient outside ``Q(i)`` (a phase, ``sin(u + 0.785...)``: SymPy's expansion
    with such constants ran for minutes and took gigabytes for ``Rbf(0.7)``).
    """
    # (exact binary rationals for the floats: the cancellations below are symbolic, and
    # 0.3 - 0.3 (1 + x) leaves a rounding where 3/10 - 3/10 (1 + x) leaves nothing)
    expr = expr.xreplace({f: sp.Rational(f) for f in expr.atoms(sp.Float)})
    terms = _d.exp_quadratic_terms(expr)
    if terms is None or any(p != 0 for _c, _j, _a, p in terms) or not expr.has(u):
        return None
    if _weight(terms) > MAX_WEIGHT or not all(_gaussian_rational(c) for c, *_r in terms):
        return None
    e = _d.exp_quadratic_expectation(expr, expr)
    if e is None:
        return None
    s11, s12, s22 = _d.S11, _d.S12, _d.S22
    hyper = (sp.sinh, sp.cosh, sp.sin, sp.cos)  # (of the variances; constants as they are)
    e = e.replace(
        lambda f: isinstance(f, hyper) and f.has(s11, s12, s22), lambda f: f.rewrite(sp.exp)
    )
    e = sp.powsimp(sp.expand(e), combine="exp")
    if e.has(sp.I):  # (exponentials of imaginary forms: not written as real ones)
        return None
    g1 = e.xreplace({s22: s11, s12: s11})
    g2 = e.xreplace({s11: s22, s12: s22})
    k = sp.powsimp(sp.expand(g1 * g2 - e**2), combine="exp")
    v = sp.powsimp(sp.expand(g1 + g2 - 2 * e), combine="exp")
    branches = []
    for sign in (1, -1):
        parts = []
        for q in (k, v):
            form, _always = _branch(q, sign, "far")
            for mode in ("mid", "small"):  # (the later, the more specific)
                near, cond = _branch(q, sign, mode)
                form = sp.Piecewise((near, cond), (form, True))
            parts.append(form)
        branches.append(W2**2 * parts[0] + W2 * B2 * parts[1])
    return branches[0], branches[1]


def _weight(terms: list) -> int:
    """How heavy the forms of a sum of ``c u^j e^(a u)`` get.

    ``(1 + j)^2`` for each exponential ``u^j e^(a u)`` and ``1 + j`` for each power
    ``u^j``, summed over the distinct ones.
    """
    shapes = {(j, a) for _c, j, a, _p in terms}
    return sum((1 + j) ** (1 if a == 0 else 2) for j, a in shapes)


def _gaussian_rational(c: sp.Expr) -> bool:
    """Whether ``c`` is ``p + q i`` with rational ``p, q``."""
    return all(part.is_Rational for part in sp.expand_complex(c).as_real_imag())


def _branch(q: sp.Expr, sign: int, mode: str) -> tuple[sp.Expr, sp.Expr]:
    """``q`` for ``sign S12 > 0`` written by the gaps, and where that form is meant for.

    Each exponential ``e^(a0 + d)`` (``a0`` its exponent at the pair, ``d`` the rest) is
    written ``e^(a0) + e^(a0) expm1(d)`` (``"far"``, anywhere), ``e^(a0) (1 + d + r(d))``
    with ``r(d) = e^d - 1 - d`` (``"mid"``: every ``|d| < 1/2``; the terms linear in ``d``
    then cancel against the polynomial ones) or ``(1 + expm1(a0)) (1 + d + r(d))``
    (``"small"``: also every ``|a0| < 1/2``, small variances, where ``e^(a0)`` is near 1).
    ``"far"`` checks that the split quantity vanishes at the pair; where it does not, the
    quantity has no cancellation to remove there and is returned as it is.
    """
    s11, s12, s22 = _d.S11, _d.S12, _d.S22
    sub = {s11: (_R + _U) ** 2, s22: _R**2, s12: sign * (_R * (_R + _U) - _G)}
    fns: dict[sp.Symbol, sp.Expr] = {}
    conds: list[sp.Expr] = []

    def symbol(fn: sp.Expr) -> sp.Symbol:
        for x, f in fns.items():
            if f == fn:
                return x
        x = sp.Symbol(f"X{len(fns)}_")
        fns[x] = fn
        return x

    def split(f: sp.Expr) -> sp.Expr:
        arg = sp.expand(f.args[0].xreplace(sub))
        arg0 = arg.xreplace({_U: 0, _G: 0})
        d = sp.expand(arg - arg0)
        if mode == "far":
            return sp.exp(arg)
        base = sp.exp(arg0)
        if mode == "small" and arg0 != 0:
            base = 1 + arg0 + symbol(exp_rem(arg0))
            conds.append(sp.Abs(arg0) < sp.Rational(1, 2))
        if d == 0:
            return base
        # (an exponential too small to count, e^(-2 S) at a huge S, may have any d)
        tiny = arg0 + sp.Max(d, 0) < -740
        conds.append((sp.Abs(d) < sp.Rational(1, 2)) | tiny)
        if mode == "small":
            return base * (1 + d + symbol(exp_rem(d)))
        # (e^(a0) r(d) as one quantity: r(d) alone overflows beside a vanishing e^(a0))
        small_d = sp.Abs(d) < sp.Rational(1, 2)
        whole = sp.exp(arg0 + d) - base * (1 + d)
        return base * (1 + d) + symbol(sp.Piecewise((base * exp_rem(d), small_d), (whole, True)))

    split_q = sp.expand(
        q.replace(lambda f: isinstance(f, sp.exp), split).xreplace(sub), power_exp=False
    )
    to_out = {_U: U}
    out = split_q.xreplace(fns).xreplace(to_out)
    return out, sp.And(*conds).xreplace(to_out)
