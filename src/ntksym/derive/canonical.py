"""Canonical forms: deltas contracted, constants pulled out of sums, indices renamed.

Two statements are :func:`symbolic_equal` when their canonical forms agree for general
widths.
"""

from __future__ import annotations

import sympy as sp

from ntksym.derive.rules import Context, delta_sum, linearity
from ntksym.derive.statements import Chain, pairs
from ntksym.derive.symbols import Tends, as_expr
from ntksym.derive.tangent import has_matrix

__all__ = ["canonical", "pull_constants", "rename_indices", "symbolic_equal"]


def pull_constants(expr: sp.Expr) -> sp.Expr:
    """Constant factors moved out of every sum (a sum of a constant becomes a count)."""

    def pull(s: sp.Sum) -> sp.Expr:
        vars_ = {v for v, *_ in s.limits}
        out = []
        for t in sp.Add.make_args(sp.expand(s.function)):
            indep, dep = t.as_independent(*vars_, as_Add=False)
            out.append(indep * sp.Sum(dep, *s.limits) if dep != 1 else indep * _count(s))
        return sp.Add(*out)

    return expr.replace(lambda e: isinstance(e, sp.Sum), pull)


def _count(s: sp.Sum) -> sp.Expr:
    c = sp.Integer(1)
    for _, lo, hi in s.limits:
        c *= hi - lo + 1
    return c


def rename_indices(expr: sp.Expr, depth: int = 0) -> sp.Expr:
    """Summation indices renamed by nesting depth and position (``s_0``, ``s_0'``, ...)."""
    if isinstance(expr, sp.Sum):
        rep = {}
        limits = []
        for n, (v, lo, hi) in enumerate(expr.limits):
            new = sp.Symbol(f"s_{depth}" + "'" * n, integer=True, positive=True)
            rep[v] = new
            limits.append((new, lo, hi))
        body = rename_indices(expr.function.xreplace(rep), depth + 1)
        return sp.Sum(body, *limits)
    if not expr.args or isinstance(expr, (sp.Indexed, sp.Symbol)):
        return expr
    return expr.func(*[rename_indices(a, depth) for a in expr.args])


def canonical(expr: sp.Expr, ctx: Context) -> sp.Expr:
    """A canonical form: deltas contracted, constants outside sums, indices renamed."""
    out = delta_sum(linearity(as_expr(expr), ctx), ctx)
    out = pull_constants(out)
    return sp.expand(rename_indices(out))


def symbolic_equal(a: sp.Basic, c: sp.Basic, ctx: Context) -> bool:
    """Whether two statements (or expressions) agree for general widths."""
    if has_matrix(a) or has_matrix(c):
        return a == c  # matrix displays: only an identical transcription is equal as is
    stmt_types = (sp.Eq, Tends, Chain, sp.And, sp.Tuple)
    if isinstance(a, stmt_types) or isinstance(c, stmt_types):
        if type(a) is not type(c):
            return False
        pa, pc = pairs(a), pairs(c)
        if len(pa) != len(pc):
            return False
        if isinstance(a, Tends) and a.args[2] != c.args[2]:
            return False
        return all(
            symbolic_equal(x1, x2, ctx) and symbolic_equal(y1, y2, ctx)
            for (x1, y1), (x2, y2) in zip(pa, pc, strict=True)
        )
    if isinstance(a, sp.MatrixBase) or isinstance(c, sp.MatrixBase):
        if not (isinstance(a, sp.MatrixBase) and isinstance(c, sp.MatrixBase)):
            return False
        return a.shape == c.shape and all(
            symbolic_equal(p, q, ctx) for p, q in zip(a, c, strict=True)
        )
    d = sp.expand(canonical(a, ctx) - canonical(c, ctx))
    return d == 0
