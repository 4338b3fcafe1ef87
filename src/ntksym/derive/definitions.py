"""Checking where a definition with a range ("for l = 0,...,L-1") is well formed.

A definition ``lhs(l) := rhs(l)`` asserted for ``l = lo..hi`` is consistent at ``l`` when
(a) no other definition already gives ``lhs(l)`` a value, and (b) every network object
on the right-hand side is defined there (by another definition at some layer, or as a
parameter ``W^(m), b^(m)`` with ``0 <= m <= L-1``, or the input ``x``). The check runs
for concrete depths ``L = 1..4``; the derived range is the printed one shifted at either
end by the constant amount the concrete checks show.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import sympy as sp

from ntksym.derive.finite_width import NotExact
from ntksym.derive.network import active_network, using_network
from ntksym.derive.plaintext import plain
from ntksym.derive.registry import Context
from ntksym.derive.rules_network import definition_of
from ntksym.derive.statements import ForAll
from ntksym.derive.steps import CheckFn, Verdict
from ntksym.derive.symbols import OBJECTS, L, alpha, alpha_t, as_expr, l, latex, make_object
from ntksym.derive.text import Tex, Text

__all__ = [
    "definition_check",
    "definition_range",
    "objects",
    "standard_network",
    "standard_only",
]


def objects(expr: sp.Basic) -> set[tuple[str, sp.Expr]]:
    """The (kind, layer) of every registered network object in ``expr``."""
    return {
        (OBJECTS[e.base].kind, OBJECTS[e.base].layer)
        for e in expr.atoms(sp.Indexed)
        if e.base in OBJECTS
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


def definition_check(label: str, defaults: dict[str, sp.Basic]) -> Callable[[dict], Verdict]:
    """A ``derive`` function checking the range of definition ``label`` against the others.

    ``defaults`` maps the labels of all the document's definitions to their statements;
    while a derivation runs, the printed statements of its network steps replace them
    (so that a definition changed in a copy of the derivation is the one checked).
    """
    if label not in defaults:
        raise KeyError(f"no definition {label!r} among {sorted(defaults)}")

    def derive(env: dict) -> Verdict:
        net = active_network()
        defs = {**defaults, **(net.printed if net is not None else {})}
        others = [defs[o] for o in defaults if o != label]
        return definition_range(defs[label], others)

    return derive


def _canonical_sums(e: sp.Basic) -> sp.Basic:
    """Summation indices renamed in order of appearance (so equal sums compare equal)."""
    names = iter(sp.Symbol(f"_s{n}", integer=True, positive=True) for n in itertools.count())
    return e.replace(
        lambda t: isinstance(t, sp.Sum),
        lambda t: t.xreplace({v: next(names) for v in t.variables}),
    )


def standard_network(ctx: Context) -> bool:
    """Whether the active network (if any) is the standard one of ``ctx``.

    The definitions of ``alpha^(0)``, ``alpha^(l+1)`` and ``alpha~^(l+1)`` are compared
    with those of :func:`ntksym.derive.rules_network.definition_of` for the context's
    weight scale and parameterization.
    """
    net = active_network()
    if net is None or not net.has_definitions:
        return True
    k = sp.Dummy("k", integer=True, positive=True)
    for probe in (alpha(0)[k], alpha(l + 1)[k], alpha_t(l + 1)[k]):
        mine = net.definition_of(probe)
        with using_network(None):
            std = definition_of(probe, ctx.weight_scale, ctx.parameterization)
        if mine is None or sp.expand(_canonical_sums(mine) - _canonical_sums(std)) != 0:
            return False
    return True


def standard_only(check: CheckFn) -> CheckFn:
    """An ``extra_check`` that applies only while the network is the standard one.

    The numeric and Monte-Carlo references (:mod:`ntksym.reference`,
    :mod:`ntksym.empirical`) evaluate the standard network; for a derivation whose
    definitions say otherwise they are no evidence, so the wrapped check reports that it
    does not apply (:class:`~ntksym.derive.finite_width.NotExact`) instead of running.
    """

    def wrapped(stmt: sp.Basic, ctx: Context, env: dict) -> tuple[bool, str, Text | str]:
        if not standard_network(ctx):
            raise NotExact(
                "the numeric references evaluate the standard network, and this "
                "derivation's definitions differ from it"
            )
        return check(stmt, ctx, env)

    return wrapped
