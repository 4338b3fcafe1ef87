"""The exact check at concrete widths.

Build the network with concrete widths and layers, with every weight an explicit symbol,
differentiate, take the Gaussian expectations exactly (Isserlis), and test the statement
for every value of its free indices (:func:`exact_finite_width`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import sympy as sp

from ntksym.derive.network import network_key
from ntksym.derive.rules import (
    Context,
    definition_of,
    gaussian_layer,
    object_derivatives,
    sigma_prime,
    wick,
)
from ntksym.derive.statements import pairs
from ntksym.derive.symbols import (
    NAMES,
    OBJECTS,
    ZF_INFO,
    Dim,
    E,
    GaussE,
    PSum,
    Tends,
    W,
    alpha,
    alpha_t,
    as_expr,
    b,
    make_object,
    theta,
    width_layer,
)
from ntksym.derive.text import Config, Text
from ntksym.derive.wellformed import is_name
from ntksym.errors import NTKSymError

__all__ = [
    "NotExact",
    "UndefinedObject",
    "concrete_layers",
    "concretize",
    "exact_finite_width",
    "expand_sums",
    "nonzero_at_random_point",
    "parameters",
    "unfold_all",
]


class NotExact(NTKSymError):
    """The statement cannot be evaluated exactly at finite width (e.g. a limit).

    ``detail`` is the reason as :class:`~ntksym.derive.text.Text` (default: the message
    as words).
    """

    def __init__(self, message: str, detail: Text | None = None) -> None:
        super().__init__(message)
        self.detail = detail if detail is not None else Text(message)


class UndefinedObject(NTKSymError):
    """A statement refers to an object its definitions do not define.

    ``detail`` is the reason as :class:`~ntksym.derive.text.Text` (default: the message
    as words).
    """

    def __init__(self, message: str, detail: Text | None = None) -> None:
        super().__init__(message)
        self.detail = detail if detail is not None else Text(message)


def _layer_value(layer: sp.Expr, layers: dict) -> int:
    v = as_expr(layer).subs({k: v for k, v in layers.items() if isinstance(k, sp.Symbol)})
    if not v.is_Integer:
        raise NotExact(f"layer {layer} is not fixed by {layers}")
    return int(v)


def concrete_layers(expr: sp.Basic, layers: dict, widths: dict) -> sp.Basic:
    """Substitute concrete layers and widths into every registered object and width."""
    if not expr.free_symbols:
        return expr  # a number or a constant (the variances of a Wick pairing): nothing to do

    def pending(e: sp.Basic) -> bool:
        """An object, a pre-activation function or a conditional E not yet concrete."""
        if isinstance(e, sp.Indexed):
            info = OBJECTS.get(e.base)
            return info is not None and not as_expr(info.layer).is_Integer
        if isinstance(e, E):
            return len(e.args) == 2 and not e.args[1].is_Integer
        return isinstance(e, sp.Function) and e.func.__name__ in ZF_INFO

    def conc(e: sp.Basic) -> sp.Basic:
        if isinstance(e, sp.Indexed):
            info = OBJECTS[e.base]
            return make_object(info.kind, _layer_value(info.layer, layers), info.prime)[e.indices]
        if isinstance(e, E):
            return E(e.args[0], _layer_value(e.args[1], layers))
        layer, prime = ZF_INFO[e.func.__name__]
        return alpha_t(_layer_value(layer, layers), prime)[e.args[0]]

    # one walk: objects first (bottom-up), then the functions and expectations holding them
    out = expr.replace(pending, conc)
    rep = {}
    for s in out.free_symbols:
        wl = width_layer(s)
        if wl is not None:
            m = _layer_value(wl, layers)
            if m not in widths:
                raise NotExact(f"no width given for layer {m}")
            rep[s] = widths[m]
    # the layer of every other layer-indexed quantity (a per-layer scale sigma_w(l))
    rep.update({k: as_expr(v) for k, v in layers.items() if isinstance(k, sp.Symbol)})
    return out.xreplace(rep)


#: One level of unfolding per (entry, widths, forward pass, network): the exact checks
#: unfold the same entries many times.
_UNFOLDED: dict[tuple, sp.Basic] = {}


def unfold_all(
    expr: sp.Basic, widths: dict, scale: sp.Expr = sp.S.One, parameterization: str = "ntk"
) -> sp.Basic:
    """Every registered entry with concrete indices replaced by its definition, repeatedly."""

    def is_def(e: sp.Basic) -> bool:
        return (
            isinstance(e, sp.Indexed)
            and e.base in OBJECTS
            and OBJECTS[e.base].kind in ("a", "z")
            and all(i.is_Integer for i in e.indices)
        )

    def unfold(e: sp.Indexed) -> sp.Expr:
        info = OBJECTS[e.base]
        m = int(info.layer)
        if info.kind == "z" and m < 1:
            why = Text(alpha_t(m), " is not defined by (2)")
            raise UndefinedObject(why.plain(), why)
        if info.kind == "a" and m < 0:
            why = Text(alpha(m), " is not defined")
            raise UndefinedObject(why.plain(), why)
        (k,) = e.indices
        n_here = widths.get(m)
        if n_here is not None and not 1 <= int(k) <= n_here:
            raise UndefinedObject(f"index {k} out of range 1..{n_here} at layer {m}")
        key = (e, wkey, scale, parameterization, network_key())
        if key not in _UNFOLDED:
            rhs = definition_of(e, scale, parameterization)
            out = expand_sums(concrete_layers(rhs, {}, widths))
            if out.has(sp.Sum):  # summation indices stay fresh at every use
                return out
            if len(_UNFOLDED) > 50_000:
                _UNFOLDED.clear()
            _UNFOLDED[key] = out
        return _UNFOLDED[key]

    wkey = tuple(sorted(widths.items()))

    for _ in range(20):
        new = expr.replace(is_def, unfold)
        if new == expr:
            return new
        expr = new
    return expr


def _check_param_indices(expr: sp.Basic, widths: dict) -> None:
    for e in sorted(expr.atoms(sp.Indexed), key=sp.default_sort_key):
        info = OBJECTS.get(e.base)
        if info is None or info.kind not in "Wbx":
            continue
        m = int(info.layer)
        bounds = {"W": (m + 1, m), "b": (m + 1,), "x": (0,)}[info.kind]
        for i, bl in zip(e.indices, bounds, strict=False):
            if i.is_Integer and (bl not in widths or not 1 <= int(i) <= widths[bl]):
                why = Text(e, f": index {i} out of range")
                raise UndefinedObject(why.plain(), why)


def _expect_concrete(e: E, ctx: Context, widths: dict) -> sp.Expr:
    """Exact Gaussian expectation with the variances of ``ctx`` at concrete widths."""
    arg = sp.expand(e.args[0])
    cond = int(e.args[1]) if len(e.args) > 1 else None
    out = sp.Integer(0)
    for t in sp.Add.make_args(arg):
        gauss: list[sp.Expr] = []
        rest = []
        for f in sp.Mul.make_args(t):
            base, ex = (f.base, f.exp) if isinstance(f, sp.Pow) else (f, sp.Integer(1))
            gl = gaussian_layer(base)
            if gl is not None and ex.is_Integer and (cond is None or int(gl) == cond):
                gauss.extend([base] * int(ex))
            else:
                rest.append(f)
        r = sp.Mul(*rest)
        gset = set(gauss)
        # the Gaussian parameters inside a nonlinearity, with their layers
        inside = {a: m for a in r.atoms(sp.Indexed) if (m := gaussian_layer(a)) is not None}
        if cond is not None:
            if any(int(m) == cond for m in inside.values()):
                raise NotExact(f"layer-{cond} parameter inside a nonlinearity")
            out += concrete_layers(wick(gauss, ctx), {}, widths) * r
            continue
        if gset & inside.keys():
            raise NotExact("a Gaussian parameter appears inside a nonlinearity")
        er = r if not inside else E(r)
        out += concrete_layers(wick(gauss, ctx), {}, widths) * er
    return sp.expand(out)


def _eval_derivs(expr: sp.Basic) -> sp.Basic:
    """Differentiate where the network inside the derivative is fully written out."""

    def ready(e: sp.Basic) -> bool:
        if not isinstance(e, sp.Derivative):
            return False
        return not any(
            t.base in OBJECTS and OBJECTS[t.base].kind in ("a", "z")
            for t in e.expr.atoms(sp.Indexed)
        )

    return expr.replace(ready, lambda e: e.doit())


def expand_sums(expr: sp.Basic) -> sp.Basic:
    """Write out sums with concrete bounds, leaving derivatives unevaluated."""
    for _ in range(10):
        if not expr.has(sp.Sum):
            return expr
        expr = expr.replace(lambda e: isinstance(e, sp.Sum), lambda e: e.doit(deep=False))
    return expr


def concretize(
    expr: sp.Basic,
    layers: dict,
    widths: dict,
    assign: dict,
    names: dict | None = None,
    scale: sp.Expr = sp.S.One,
    ctx: Context | None = None,
) -> sp.Expr:
    """The exact value of ``expr`` for concrete layers, widths and free indices.

    ``ctx`` (optional) gives the forward pass and the parameter variances
    (``parameterization``, ``weight_scale``, ``weight_var``, ``bias_var``); without it the
    seed's network with weight scale ``scale`` and unit variances.
    """
    gauss = ctx or Context(weight_scale=scale)
    if expr.has(GaussE) or expr.has(Tends):
        raise NotExact("a limit object has no finite-width value")
    out = expr
    for _ in range(3):
        for key, val in (names or {}).items():
            if isinstance(key, sp.FunctionClass):
                out = out.replace(key, val)
            else:
                out = out.xreplace({key: val})
    if any(isinstance(f, sp.Function) and f.func.__name__ in NAMES for f in out.atoms(sp.Function)):
        raise NotExact("a named quantity without a finite-width value")
    out = out.replace(
        lambda e: isinstance(e, Dim),
        lambda e: widths[_layer_value(OBJECTS[e.args[0]].layer, layers)],
    )
    out = concrete_layers(out, layers, widths)
    params = list(parameters(layers, widths))
    out = out.replace(
        lambda e: isinstance(e, PSum),
        lambda e: sp.Add(*[e.args[0].xreplace({theta: p}) for p in params]),
    )
    bound = {v for t in out.atoms(sp.Sum) for v in t.variables}
    # subs, not xreplace, when an index free here is bound by a sum elsewhere
    out = out.subs(assign) if bound & set(assign) else out.xreplace(assign)
    # d f / d alpha^(m)_i: through the definitions
    out = concrete_layers(object_derivatives(out, gauss), {}, widths)
    out = _eval_derivs(unfold_all(out, widths, gauss.weight_scale, gauss.parameterization))
    out = expand_sums(out)
    out = _eval_derivs(unfold_all(out, widths, gauss.weight_scale, gauss.parameterization))
    _check_param_indices(out, widths)
    out = sigma_prime(out)
    if out.has(sp.Derivative):
        raise NotExact("a derivative could not be evaluated")
    out = out.replace(lambda e: isinstance(e, E), lambda e: _expect_concrete(e, gauss, widths))
    return sp.expand(out)


def _assignments(
    free: Iterable[sp.Symbol], ranges: dict, layers: dict, widths: dict, unequal: tuple
) -> Iterable[dict]:
    free = sorted(free, key=lambda s: s.name)
    spans = []
    for s in free:
        if s == theta:
            spans.append(list(parameters(layers, widths)))
            continue
        hi = ranges.get(s)
        if hi is None:
            raise NotExact(f"no range given for index {s}")
        hi_v = concrete_layers(as_expr(hi), layers, widths)
        spans.append(list(range(1, int(hi_v) + 1)))
    for combo in itertools.product(*spans):
        a = dict(zip(free, combo, strict=True))
        if any(a.get(p) == a.get(q) and p in a for p, q in unequal):
            continue
        yield {k: (v if isinstance(v, sp.Basic) else sp.Integer(v)) for k, v in a.items()}


def parameters(layers: dict, widths: dict) -> Iterable[sp.Indexed]:
    """The parameters theta~ of the first ``theta_layers`` layers."""
    top = layers.get("theta_layers", 0)
    for m in range(top):
        for k in range(1, widths[m + 1] + 1):
            for i in range(1, widths[m] + 1):
                yield W(m)[k, i]
            yield b(m)[k]


def exact_finite_width(
    stmt: sp.Basic, ctx: Context, configs: list[tuple[dict, dict]]
) -> tuple[bool, Text]:
    """Check ``stmt`` exactly for each ``(layers, widths)`` configuration.

    Returns ``(holds, detail)``; ``detail`` (a :class:`~ntksym.derive.text.Text`) names
    the first counterexample or the configurations checked. Raises :class:`NotExact`
    when the statement has no exact finite-width meaning (limits, Gaussian-process
    expectations).
    """
    if not configs:
        raise NotExact("no finite-width configuration given")
    checked, compared, skipped = [], 0, []
    for layers, widths in configs:
        for lhs, rhs in pairs(stmt):
            free = (lhs.free_symbols | rhs.free_symbols) & (set(ctx.ranges) | {theta})
            if is_name(lhs) and _undefined_name(lhs, ctx.names):
                # "name = ..." with no finite-width value for the name defines it
                skipped.append(Text(lhs, " has no finite-width definition"))
                continue
            compared += 1
            for a in _assignments(free, ctx.ranges, layers, widths, ctx.unequal):
                try:
                    diff = concretize(lhs - rhs, layers, widths, a, ctx.names, ctx=ctx)
                except UndefinedObject as exc:
                    return False, Text("undefined at ", _fmt(layers, widths, a), ": ", exc.detail)
                if not _is_zero(diff):
                    return False, Text("fails at ", _fmt(layers, widths, a))
        checked.append(_fmt(layers, widths, {}))
    if not compared:
        why = Text("nothing to compare: ", Text.join("; ", dict.fromkeys(skipped)))
        raise NotExact(why.plain(), why)
    return True, Text("exact at ", Text.join("; ", checked))


def _undefined_name(e: sp.Basic, names: dict | None) -> bool:
    """Whether a named quantity has no finite-width value among ``names``."""
    for key in names or {}:
        if e == key or (isinstance(key, sp.FunctionClass) and e.func == key):
            return False
    return True


def _is_zero(d: sp.Basic) -> bool:
    if isinstance(d, sp.MatrixBase):
        return all(_is_zero(e) for e in d)
    return d == 0 or (not nonzero_at_random_point(d) and sp.simplify(d) == 0)


def nonzero_at_random_point(d: sp.Expr, seed: int = 7, dps: int = 40) -> bool:
    """True when ``d`` is shown not identically zero by evaluating it at a random point.

    Every free symbol gets a random rational value; then every function application
    that cannot be evaluated (``sigma(...)``, ``E[...]``, a pre-activation) gets a random
    value of its own, the same for applications whose arguments have the same value (so
    ``sigma(a + b)`` and ``sigma(b + a)`` agree). A value clearly away from 0 (relative to
    the size of the terms, at ``dps`` digits) proves ``d != 0`` for that choice, hence
    ``d`` is not identically 0. False means "not shown": the caller decides exactly
    (:func:`sympy.simplify`), so a fast answer never replaces an exact "zero".
    """
    import random

    rng = random.Random(seed)
    point = {s: sp.Rational(rng.randint(1, 997), rng.randint(1, 97)) for s in d.free_symbols}
    e = d.xreplace(point)
    values: dict = {}

    def opaque(f: sp.Basic) -> bool:
        return (
            isinstance(f, sp.Function)
            and not isinstance(f, sp.KroneckerDelta)
            and (isinstance(f, (sp.core.function.AppliedUndef, E)) or not f.is_number)
        )

    def value(f: sp.Function) -> sp.Expr:
        key = (type(f), tuple(str(sp.N(a, dps)) for a in f.args))
        return values.setdefault(key, sp.Rational(rng.randint(1, 997), rng.randint(1, 97)))

    def held(a: sp.Basic) -> sp.Expr:  # sigma''(y) written as Subs(Derivative(...), xi, y)
        key = (type(a), str(a.expr), tuple(str(sp.N(p, dps)) for p in a.point))
        return values.setdefault(key, sp.Rational(rng.randint(1, 997), rng.randint(1, 97)))

    try:
        e = e.xreplace({a: held(a) for a in e.atoms(sp.Subs)})
        if e.atoms(sp.Derivative):
            return False
        e = e.replace(opaque, value)
        if e.free_symbols or e.atoms(sp.Function) - e.atoms(sp.KroneckerDelta):
            return False
        scale = max((abs(sp.N(t, dps)) for t in sp.Add.make_args(sp.expand(e))), default=0)
        total = abs(sp.N(e, dps))
    except (TypeError, ValueError, ZeroDivisionError):
        return False
    return bool(scale != 0 and total > scale * sp.Float(10) ** (10 - dps))


def _fmt(layers: dict, widths: dict, a: dict) -> Config:
    return Config(
        tuple((k, v) for k, v in layers.items() if k != "theta_layers"),
        tuple(widths[k] for k in sorted(widths)),
        tuple(a.items()),
    )
