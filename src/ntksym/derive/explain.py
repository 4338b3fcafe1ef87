"""Explanations of a difference between printed and derived statements.

:func:`explain` names the smallest differing subterms; :func:`counterexample` finds
concrete index values at which the two differ.
"""

from __future__ import annotations

import itertools

import sympy as sp

from ntksym.derive.canonical import pull_constants, rename_indices
from ntksym.derive.finite_width import expand_sums
from ntksym.derive.rules import Context
from ntksym.derive.statements import members
from ntksym.derive.symbols import Tends, latex, width_layer
from ntksym.derive.wellformed import unknown_symbols

__all__ = ["counterexample", "explain", "short_explain"]


def _diff(p: sp.Basic, d: sp.Basic) -> list[tuple[sp.Basic, sp.Basic]]:
    if p == d:
        return []
    atomic = (sp.Indexed, sp.KroneckerDelta)
    if isinstance(p, atomic) or isinstance(d, atomic):
        return [(p, d)]
    if type(p) is type(d) and isinstance(p, (sp.Add, sp.Mul)):
        pa, da = _flat(p), _flat(d)
        for a in list(pa):
            if a in da:
                pa.remove(a)
                da.remove(a)
        if len(pa) == len(da):
            return [x for a, c in zip(pa, da, strict=True) for x in _diff(a, c)]
        return [(p.func(*pa), d.func(*da))]
    if type(p) is type(d) and len(p.args) == len(d.args) and p.args:
        return [x for a, c in zip(p.args, d.args, strict=True) for x in _diff(a, c)]
    return [(p, d)]


def explain(printed: sp.Basic, derived: sp.Basic) -> str:
    """One line naming where ``printed`` and ``derived`` differ (smallest subterms)."""
    diffs = _diff(_rename_all(printed), _rename_all(derived))
    if not diffs:
        return "identical"
    parts = []
    for p, d in diffs[:5]:
        kind = "index" if _only_indices_differ(p, d) else "term"
        parts.append(f"{kind}: ${latex(p)}$ printed, ${latex(d)}$ derived")
    more = f" (+{len(diffs) - 5} more)" if len(diffs) > 5 else ""
    return "; ".join(parts) + more


def short_explain(printed: sp.Basic, derived: sp.Basic) -> str:
    """The first (smallest) difference between printed and derived, in one line."""
    diffs = _diff(_rename_all(printed), _rename_all(derived))
    if not diffs:
        return "identical"
    p, d = diffs[0]
    kind = "index" if _only_indices_differ(p, d) else "term"
    more = f" (+{len(diffs) - 1} more)" if len(diffs) > 1 else ""
    return f"{kind}: ${latex(p)}$ printed, ${latex(d)}$ derived{more}"


def _flat(e: sp.Basic) -> list[sp.Basic]:
    if not isinstance(e, sp.Mul):
        return list(e.args)
    out: list[sp.Basic] = []
    for f in e.args:
        if isinstance(f, sp.Pow) and f.exp.is_Integer and 0 < f.exp <= 4:
            out.extend([f.base] * int(f.exp))
        else:
            out.append(f)
    return out


def _rename_all(stmt: sp.Basic) -> sp.Basic:
    if isinstance(stmt, (sp.Expr,)) and not isinstance(stmt, sp.MatrixBase):
        return rename_indices(pull_constants(stmt))
    if stmt.args:
        return stmt.func(*[_rename_all(a) for a in stmt.args])
    return stmt


def _only_indices_differ(p: sp.Basic, d: sp.Basic) -> bool:
    if isinstance(p, sp.Indexed) and isinstance(d, sp.Indexed):
        return True
    if isinstance(p, sp.KroneckerDelta) and isinstance(d, sp.KroneckerDelta):
        return True
    return isinstance(p, sp.Symbol) and isinstance(d, sp.Symbol)


def _small(e: sp.Basic, n: int) -> sp.Basic:
    rep = {s: sp.Integer(n) for s in e.free_symbols if width_layer(s) is not None}
    return e.xreplace(rep)


def counterexample(printed: sp.Basic, derived: sp.Basic, ctx: Context, n: int = 2) -> str | None:
    """Concrete index values at which a printed member differs from the derived one.

    Members are compared position by position (a limit claim by its finite-width side and
    its limit) with every width set to ``n`` and every free index (both sides' indices, the
    printed form's stray ones included) running over ``1..n``; sums are written out and
    the network objects, expectations and named kernels are kept as opaque symbols. Returns
    None when the forms have different shapes or no difference shows.
    """
    pm, dm = members(printed), members(derived)
    if len(pm) != len(dm):
        return None
    for pos, (p, d) in enumerate(zip(pm, dm, strict=True)):
        if p == d or not isinstance(p, sp.Expr) or not isinstance(d, sp.Expr):
            continue
        if unknown_symbols(p):
            return None
        free = sorted((p.free_symbols | d.free_symbols) & set(ctx.ranges), key=lambda s: s.name)
        for combo in itertools.product(range(1, n + 1), repeat=len(free)):
            a = {s: sp.Integer(v) for s, v in zip(free, combo, strict=True)}
            if any(a.get(u) == a.get(v) and u in a for u, v in ctx.unequal):
                continue
            # subs, not xreplace: an index free here may be bound by a sum elsewhere
            diff = _small(p, n).subs(a) - _small(d, n).subs(a)
            diff = sp.expand(expand_sums(diff))
            if diff != 0:
                where = ", ".join(f"{s}={v}" for s, v in a.items())
                widths = sorted(
                    {
                        latex(s)
                        for s in (p.free_symbols | d.free_symbols)
                        if width_layer(s) is not None
                    }
                )
                ws = ", ".join(f"{w}={n}" for w in widths)
                if isinstance(printed, Tends):
                    what = "finite-width side" if pos == 0 else "limit"
                elif len(pm) == 2:
                    what = "left-hand side" if pos == 0 else "right-hand side"
                else:
                    what = f"member {pos + 1}"
                return (
                    f"counterexample: at {ws}{', ' if ws and where else ''}{where} the printed "
                    f"{what} differs from the derived one"
                )
    return None
