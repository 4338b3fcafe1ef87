"""The seed's NTK derivation (Yilan Chen, "NTK Derivation", 2020), equations (1)-(27).

Every ``printed`` statement below is transcribed as printed in
``seed/ntk_derivation_notes.txt``, slips included; each ``derive`` produces the statement
from (1)-(4) and earlier steps with the registered rules. The engine compares the two.
Column displays are transcribed by their first, k-th and last rows; the matrix lines
of (6) as printed (two of them show a single row).
"""

from __future__ import annotations

from collections.abc import Callable

import sympy as sp

from ntksym.extend import (
    ZF,
    AllParams,
    Chain,
    Context,
    Derivation,
    Dim,
    E,
    ForAll,
    GaussE,
    Grad,
    L,
    Member,
    Outer,
    PSum,
    Sigma,
    Sigma_dot,
    Sigma_t,
    Step,
    Tends,
    Tex,
    Theta,
    Theta_inf,
    Tr,
    Vec,
    Verdict,
    W,
    WidthConfig,
    alpha,
    alpha_t,
    apply_rule,
    b,
    beta,
    definition_check,
    fresh,
    index,
    l,
    limit_check,
    nngp_check,
    recursion_check,
    sigma,
    sigmadot,
    standard_only,
    text,
    theta,
    unfold,
    width,
    x,
)
from ntksym.extend import (
    derivative as _d,
)

k, kp, i, ip, j = (index(s) for s in ("k", "k'", "i", "i'", "j"))
n0, n1, nl, nl1 = width(0), width(1), width(l), width(l + 1)
nL, nL1 = width(L), width(L + 1)
xs, xps = x(), x(True)
#: The activation's name in the notes' sentences.
SIGMA = Tex(r"\sigma", "sigma")


def rule(name: str, e: sp.Basic, ctx: Context) -> sp.Basic:
    return apply_rule(name, e, ctx)


def layer_sum(
    wb: sp.IndexedBase,
    row: sp.Expr,
    vec: sp.IndexedBase,
    n: sp.Expr,
    bias: sp.Expr,
    var: sp.Symbol = j,
) -> sp.Expr:
    """``(1/sqrt n) sum_var w_{row,var} vec_var + beta * bias`` as printed."""
    return sp.Sum(wb[row, var] * vec[var], (var, 1, n)) / sp.sqrt(n) + beta * bias


# ---------------------------------------------------------------------------- (1)-(4)
D1 = Eq1 = sp.Eq(alpha(0)[k], xs[k])
D2 = ForAll(
    sp.Eq(alpha_t(l + 1)[k], layer_sum(W(l), k, alpha(l), nl, b(l)[k])), sp.Tuple(l, 0, L - 1)
)
D3 = ForAll(sp.Eq(alpha(l)[k], sigma(alpha_t(l)[k])), sp.Tuple(l, 0, L - 1))
F = sp.IndexedBase("f", real=True)
D4 = sp.Eq(F[k], alpha_t(L)[k])
DEFS = {"1": D1, "2": D2, "3": D3, "4": D4}


def _range_of(label: str) -> Callable[[dict], Verdict]:
    return definition_check(label, DEFS)


# chain contexts
C_l = Context(ranges={k: nl1, kp: nl1, j: nl, i: nl})
LAYER_CFG: tuple[WidthConfig, ...] = (
    ({l: 0}, {0: 2, 1: 2}),
    ({l: 1}, {0: 2, 1: 2, 2: 2}),
    ({l: 0}, {0: 3, 1: 1}),
)


def d7(env: dict) -> sp.Basic:
    return Chain(alpha_t(l + 1)[k], unfold(alpha_t(l + 1)[k], C_l))


P7 = Chain(alpha_t(l + 1)[k], layer_sum(W(l), k, alpha(l), nl, b(l)[k]))


def _pre(prime: bool, row: sp.Expr) -> sp.Expr:
    return layer_sum(W(l), row, alpha(l, prime), nl, b(l)[row])


P8 = Chain(
    E(alpha_t(l + 1)[k]),
    E(_pre(False, k)),
    sp.Sum(E(W(l)[k, j]) * E(alpha(l)[j]), (j, 1, nl)) / sp.sqrt(nl) + beta * E(b(l)[k]),
    sp.Integer(0),
)


def d8(env: dict) -> sp.Basic:
    m0 = E(alpha_t(l + 1)[k])
    m1 = E(unfold(alpha_t(l + 1)[k], C_l))
    m2 = rule("independence", rule("linearity", m1, C_l), C_l)
    m3 = rule("expectation", m1, C_l)
    return Chain(m0, m1, m2, m3)


C9 = C_l.replace(unequal=((k, kp),))
P9 = Chain(
    E(alpha_t(l + 1)[k] * alpha_t(l + 1, True)[kp]),
    E(_pre(False, k) * layer_sum(W(l), kp, alpha(l, True), nl, b(l)[kp])),
    sp.Integer(0),
)


def d9(env: dict) -> sp.Basic:
    m0 = E(alpha_t(l + 1)[k] * alpha_t(l + 1, True)[kp])
    m1 = E(unfold(alpha_t(l + 1)[k], C9) * unfold(alpha_t(l + 1, True)[kp], C9))
    return Chain(m0, m1, rule("expectation", m1, C9))


C1 = Context(ranges={k: n1, kp: n1, i: n0, j: n1})
L1_CFG: tuple[WidthConfig, ...] = (({}, {0: 2, 1: 2}), ({}, {0: 3, 1: 1}), ({}, {0: 1, 1: 3}))


def _pre0(prime: bool) -> sp.Expr:
    return layer_sum(W(0), k, alpha(0, prime), n0, b(0)[k])


P10 = Chain(
    Sigma(1),
    E(alpha_t(1)[k] * alpha_t(1, True)[k]),
    E(_pre0(False) * _pre0(True)),
    sp.Sum(alpha(0)[i] * alpha(0, True)[i], (i, 1, n0)) / n0 + beta**2,
    sp.Sum(xs[i] * xps[i], (i, 1, n0)) / n0 + beta**2,
)


def d10(env: dict) -> sp.Basic:
    m1 = E(alpha_t(1)[k] * alpha_t(1, True)[k])
    m2 = E(unfold(alpha_t(1)[k], C1) * unfold(alpha_t(1, True)[k], C1))
    # the expectation over the weights, keeping alpha^(0) as an object, then (1)
    m3 = rule("expectation", m2, C1).xreplace({})
    m3 = _keep_alpha0(m3)
    m4 = unfold(m3, C1)
    return Chain(Sigma(1), m1, m2, m3, m4)


def _keep_alpha0(e: sp.Expr) -> sp.Expr:
    """E over alpha^(0) is alpha^(0) itself (deterministic): drop the E."""
    return e.replace(lambda t: isinstance(t, E) and not t.args[0].has(W(0)), lambda t: t.args[0])


# (11): the expectation is over the layer's own parameters, given the earlier layers;
# only in that reading are its lines 2-4 true at finite width.
P11 = Chain(
    Sigma_t(l + 1),
    E(alpha_t(l)[k] * alpha_t(l, True)[k], l),
    E(_pre(False, k) * _pre(True, k), l),
    sp.Sum(alpha(l)[i] * alpha(l, True)[i], (i, 1, nl)) / nl + beta**2,
    sp.Sum(sigma(alpha_t(l)[i]) * sigma(alpha_t(l, True)[i]), (i, 1, nl)) / nl + beta**2,
)
L11_CFG: tuple[WidthConfig, ...] = (({l: 1}, {0: 2, 1: 2, 2: 2}), ({l: 1}, {0: 1, 1: 3, 2: 1}))


def d11(env: dict) -> sp.Basic:
    name = Sigma_t(l + 1)
    (m,) = name.args  # the covariance of the pre-activations of layer m
    zz = alpha_t(m)[k] * alpha_t(m, True)[k]
    m1 = E(zz, m - 1)
    m2 = E(unfold(zz, C_l), m - 1)
    m3 = rule("expectation", m2, C_l)
    m4 = unfold(m3, C_l)
    return Chain(name, m1, m2, m3, m4)


def d12(env: dict) -> sp.Basic:
    finite = env["11"].args[-1]
    return Tends(Sigma_t(l + 1), rule("law_of_large_numbers", finite, C_l), nl)


P12 = Tends(Sigma_t(l + 1), E(sigma(alpha_t(l)[i]) * sigma(alpha_t(l, True)[i])) + beta**2, nl)


def d12b(env: dict) -> sp.Basic:
    return sp.Eq(Sigma(l + 1), rule("gaussian_process", env["12"].rhs, C_l))


def _gp(layer: sp.Expr) -> sp.Expr:
    from ntksym.derive.symbols import GaussE

    u, v = sp.symbols("u v", real=True)
    return GaussE(sigma(u) * sigma(v), u, v, layer)


P12b = sp.Eq(Sigma(l + 1), _gp(l) + beta**2)

# ---------------------------------------------------------------------------- (13)-(18)
f1 = alpha_t(1)


def _row0(r: sp.Expr, var: sp.Symbol = i) -> sp.Expr:
    return layer_sum(W(0), r, xs, n0, b(0)[r], var)


P13 = sp.Eq(
    sp.ImmutableMatrix([f1[1], f1[k], f1[n1]]), sp.ImmutableMatrix([_row0(0), _row0(k), _row0(n1)])
)


def d13(env: dict) -> sp.Basic:
    rows = [f1[1], f1[k], f1[n1]]
    return sp.Eq(sp.ImmutableMatrix(rows), sp.ImmutableMatrix([unfold(r, C1, 2) for r in rows]))


def _eval_d(e: sp.Expr, ctx: Context) -> sp.Expr:
    """Unfold the network inside each derivative, then apply the chain rule."""
    e = e.replace(
        lambda t: isinstance(t, sp.Derivative),
        lambda t: sp.Derivative(unfold(t.expr, ctx, 2), *t.variables),
    )
    return rule("chain_rule", e, ctx)


P14 = sp.Eq(_d(f1[k], W(0)[i, i]), xs[i] * sp.KroneckerDelta(j, k) / sp.sqrt(n0))


def d14(env: dict) -> sp.Basic:
    lhs = _d(f1[k], W(0)[j, i])  # "with respect to w_ji" (the sentence before (14))
    return sp.Eq(lhs, _eval_d(lhs, C1))


dk, dkp = sp.KroneckerDelta(j, k), sp.KroneckerDelta(j, kp)
P15 = Chain(
    _d(f1[k], W(0)[i, i]) * _d(alpha_t(1, True)[kp], W(0)[i, i]),
    (xs[i] / sp.sqrt(n0)) * (xps[i] / sp.sqrt(n0)) * dk * dkp,
    xs[i] * xps[i] * dk * dkp / n0,
)


def d15(env: dict) -> sp.Basic:
    lhs = _d(f1[k], W(0)[j, i]) * _d(alpha_t(1, True)[kp], W(0)[j, i])
    m1 = _eval_d(lhs, C1)
    return Chain(lhs, m1, rule("algebra", m1, C1))


P16 = Chain(
    _d(f1[k], b(0)[j]) * _d(alpha_t(1, True)[kp], b(0)[j]),
    sp.Mul(beta, beta, evaluate=False) * dk * dkp,
    beta**2 * dk * dkp,
)


def d16(env: dict) -> sp.Basic:
    lhs = _d(f1[k], b(0)[j]) * _d(alpha_t(1, True)[kp], b(0)[j])
    m1 = _eval_d(lhs, C1)
    return Chain(lhs, m1, m1)


def _ntk_sum(layer_params: list, fx: sp.Expr, fxp: sp.Expr) -> sp.Expr:
    """Definition (6): the sum over all parameters of the product of derivatives."""
    out = sp.Integer(0)
    for p, limits in layer_params:
        out += sp.Sum(_d(fx, p) * _d(fxp, p), *limits)
    return out


P17 = Chain(
    Theta(1, k, kp),
    _ntk_sum(
        [(W(0)[j, i], [(i, 1, n0), (j, 1, n1)]), (b(0)[j], [(j, 1, n1)])],
        f1[k],
        alpha_t(1, True)[kp],
    ),
    sp.Sum(xs[i] * xps[i] * dk * dkp / n0, (i, 1, n0), (j, 1, n1))
    + sp.Sum(beta**2 * dk * dkp, (j, 1, n1)),
    sp.Sum(xs[i] * xps[i], (i, 1, n0)) / n0 * sp.KroneckerDelta(k, kp)
    + beta**2 * sp.KroneckerDelta(k, kp),
    Sigma(1) * sp.KroneckerDelta(k, kp),
)


def d17(env: dict) -> sp.Basic:
    m1 = _ntk_sum(
        [(W(0)[j, i], [(i, 1, n0), (j, 1, n1)]), (b(0)[j], [(j, 1, n1)])],
        f1[k],
        alpha_t(1, True)[kp],
    )
    m2 = m1.replace(
        lambda t: isinstance(t, sp.Sum),
        lambda t: sp.Sum(_eval_d(t.function, C1), *t.limits),
    )
    m3 = rule("delta_sum", m2, C1)
    sigma1 = env["10"].args[-1]  # (10): Sigma^(1) = x.x'/n0 + beta^2
    from ntksym.derive.checks import symbolic_equal

    if not symbolic_equal(m3, sigma1 * sp.KroneckerDelta(k, kp), C1):
        # the contracted sum is not (10)'s Sigma^(1) delta_kk': the chain stops there
        return Chain(Theta(1, k, kp), m1, m2, m3)
    return Chain(Theta(1, k, kp), m1, m2, m3, Sigma(1) * sp.KroneckerDelta(k, kp))


P18 = sp.Eq(Theta(1, k, kp), Sigma(1) * sp.KroneckerDelta(k, kp))


def d18(env: dict) -> sp.Basic:
    return sp.Eq(Theta(1, k, kp), env["17"].args[-1])


_m1, _a1, _c1 = sp.Dummy("m"), sp.Dummy("a", integer=True), sp.Dummy("c", integer=True)
# the finite-width values of the names in (17)-(18): Sigma^(1) by (10); in (18) also
# Theta^(1) by (6) (the sum over the first layer's parameters), so that "Theta^(1) = ..."
# is compared (in (17) its first line is that definition itself)
C1S = C1.replace(names={Sigma(1): E(alpha_t(1)[k] * alpha_t(1, True)[k])})
C1N = C1.replace(
    names={
        **C1S.names,
        Theta: sp.Lambda(
            (_m1, _a1, _c1), PSum(_d(alpha_t(1)[_a1], theta) * _d(alpha_t(1, True)[_c1], theta))
        ),
    }
)
# (18) at n = (2,2) (k != k' possible) and (3,1); the sum over parameters makes (1,3) costly
L1_CFG_T = tuple(({"theta_layers": 1}, w) for _, w in L1_CFG[:2])


# (5)-(6): the NTK as a sum over all parameters of outer products of gradients. The
# printed lines of (6) are transcribed as displayed: line 2 as the transposes of two row
# vectors, lines 3 and 4 as the single rows they show, each with its "in R^{n_L x n_L}".
NTK_CFG: tuple[WidthConfig, ...] = (({L: 1}, {0: 2, 1: 3}), ({L: 2}, {0: 1, 1: 2, 2: 2}))
C6 = Context(ranges={})


def _dF(prime: bool, row: sp.Expr) -> sp.Expr:
    return _d(alpha_t(L, prime)[row], theta)


P5 = sp.Eq(Theta(L), AllParams(Outer(Grad(L, False), Grad(L, True))))
P6 = [
    AllParams(Outer(Grad(L, False), Grad(L, True))),
    AllParams(
        Outer(Tr(Vec(_dF(False, k), sp.Tuple(k, 1, nL))), Tr(Vec(_dF(True, k), sp.Tuple(k, 1, nL))))
    ),
    Member(AllParams(Vec(_dF(False, 1) * _dF(True, kp), sp.Tuple(kp, 1, nL))), nL, nL),
    Member(AllParams(Vec(_dF(False, nL) * _dF(True, kp), sp.Tuple(kp, 1, nL))), nL, nL),
]


def d5(env: dict) -> sp.Basic:
    # (5) read at the pair (x, x'); the outer product written out entry by entry
    return sp.Eq(
        Theta(L), rule("outer_product", AllParams(Outer(Grad(L, False), Grad(L, True))), C6)
    )


def d6(env: dict) -> sp.Basic:
    return env["5"]


STEPS_A = [
    Step("1", D1, "definition", derive=None, note="the input layer"),
    Step(
        "2",
        D2,
        "definition",
        uses=("1", "3"),
        derive=_range_of("2"),
        note="transcribed entrywise; (7) is the same statement",
    ),
    Step(
        "3",
        D3,
        "definition",
        uses=("1", "2"),
        derive=_range_of("3"),
        note=text(
            "at {l0} the definition would contradict (1); lines of (11) written with {s} "
            "at {l0} inherit this slip",
            l0=sp.Eq(l, 0),
            s=SIGMA,
        ),
    ),
    Step("4", D4, "definition", uses=("2",), derive=_range_of("4")),
    Step(
        "5",
        P5,
        "outer_product",
        derive=d5,
        ctx=C6,
        configs=NTK_CFG,
        note=text(
            "(5) suppresses the inputs: read at the pair {p}, as the first line of (6); "
            "the tensor product of two column vectors is the outer product {uv}",
            p=Tex("(x, x')", "(x, x')"),
            uv=Tex(r"u v^{\mathsf T}", "u v^T"),
        ),
    ),
    *[
        Step(
            f"6.{n + 1}",
            sp.Eq(Theta(L), P6[n]),
            "outer_product",
            uses=("5",),
            derive=d6,
            ctx=C6,
            configs=NTK_CFG,
        )
        for n in range(4)
    ],
    Step("7", P7, "definition", uses=("2",), derive=d7, ctx=C_l, configs=LAYER_CFG),
    Step(
        "8",
        P8,
        "expectation",
        uses=("7",),
        derive=d8,
        ctx=C_l,
        configs=LAYER_CFG,
        note=text("the middle line uses independence of {w} from {a}", w=W(l), a=alpha(l)),
    ),
    Step(
        "9",
        P9,
        "expectation",
        uses=("7",),
        derive=d9,
        ctx=C9,
        configs=LAYER_CFG,
        note="zero covariance is read as independence: true for jointly Gaussian variables; "
        "at finite width the pre-activations are Gaussian only conditionally on the "
        "previous layer, and jointly Gaussian in the limit",
    ),
    Step("10", P10, "expectation", uses=("7", "1"), derive=d10, ctx=C1, configs=L1_CFG),
    Step(
        "11",
        P11,
        "expectation",
        uses=("7", "3"),
        derive=d11,
        ctx=C_l,
        configs=L11_CFG,
        note=text(
            "{E} is over {w}, {b} given the earlier layers (a conditional expectation); "
            "the {s} form needs {c}, see (3)",
            E=Tex(r"\mathbb{E}", "E"),
            w=W(l),
            b=b(l),
            s=SIGMA,
            c=Tex(r"l \ge 1", "l >= 1"),
        ),
    ),
    Step(
        "12",
        P12,
        "law_of_large_numbers",
        uses=("11",),
        derive=d12,
        ctx=C_l,
        extra_check=standard_only(limit_check("nngp", sigma1="10", depth=2)),
        note=text(
            "hypothesis: the {n} terms are i.i.d. with finite second moment, which holds "
            "when {lim} sequentially before {n}",
            n=nl,
            lim=Tex(r"n_1, \dots, n_{l-1} \to \infty", "n_1, ..., n_{l-1} -> oo"),
        ),
    ),
    Step(
        "12.2",
        P12b,
        "gaussian_process",
        uses=("12",),
        derive=d12b,
        ctx=C_l,
        extra_check=standard_only(nngp_check(sigma1="10")),
        note=text(
            "hypothesis (induction, Jacot et al. 2018 Prop. 1): {a}, {ap} are jointly "
            "Gaussian with covariance {S} in the limit",
            a=alpha_t(l)[i],
            ap=alpha_t(l, True)[i],
            S=Sigma(l),
        ),
    ),
    Step("13", P13, "definition", uses=("2", "1"), derive=d13, ctx=C1, configs=L1_CFG),
    Step("14", P14, "chain_rule", uses=("13",), derive=d14, ctx=C1, configs=L1_CFG),
    Step("15", P15, "chain_rule", uses=("14",), derive=d15, ctx=C1, configs=L1_CFG),
    Step("16", P16, "chain_rule", uses=("13",), derive=d16, ctx=C1, configs=L1_CFG),
    Step("17", P17, "delta_sum", uses=("5", "15", "16", "10"), derive=d17, ctx=C1S, configs=L1_CFG),
    Step(
        "18",
        P18,
        "algebra",
        uses=("17",),
        derive=d18,
        ctx=C1N,
        configs=L1_CFG_T,
        note=text(
            "{a} read entrywise as {b}",
            a=Tex(r"\Sigma^{(1)} \otimes I_{n_1}", "Sigma^(1) (x) I_{n_1}"),
            b=Tex(r"\Sigma^{(1)}\,\delta_{kk'}", "Sigma^(1) delta_kk'"),
        ),
    ),
]


# ---------------------------------------------------------------------------- (19)-(27)

z_L, zp_L = ZF(L), ZF(L, True)
fk, fkp = alpha_t(L + 1)[k], alpha_t(L + 1, True)[kp]
dK = sp.KroneckerDelta(k, kp)
CL = Context(ranges={k: nL1, kp: nL1, i: nL, ip: nL, j: nL1})
# exact checks of the finite-width identities at L = 1 (two affine layers), theta~ = W0, b0
L_CFG: tuple[WidthConfig, ...] = (({L: 1, "theta_layers": 1}, {0: 1, 1: 2, 2: 1}),)
L_CFG2: tuple[WidthConfig, ...] = (({L: 1, "theta_layers": 1}, {0: 1, 1: 2, 2: 2}),)
_a, _c = sp.Dummy("a", integer=True), sp.Dummy("c", integer=True)


def with_theta(e: sp.Expr) -> sp.Expr:
    """Make the dependence of alpha~^(L) on the first layers' parameters explicit."""

    def is_zl(t: sp.Basic) -> bool:
        from ntksym.derive.symbols import OBJECTS

        return (
            isinstance(t, sp.Indexed)
            and t.base in OBJECTS
            and OBJECTS[t.base].kind == "z"
            and OBJECTS[t.base].layer == L
        )

    def to_f(t: sp.Indexed) -> sp.Expr:
        from ntksym.derive.symbols import OBJECTS

        return ZF(L, OBJECTS[t.base].prime)(t.indices[0], theta)

    return e.replace(is_zl, to_f)


def f_of_theta(prime: bool, row: sp.Expr) -> sp.Expr:
    z = alpha_t(L + 1, prime)[row]
    return with_theta(unfold(z, CL, 2))


def _row(r: sp.Expr, bias_layer: int | sp.Expr) -> sp.Expr:
    return layer_sum(W(L), r, alpha(L), nL, b(bias_layer)[r], i)


fL = alpha_t(L + 1)
P20 = sp.Tuple(
    sp.Eq(
        sp.ImmutableMatrix([fL[1], fL[k], fL[nL1]]),
        sp.ImmutableMatrix([_row(0, 0), _row(k, 0), _row(nL1, 0)]),
    ),
    sp.Eq(Dim(fL), nL),
)


def d20(env: dict) -> sp.Basic:
    rows = [fL[1], fL[k], fL[nL1]]
    # W^(L) has n_{L+1} rows (definition after (4)), so f lies in R^{n_{L+1}}
    return sp.Tuple(
        sp.Eq(sp.ImmutableMatrix(rows), sp.ImmutableMatrix([unfold(r, CL) for r in rows])),
        sp.Eq(Dim(fL), width(L + 1)),
    )


P19 = Tends(Theta(L, i, ip), Theta_inf(L) * sp.KroneckerDelta(i, ip), nL)


def _dz(prime: bool, idx: sp.Expr) -> sp.Expr:
    return sp.Derivative(ZF(L, prime)(idx, theta), theta)


def _through_layer_L(idx: sp.Expr) -> sp.Expr:
    """``d f_k/d alpha^(L)_idx  d alpha^(L)_idx/d alpha~^(L)_idx  d alpha~^(L)_idx/d theta_p``."""
    a_i, z_i = alpha(L)[idx], alpha_t(L)[idx]
    return _d(fk, a_i) * _d(a_i, z_i) * _dz(False, idx)


# (21) as printed: its middle member (the chain rule) has no sum over i
P21 = Chain(
    _d(fk, theta),
    _through_layer_L(i),
    sp.Sum(W(L)[k, i] * sigmadot(z_L(i, theta)) * _dz(False, i), (i, 1, nL)) / sp.sqrt(nL),
)


def d21(env: dict) -> sp.Basic:
    # the chain rule through layer L sums over every unit i of that layer
    s = fresh("i")
    through = sp.Sum(_through_layer_L(s), (s, 1, nL))
    end = rule("chain_rule", sp.Derivative(f_of_theta(False, k), theta), CL)
    return Chain(_d(fk, theta), through, end)


def _grad_sum(prime: bool, row: sp.Expr, var: sp.Symbol) -> sp.Expr:
    return sp.Sum(
        W(L)[row, var] * sigmadot(ZF(L, prime)(var, theta)) * _dz(prime, var), (var, 1, nL)
    ) / sp.sqrt(nL)


P22 = Chain(
    _d(fk, theta) * _d(fkp, theta),
    _grad_sum(False, k, i) * _grad_sum(True, kp, ip),
    sp.Sum(
        W(L)[k, i]
        * W(L)[kp, ip]
        * sigmadot(z_L(i, theta))
        * sigmadot(zp_L(ip, theta))
        * _dz(True, ip)
        * _dz(True, ip),
        (i, 1, nL),
        (ip, 1, nL),
    )
    / nL,
)


def d22(env: dict) -> sp.Basic:
    lhs = _d(fk, theta) * _d(fkp, theta)
    m1 = rule("chain_rule", sp.Derivative(f_of_theta(False, k), theta), CL) * rule(
        "chain_rule", sp.Derivative(f_of_theta(True, kp), theta), CL
    )
    from ntksym.derive.rules import merge_sums

    m2 = sp.Add(*[merge_sums(t) for t in sp.Add.make_args(sp.expand(m1))])
    return Chain(lhs, m1, m2)


# (23), line by line; every line is "sum_p df_k df'_k' = <line>"
LHS23 = PSum(_d(fk, theta) * _d(fkp, theta))
WW = W(L)[k, i] * W(L)[kp, ip]
SS = sigmadot(z_L(i, theta)) * sigmadot(zp_L(ip, theta))
P23 = [
    sp.Sum(WW * SS * PSum(_dz(False, i) * _dz(True, ip)), (i, 1, nL), (ip, 1, nL)) / nL,
    sp.Sum(WW * SS * PSum(_dz(False, i) * _dz(True, ip)), (i, 1, nL), (ip, 1, nL)) / nL,
    sp.Sum(WW * SS * Theta(L, i, ip), (i, 1, nL), (ip, 1, nL)) / nL,
    sp.Sum(WW * SS * Theta_inf(L) * sp.KroneckerDelta(i, ip), (i, 1, nL), (ip, 1, nL)) / nL,
    sp.Sum(W(L)[k, i] * W(L)[kp, i] * SS * Theta_inf(L) * sp.KroneckerDelta(i, ip), (i, 1, nL))
    / nL,
    sp.Sum(
        W(L)[k, i]
        * W(L)[kp, i]
        * sigmadot(z_L(i, theta))
        * sigmadot(zp_L(i, theta))
        * Theta_inf(L)
        * sp.KroneckerDelta(i, ip),
        (i, 1, nL),
    )
    / nL,
    sp.Sum(
        W(L)[k, i]
        * W(L)[kp, i]
        * sigmadot(z_L(i, theta))
        * sigmadot(zp_L(i, theta))
        * Theta_inf(L)
        * sp.KroneckerDelta(i, ip),
        (i, 1, nL),
    )
    / nL,
    # the last printed line breaks off after "delta_{ii'} delta_{i": transcribed with the
    # fragment as an (undefined) symbol
    sp.Sum(
        W(L)[k, i]
        * W(L)[kp, i]
        * sigmadot(z_L(i, theta))
        * sigmadot(zp_L(i, theta))
        * Theta_inf(L)
        * sp.KroneckerDelta(i, ip)
        * sp.Symbol(r"\delta_{i\ldots}"),
        (i, 1, nL),
    )
    / nL,
]


def _theta_def(idx: sp.Expr, idxp: sp.Expr) -> sp.Expr:
    """(19): Theta^(L)_{ii'} is the sum over p of d alpha~_i(x) d alpha~_i'(x')."""
    return PSum(_dz(False, idx) * _dz(True, idxp))


def d23(env: dict) -> list[sp.Expr]:
    m0 = env["22"].args[-1]
    l1 = rule("parameter_sum", PSum(m0), CL)
    l2 = l1
    l3 = l2.replace(
        lambda t: isinstance(t, PSum) and t == _theta_def(*_ii(t)), lambda t: Theta(L, *_ii(t))
    )
    # induction hypothesis (19): Theta^(L)_{ii'} -> Theta_inf^(L) delta_{ii'}
    l4 = rule("induction_hypothesis", l3, CL)
    l5 = rule("delta_sum", l4, CL)
    return [l1, l2, l3, l4, l5, l5, l5, l5]


def _ii(t: PSum) -> tuple[sp.Expr, sp.Expr]:
    ds = [d for d in t.args[0].atoms(sp.Derivative)]
    idx = {ZF_prime(d): d.expr.args[0] for d in ds}
    return idx.get(False, sp.S.Zero), idx.get(True, sp.S.Zero)


def ZF_prime(d: sp.Derivative) -> bool | None:  # noqa: N802
    """Whether ``d`` differentiates the primed network's output (None: not an output)."""
    from ntksym.derive.symbols import ZF_INFO

    return ZF_INFO.get(d.expr.func.__name__, (None, None))[1]


CLN = CL.replace(names={Theta: sp.Lambda((sp.Dummy("m"), _a, _c), _theta_def(_a, _c))})


def _d23(n: int) -> Callable[[dict], sp.Basic]:
    def derive(env: dict) -> sp.Basic:
        if "23.lines" not in env:
            env["23.lines"] = d23(env)
        return sp.Eq(LHS23, env["23.lines"][n])

    return derive


P24 = Tends(
    LHS23,
    E(W(L)[k, i] * W(L)[kp, i] * sigmadot(z_L(i, theta)) * sigmadot(zp_L(i, theta)) * Theta_inf(L)),
    nL,
)


def d24(env: dict) -> sp.Basic:
    last = env["23.lines"][-1]
    return Tends(LHS23, rule("law_of_large_numbers", last, CL), nL)


u_, v_ = sp.symbols("u v", real=True)
SSi = sigmadot(z_L(i, theta)) * sigmadot(zp_L(i, theta))
P24b = Chain(
    E(W(L)[k, i] * W(L)[kp, i] * SSi * Theta_inf(L)),
    E(W(L)[k, i] * W(L)[kp, i]) * E(SSi) * Theta_inf(L),
    dK * E(SSi) * Theta_inf(L),
    dK * GaussE(sigmadot(u_) * sigmadot(v_), u_, v_, L) * Theta_inf(L),
    dK * Sigma_dot(L + 1) * Theta_inf(L),
)


def d24b(env: dict) -> sp.Basic:
    m0 = env["24"].rhs
    m1 = rule("independence", rule("linearity", m0, CL), CL)
    m2 = rule("gaussian_moments", m1, CL)
    m3 = rule("gaussian_process", m2, CL)
    # definition of Sigmadot^(L+1): what multiplies delta_kk' Theta_inf^(L), i.e.
    # E_{g ~ N(0, Sigma^(L))}[sigmadot(g(x)) sigmadot(g(x'))] (times any weight variance)
    env["Sigmadot(L+1)"] = sp.simplify(m3 / (dK * Theta_inf(L)))
    m4 = dK * Sigma_dot(L + 1) * Theta_inf(L)
    return Chain(m0, m1, m2, m3, m4)


P25 = Tends(sp.Mul(alpha(L)[i], alpha(L, True)[i]) / nL * dK + beta**2 * dK, Sigma(L + 1) * dK, nL)


def d25(env: dict) -> sp.Basic:
    # the last layer's parameters: as in (17), with x replaced by alpha^(L)
    fx, fxp = unfold(fk, CL), unfold(fkp, CL)
    lims_w = [(i, 1, nL), (j, 1, nL1)]
    finite = sp.Sum(_d(fx, W(L)[j, i]) * _d(fxp, W(L)[j, i]), *lims_w) + sp.Sum(
        _d(fx, b(L)[j]) * _d(fxp, b(L)[j]), (j, 1, nL1)
    )
    finite = rule("chain_rule", finite, CL)
    lim = rule("law_of_large_numbers", finite, CL.replace(ranges={**CL.ranges, "lln_index": i}))
    lim = rule("gaussian_process", unfold(lim, CL), CL)
    sig = env["12.2"].rhs.subs(l, L) * dK  # (12): Sigma^(L+1) = E_g[sigma sigma] + beta^2
    from ntksym.derive.checks import symbolic_equal

    if not symbolic_equal(lim, sig, CL):
        return Tends(finite, lim, nL)  # the limit is not (12)'s Sigma^(L+1): say what it is
    return Tends(finite, Sigma(L + 1) * dK, nL)


P26 = sp.Eq(Theta(L + 1, k, kp), Theta_inf(L) * Sigma_dot(L + 1) * dK + Sigma(L + 1) * dK)


def d26(env: dict) -> sp.Basic:
    # (6): the NTK is the sum over theta~ (24) plus the sum over W^(L), b^(L) (25); both
    # parts are limits as n_L -> oo, so the sum is one too
    return Tends(Theta(L + 1, k, kp), env["24.2"].args[-1] + env["25"].rhs, nL)


P27 = sp.Eq(Theta(L + 1, k, kp), (Theta_inf(L) * Sigma_dot(L + 1) + Sigma(L + 1)) * dK)


def d27(env: dict) -> sp.Basic:
    return Tends(Theta(L + 1, k, kp), sp.factor_terms(env["26"].rhs), nL)


RECURSION_LABELS = {
    "sigma1": "10",
    "sigma_next": "12.2",
    "sigmadot": "Sigmadot(L+1)",
    "theta": "27",
}
GAP_23_24 = text(
    "replacing {t} by its limit inside a sum of {n} terms needs the convergence to be "
    "uniform enough (Jacot et al. 2018, Prop. 2; Arora et al. 2019)",
    t=Theta(L, i, ip),
    n=nL,
)
STEPS_B = [
    Step(
        "19",
        P19,
        "hypothesis",
        note=text("induction hypothesis, for the network of depth {L}", L=L),
    ),
    Step("20", P20, "definition", uses=("2",), derive=d20, ctx=CL, configs=L_CFG2),
    Step(
        "21",
        P21,
        "chain_rule",
        uses=("20",),
        derive=d21,
        ctx=CL,
        configs=L_CFG,
        note="transcribed as printed, its middle member (the chain rule) included",
    ),
    Step("22", P22, "chain_rule", uses=("21",), derive=d22, ctx=CL, configs=L_CFG, quick=False),
    *[
        Step(
            f"23.{n + 1}",
            sp.Eq(LHS23, P23[n]),
            [
                "parameter_sum",
                "parameter_sum",
                "definition",
                "induction_hypothesis",
                "delta_sum",
                "delta_sum",
                "delta_sum",
                "delta_sum",
            ][n],
            uses=("22", "19"),
            derive=_d23(n),
            ctx=CLN,
            configs=L_CFG if n < 3 else (),
            note=GAP_23_24 if n == 3 else "",
            quick=n >= 3,
        )
        for n in range(8)
    ],
    Step(
        "24",
        P24,
        "law_of_large_numbers",
        uses=("23.5",),
        derive=d24,
        ctx=CL,
        extra_check=standard_only(limit_check("gradient_sum", sigma1="10")),
        note=text(
            "hypothesis: the {n} terms are i.i.d. with finite second moment in the "
            "sequential limit; {gap}",
            n=nL,
            gap=GAP_23_24,
        ),
    ),
    Step("24.2", P24b, "gaussian_moments", uses=("24", "12.2"), derive=d24b, ctx=CL),
    Step(
        "25",
        P25,
        "law_of_large_numbers",
        uses=("17", "12.2"),
        derive=d25,
        ctx=CL,
        configs=L_CFG,
        extra_check=standard_only(
            limit_check("nngp", sigma1="10", sigma_next="12.2", depth=3, widths=(64, 128, 256, 512))
        ),
    ),
    Step(
        "26",
        P26,
        "algebra",
        uses=("24.2", "25", "5"),
        derive=d26,
        ctx=CL,
        extra_check=standard_only(
            recursion_check({**RECURSION_LABELS, "theta": "26"}, with_monte_carlo=False)
        ),
    ),
    Step(
        "27",
        P27,
        "algebra",
        uses=("26",),
        derive=d27,
        ctx=CL,
        extra_check=standard_only(recursion_check(RECURSION_LABELS)),
        note=text(
            "{a} read entrywise as {b}",
            a=Tex(r"[\dots] \otimes I_{n_{L+1}}", "[...] (x) I_{n_{L+1}}"),
            b=Tex(r"[\dots]\,\delta_{kk'}", "[...] delta_kk'"),
        ),
    ),
]


DERIVATION = Derivation(
    name="seed",
    title="NTK derivation (Y. Chen, 2020), equations (1)-(27)",
    steps=tuple(STEPS_A + STEPS_B),
    # the rules unfold the network with (1)-(3) and use the induction hypothesis (19)
    network=("1", "2", "3", "19"),
    hypotheses=(
        text("{wb} i.i.d. {N}", wb=Tex("w, b", "w, b"), N=Tex(r"\mathcal{N}(0, 1)", "N(0, 1)")),
        text(
            "limits {lim} taken sequentially",
            lim=Tex(r"n_1, \dots, n_{L-1} \to \infty", "n_1, ..., n_{L-1} -> oo"),
        ),
    ),
)
