"""Rules on the network itself: unfold the definitions, the chain rule, delta sums.

``definition`` unfolds (1)-(3); ``chain_rule`` differentiates through sums and an
undefined ``sigma``; ``delta_sum`` contracts Kronecker deltas; ``parameter_sum``,
``induction_hypothesis`` and ``algebra`` handle the sum over parameters, (19) and algebra.
"""

from __future__ import annotations

import sympy as sp
from sympy.concrete.delta import deltasummation

from ntksym.derive.network import active_network
from ntksym.derive.registry import Context, fresh, rule
from ntksym.derive.symbols import (
    OBJECTS,
    PSum,
    Theta,
    Theta_inf,
    W,
    alpha,
    alpha_t,
    b,
    beta,
    sigma,
    sigmadot,
    theta,
    width,
    x,
)
from ntksym.derive.text import Tex, text

__all__ = [
    "algebra",
    "chain_rule",
    "definition_of",
    "delta_sum",
    "depends_on_p",
    "drop_range_piecewise",
    "induction_hypothesis",
    "merge_sums",
    "object_derivatives",
    "parameter_sum",
    "sigma_prime",
    "unfold",
]


def definition_of(
    ind: sp.Indexed, weight_scale: sp.Expr = sp.S.One, parameterization: str = "ntk"
) -> sp.Expr | None:
    """The right-hand side of the definition of one registered entry, or None.

    While a derivation runs, its own definitions decide (the active
    :class:`~ntksym.derive.network.Network`; ``weight_scale`` and ``parameterization``
    are then ignored). Otherwise the standard network (1)–(3): in the ``"standard"``
    parameterization the pre-activation is ``W alpha + beta b`` (the weight scale lives
    in the variance of ``W``, see :class:`Context`).
    """
    net = active_network()
    if net is not None and net.has_definitions:
        return net.definition_of(ind)
    info = OBJECTS.get(ind.base)
    if info is None or info.kind not in ("a", "z"):
        return None
    (k,) = ind.indices
    m = info.layer
    if info.kind == "a":
        if m == 0:
            return x(info.prime)[k]
        return sigma(alpha_t(m, info.prime)[k])
    prev = m - 1
    j = fresh("j")
    if parameterization == "standard":
        return sp.Sum(W(prev)[k, j] * alpha(prev, info.prime)[j], (j, 1, width(prev))) + (
            beta * b(prev)[k]
        )
    return (
        weight_scale
        * sp.Sum(W(prev)[k, j] * alpha(prev, info.prime)[j], (j, 1, width(prev)))
        / sp.sqrt(width(prev))
        + beta * b(prev)[k]
    )


@rule(
    "definition",
    description=text(
        "Replace every {a}/{z} entry by its definition, one level deep",
        a=Tex(r"\alpha", "alpha"),
        z=Tex(r"\tilde\alpha", "alpha~"),
    ),
)
def unfold(expr: sp.Expr, ctx: Context, kinds: tuple[str, ...] = ("a", "z")) -> sp.Expr:
    """Replace every ``alpha``/``alpha~`` entry by its definition, one level deep."""

    def is_target(e: sp.Basic) -> bool:
        return isinstance(e, sp.Indexed) and e.base in OBJECTS and OBJECTS[e.base].kind in kinds

    def value(e: sp.Indexed) -> sp.Expr:
        rhs = definition_of(e, ctx.weight_scale, ctx.parameterization)
        return e if rhs is None else rhs

    return expr.replace(is_target, value)


def _range_facts(ctx: Context) -> sp.Basic:
    facts = [sp.Q.le(i, n) for i, n in ctx.ranges.items() if isinstance(i, sp.Symbol)]
    return sp.And(*facts) if facts else sp.true


def _in_range(cond: sp.Basic, ctx: Context) -> bool:
    """Whether ``cond`` is a conjunction of ``1 <= i`` and ``i <= n`` with ``n`` the range of ``i``.

    A fast, syntactic proof of what :func:`sympy.refine` would show from the ranges
    (anything else is left to ``refine``).
    """
    parts = cond.args if isinstance(cond, sp.And) else (cond,)
    for c in parts:
        if not isinstance(c, (sp.LessThan, sp.GreaterThan)):
            return False
        lo, hi = (c.lhs, c.rhs) if isinstance(c, sp.LessThan) else (c.rhs, c.lhs)
        if lo == 1 and getattr(hi, "is_integer", False) and hi.is_positive:
            continue
        if ctx.ranges.get(lo) is not None and ctx.ranges.get(lo) == hi:
            continue
        return False
    return True


def drop_range_piecewise(expr: sp.Expr, ctx: Context) -> sp.Expr:
    """Remove ``Piecewise((e, i <= n), (0, True))`` when ``i`` is known to be in range.

    The range of a summation index is its sum's bound, so this recurses into sums.
    """

    def in_sum(s: sp.Sum) -> sp.Expr:
        extra = {v: hi for v, lo, hi in s.limits}
        inner = ctx.replace(ranges={**ctx.ranges, **extra})
        return sp.Sum(drop_range_piecewise(s.function, inner), *s.limits)

    if isinstance(expr, sp.Sum):
        return in_sum(expr)
    if expr.has(sp.Sum):
        expr = expr.func(*[drop_range_piecewise(a, ctx) for a in expr.args]) if expr.args else expr

    def fix(pw: sp.Piecewise) -> sp.Expr:
        for val, cond in pw.args:
            c = sp.true if _in_range(cond, ctx) else sp.refine(cond, _range_facts(ctx))
            if c == sp.true:
                return val
            if c != sp.false:
                return pw
        return pw

    return expr.replace(lambda e: isinstance(e, sp.Piecewise), fix)


def sigma_prime(expr: sp.Expr) -> sp.Expr:
    """Write ``d sigma(y)/dy`` as ``sigmadot(y)``."""

    def is_dsig(e: sp.Basic) -> bool:
        return isinstance(e, sp.Derivative) and e.expr.func == sigma

    def to_dot(e: sp.Derivative) -> sp.Expr:
        return sigmadot(e.expr.args[0])

    expr = expr.replace(is_dsig, to_dot)

    def is_subs(e: sp.Basic) -> bool:
        return isinstance(e, sp.Subs) and isinstance(e.expr, sp.Derivative)

    def subs_dot(e: sp.Subs) -> sp.Expr:
        inner = e.expr
        if inner.expr.func == sigma and len(inner.variables) == 1:
            return sigmadot(e.point[0])
        return e

    expr = expr.replace(is_subs, subs_dot)

    # Subs(sigmadot(xi), xi, y) left where the inner derivative became sigmadot: sigmadot(y)
    def plain_subs(e: sp.Basic) -> bool:
        return isinstance(e, sp.Subs) and not e.expr.has(sp.Derivative)

    return expr.replace(plain_subs, lambda e: e.doit())


def _is_object(v: sp.Basic) -> bool:
    return isinstance(v, sp.Indexed) and v.base in OBJECTS and OBJECTS[v.base].kind in ("a", "z")


def object_derivatives(expr: sp.Basic, ctx: Context | None = None) -> sp.Basic:
    """Evaluate derivatives by a network object (``d f_k / d alpha^(L)_i``, ...).

    The expression is unfolded with the definitions until the object's vector appears in
    it, then differentiated: the chain rule through one layer.
    """
    ctx = ctx or Context()

    def ready(d: sp.Basic) -> bool:
        return isinstance(d, sp.Derivative) and any(_is_object(v) for v in d.variables)

    def shows(e: sp.Basic, v: sp.Indexed) -> bool:
        return any(t.base == v.base for t in e.atoms(sp.Indexed))

    def evaluate(d: sp.Derivative) -> sp.Expr:
        e = d.expr
        for v, count in d.variable_count:
            if not _is_object(v):
                e = sp.Derivative(e, (v, count))
                continue
            for _ in range(4):
                if shows(e, v):
                    break
                e = unfold(e, ctx)
            e = sp.diff(e, v, count)
        return sigma_prime(e)

    return expr.replace(ready, evaluate)


@rule(
    "chain_rule",
    description="Evaluate every derivative by SymPy's chain rule, then tidy deltas and ranges",
)
def chain_rule(expr: sp.Expr, ctx: Context) -> sp.Expr:
    """Evaluate every ``Derivative`` by SymPy's chain rule, then tidy deltas and ranges.

    Derivatives by a network object are taken through its definitions first
    (:func:`object_derivatives`).
    """
    out = object_derivatives(expr, ctx)
    out = out.replace(lambda e: isinstance(e, sp.Derivative), lambda e: e.doit())
    out = sigma_prime(out)
    return delta_sum(out, ctx)


def _contract_one(body: sp.Expr, limit: tuple, ctx: Context) -> sp.Expr:
    var, lo, hi = limit
    new_terms = []
    for t in sp.Add.make_args(sp.expand(body)):
        indep, dep = t.as_independent(var, as_Add=False)
        if dep == 1:
            new_terms.append(indep * (hi - lo + 1))
        elif any(
            isinstance(f, sp.KroneckerDelta) and var in f.free_symbols
            for f in sp.Mul.make_args(dep)
        ):
            r = deltasummation(dep, (var, lo, hi))
            new_terms.append(indep * drop_range_piecewise(r, ctx))
        else:
            new_terms.append(indep * sp.Sum(dep, (var, lo, hi)))
    return sp.Add(*new_terms)


def _contract_sum(s: sp.Sum, ctx: Context) -> sp.Expr:
    body = s.function
    for n, limit in enumerate(s.limits):
        outer = {v: hi for v, _, hi in s.limits[n + 1 :]}
        body = _contract_one(body, limit, ctx.replace(ranges={**ctx.ranges, **outer}))
    return body


@rule(
    "delta_sum",
    description="Contract Kronecker deltas inside sums; pull independent factors out of sums",
)
def delta_sum(expr: sp.Expr, ctx: Context) -> sp.Expr:
    """Contract Kronecker deltas inside sums; pull independent factors out of sums."""
    out = drop_range_piecewise(expr, ctx)
    prev = None
    while prev != out:
        prev = out
        out = out.replace(lambda e: isinstance(e, sp.Sum), lambda e: _contract_sum(e, ctx))
        out = drop_range_piecewise(out, ctx)
    for a, c in ctx.unequal:
        out = out.subs(sp.KroneckerDelta(a, c), 0)
    return sp.expand(out)


def merge_sums(t: sp.Expr) -> sp.Expr:
    """Write a product containing sums as one multiple sum.

    ``(sum_i a_i) c (sum_j b_j) = sum_i sum_j a_i c b_j``; every summation index is
    renamed to a fresh dummy so that equal names cannot clash.
    """
    factors = sp.Mul.make_args(t)
    sums = [f for f in factors if isinstance(f, sp.Sum)]
    pows = [f for f in factors if isinstance(f, sp.Pow) and isinstance(f.base, sp.Sum)]
    if not pows and len(sums) <= 1 and (not sums or len(factors) == 1):
        return t
    rest = [f for f in factors if f not in sums and f not in pows]
    for p in pows:
        if not (p.exp.is_Integer and p.exp > 0):
            return t
        s0 = p.base
        for _ in range(int(p.exp)):
            var = s0.limits[0][0]
            new = fresh(str(var.name).rstrip("0123456789_") or "j")
            sums.append(s0.xreplace({var: new}))
    body = sp.Mul(*rest)
    limits: list = []
    for s in sums:
        rep = {v: fresh(str(v.name).rstrip("0123456789_") or "j") for v, *_ in s.limits}
        body = body * s.function.xreplace(rep)
        limits.extend((rep[v], lo, hi) for v, lo, hi in s.limits)
    return sp.Sum(body, *limits)


def depends_on_p(e: sp.Basic) -> bool:
    """Whether ``e`` changes with the parameter index ``p`` (a derivative by theta_p)."""
    return any(theta in d.variables for d in e.atoms(sp.Derivative))


@rule("parameter_sum", description="Linearity of the sum over parameters")
def parameter_sum(expr: sp.Expr, ctx: Context) -> sp.Expr:
    """Linearity of the sum over parameters.

    ``sum_p sum_i c_i g_p = sum_i c_i sum_p g_p`` for factors ``c_i`` that do not involve a
    derivative by ``theta_p``.
    """

    def split(ps: PSum) -> sp.Expr:
        out = []
        for t in sp.Add.make_args(sp.expand(ps.args[0])):
            t = merge_sums(t)
            limits: tuple = ()
            if isinstance(t, sp.Sum):
                t, limits = t.function, t.limits
            const = [f for f in sp.Mul.make_args(t) if not depends_on_p(f)]
            var = [f for f in sp.Mul.make_args(t) if depends_on_p(f)]
            term = sp.Mul(*const) * PSum(sp.Mul(*var))
            out.append(sp.Sum(term, *limits) if limits else term)
        return sp.Add(*out)

    return expr.replace(lambda e: isinstance(e, PSum), split)


@rule(
    "induction_hypothesis",
    description=text(
        "(19): {f} for the smaller network",
        f=Tex(
            r"\Theta^{(L)}_{ii'} \to \Theta_\infty^{(L)}\,\delta_{ii'}",
            "Theta^(L)_ii' -> Theta_inf^(L) delta_ii'",
        ),
    ),
)
def induction_hypothesis(expr: sp.Expr, ctx: Context) -> sp.Expr:
    """(19): ``Theta^(L)_{ii'} -> Theta_inf^(L) delta_{ii'}`` for the smaller network.

    While a derivation that states its hypotheses runs, the rewrite is the one its
    hypothesis statements give (their left side becomes their right side).
    """
    net = active_network()
    if net is not None and net.has_hypotheses:
        return net.apply_hypotheses(expr)
    return expr.replace(Theta, lambda m, a, c: Theta_inf(m) * sp.KroneckerDelta(a, c))


@rule("algebra", description="Expand and collect (no new facts)")
def algebra(expr: sp.Expr, ctx: Context) -> sp.Expr:
    """Expand and collect (no new facts)."""
    return sp.expand(expr)
