"""The seed's NTK derivation (Yilan Chen, "NTK Derivation", 2020), equations (1)-(27).

Every ``printed`` statement below is transcribed as printed in
``seed/ntk_derivation_notes.txt``, slips included; each ``derive`` produces the statement
from (1)-(4) and earlier steps with the registered rules. The engine compares the two.
Matrix displays are transcribed by their first, k-th and last rows.
"""

from __future__ import annotations

import sympy as sp

from ntksym.derive import (
    Chain,
    Context,
    Derivation,
    ForAll,
    Step,
    Tends,
    apply_rule,
    definition_range,
)
from ntksym.derive.symbols import (
    E,
    L,
    Sigma,
    Sigma_t,
    Theta,
    W,
    alpha,
    alpha_t,
    b,
    beta,
    index,
    l,
    sigma,
    width,
    x,
)

k, kp, i, ip, j = (index(s) for s in ("k", "k'", "i", "i'", "j"))
n0, n1, nl, nl1 = width(0), width(1), width(l), width(l + 1)
nL, nL1 = width(L), width(L + 1)
xs, xps = x(), x(True)


def rule(name: str, e: sp.Basic, ctx: Context) -> sp.Basic:
    return apply_rule(name, e, ctx)


def unfold(e: sp.Basic, ctx: Context, times: int = 1) -> sp.Basic:
    for _ in range(times):
        e = rule("definition", e, ctx)
    return e


def layer_sum(wb: sp.IndexedBase, row: sp.Expr, vec: sp.IndexedBase, n: sp.Expr,
              bias: sp.Expr, var: sp.Symbol = j) -> sp.Expr:
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


def _range_of(label: str):
    def derive(env: dict) -> sp.Basic:
        others = [DEFS[o] for o in ("1", "2", "3", "4") if o != label]
        return definition_range(DEFS[label], others)

    return derive


# chain contexts
C_l = Context(ranges={k: nl1, kp: nl1, j: nl, i: nl})
LAYER_CFG = (({l: 0}, {0: 2, 1: 2}), ({l: 1}, {0: 2, 1: 2, 2: 2}), ({l: 0}, {0: 3, 1: 1}))


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
L1_CFG = (({}, {0: 2, 1: 2}), ({}, {0: 3, 1: 1}), ({}, {0: 1, 1: 3}))


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
L11_CFG = (({l: 1}, {0: 2, 1: 2, 2: 2}), ({l: 1}, {0: 1, 1: 3, 2: 1}))


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


P13 = sp.Eq(sp.ImmutableMatrix([f1[1], f1[k], f1[n1]]),
            sp.ImmutableMatrix([_row0(0), _row0(k), _row0(n1)]))


def d13(env: dict) -> sp.Basic:
    rows = [f1[1], f1[k], f1[n1]]
    return sp.Eq(sp.ImmutableMatrix(rows), sp.ImmutableMatrix([unfold(r, C1, 2) for r in rows]))


def _d(f: sp.Expr, p: sp.Expr) -> sp.Derivative:
    return sp.Derivative(f, p, evaluate=False)


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
    _ntk_sum([(W(0)[j, i], [(i, 1, n0), (j, 1, n1)]), (b(0)[j], [(j, 1, n1)])],
             f1[k], alpha_t(1, True)[kp]),
    sp.Sum(xs[i] * xps[i] * dk * dkp / n0, (i, 1, n0), (j, 1, n1))
    + sp.Sum(beta**2 * dk * dkp, (j, 1, n1)),
    sp.Sum(xs[i] * xps[i], (i, 1, n0)) / n0 * sp.KroneckerDelta(k, kp)
    + beta**2 * sp.KroneckerDelta(k, kp),
    Sigma(1) * sp.KroneckerDelta(k, kp),
)


def d17(env: dict) -> sp.Basic:
    m1 = _ntk_sum([(W(0)[j, i], [(i, 1, n0), (j, 1, n1)]), (b(0)[j], [(j, 1, n1)])],
                  f1[k], alpha_t(1, True)[kp])
    m2 = m1.replace(
        lambda t: isinstance(t, sp.Sum),
        lambda t: sp.Sum(_eval_d(t.function, C1), *t.limits),
    )
    m3 = rule("delta_sum", m2, C1)
    sigma1 = env["10"].args[-1]  # (10): Sigma^(1) = x.x'/n0 + beta^2
    m4 = Sigma(1) * sp.KroneckerDelta(k, kp)
    from ntksym.derive.checks import symbolic_equal

    if not symbolic_equal(m3, sigma1 * sp.KroneckerDelta(k, kp), C1):
        raise ValueError("(10) does not match the contracted sum")
    return Chain(Theta(1, k, kp), m1, m2, m3, m4)


P18 = sp.Eq(Theta(1, k, kp), Sigma(1) * sp.KroneckerDelta(k, kp))


def d18(env: dict) -> sp.Basic:
    return sp.Eq(Theta(1, k, kp), env["17"].args[-1])


C1N = C1.replace(names={Sigma(1): E(alpha_t(1)[k] * alpha_t(1, True)[k])})


STEPS_A = [
    Step("1", D1, "definition", derive=None, note="the input layer"),
    Step("2", D2, "definition", uses=("1", "3"), derive=_range_of("2"),
         note="transcribed entrywise; (7) is the same statement"),
    Step("3", D3, "definition", uses=("1", "2"), derive=_range_of("3"),
         note="at l = 0 the definition would contradict (1); lines of (11) written with "
              "sigma at l = 0 inherit this slip"),
    Step("4", D4, "definition", uses=("2",), derive=_range_of("4")),
    Step("7", P7, "definition", uses=("2",), derive=d7, ctx=C_l, configs=LAYER_CFG),
    Step("8", P8, "expectation", uses=("7",), derive=d8, ctx=C_l, configs=LAYER_CFG,
         note="the middle line uses independence of w^(l) from alpha^(l)"),
    Step("9", P9, "expectation", uses=("7",), derive=d9, ctx=C9, configs=LAYER_CFG,
         note="zero covariance is read as independence: true for jointly Gaussian variables; "
              "at finite width the pre-activations are Gaussian only conditionally on the "
              "previous layer, and jointly Gaussian in the limit"),
    Step("10", P10, "expectation", uses=("7", "1"), derive=d10, ctx=C1, configs=L1_CFG),
    Step("11", P11, "expectation", uses=("7", "3"), derive=d11, ctx=C_l, configs=L11_CFG,
         note="E is over w^(l), b^(l) given the earlier layers (a conditional expectation); "
              "the sigma form needs l >= 1, see (3)"),
    Step("12", P12, "law_of_large_numbers", uses=("11",), derive=d12, ctx=C_l,
         note="hypothesis: the n_l terms are i.i.d. with finite second moment, which holds "
              "when n_1, ..., n_{l-1} -> oo sequentially before n_l"),
    Step("12.2", P12b, "gaussian_process", uses=("12",), derive=d12b, ctx=C_l,
         note="hypothesis (induction, Jacot et al. 2018 Prop. 1): alpha~^(l)_i(x), "
              "alpha~^(l)_i(x') are jointly Gaussian with covariance Sigma^(l) in the limit"),
    Step("13", P13, "definition", uses=("2", "1"), derive=d13, ctx=C1, configs=L1_CFG),
    Step("14", P14, "chain_rule", uses=("13",), derive=d14, ctx=C1, configs=L1_CFG),
    Step("15", P15, "chain_rule", uses=("14",), derive=d15, ctx=C1, configs=L1_CFG),
    Step("16", P16, "chain_rule", uses=("13",), derive=d16, ctx=C1, configs=L1_CFG),
    Step("17", P17, "delta_sum", uses=("6", "15", "16", "10"), derive=d17, ctx=C1N,
         configs=L1_CFG),
    Step("18", P18, "algebra", uses=("17",), derive=d18, ctx=C1N, configs=L1_CFG,
         note="Sigma^(1) (x) I_{n_1} read entrywise as Sigma^(1) delta_kk'"),
]


DERIVATION = Derivation(
    name="seed",
    title="NTK derivation (Y. Chen, 2020), equations (1)-(27)",
    steps=tuple(STEPS_A),
    hypotheses=(
        "w, b i.i.d. N(0, 1)",
        "limits n_1, ..., n_{L-1} -> oo taken sequentially",
    ),
)
