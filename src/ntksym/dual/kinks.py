"""Where an activation is not smooth: the split points of a kink-aware quadrature.

A Gaussian expectation of a function with a kink (a jump in its value or in one of its
derivatives) converges only algebraically under a rule that steps across the kink; split
there, each piece is smooth up to its ends and a double-exponential rule on it converges
geometrically again. :func:`kink_points` finds the points symbolically; the rule itself is
:mod:`ntksym.dual.kinked_rule`.
"""

from __future__ import annotations

import itertools
import math

import sympy as sp

from ntksym.activations import Activation
from ntksym.activations.expr import u

__all__ = ["kink_points", "is_kinked"]

#: Inner Max/Min atoms replaced by each of their arguments in turn, at most this many at once.
_MAX_NESTED = 4
#: Largest polynomial degree whose real roots are taken as candidates.
_MAX_DEGREE = 4


def _branches(expr: sp.Expr) -> list[sp.Expr]:
    """``expr`` with every Max/Min atom inside it replaced by each of its arguments."""
    atoms = sorted(expr.atoms(sp.Max, sp.Min), key=sp.default_sort_key)[:_MAX_NESTED]
    if not atoms:
        return [expr]
    out = []
    for choice in itertools.product(*(a.args for a in atoms)):
        out.append(expr.xreplace(dict(zip(atoms, choice, strict=True))))
    return out


def _candidates(expr: sp.Expr) -> list[sp.Expr]:
    """Expressions in u whose zeros may be kinks of ``expr``."""
    found: list[sp.Expr] = []
    for atom in expr.atoms(sp.Max, sp.Min):
        args = list(atom.args)
        found += [a - b for i, a in enumerate(args) for b in args[i + 1 :]]
    for atom in expr.atoms(sp.Abs, sp.Heaviside, sp.sign, sp.DiracDelta):
        found.append(atom.args[0])
    for atom in expr.atoms(sp.Piecewise):
        for _, cond in atom.args:
            if isinstance(cond, sp.core.relational.Relational):
                found.append(cond.lhs - cond.rhs)
    return found


def _real_roots(c: sp.Expr) -> set[float]:
    points: set[float] = set()
    for branch in _branches(c):
        if not branch.has(u) or not branch.is_polynomial(u):
            continue
        poly = sp.Poly(branch, u)
        if poly.degree() > _MAX_DEGREE:
            continue
        roots = sp.real_roots(poly) if poly.domain.is_Exact else poly.nroots()
        for r in roots:
            if r.is_real and math.isfinite(float(r)):
                points.add(float(r))
    return points


def kink_points(act: Activation) -> tuple[float, ...]:
    """Real points where sigma or sigma' may fail to be smooth, sorted (a superset).

    Zeros of the differences of the arguments of Max/Min, of the arguments of Abs,
    Heaviside, sign and DiracDelta, and of Piecewise conditions, in sigma and in sigma';
    a Max/Min nested in such an argument is replaced by each of its arguments in turn
    (so ``max(min(u, 1), -1)`` gives -1 and 1). A point that is not a kink only costs
    an extra split.

    Args:
        act: The activation.

    Returns:
        The points, sorted, without repeats.
    """
    points: set[float] = set(act.kinks)
    for expr in (act.expr, act.derivative):
        for c in _candidates(expr):
            points |= _real_roots(c)
    return tuple(sorted(points))


def is_kinked(act: Activation) -> bool:
    """Whether ``act`` has kinks and a pointwise derivative (the kink-aware rule's domain)."""
    return bool(kink_points(act)) and not act.has_distributional_derivative
