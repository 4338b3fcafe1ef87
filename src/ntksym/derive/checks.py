"""Checks: symbolic identity, exact identity at concrete widths, and a readable diff.

* :func:`symbolic_equal` — canonicalise (contract deltas, pull constants out of sums,
  rename summation indices by position) and compare for general widths.
* :func:`exact_finite_width` — build the network with concrete widths and layers, with
  every weight an explicit symbol, differentiate, take the Gaussian expectations exactly
  (Isserlis), and test the statement for every value of its free indices.
* :func:`explain` — the smallest subexpressions where the printed and derived forms differ.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import sympy as sp

from ntksym.derive.rules import (
    Context,
    _sigma_prime,
    definition_of,
    delta_sum,
    gaussian_layer,
    linearity,
    wick,
)
from ntksym.derive.statements import Chain, members, pairs, statement_parts
from ntksym.derive.symbols import (
    NAMES,
    REGISTRY,
    ZF_INFO,
    Dim,
    E,
    GaussE,
    PSum,
    Tends,
    _make,
    alpha_t,
    as_expr,
    latex,
    theta,
    width_layer,
)
from ntksym.errors import NTKSymError

__all__ = [
    "NotExact",
    "canonical",
    "symbolic_equal",
    "statement_parts",
    "exact_finite_width",
    "explain",
    "well_formed",
]


class NotExact(NTKSymError):
    """The statement cannot be evaluated exactly at finite width (e.g. a limit)."""


# ----------------------------------------------------------------------------- canonical
def _pull_constants(expr: sp.Expr) -> sp.Expr:
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


def _rename(expr: sp.Expr, depth: int = 0) -> sp.Expr:
    if isinstance(expr, sp.Sum):
        rep = {}
        limits = []
        for n, (v, lo, hi) in enumerate(expr.limits):
            new = sp.Symbol(f"s_{depth}" + "'" * n, integer=True, positive=True)
            rep[v] = new
            limits.append((new, lo, hi))
        body = _rename(expr.function.xreplace(rep), depth + 1)
        return sp.Sum(body, *limits)
    if not expr.args or isinstance(expr, (sp.Indexed, sp.Symbol)):
        return expr
    return expr.func(*[_rename(a, depth) for a in expr.args])


def canonical(expr: sp.Expr, ctx: Context) -> sp.Expr:
    """A canonical form: deltas contracted, constants outside sums, indices renamed."""
    out = delta_sum(linearity(as_expr(expr), ctx), ctx)
    out = _pull_constants(out)
    return sp.expand(_rename(out))


def symbolic_equal(a: sp.Basic, c: sp.Basic, ctx: Context) -> bool:
    """Whether two statements (or expressions) agree for general widths."""
    from ntksym.derive.tangent import has_matrix

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


# ----------------------------------------------------------------------------- explain
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
        return _rename(_pull_constants(stmt))
    if stmt.args:
        return stmt.func(*[_rename_all(a) for a in stmt.args])
    return stmt


def _only_indices_differ(p: sp.Basic, d: sp.Basic) -> bool:
    if isinstance(p, sp.Indexed) and isinstance(d, sp.Indexed):
        return True
    if isinstance(p, sp.KroneckerDelta) and isinstance(d, sp.KroneckerDelta):
        return True
    return isinstance(p, sp.Symbol) and isinstance(d, sp.Symbol)


# ----------------------------------------------------------------------------- well-formed
def _slots(e: sp.Basic, bound: frozenset) -> dict:
    """Index symbols by slot (object family and position) inside an expectation."""
    out: dict = {}
    bound = bound | {v for s in e.atoms(sp.Sum) for v in s.variables}
    for t in e.atoms(sp.Indexed):
        info = REGISTRY.get(t.base)
        for pos, ind in enumerate(t.indices):
            if isinstance(ind, sp.Symbol) and ind not in bound:
                key = t.base if info is None else (info.kind, info.layer)
                out.setdefault((key, pos), set()).add(ind)
    for f in e.atoms(sp.Function):
        if f.func.__name__ in ZF_INFO and isinstance(f.args[0], sp.Symbol):
            if f.args[0] not in bound:
                key = ("z", ZF_INFO[f.func.__name__][0])
                out.setdefault((key, 0), set()).add(f.args[0])
    return out


def _free_indices(e: sp.Basic, bound: frozenset = frozenset()) -> set[sp.Symbol]:
    """Indices on which the value of ``e`` can depend.

    Inside an expectation the units of a layer are exchangeable, so the value depends on
    an index only through its equality with other indices of the same slot: an index that
    is alone in its slot (``E[z_k z'_k]``) is not free; ``E[w_ki w_k'i]`` depends on
    ``k, k'``.
    """
    if isinstance(e, GaussE):
        return set()
    if isinstance(e, E):
        rel: set = set()
        for syms in _slots(e, bound).values():
            if len(syms) > 1:
                rel |= syms
        return rel
    if isinstance(e, sp.Sum):
        inner = bound | {v for v, *_ in e.limits}
        out = _free_indices(e.function, inner)
        for _, lo, hi in e.limits:
            out |= _free_indices(lo, bound) | _free_indices(hi, bound)
        return out
    if isinstance(e, sp.Symbol):
        is_index = e.is_integer and width_layer(e) is None and e.name not in ("l", "L")
        return {e} if is_index and e not in bound else set()
    if isinstance(e, sp.Indexed):
        return set().union(*(_free_indices(i, bound) for i in e.indices))
    if isinstance(e, sp.IndexedBase):
        return set()
    return set().union(set(), *(_free_indices(a, bound) for a in e.args))


def _unknown_symbols(e: sp.Basic) -> set[sp.Symbol]:
    from ntksym.derive.symbols import beta, weight_std

    if isinstance(e, (GaussE, sp.Indexed, sp.IndexedBase)):
        return set()
    if isinstance(e, sp.Symbol):
        ok = e.is_integer or e in (beta, weight_std, theta)
        return set() if ok else {e}
    return set().union(set(), *(_unknown_symbols(a) for a in e.args))


def well_formed(stmt: sp.Basic) -> tuple[bool, str]:
    """Both sides of each equality carry the same free indices and no unknown symbols."""
    for lhs, rhs in pairs(stmt):
        unk = _unknown_symbols(lhs) | _unknown_symbols(rhs)
        if unk:
            return False, "ill-formed: undefined symbol " + ", ".join(
                sorted(f"${latex(s)}$" for s in unk)
            )
        if _is_name(lhs) or lhs.is_number or rhs.is_number:
            continue  # a definition introduces its own name; a constant has no indices
        fl, fr = _free_indices(lhs), _free_indices(rhs)
        if fl != fr:
            odd = ", ".join(sorted(s.name for s in fl ^ fr))
            return False, f"ill-formed: free index {odd} on one side only"
    return True, "well formed"


# ----------------------------------------------------------------------------- concrete
def _layer_value(layer: sp.Expr, layers: dict) -> int:
    v = as_expr(layer).subs({k: v for k, v in layers.items() if isinstance(k, sp.Symbol)})
    if not v.is_Integer:
        raise NotExact(f"layer {layer} is not fixed by {layers}")
    return int(v)


def _concrete_layers(expr: sp.Basic, layers: dict, widths: dict) -> sp.Basic:
    """Substitute concrete layers and widths into every registered object and width."""

    def is_reg(e: sp.Basic) -> bool:
        return isinstance(e, sp.Indexed) and e.base in REGISTRY

    def conc(e: sp.Indexed) -> sp.Indexed:
        info = REGISTRY[e.base]
        m = _layer_value(info.layer, layers)
        return _make(info.kind, m, info.prime)[e.indices]

    out = expr.replace(is_reg, conc)

    def is_zf(e: sp.Basic) -> bool:
        return isinstance(e, sp.Function) and e.func.__name__ in ZF_INFO

    def zf(e: sp.Function) -> sp.Expr:
        layer, prime = ZF_INFO[e.func.__name__]
        return alpha_t(_layer_value(layer, layers), prime)[e.args[0]]

    out = out.replace(is_zf, zf)
    out = out.replace(
        lambda e: isinstance(e, E) and len(e.args) == 2,
        lambda e: E(e.args[0], _layer_value(e.args[1], layers)),
    )
    rep = {}
    for s in out.free_symbols:
        wl = width_layer(s)
        if wl is not None:
            m = _layer_value(wl, layers)
            if m not in widths:
                raise NotExact(f"no width given for layer {m}")
            rep[s] = widths[m]
    return out.xreplace(rep)


def _unfold_all(expr: sp.Basic, widths: dict, scale: sp.Expr = sp.S.One) -> sp.Basic:
    def is_def(e: sp.Basic) -> bool:
        return (
            isinstance(e, sp.Indexed)
            and e.base in REGISTRY
            and REGISTRY[e.base].kind in ("a", "z")
            and all(i.is_Integer for i in e.indices)
        )

    def unfold(e: sp.Indexed) -> sp.Expr:
        info = REGISTRY[e.base]
        m = int(info.layer)
        if info.kind == "z" and m < 1:
            raise UndefinedObject(f"alpha~^({m}) is not defined by (2)")
        if info.kind == "a" and m < 0:
            raise UndefinedObject(f"alpha^({m}) is not defined")
        (k,) = e.indices
        n_here = widths.get(m)
        if n_here is not None and not 1 <= int(k) <= n_here:
            raise UndefinedObject(f"index {k} out of range 1..{n_here} at layer {m}")
        rhs = definition_of(e, scale)
        return _expand_sums(_concrete_layers(rhs, {}, widths))

    for _ in range(20):
        new = expr.replace(is_def, unfold)
        if new == expr:
            return new
        expr = new
    return expr


class UndefinedObject(NTKSymError):
    """A statement refers to an object its definitions do not define."""


def _check_param_indices(expr: sp.Basic, widths: dict) -> None:
    for e in expr.atoms(sp.Indexed):
        info = REGISTRY.get(e.base)
        if info is None or info.kind not in "Wbx":
            continue
        m = int(info.layer)
        bounds = {"W": (m + 1, m), "b": (m + 1,), "x": (0,)}[info.kind]
        for i, bl in zip(e.indices, bounds, strict=False):
            if i.is_Integer and (bl not in widths or not 1 <= int(i) <= widths[bl]):
                raise UndefinedObject(f"{latex(e)}: index {i} out of range")


def _expect_concrete(e: E) -> sp.Expr:
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
        inside = {a for a in r.atoms(sp.Indexed) if gaussian_layer(a) is not None}
        if cond is not None:
            if any(int(gaussian_layer(a)) == cond for a in inside):
                raise NotExact(f"layer-{cond} parameter inside a nonlinearity")
            out += wick(gauss, Context()) * r
            continue
        if gset & inside:
            raise NotExact("a Gaussian parameter appears inside a nonlinearity")
        er = r if not inside else E(r)
        out += wick(gauss, Context()) * er
    return sp.expand(out)


def _eval_derivs(expr: sp.Basic) -> sp.Basic:
    """Differentiate where the network inside the derivative is fully written out."""

    def ready(e: sp.Basic) -> bool:
        if not isinstance(e, sp.Derivative):
            return False
        return not any(
            t.base in REGISTRY and REGISTRY[t.base].kind in ("a", "z")
            for t in e.expr.atoms(sp.Indexed)
        )

    return expr.replace(ready, lambda e: e.doit())


def _expand_sums(expr: sp.Basic) -> sp.Basic:
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
) -> sp.Expr:
    """The exact value of ``expr`` for concrete layers, widths and free indices."""
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
        lambda e: widths[_layer_value(REGISTRY[e.args[0]].layer, layers)],
    )
    out = _concrete_layers(out, layers, widths)
    params = list(_parameters(layers, widths))
    out = out.replace(
        lambda e: isinstance(e, PSum),
        lambda e: sp.Add(*[e.args[0].xreplace({theta: p}) for p in params]),
    )
    bound = {v for t in out.atoms(sp.Sum) for v in t.variables}
    # subs, not xreplace, when an index free here is bound by a sum elsewhere
    out = out.subs(assign) if bound & set(assign) else out.xreplace(assign)
    out = _eval_derivs(_unfold_all(out, widths, scale))
    out = _expand_sums(out)
    out = _eval_derivs(_unfold_all(out, widths, scale))
    _check_param_indices(out, widths)
    out = _sigma_prime(out)
    if out.has(sp.Derivative):
        raise NotExact("a derivative could not be evaluated")
    out = out.replace(lambda e: isinstance(e, E), _expect_concrete)
    return sp.expand(out)


def _assignments(
    free: Iterable[sp.Symbol], ranges: dict, layers: dict, widths: dict, unequal: tuple
) -> Iterable[dict]:
    free = sorted(free, key=lambda s: s.name)
    spans = []
    for s in free:
        if s == theta:
            spans.append(list(_parameters(layers, widths)))
            continue
        hi = ranges.get(s)
        if hi is None:
            raise NotExact(f"no range given for index {s}")
        hi_v = _concrete_layers(as_expr(hi), layers, widths)
        spans.append(list(range(1, int(hi_v) + 1)))
    for combo in itertools.product(*spans):
        a = dict(zip(free, combo, strict=True))
        if any(a.get(p) == a.get(q) and p in a for p, q in unequal):
            continue
        yield {k: (v if isinstance(v, sp.Basic) else sp.Integer(v)) for k, v in a.items()}


def _parameters(layers: dict, widths: dict) -> Iterable[sp.Indexed]:
    """The parameters theta~ of the first ``theta_layers`` layers."""
    top = layers.get("theta_layers", 0)
    for m in range(top):
        from ntksym.derive.symbols import W, b

        for k in range(1, widths[m + 1] + 1):
            for i in range(1, widths[m] + 1):
                yield W(m)[k, i]
            yield b(m)[k]


def exact_finite_width(
    stmt: sp.Basic, ctx: Context, configs: list[tuple[dict, dict]]
) -> tuple[bool, str]:
    """Check ``stmt`` exactly for each ``(layers, widths)`` configuration.

    Returns ``(holds, detail)``; ``detail`` names the first counterexample or the
    configurations checked. Raises :class:`NotExact` when the statement has no exact
    finite-width meaning (limits, Gaussian-process expectations).
    """
    if not configs:
        raise NotExact("no finite-width configuration given")
    checked, compared, skipped = [], 0, []
    for layers, widths in configs:
        for lhs, rhs in pairs(stmt):
            free = (lhs.free_symbols | rhs.free_symbols) & (set(ctx.ranges) | {theta})
            if _is_name(lhs) and _undefined_name(lhs, ctx.names):
                # "name = ..." with no finite-width value for the name defines it
                skipped.append(f"${latex(lhs)}$ has no finite-width definition")
                continue
            compared += 1
            for a in _assignments(free, ctx.ranges, layers, widths, ctx.unequal):
                try:
                    diff = concretize(lhs - rhs, layers, widths, a, ctx.names, ctx.weight_scale)
                except UndefinedObject as exc:
                    return False, f"undefined at {_fmt(layers, widths, a)}: {exc}"
                if not _is_zero(diff):
                    return False, f"fails at {_fmt(layers, widths, a)}"
        checked.append(_fmt(layers, widths, {}))
    if not compared:
        raise NotExact("nothing to compare: " + "; ".join(dict.fromkeys(skipped)))
    return True, "exact at " + "; ".join(checked)


def _undefined_name(e: sp.Basic, names: dict | None) -> bool:
    """Whether a named quantity has no finite-width value among ``names``."""
    for key in names or {}:
        if e == key or (isinstance(key, sp.FunctionClass) and e.func == key):
            return False
    return True


def _is_zero(d: sp.Basic) -> bool:
    if isinstance(d, sp.MatrixBase):
        return all(_is_zero(e) for e in d)
    return d == 0 or sp.simplify(d) == 0


def _is_name(e: sp.Basic) -> bool:
    return isinstance(e, sp.Function) and e.func.__name__ in NAMES


def _fmt(layers: dict, widths: dict, a: dict) -> str:
    ls = ", ".join(f"{k}={v}" for k, v in layers.items() if k != "theta_layers")
    ws = "n=(" + ",".join(str(widths[k]) for k in sorted(widths)) + ")"
    ia = ", ".join(f"{k}={v}" for k, v in a.items())
    return " ".join(t for t in (ls, ws, ia) if t)


# ----------------------------------------------------------------------------- summaries
def stray_index(stmt: sp.Basic) -> tuple[sp.Symbol, list[sp.Basic]] | None:
    """The first index free on one side of an equality only, with the factors carrying it."""
    for lhs, rhs in pairs(stmt):
        if _is_name(lhs) or lhs.is_number or rhs.is_number:
            continue
        odd = sorted(_free_indices(lhs) ^ _free_indices(rhs), key=lambda s: s.name)
        if odd:
            s = odd[0]
            carriers = [
                t
                for t in (
                    lhs.atoms(sp.Indexed)
                    | rhs.atoms(sp.Indexed)
                    | lhs.atoms(sp.KroneckerDelta)
                    | rhs.atoms(sp.KroneckerDelta)
                    | {
                        f
                        for f in (lhs.atoms(sp.Function) | rhs.atoms(sp.Function))
                        if f.func.__name__ in ZF_INFO
                    }
                )
                if s in t.free_symbols
            ]
            return s, sorted(carriers, key=sp.default_sort_key)
    return None


def short_explain(printed: sp.Basic, derived: sp.Basic) -> str:
    """The first (smallest) difference between printed and derived, in one line."""
    diffs = _diff(_rename_all(printed), _rename_all(derived))
    if not diffs:
        return "identical"
    p, d = diffs[0]
    kind = "index" if _only_indices_differ(p, d) else "term"
    more = f" (+{len(diffs) - 1} more)" if len(diffs) > 1 else ""
    return f"{kind}: ${latex(p)}$ printed, ${latex(d)}$ derived{more}"


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
        if _unknown_symbols(p):
            return None
        free = sorted((p.free_symbols | d.free_symbols) & set(ctx.ranges), key=lambda s: s.name)
        for combo in itertools.product(range(1, n + 1), repeat=len(free)):
            a = {s: sp.Integer(v) for s, v in zip(free, combo, strict=True)}
            if any(a.get(u) == a.get(v) and u in a for u, v in ctx.unequal):
                continue
            # subs, not xreplace: an index free here may be bound by a sum elsewhere
            diff = _small(p, n).subs(a) - _small(d, n).subs(a)
            diff = sp.expand(_expand_sums(diff))
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
