"""Checking where a definition with a range ("for l = 0,...,L-1") is well formed.

A definition ``lhs(l) := rhs(l)`` asserted for ``l = lo..hi`` is consistent at ``l`` when
(a) no other definition already gives ``lhs(l)`` a value, and (b) every network object
on the right-hand side is defined there (by another definition at some layer, or as a
parameter ``W^(m), b^(m)`` with ``0 <= m <= L-1``, or the input ``x``). The check runs
for concrete depths ``L = 1..4``; the derived range is the printed one shifted at either
end by the constant amount the concrete checks show.
"""

from __future__ import annotations

import sympy as sp

from ntksym.derive.plaintext import plain
from ntksym.derive.statements import ForAll
from ntksym.derive.steps import Verdict
from ntksym.derive.symbols import REGISTRY, L, as_expr, latex, make_object
from ntksym.derive.text import Tex, Text

__all__ = ["objects", "definition_range"]


def objects(expr: sp.Basic) -> set[tuple[str, sp.Expr]]:
    """The (kind, layer) of every registered network object in ``expr``."""
    return {
        (REGISTRY[e.base].kind, REGISTRY[e.base].layer)
        for e in expr.atoms(sp.Indexed)
        if e.base in REGISTRY
    }


def _defined(stmt: sp.Basic, var: sp.Symbol | None, values: list[int], depth: int) -> set:
    """(kind, layer) pairs defined by a definition over the given values of ``var``."""
    out = set()
    lhs = objects(stmt.lhs)
    for kind, layer in lhs:
        if var is None:
            out.add((kind, int(as_expr(layer).subs(L, depth))))
        else:
            for v in values:
                out.add((kind, int(as_expr(layer).subs({var: v, L: depth}))))
    return out


def _values(fa: ForAll | sp.Basic, depth: int) -> tuple[sp.Basic, sp.Symbol | None, list[int]]:
    if isinstance(fa, ForAll):
        var, lo, hi = fa.domain
        lo_v, hi_v = (int(as_expr(t).subs(L, depth)) for t in (lo, hi))
        return fa.statement, var, list(range(lo_v, hi_v + 1))
    return fa, None, [0]


def definition_range(target: ForAll, others: list[sp.Basic]) -> Verdict:
    """Check the range of ``target`` against the other definitions.

    Returns the verdict ``assumed`` when the printed range is consistent, ``failed`` when
    no consistent range exists, otherwise ``misprint`` carrying the corrected
    :class:`ForAll` as its ``statement`` and, in its detail, the reasons per value: the
    other definitions are independent evidence that the printed range is wrong.
    """
    if not isinstance(target, ForAll):
        for depth in range(1, 5):
            defined = set().union(*(_defined(*_values(o, depth), depth) for o in others))
            primitives = {(k, m) for m in range(depth) for k in "Wb"} | {("x", 0)}
            rhs = {(k, int(as_expr(m).subs(L, depth))) for k, m in objects(target.rhs)}
            if rhs - defined - primitives:
                return Verdict("failed", "definition", "undefined: " + _names(rhs - defined))
        return Verdict("assumed", "definition", "every object on the right is defined")
    stmt, var, _ = _values(target, 1)
    reasons: dict[int, Text] = {}
    shifts_lo, shifts_hi = set(), set()
    for depth in range(1, 5):
        _, _, vals = _values(target, depth)
        defined_elsewhere: set = set()
        for o in others:
            s, v, ov = _values(o, depth)
            defined_elsewhere |= _defined(s, v, ov, depth)
        primitives = {(k, m) for m in range(depth) for k in "Wb"} | {("x", 0)}
        good = []
        for val in vals:
            sub = {var: val, L: depth}
            lhs = {(k, int(as_expr(m).subs(sub))) for k, m in objects(stmt.lhs)}
            rhs = {(k, int(as_expr(m).subs(sub))) for k, m in objects(stmt.rhs)}
            clash = lhs & defined_elsewhere
            missing = rhs - defined_elsewhere - primitives - _defined(stmt, var, vals, depth)
            if clash or missing:
                why = []
                if clash:
                    why.append("also defined by another definition: " + _names(clash))
                if missing:
                    why.append("undefined on the right: " + _names(missing))
                reasons.setdefault(val, Text.join("; ", why))
            else:
                good.append(val)
        if not good:
            continue  # e.g. no nonlinearity at all when L = 1
        shifts_lo.add(min(good) - min(vals))
        shifts_hi.add(max(good) - max(vals))
    if not shifts_lo:
        return Verdict("failed", "definition", f"no valid {var} at any depth")
    if shifts_lo == {0} and shifts_hi == {0}:
        return Verdict("assumed", "definition", "range consistent with the other definitions")
    if len(shifts_lo) != 1 or len(shifts_hi) != 1:
        return Verdict("failed", "definition", "inconsistent range")
    v, lo, hi = target.domain
    lo2, hi2 = lo + shifts_lo.pop(), hi + shifts_hi.pop()
    reasons_text = Text.join(
        "; ", (Text("at ", sp.Eq(var, k), ": ", r) for k, r in sorted(reasons.items()))
    )
    detail = Text(
        "range: ",
        Tex(rf"{latex(v)} = {latex(lo)},\dots,{latex(hi)}", f"{plain(v)} = {lo},...,{hi}"),
        " printed, ",
        Tex(rf"{latex(lo2)},\dots,{latex(hi2)}", f"{lo2},...,{hi2}"),
        " derived; ",
        reasons_text,
    )
    return Verdict("misprint", "definition", detail, statement=ForAll(stmt, sp.Tuple(v, lo2, hi2)))


def _names(pairs: set) -> Text:
    return Text.join(", ", (make_object(k, m) for k, m in sorted(pairs)))
