"""The rules of the derivation, as data: ``RULES[name](expr, ctx) -> expr``.

Each rule rewrites an expression mechanically; none of them knows the seed's answers.
``ctx`` is a :class:`Context` carrying the index ranges, the assumptions of the step
(e.g. ``k != k'``) and the variances of the Gaussian parameters.

* ``definition`` — unfold (1)–(4): ``alpha~^(m+1)_k = (1/sqrt n_m) sum_j w_kj alpha^(m)_j +
  beta b_k``, ``alpha^(0) = x``, ``alpha^(m) = sigma(alpha~^(m))``.
* ``chain_rule`` — SymPy ``diff`` through sums of ``Indexed`` and an undefined ``sigma``.
* ``delta_sum`` — contract sums of Kronecker deltas one index at a time.
* ``linearity`` — expectation of sums and of deterministic factors.
* ``independence`` — a layer's parameters are independent of the earlier layers' outputs.
* ``gaussian_moments`` — ``E[w]=0``, ``E[w_ki w_k'j] = s^2 d_kk' d_ij`` and Isserlis/Wick.
* ``law_of_large_numbers`` — ``(1/n) sum_{i<=n} g_i -> E[g_i]`` for i.i.d. ``g_i``.
* ``gaussian_process`` — in the limit ``alpha~^(m)_i(x), alpha~^(m)_i(x')`` are jointly
  Gaussian with covariance ``Sigma^(m)`` (the statement (12) proves by induction).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import sympy as sp
from sympy.concrete.delta import deltasummation

from ntksym.derive.symbols import (
    REGISTRY,
    ZF_INFO,
    E,
    GaussE,
    PSum,
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
from ntksym.errors import NTKSymError

__all__ = ["Context", "RULES", "RuleError", "rule", "apply_rule", "sigma_prime"]


class RuleError(NTKSymError):
    """A rule does not apply to the expression it was given."""


@dataclass(frozen=True)
class Context:
    """What a rule may assume.

    Attributes:
        ranges: upper bound of each free index (``k -> n_{l+1}``); lower bounds are 1.
        unequal: pairs of indices assumed different (e.g. ``(k, k')`` in (9)).
        weight_var: variance of the weights ``w`` (1 in the seed).
        bias_var: variance of the biases ``b`` (1 in the seed).
        names: values of named quantities (``Sigma^(1)(x,x')``) for the exact checks.
        weight_scale: factor in front of ``W alpha / sqrt(n)`` in (2) (1 in the seed;
            ``sigma_w`` in the NTK parameterization with a weight scale).
    """

    ranges: dict = field(default_factory=dict)
    unequal: tuple = ()
    weight_var: sp.Expr = sp.Integer(1)
    bias_var: sp.Expr = sp.Integer(1)
    names: dict = field(default_factory=dict)
    weight_scale: sp.Expr = sp.S.One

    def replace(self, **kw: object) -> Context:
        """A copy with some fields changed."""
        d = {f: getattr(self, f) for f in self.__dataclass_fields__}
        d.update(kw)
        return Context(**d)


RULES: dict[str, Callable[[sp.Expr, Context], sp.Expr]] = {}


def rule(name: str) -> Callable:
    """Register a rule under ``name``."""

    def deco(fn: Callable) -> Callable:
        RULES[name] = fn
        return fn

    return deco


def apply_rule(name: str, expr: sp.Expr, ctx: Context | None = None) -> sp.Expr:
    """Apply the rule ``name``; unknown names raise ``NotImplementedError`` naming them.

    An exception raised by the rule propagates with the attribute ``ntksym_rule`` set to
    the name of the innermost rule that raised it (the engine reports it).
    """
    if name not in RULES:
        raise NotImplementedError(f"no rule {name!r}; known rules: {sorted(RULES)}")
    try:
        return RULES[name](expr, ctx or Context())
    except Exception as exc:
        if not getattr(exc, "ntksym_rule", ""):
            exc.ntksym_rule = name  # type: ignore[attr-defined]  # the innermost rule
        raise


_counter = itertools.count()


def fresh(stem: str = "j") -> sp.Dummy:
    """A fresh summation index."""
    return sp.Dummy(f"{stem}{next(_counter)}", integer=True, positive=True)


# ----------------------------------------------------------------------------- definitions
def definition_of(ind: sp.Indexed, weight_scale: sp.Expr = sp.S.One) -> sp.Expr | None:
    """The right-hand side of (1)–(3) for one registered entry, or None."""
    info = REGISTRY.get(ind.base)
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
    from ntksym.derive.symbols import W

    return (
        weight_scale
        * sp.Sum(W(prev)[k, j] * alpha(prev, info.prime)[j], (j, 1, width(prev)))
        / sp.sqrt(width(prev))
        + beta * b(prev)[k]
    )


@rule("definition")
def unfold(expr: sp.Expr, ctx: Context, kinds: tuple[str, ...] = ("a", "z")) -> sp.Expr:
    """Replace every ``alpha``/``alpha~`` entry by its definition, one level deep."""

    def is_target(e: sp.Basic) -> bool:
        return isinstance(e, sp.Indexed) and e.base in REGISTRY and REGISTRY[e.base].kind in kinds

    return expr.replace(is_target, lambda e: definition_of(e, ctx.weight_scale))


# ----------------------------------------------------------------------------- calculus
def _range_facts(ctx: Context) -> sp.Basic:
    facts = [sp.Q.le(i, n) for i, n in ctx.ranges.items() if isinstance(i, sp.Symbol)]
    return sp.And(*facts) if facts else sp.true


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
            c = sp.refine(cond, _range_facts(ctx))
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

    return expr.replace(is_subs, subs_dot)


@rule("chain_rule")
def chain_rule(expr: sp.Expr, ctx: Context) -> sp.Expr:
    """Evaluate every ``Derivative`` by SymPy's chain rule, then tidy deltas and ranges."""
    out = expr.replace(lambda e: isinstance(e, sp.Derivative), lambda e: e.doit())
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


@rule("delta_sum")
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


# ----------------------------------------------------------------------------- expectation
def gaussian_layer(e: sp.Basic) -> sp.Expr | None:
    """Layer of a Gaussian parameter entry ``w^(m)_{..}`` or ``b^(m)_.``, else None."""
    if isinstance(e, sp.Indexed) and e.base in REGISTRY and REGISTRY[e.base].kind in "Wb":
        return REGISTRY[e.base].layer
    return None


def is_random(e: sp.Basic) -> bool:
    """Whether ``e`` depends on a parameter of the network."""
    for ind in e.atoms(sp.Indexed):
        info = REGISTRY.get(ind.base)
        if info is None:
            continue
        if info.kind in ("W", "b", "z") or (info.kind == "a" and info.layer != 0):
            return True
    return any(f.func.__name__ in ZF_INFO for f in e.atoms(sp.Function))


def depends_on_layer(e: sp.Basic, m: sp.Expr) -> bool:
    """Whether ``e`` depends on the parameters of layer ``m``.

    ``alpha^(j)``, ``alpha~^(j)`` depend on layers ``0..j-1``. Raises RuleError when the
    layer arithmetic is undecidable (e.g. ``l`` against ``L``).
    """
    for f in e.atoms(sp.Function):
        if f.func.__name__ in ZF_INFO:
            d = sp.simplify(ZF_INFO[f.func.__name__][0] - m)
            if not d.is_number:
                raise RuleError(f"cannot compare layers {m} and {d + m}")
            if d > 0:
                return True
    for ind in e.atoms(sp.Indexed):
        info = REGISTRY.get(ind.base)
        if info is None or info.kind == "x":
            continue
        d = sp.simplify(info.layer - m)
        if info.kind in "Wb":
            if d == 0:
                return True
            if not d.is_number:
                raise RuleError(f"cannot compare layers {info.layer} and {m}")
        else:
            if not d.is_number:
                raise RuleError(f"cannot compare layers {info.layer} and {m}")
            if d > 0:
                return True
    return False


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


@rule("linearity")
def linearity(expr: sp.Expr, ctx: Context) -> sp.Expr:
    """``E[a X + c Y] = a E[X] + c E[Y]``, ``E[sum_i X_i] = sum_i E[X_i]``, ``E[c] = c``."""

    def lin(e: E) -> sp.Expr:
        arg = sp.expand(e.args[0])
        cond = e.args[1:]
        out = []
        for t in sp.Add.make_args(arg):
            t = merge_sums(t)
            if isinstance(t, sp.Sum):
                out.append(sp.Sum(lin(E(t.function, *cond)), *t.limits))
                continue
            consts, rand = [], []
            for f in sp.Mul.make_args(t):
                (rand if is_random(f) else consts).append(f)
            r = sp.Mul(*rand)
            if isinstance(r, sp.Sum):
                out.append(sp.Mul(*consts) * sp.Sum(lin(E(r.function, *cond)), *r.limits))
            elif rand:
                out.append(sp.Mul(*consts) * E(r, *cond))
            else:
                out.append(sp.Mul(*consts))
        return sp.Add(*out)

    return expr.replace(lambda e: isinstance(e, E), lin)


@rule("independence")
def independence(expr: sp.Expr, ctx: Context) -> sp.Expr:
    """Split ``E[A B] = E[A] E[B]`` for independent factors.

    ``A`` holds the Gaussian parameters of one layer and ``B`` only earlier layers'
    outputs (independent by construction).
    """

    def split(e: E) -> sp.Expr:
        factors = sp.Mul.make_args(e.args[0])
        layers = {gaussian_layer(f.base if isinstance(f, sp.Pow) else f) for f in factors}
        layers.discard(None)
        cond = e.args[1] if len(e.args) > 1 else None
        if cond is not None:
            layers = {t for t in layers if sp.simplify(t - cond) == 0} or {cond}
        if not layers:
            return e
        # deepest parameter layer: group its parameters against everything else
        m = max(layers, key=lambda t: sp.default_sort_key(t))
        gauss, rest = [], []
        for f in factors:
            base = f.base if isinstance(f, sp.Pow) else f
            gl = gaussian_layer(base)
            if gl is not None and sp.simplify(gl - m) == 0:
                gauss.append(f)
            else:
                if depends_on_layer(f, m):
                    raise RuleError(f"{f} is not independent of layer {m}")
                rest.append(f)
        if not rest:
            return e
        if cond is not None:
            return (E(sp.Mul(*gauss), cond) if gauss else 1) * sp.Mul(*rest)
        return E(sp.Mul(*gauss)) * E(sp.Mul(*rest))

    return expr.replace(lambda e: isinstance(e, E), split)


def wick(factors: list[sp.Expr], ctx: Context) -> sp.Expr:
    """Isserlis' theorem for centred jointly Gaussian parameter entries."""
    if not factors:
        return sp.Integer(1)
    if len(factors) % 2:
        return sp.Integer(0)
    first, rest = factors[0], factors[1:]
    total = sp.Integer(0)
    for idx, other in enumerate(rest):
        total += _pair(first, other, ctx) * wick(rest[:idx] + rest[idx + 1 :], ctx)
    return total


def _pair(p: sp.Indexed, q: sp.Indexed, ctx: Context) -> sp.Expr:
    ip, iq = REGISTRY[p.base], REGISTRY[q.base]
    if ip.kind != iq.kind:
        return sp.Integer(0)
    d = sp.simplify(ip.layer - iq.layer)
    if not d.is_number:
        raise RuleError(f"cannot compare layers {ip.layer} and {iq.layer}")
    if d != 0:
        return sp.Integer(0)
    var = ctx.weight_var if ip.kind == "W" else ctx.bias_var
    out = var
    for a, c in zip(p.indices, q.indices, strict=True):
        out *= sp.KroneckerDelta(a, c)
    return out


@rule("gaussian_moments")
def gaussian_moments(expr: sp.Expr, ctx: Context) -> sp.Expr:
    """Evaluate ``E[product of w's and b's]`` by Wick's theorem."""

    def ev(e: E) -> sp.Expr:
        arg = e.args[0]
        flat: list[sp.Expr] = []
        for f in sp.Mul.make_args(arg):
            base, ex = (f.base, f.exp) if isinstance(f, sp.Pow) else (f, 1)
            if gaussian_layer(base) is None or not (isinstance(ex, int) or ex.is_Integer):
                return e
            flat.extend([base] * int(ex))
        return wick(flat, ctx)

    return expr.replace(lambda e: isinstance(e, E), ev)


def expectation(expr: sp.Expr, ctx: Context) -> sp.Expr:
    """Linearity, then independence, then Gaussian moments, then delta sums."""
    out = linearity(expr, ctx)
    out = independence(out, ctx)
    out = gaussian_moments(out, ctx)
    return delta_sum(out, ctx)


RULES["expectation"] = expectation


# ----------------------------------------------------------------------------- limits
@rule("law_of_large_numbers")
def law_of_large_numbers(expr: sp.Expr, ctx: Context) -> sp.Expr:
    """``(1/n) sum_{i=1}^n g_i -> E[g_i]`` (i.i.d. terms with finite second moment).

    Every term ``c/n * Sum(g(i), (i, 1, n))`` of ``expr`` becomes ``c * E[g(i0)]`` with the
    summation index renamed to a free index; other terms are kept.
    """
    out = []
    for t in sp.Add.make_args(sp.expand(expr)):
        sums = [f for f in sp.Mul.make_args(t) if isinstance(f, sp.Sum)]
        if len(sums) != 1 or len(sums[0].limits) != 1:
            out.append(t)
            continue
        s = sums[0]
        var, lo, hi = s.limits[0]
        coeff = sp.simplify(t / s * hi)
        if coeff.has(hi) or lo != 1:
            raise RuleError(f"{t} is not a normalised sum (1/{hi}) sum_i g_i")
        i0 = ctx.ranges.get("lln_index", sp.Symbol("i", integer=True, positive=True))
        out.append(coeff * E(s.function.subs(var, i0)))
    return sp.Add(*out)


@rule("gaussian_process")
def gaussian_process(expr: sp.Expr, ctx: Context) -> sp.Expr:
    """``E[F(alpha~^(m)_i(x), alpha~^(m)_i(x'))] = E_{g~N(0,Sigma^(m))}[F(g(x), g(x'))]``."""
    u, v = sp.symbols("u v", real=True)

    def gp(e: E) -> sp.Expr:
        arg = e.args[0]
        zs = [t for t in arg.atoms(sp.Indexed) if t.base in REGISTRY]
        fz = [f for f in arg.atoms(sp.Function) if f.func.__name__ in ZF_INFO]
        rep: dict = {}
        layer = None
        for t in zs:
            info = REGISTRY[t.base]
            if info.kind != "z":
                return e
            layer = info.layer
            rep[t] = v if info.prime else u
        for f in fz:
            layer, prime = ZF_INFO[f.func.__name__]
            rep[f] = v if prime else u
        if layer is None or len(set(rep.values())) != len(rep):
            return e
        return GaussE(arg.xreplace(rep), u, v, layer)

    return expr.replace(lambda e: isinstance(e, E), gp)


def depends_on_p(e: sp.Basic) -> bool:
    """Whether ``e`` changes with the parameter index ``p`` (a derivative by theta_p)."""
    return any(theta in d.variables for d in e.atoms(sp.Derivative))


@rule("parameter_sum")
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


@rule("induction_hypothesis")
def induction_hypothesis(expr: sp.Expr, ctx: Context) -> sp.Expr:
    """(19): ``Theta^(L)_{ii'} -> Theta_inf^(L) delta_{ii'}`` for the smaller network."""
    from ntksym.derive.symbols import Theta, Theta_inf

    return expr.replace(Theta, lambda m, a, c: Theta_inf(m) * sp.KroneckerDelta(a, c))


@rule("algebra")
def algebra(expr: sp.Expr, ctx: Context) -> sp.Expr:
    """Expand and collect (no new facts)."""
    return sp.expand(expr)
