"""Rules on expectations and limits.

``linearity``, ``independence`` and ``gaussian_moments`` (Isserlis/Wick) take
expectations over the Gaussian parameters; ``expectation`` chains them;
``law_of_large_numbers`` and ``gaussian_process`` take the infinite-width limit;
``vanishing_terms`` drops terms whose deterministic factor vanishes in that limit,
``tower`` flattens nested expectations and ``gaussian_covariance`` names the limiting
covariance ``Sigma^(m)``.
"""

from __future__ import annotations

import sympy as sp

from ntksym.derive.registry import DESCRIPTIONS, RULES, Context, RuleError, rule
from ntksym.derive.rules_network import delta_sum, merge_sums
from ntksym.derive.symbols import OBJECTS, ZF_INFO, E, GaussE, width
from ntksym.derive.text import Tex, Text, text

__all__ = [
    "depends_on_layer",
    "expectation",
    "gaussian_covariance",
    "gaussian_layer",
    "gaussian_moments",
    "gaussian_process",
    "independence",
    "is_random",
    "law_of_large_numbers",
    "linearity",
    "tower",
    "vanishing_terms",
    "wick",
]


def gaussian_layer(e: sp.Basic) -> sp.Expr | None:
    """Layer of a Gaussian parameter entry ``w^(m)_{..}`` or ``b^(m)_.``, else None."""
    if isinstance(e, sp.Indexed) and e.base in OBJECTS and OBJECTS[e.base].kind in "Wb":
        return OBJECTS[e.base].layer
    return None


def is_random(e: sp.Basic) -> bool:
    """Whether ``e`` depends on a parameter of the network."""
    for ind in e.atoms(sp.Indexed):
        info = OBJECTS.get(ind.base)
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
        info = OBJECTS.get(ind.base)
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


@rule(
    "linearity",
    description=text(
        "{a}, {b}, {c}",
        a=Tex(
            r"\mathbb{E}[aX + cY] = a\,\mathbb{E}[X] + c\,\mathbb{E}[Y]",
            "E[a X + c Y] = a E[X] + c E[Y]",
        ),
        b=Tex(
            r"\mathbb{E}\bigl[\sum_i X_i\bigr] = \sum_i \mathbb{E}[X_i]",
            "E[sum_i X_i] = sum_i E[X_i]",
        ),
        c=Tex(r"\mathbb{E}[c] = c", "E[c] = c"),
    ),
)
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
            consts: list[sp.Basic] = []
            rand: list[sp.Basic] = []
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


@rule(
    "independence",
    description=text(
        "Split {f} for independent factors",
        f=Tex(r"\mathbb{E}[AB] = \mathbb{E}[A]\,\mathbb{E}[B]", "E[A B] = E[A] E[B]"),
    ),
)
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
    ip, iq = OBJECTS[p.base], OBJECTS[q.base]
    if ip.kind != iq.kind:
        return sp.Integer(0)
    d = sp.simplify(ip.layer - iq.layer)
    if not d.is_number:
        raise RuleError(f"cannot compare layers {ip.layer} and {iq.layer}")
    if d != 0:
        return sp.Integer(0)
    var = ctx.weight_var if ip.kind == "W" else ctx.bias_var
    if ip.kind == "W" and ctx.parameterization == "standard":
        var = var * ctx.weight_scale**2 / width(ip.layer)
    out = var
    for a, c in zip(p.indices, q.indices, strict=True):
        out *= sp.KroneckerDelta(a, c)
    return out


@rule(
    "gaussian_moments",
    description="Evaluate expectations of products of weights and biases by Wick's theorem",
)
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
DESCRIPTIONS["expectation"] = "Linearity, then independence, then Gaussian moments, then delta sums"


@rule(
    "law_of_large_numbers",
    description=text(
        "{f} (i.i.d. terms with finite second moment)",
        f=Tex(r"\frac1n\sum_{i=1}^n g_i \to \mathbb{E}[g_i]", "(1/n) sum_{i=1}^n g_i -> E[g_i]"),
    ),
)
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


@rule(
    "gaussian_process",
    description=Text(
        Tex(
            r"\mathbb{E}\bigl[F(\tilde\alpha^{(m)}_i(x), \tilde\alpha^{(m)}_i(x'))\bigr]"
            r" = \mathbb{E}_{g\sim\mathcal{N}(0,\Sigma^{(m)})}\bigl[F(g(x), g(x'))\bigr]",
            "E[F(alpha~^(m)_i(x), alpha~^(m)_i(x'))] = E_{g~N(0,Sigma^(m))}[F(g(x), g(x'))]",
        )
    ),
)
def gaussian_process(expr: sp.Expr, ctx: Context) -> sp.Expr:
    """``E[F(alpha~^(m)_i(x), alpha~^(m)_i(x'))] = E_{g~N(0,Sigma^(m))}[F(g(x), g(x'))]``."""
    u, v = sp.symbols("u v", real=True)

    def gp(e: E) -> sp.Expr:
        arg = e.args[0]
        zs = [t for t in arg.atoms(sp.Indexed) if t.base in OBJECTS]
        fz = [f for f in arg.atoms(sp.Function) if f.func.__name__ in ZF_INFO]
        rep: dict = {}
        layer = None
        for t in zs:
            info = OBJECTS[t.base]
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


@rule(
    "tower",
    description=text(
        "{f}: an expectation of an expectation",
        f=Tex(
            r"\mathbb{E}\bigl[\mathbb{E}[X \mid \mathcal{F}]\bigr] = \mathbb{E}[X]",
            "E[E[X | F]] = E[X]",
        ),
    ),
)
def tower(expr: sp.Expr, ctx: Context) -> sp.Expr:
    """``E[E[X | F]] = E[X]`` (and ``E[E[X]] = E[X]``): the outer expectation wins."""

    def flat(e: E) -> sp.Expr:
        inner = e.args[0]
        while isinstance(inner, E):
            inner = inner.args[0]
        return E(inner, *e.args[1:])

    return expr.replace(lambda e: isinstance(e, E) and isinstance(e.args[0], E), flat)


@rule(
    "gaussian_covariance",
    description=text(
        "{f}: the covariance of the limiting Gaussian is the kernel",
        f=Tex(
            r"\mathbb{E}_{g\sim\mathcal{N}(0,\Sigma^{(m)})}[g(x) g(x')] = \Sigma^{(m)}(x, x')",
            "E_{g~N(0,Sigma^(m))}[g(x) g(x')] = Sigma^(m)(x, x')",
        ),
    ),
)
def gaussian_covariance(expr: sp.Expr, ctx: Context) -> sp.Expr:
    """``E_{g ~ N(0, Sigma^(m))}[g(x) g(x')] = Sigma^(m)(x, x')``."""
    from ntksym.derive.symbols import Sigma

    def cov(g: GaussE) -> sp.Expr:
        F, u, v, layer = g.args
        return Sigma(layer) if sp.expand(F - u * v) == 0 else g

    return expr.replace(lambda e: isinstance(e, GaussE), cov)


@rule(
    "vanishing_terms",
    description=text(
        "a term {t} with deterministic {c} and no sum over the width tends to 0 "
        "(a product of finitely many random factors, each bounded in probability)",
        t=Tex(r"c_n X", "c_n X"),
        c=Tex(r"c_n \to 0", "c_n -> 0"),
    ),
)
def vanishing_terms(expr: sp.Expr, ctx: Context) -> sp.Expr:
    """Drop every term ``c_n X`` with ``c_n -> 0`` as the width ``n -> oo`` and no sum in it.

    ``ctx.ranges["limit_width"]`` names the width ``n``. ``X`` is a product of finitely
    many weights, biases and activations, each of order 1 in probability, so the term
    tends to 0 in probability. A term with a sum in it is kept (its size grows with the
    number of its terms); so is any term whose deterministic factor does not vanish.

    Raises:
        RuleError: the context names no limit width.
    """
    n = ctx.ranges.get("limit_width")
    if n is None:
        raise RuleError("vanishing_terms needs the limit width in ctx.ranges['limit_width']")
    out = []
    for t in sp.Add.make_args(sp.expand(expr)):
        const = sp.Mul(*[f for f in sp.Mul.make_args(t) if not is_random(f)])
        rand = t / const
        if rand != 1 and not t.has(sp.Sum) and sp.limit(const, n, sp.oo) == 0:
            continue
        out.append(t)
    return sp.Add(*out)
