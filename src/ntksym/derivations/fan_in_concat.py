"""Parallel branches concatenated along the features (``FanInConcat``): the width-weighted mean.

Two branches ``A`` (``a n`` units) and ``B`` (``b n`` units) of one input are stacked into
one layer of ``(a + b) n`` units, ``y_l = A_l`` for ``l <= a n`` and ``y_l = B_{l - a n}``
after (the definition). What the next Dense layer sees of it is the average over its
units, ``(1 / ((a + b) n)) sum_l y_l(x) y_l(x')``; split at ``a n`` (1) it is the two
branches' sums over their own units, and by the law of large numbers on each branch (2),
(3) and the continuous-mapping theorem (4) it tends to ``(a Sigma_A + b Sigma_B) / (a +
b)``: the branches' kernels averaged with their widths as weights, the code's
``FanInConcat`` map (neural-tangents' ``_concat_kernels`` along the channel axis). The
widths grow at a fixed ratio ``a : b``; no independence between the branches is needed
(no cross term appears, unlike ``FanInSum``'s).

The NTK (5): a parameter's gradient of ``y_l`` is that of ``A_l`` or ``B_{l - a n}``, so the
same split gives ``(a Theta_A + b Theta_B) / (a + b)``.

An activation right after the concatenation (6) averages ``E[phi(u) phi(v)]`` over two
Gaussian laws, ``(a V_phi(Sigma_A) + b V_phi(Sigma_B)) / (a + b)``, which is not
``V_phi`` of the mean covariance unless ``V_phi`` is linear there; the code (as
neural-tangents) refuses such a network, and the check runs the code on it.

Reference: neural-tangents' ``stax.FanInConcat`` (Novak et al. 2020, ``_concat_kernels``);
Yang (2019), "Tensor programs I", for the law of large numbers over each block of units.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mpmath
import numpy as np
import sympy as sp

from ntksym.derive.layer_checks import Point, both_checks, covariance_points, value_check
from ntksym.derive.rules_layers import Ex, GaussPair, facts, with_limits
from ntksym.derive.symbols import E
from ntksym.extend import (
    Context,
    Derivation,
    PSum,
    Step,
    Tends,
    apply_rule,
    index,
    scalar,
    text,
    theta,
    width,
)

k, lu = index("k"), index("l")  # lu: a unit of the concatenation
n = width(1)
ra, rb = scalar("a"), scalar("b")  # the widths a n and b n, at a fixed ratio
NA, NB, NY = ra * n, rb * n, (ra + rb) * n
SA, SB = scalar("Sigma_A", False), scalar("Sigma_B", False)
TA, TB = scalar("Theta_A", False), scalar("Theta_B", False)
SA1, SA2, SB1, SB2 = (scalar(s) for s in ("Sigma_A11", "Sigma_A22", "Sigma_B11", "Sigma_B22"))
#: the branches' units at x and x', as functions of a parameter p = theta before the FanOut
Af, Apf, Bf, Bpf = (sp.Function(s) for s in ("A", "A'", "B", "B'"))
phi = sp.Function("phi")
u, v = sp.Symbol("u", real=True), sp.Symbol("v", real=True)


def concat(left: Any, right: Any, unit: Any) -> sp.Expr:
    """Unit ``unit`` of the concatenation of ``left`` (``a n`` units) and ``right``."""
    return sp.Piecewise((left(unit, theta), unit <= NA), (right(unit - NA, theta), True))


#: a unit of the concatenation at x and x' (opaque in the statements), and its definition
Y, YP = sp.Function("y")(lu, theta), sp.Function("y'")(lu, theta)
DEFS = {Y: concat(Af, Bf, lu), YP: concat(Apf, Bpf, lu)}
DEFINITION = sp.Eq(Y, DEFS[Y])


def D(e: sp.Expr) -> sp.Expr:
    return sp.Derivative(e, theta, evaluate=False)


#: the per-unit products whose mean over the units the next Dense layer sees
PRODUCTS: dict[str, Callable[[sp.Expr, sp.Expr], sp.Expr]] = {
    "S": lambda p, q: p * q,
    "T": lambda p, q: PSum(sp.diff(p, theta) * sp.diff(q, theta)),
    "phi": lambda p, q: phi(p) * phi(q),
}
MOMENTS = {
    Ex(Af(k, theta) * Apf(k, theta)): SA,
    Ex(Bf(k, theta) * Bpf(k, theta)): SB,
    Ex(PSum(D(Af(k, theta)) * D(Apf(k, theta)))): TA,
    Ex(PSum(D(Bf(k, theta)) * D(Bpf(k, theta)))): TB,
    Ex(phi(Af(k, theta)) * phi(Apf(k, theta))): GaussPair(phi(u) * phi(v), u, v, SA1, SA, SA2),
    Ex(phi(Bf(k, theta)) * phi(Bpf(k, theta))): GaussPair(phi(u) * phi(v), u, v, SB1, SB, SB2),
}
CTX = Context(ranges={k: n, lu: NY}, facts=facts(moments=MOMENTS))


def r(name: str, e: sp.Basic, ctx: Context = CTX) -> sp.Basic:
    return apply_rule(name, e, ctx)


def mean_over_units(kind: str) -> sp.Expr:
    """``(1 / ((a + b) n)) sum_l prod(y_l(x), y_l(x'))``."""
    return sp.Sum(PRODUCTS[kind](Y, YP), (lu, 1, NY)) / NY


def block_sum(kind: str, left: Any, right: Any) -> sp.Expr:
    return sp.Sum(PRODUCTS[kind](left(k, theta), right(k, theta)), (k, 1, NA if left is Af else NB))


def _piece(e: sp.Expr, first: bool) -> sp.Expr:
    """Every Piecewise of the definition replaced by its piece on one block of units."""
    return e.replace(lambda t: isinstance(t, sp.Piecewise), lambda t: t.args[0 if first else 1][0])


def split(kind: str) -> sp.Basic:
    """The sum over the ``(a + b) n`` units split at ``a n``; the second block re-indexed."""
    body = PRODUCTS[kind](DEFS[Y], DEFS[YP])  # the definition substituted
    first = sp.Sum(_piece(body, True).xreplace({lu: k}), (k, 1, NA))
    second = sp.Sum(_piece(body, False).xreplace({lu: k + NA}), (k, 1, NB))
    return sp.Eq(mean_over_units(kind), (first + second) / NY)


def lln(e: sp.Expr) -> sp.Expr:
    """The law of large numbers on a branch's mean over its own units, then its moment."""
    ctx = Context(ranges={**CTX.ranges, "lln_index": k}, facts=CTX.facts)
    out = r("law_of_large_numbers", e, ctx).replace(
        lambda t: isinstance(t, E), lambda t: Ex(*t.args)
    )
    return r("field_moments", out)


def weighted(kind: str, env: dict, labels: tuple[str, str, str]) -> sp.Basic:
    """The split (``labels[0]``) with each block's mean replaced by its limit (the others)."""
    split_, lim_a, lim_b = (env[x] for x in labels)
    ma, mb = sp.Dummy("m_A"), sp.Dummy("m_B")
    sum_a, sum_b = lim_a.args[0] * NA, lim_b.args[0] * NB
    e = sp.cancel(split_.rhs.xreplace({sum_a: NA * ma, sum_b: NB * mb}))
    limits = with_limits(CTX, {ma: lim_a.args[1], mb: lim_b.args[1]})
    return Tends(split_.lhs, sp.factor(r("continuous_mapping", e, limits)), n)


# ---------------------------------------------------------------- statements
def _printed_split(kind: str) -> sp.Basic:
    return sp.Eq(mean_over_units(kind), (block_sum(kind, Af, Apf) + block_sum(kind, Bf, Bpf)) / NY)


P1 = _printed_split("S")
P2 = Tends(block_sum("S", Af, Apf) / NA, SA, n)
P3 = Tends(block_sum("S", Bf, Bpf) / NB, SB, n)
P4 = Tends(mean_over_units("S"), (ra * SA + rb * SB) / (ra + rb), n)
P5 = Tends(mean_over_units("T"), (ra * TA + rb * TB) / (ra + rb), n)
VA = GaussPair(phi(u) * phi(v), u, v, SA1, SA, SA2)
VB = GaussPair(phi(u) * phi(v), u, v, SB1, SB, SB2)
P6 = Tends(mean_over_units("phi"), (ra * VA + rb * VB) / (ra + rb), n)


def d5(env: dict) -> sp.Basic:
    """(1)-(4) again for the tangent products."""
    sub = {"1": split("T")}
    sub["2"] = Tends(block_sum("T", Af, Apf) / NA, lln(block_sum("T", Af, Apf) / NA), n)
    sub["3"] = Tends(block_sum("T", Bf, Bpf) / NB, lln(block_sum("T", Bf, Bpf) / NB), n)
    return weighted("T", sub, ("1", "2", "3"))


def d6(env: dict) -> sp.Basic:
    """(1)-(4) again for the products of an activation of the units."""
    sub = {"1": split("phi")}
    sub["2"] = Tends(block_sum("phi", Af, Apf) / NA, lln(block_sum("phi", Af, Apf) / NA), n)
    sub["3"] = Tends(block_sum("phi", Bf, Bpf) / NB, lln(block_sum("phi", Bf, Bpf) / NB), n)
    return weighted("phi", sub, ("1", "2", "3"))


# ---------------------------------------------------------------- the checks
def _points() -> list[Point]:
    rng = np.random.default_rng(31)
    out = covariance_points(SA, SB, TA, count=5, seed=29, more={TB: (-2.0, 2.0)})
    for p in out:
        p[ra], p[rb] = int(rng.integers(1, 9)), int(rng.integers(1, 9))
    return out


POINTS = _points()


def _code_concat(field: str, backend: str) -> Callable[[Point], Any]:
    """The code's FanInConcat of two blocks of widths ``(a, b)`` holding ``field``'s values."""
    keys = (SA, SB) if field == "s12" else (TA, TB)

    def ref(p: Point) -> Any:
        widths = [int(p[ra]), int(p[rb])]
        if backend == "mpmath":
            from ntksym.reference.architecture import MpmathOps, Pair

            with mpmath.workdps(30):
                ps = [Pair(1, 1, mpmath.mpf(p[key]), mpmath.mpf(p[key])) for key in keys]
                return getattr(MpmathOps(30, "quadrature").fan_in_concat(ps, widths), field)
        from ntksym.kernels.layer_maps import Block, Float64Ops

        def block(key: sp.Symbol) -> Block:
            val = np.full((1, 1), p[key])
            return Block(np.ones(1), np.ones(1), val, None, val, np.zeros((1, 1), bool))

        ws = [1, 1] if widths[0] == widths[1] else widths  # (as the walk passes them)
        out = Float64Ops().fan_in_concat([block(kk) for kk in keys], ws)
        return float(getattr(out, field)[0, 0])

    return ref


def code_check(field: str) -> Any:
    what = "the code's {} FanInConcat"
    f64 = value_check(_code_concat(field, "float64"), POINTS, what.format("float64"), 1e-15)
    mpm = value_check(_code_concat(field, "mpmath"), POINTS, what.format("mpmath"), 1e-28)
    return both_checks(f64, mpm)


def _unrolled(e: sp.Expr, values: dict) -> sp.Expr:
    """``e`` at ``a = 3, b = 1, n = 2`` with its sums written out and the units' values."""
    e = e.xreplace({ra: 3, rb: 1, n: 2})

    def unroll(t: sp.Sum) -> sp.Expr:
        var, _, hi = t.limits[0]
        return sp.Add(*[t.function.subs(var, j) for j in range(1, int(hi) + 1)])

    e = e.replace(lambda t: isinstance(t, sp.Sum), unroll)
    return e.replace(
        lambda t: isinstance(t, sp.Function) and t.func in values,
        lambda t: sp.Float(float(values[t.func][int(t.args[0]) - 1]), 30),
    )


def finite_check(stmt: sp.Basic, ctx: Context, env: dict) -> tuple[bool, str, Any]:
    """The split against the code's finite network: ``apply_fn`` of ``FanInConcat`` on two
    random blocks (widths 6 and 2), its mean product against the two blocks' sums."""
    from ntksym import stax

    rng = np.random.default_rng(7)
    a, b, ap, bp = rng.normal(size=6), rng.normal(size=2), rng.normal(size=6), rng.normal(size=2)
    layer = stax.FanInConcat()
    y, yp = layer.apply_fn((), [a[None], b[None]]), layer.apply_fn((), [ap[None], bp[None]])
    lhs = float(y[0] @ yp[0]) / 8
    rhs = float(_unrolled(stmt.rhs, {Af: a, Apf: ap, Bf: b, Bpf: bp}))
    ok = abs(lhs - rhs) <= 1e-14 * abs(lhs)
    detail = f"{'matches' if ok else 'differs from'} the code's finite FanInConcat (widths 6, 2)"
    return ok, "numeric", text(f"{detail}: {lhs!r} against {rhs!r}")


def refused_check(stmt: sp.Basic, ctx: Context, env: dict) -> tuple[bool, str, Any]:
    """The code must refuse an activation right after FanInConcat (not return V(mean))."""
    from ntksym import stax
    from ntksym.errors import InputError

    net = stax.serial(
        stax.Dense(4),
        stax.FanOut(2),
        stax.parallel(stax.Dense(6, 0.5), stax.Dense(2, 2.0)),
        stax.FanInConcat(),
        stax.Erf(),
        stax.Dense(1),
    )
    x = np.array([[1.0, 0.5]])
    for name, run in (
        ("kernel_fn", lambda: net.kernel_fn(x, x, "nngp")),
        ("reference_kernels", lambda: stax.reference_kernels(net.description, x, dps=20)),
    ):
        try:
            got = run()
        except InputError as exc:
            if "cannot follow FanInConcat" not in str(exc):
                return False, "code", text(f"{name} refuses it for another reason: {exc}")
            continue
        return False, "code", text(f"{name} returned a kernel for it ({got}) instead of refusing")
    return True, "code", text("the code (kernel_fn and reference_kernels) refuses this network")


DERIVATION = Derivation(
    name="fan_in_concat",
    title="Branches concatenated along the features: the width-weighted mean of their kernels",
    steps=(
        Step("def", DEFINITION, "definition", note="a n units of A, then b n units of B"),
        Step(
            "1",
            P1,
            "algebra",
            derive=lambda env: split("S"),
            ctx=CTX,
            extra_check=finite_check,
            note="the sum over the units split at a n (the definition on each block)",
        ),
        Step(
            "2",
            P2,
            "law_of_large_numbers",
            derive=lambda env: Tends(P2.args[0], lln(P2.args[0]), n),
            ctx=CTX,
        ),
        Step(
            "3",
            P3,
            "law_of_large_numbers",
            derive=lambda env: Tends(P3.args[0], lln(P3.args[0]), n),
            ctx=CTX,
        ),
        Step(
            "4",
            P4,
            "continuous_mapping",
            uses=("1", "2", "3"),
            derive=lambda env: weighted("S", env, ("1", "2", "3")),
            ctx=CTX,
            extra_check=code_check("s12"),
            note="the widths grow at the fixed ratio a : b",
        ),
        Step(
            "5",
            P5,
            "continuous_mapping",
            derive=d5,
            ctx=CTX,
            extra_check=code_check("ntk"),
            note="the gradient of y_l is that of A_l or of B_(l - a n)",
        ),
        Step(
            "6",
            P6,
            "continuous_mapping",
            derive=d6,
            ctx=CTX,
            extra_check=refused_check,
            note="an activation right after the concatenation: not the map of the mean",
        ),
    ),
    hypotheses=(
        text(
            "each branch's units i.i.d. over k with the declared moments (its Gaussian "
            "limit: covariance {s} and NTK {t})",
            s=sp.Tuple(SA, SB),
            t=sp.Tuple(TA, TB),
        ),
    ),
)
