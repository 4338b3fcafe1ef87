"""``xreplace`` that walks an expression as the graph it is (each distinct node once).

SymPy's ``Basic.xreplace`` walks an expression as a tree: a subexpression that occurs in
many places is rebuilt, and its ``Min``/``Max`` or ``Piecewise`` compared anew, at every
occurrence. The carried determinants nest one subexpression in each term of a series
(erf's ratio ``Min(z1, z2) / Max(z1, z2)`` in 32 of them), so generation substitutes
with :func:`shared_xreplace` (the variances' roots, ``W2``/``B2`` of a step, the sign of
``S12``); the results are equal (``tests/test_codegen_substitution.py``).
"""

from __future__ import annotations

import sympy as sp

__all__ = ["shared_xreplace"]


def shared_xreplace(expr: sp.Expr, rule: dict[sp.Basic, sp.Basic]) -> sp.Expr:
    """``expr.xreplace(rule)``, rebuilding each distinct subexpression once.

    Measured on the ``mixed`` network's generation: 12 s of ``Min``/``Max`` rebuilding in
    erf's determinant by ``xreplace``, none by this.
    """
    done: dict[sp.Basic, sp.Basic] = {}

    def walk(e: sp.Basic) -> sp.Basic:
        if not isinstance(e, sp.Basic):  # (as xreplace: an argument SymPy does not walk)
            return e
        if e in rule:
            return rule[e]
        hit = done.get(e)
        if hit is None:
            args = tuple(walk(a) for a in e.args)
            changed = any(a is not b for a, b in zip(args, e.args, strict=True))
            hit = e.func(*args) if changed else e
            done[e] = hit
        return hit

    return walk(expr)
