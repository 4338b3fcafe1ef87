"""Sums of activations, ``sigma = g_1 + ... + g_n``, from the families of the terms.

``E[sigma(u) sigma(v)] = sum_i E[g_i(u) g_i(v)] + sum_{i != j} E[g_i(u) g_j(v)]``, and the
same with the derivatives for the ntk map. Each term is a registered activation (possibly
scaled, ``0.1*erf(2*u)`` is ``affine(erf, a=0.1, b=2)``) or the polynomial part of the sum
(constants included), and its own term ``E[g_i(u) g_i(v)]`` is its family's, with that
family's float64 evaluation. The cross terms are derived by conditioning one variable on
the other (:mod:`ntksym.dual.families.conditional`); note that ``E[g_j(u) g_i(v)]`` is
``E[g_i(u) g_j(v)]`` with ``S11`` and ``S22`` exchanged.

A typed expression belongs here when it splits into at least two such terms, at least one
of them is not a polynomial, and it has a kink (max, min, abs, step, sign) or an erf (the
smooth sums of exponentials, sines and powers are the Gaussian-MGF family's). A step or
sign term (``relu(u) + 0.5*sign(u)``, ``heaviside(u) + u``) gives the sum a Dirac delta
in its derivative: its NNGP map is derived, and it has no NTK map (as for ``step`` and
``sign`` alone). ``relu(u) + 0.1*erf(u)``, ``abs(u) + 1``, ``relu(u) + 0.5``,
``erf(u) + 0.1*u`` and ``max(u, 0) + 0.3*sin(2*u)`` are members; ``relu(u) + 0.1*tanh(u)``
is not (tanh has no closed form) and is integrated with its kinks as split points
(:func:`ntksym.dual.quadrature.trapezoid`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp

from ntksym.activations import Activation, u
from ntksym.activations.registry import recognised_activation
from ntksym.dual import derive as _d
from ntksym.dual.families.conditional import cross_expectation
from ntksym.dual.family import ERF, DualMaps, Family, NumericFn, numpy_function

__all__ = ["sums_family", "terms_of"]

_KINKED = (sp.Max, sp.Min, sp.Abs, sp.Heaviside, sp.sign)
_SOURCE = (
    "conditioning on one variable of a Gaussian pair and the Gaussian smoothing of the other "
    "term (Gaussian moments, Williams 1997 for erf, the Gaussian MGF); the terms' own families"
)


def terms_of(expr: sp.Expr) -> tuple[Activation, ...] | None:
    """The terms of a sum: one per registered activation, plus the polynomial part.

    Returns None when a term is neither a polynomial in ``u`` nor (a multiple of) a
    registered activation, or when there are fewer than two terms or no non-polynomial one.
    """
    poly = sp.Integer(0)
    others: list[Activation] = []
    for term in sp.Add.make_args(expr):
        if term.is_polynomial(u):
            poly += term
            continue
        act = recognised_activation(term)
        if act is None:
            return None
        others.append(act)
    if not others:
        return None
    terms = list(others)
    if poly != 0:
        terms.append(Activation(sp.sstr(poly), poly, "the polynomial part of a sum"))
    return tuple(terms) if len(terms) >= 2 else None


def _lambdify(expr: sp.Expr) -> Callable[..., Any]:
    """Float64 evaluation of an expression in ``(s11, s12, s22, det)``."""
    return numpy_function((_d.S11, _d.S12, _d.S22, _d.DET), expr, ERF)


def _swapped(expr: sp.Expr) -> sp.Expr:
    """``expr`` with ``s11`` and ``s22`` exchanged (the cross term in the other order)."""
    return expr.xreplace({_d.S11: _d.S22, _d.S22: _d.S11})


def _cross_maps(f: Activation, g: Activation, delta: bool) -> tuple[sp.Expr, sp.Expr] | None:
    """``E[f(u) g(v)] + E[g(u) f(v)]`` and the same for the derivatives, or None.

    With ``delta`` (the sum's derivative has a Dirac delta) the derivative part is not
    derived and is returned as 0.
    """
    nngp = cross_expectation(f.expr, g.expr)
    ntk = sp.Integer(0) if delta else cross_expectation(f.derivative, g.derivative)
    if nngp is None or ntk is None:
        return None
    return nngp + _swapped(nngp), ntk + _swapped(ntk)


def _numeric(own: list[NumericFn], cross: list[tuple[sp.Expr, sp.Expr]], delta: bool) -> NumericFn:
    """The float64 maps: the terms' own maps plus the lambdified cross terms.

    With ``delta`` the ntk map is ``+inf`` everywhere: the sum has a step or sign term, whose
    ``E[delta(u) delta(v)]`` is infinite for coincident inputs (as for ``step`` and
    ``sign``, whose generated kernels have no NTK); the kernels then refuse the NTK.
    """
    cross_fns = [(_lambdify(a), _lambdify(b)) for a, b in cross]

    def numeric(s11: Any, s12: Any, s22: Any, det: Any, gap: Any = None) -> tuple[Any, Any]:
        nngp: Any = 0.0
        ntk: Any = 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            for fn in own:
                k, kd = fn(s11, s12, s22, det, gap)
                nngp, ntk = nngp + k, ntk + kd
            for fk, fkd in cross_fns:
                nngp = nngp + fk(s11, s12, s22, det)
                ntk = ntk + fkd(s11, s12, s22, det)
        if delta:
            ntk = np.full(np.shape(nngp), np.inf)
        return nngp, ntk

    return numeric


def sums_family(family_of: Callable[[Activation], Family | None]) -> Family:
    """The family of sums, given the lookup of the families of the terms."""

    def term_families(act: Activation) -> list[Family] | None:
        if act.registered_base is not None or not act.expr.has(*_KINKED, sp.erf):
            return None
        terms = terms_of(act.expr)
        if terms is None:
            return None
        families = [family_of(t) for t in terms]
        return None if any(f is None for f in families) else families  # type: ignore[return-value]

    def matches(act: Activation) -> bool:
        return term_families(act) is not None

    def derive(act: Activation) -> tuple[DualMaps, NumericFn] | None:
        families = term_families(act)
        terms = terms_of(act.expr)
        if families is None or terms is None:
            return None
        return _derive(act, terms, tuple(families))

    return Family(name="sums", members=(), derive=derive, matches=matches)


def _derive(
    act: Activation, terms: tuple[Activation, ...], families: tuple[Family, ...]
) -> tuple[DualMaps, NumericFn] | None:
    """Both maps of the sum of ``terms`` (see the module), or None if a part has no form."""
    delta = act.has_distributional_derivative
    nngp, ntk = sp.Integer(0), sp.Integer(0)
    own: list[NumericFn] = []
    for term, family in zip(terms, families, strict=True):
        derived = family.derive(term)
        if derived is None or (derived[0].ntk is None and not delta):
            return None
        nngp, ntk = nngp + derived[0].nngp, ntk + (derived[0].ntk or 0)
        own.append(derived[1])
    cross = []
    for i, f in enumerate(terms):
        for g in terms[i + 1 :]:
            pair = _cross_maps(f, g, delta)
            if pair is None:
                return None
            cross.append(pair)
    full = {_d.DET: _d.S11 * _d.S22 - _d.S12**2}
    nngp += sum(p[0].xreplace(full) for p in cross)
    ntk += sum(p[1].xreplace(full) for p in cross)
    names = ", ".join(t.name for t in terms)
    method = f"derived: sum of terms ({names}) with cross terms by conditioning"
    # a step or sign term: E[delta(u) delta(v)] is infinite on the diagonal (no ntk map)
    maps = DualMaps(act, nngp, None if delta else ntk, method, _SOURCE, True)
    return maps, _numeric(own, cross, delta)
