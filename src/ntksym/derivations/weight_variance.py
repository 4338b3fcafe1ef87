"""The NTK recursion with a weight scale: a derivation that is not the seed's.

The network is the seed's with ``alpha~^(l+1) = sigma_w W^(l) alpha^(l) / sqrt(n_l) +
beta b^(l)`` and ``W, b`` i.i.d. N(0, 1): the preactivation weights have variance
``sigma_w^2`` while the trained parameters keep unit variance (NTK parameterization, as in
neural-tangents' ``Dense(W_std=sigma_w, parameterization='ntk')``). The printed statements
below are the modified recursion a reader would expect; the engine derives each from the
definitions with the same rules it uses for the seed, and the last step is compared with
``ntksym.reference.recursion(..., weight_std=sigma_w)`` and with finite networks.
"""

from __future__ import annotations

import sympy as sp

from ntksym.extend import (
    Chain,
    Context,
    Derivation,
    E,
    GaussE,
    L,
    PSum,
    Sigma,
    Sigma_dot,
    Sigma_t,
    Step,
    Tends,
    Tex,
    Theta,
    Theta_inf,
    WidthConfig,
    alpha_t,
    apply_rule,
    beta,
    index,
    l,
    layer_parameter_sum,
    merge_sums,
    recursion_check,
    sigma,
    sigmadot,
    symbolic_equal,
    text,
    theta,
    unfold,
    weight_std,
    width,
    with_theta,
    x,
)
from ntksym.extend import (
    derivative as _d,
)
from ntksym.extend import (
    differentiate_unfolded as _eval_d,
)
from ntksym.extend import (
    theta_pair as _pair,
)

sw = weight_std
k, kp, i, ip, j = (index(s) for s in ("k", "k'", "i", "i'", "j"))
n0, n1, nl, nl1, nL, nL1 = (width(m) for m in (0, 1, l, l + 1, L, L + 1))
dK = sp.KroneckerDelta(k, kp)
u, v = sp.symbols("u v", real=True)

C1 = Context(ranges={k: n1, kp: n1, i: n0, j: n1}, weight_scale=sw)
Cl = Context(ranges={k: nl1, kp: nl1, i: nl, j: nl}, weight_scale=sw)
CL = Context(ranges={k: nL1, kp: nL1, i: nL, ip: nL, j: nL1}, weight_scale=sw)
CFG1: tuple[WidthConfig, ...] = (({}, {0: 2, 1: 2}), ({}, {0: 3, 1: 1}))
CFGl: tuple[WidthConfig, ...] = (({l: 0}, {0: 2, 1: 2}), ({l: 1}, {0: 2, 1: 2, 2: 2}))


def r(name: str, e: sp.Basic, ctx: Context) -> sp.Basic:
    return apply_rule(name, e, ctx)


# ---------------------------------------------------------------- Sigma^(1), Sigma^(l+1)
P1 = Chain(
    Sigma(1),
    E(alpha_t(1)[k] * alpha_t(1, True)[k]),
    sw**2 * sp.Sum(x()[i] * x(True)[i], (i, 1, n0)) / n0 + beta**2,
)


def d1(env: dict) -> sp.Basic:
    m1 = E(alpha_t(1)[k] * alpha_t(1, True)[k])
    m2 = r("expectation", E(unfold(alpha_t(1)[k], C1, 2) * unfold(alpha_t(1, True)[k], C1, 2)), C1)
    return Chain(Sigma(1), m1, m2)


P2 = Chain(
    Sigma_t(l + 1),
    E(alpha_t(l + 1)[k] * alpha_t(l + 1, True)[k], l),
    sw**2 * sp.Sum(sigma(alpha_t(l)[i]) * sigma(alpha_t(l, True)[i]), (i, 1, nl)) / nl + beta**2,
)


def d2(env: dict) -> sp.Basic:
    zz = alpha_t(l + 1)[k] * alpha_t(l + 1, True)[k]
    m2 = r("expectation", E(unfold(zz, Cl), l), Cl)
    return Chain(Sigma_t(l + 1), E(zz, l), unfold(m2, Cl))


P3 = Tends(
    Sigma_t(l + 1), sw**2 * E(sigma(alpha_t(l)[i]) * sigma(alpha_t(l, True)[i])) + beta**2, nl
)


def d3(env: dict) -> sp.Basic:
    return Tends(Sigma_t(l + 1), r("law_of_large_numbers", env["2"].args[-1], Cl), nl)


P4 = sp.Eq(Sigma(l + 1), sw**2 * GaussE(sigma(u) * sigma(v), u, v, l) + beta**2)


def d4(env: dict) -> sp.Basic:
    return sp.Eq(Sigma(l + 1), r("gaussian_process", env["3"].rhs, Cl))


# ---------------------------------------------------------------- Theta^(1)
def _param_sum(
    layer: int | sp.Expr, fx: sp.Expr, fxp: sp.Expr, n_in: sp.Expr, n_out: sp.Expr
) -> sp.Expr:
    return layer_parameter_sum(layer, fx, fxp, n_in, n_out, i, j)


P5 = Chain(
    Theta(1, k, kp), _param_sum(0, alpha_t(1)[k], alpha_t(1, True)[kp], n0, n1), Sigma(1) * dK
)


def d5(env: dict) -> sp.Basic:
    m1 = _param_sum(0, alpha_t(1)[k], alpha_t(1, True)[kp], n0, n1)
    m2 = r("delta_sum", _eval_d(m1, C1, 2), C1)
    if not symbolic_equal(m2, env["1"].args[-1] * dK, C1):
        raise ValueError("the contracted sum is not Sigma^(1) delta_kk'")
    return Chain(Theta(1, k, kp), m1, Sigma(1) * dK)


C1N = C1.replace(names={Sigma(1): E(alpha_t(1)[k] * alpha_t(1, True)[k])})


# ---------------------------------------------------------------- Theta^(L+1)
LHS6 = PSum(_d(alpha_t(L + 1)[k], theta) * _d(alpha_t(L + 1, True)[kp], theta))
P6 = Tends(LHS6, sw**2 * dK * GaussE(sigmadot(u) * sigmadot(v), u, v, L) * Theta_inf(L), nL)


def d6(env: dict) -> sp.Basic:
    fx = with_theta(unfold(alpha_t(L + 1)[k], CL, 2))
    fxp = with_theta(unfold(alpha_t(L + 1, True)[kp], CL, 2))
    prod = r("chain_rule", sp.Derivative(fx, theta), CL) * r(
        "chain_rule", sp.Derivative(fxp, theta), CL
    )
    prod = sp.Add(*[merge_sums(t) for t in sp.Add.make_args(sp.expand(prod))])
    s = r("parameter_sum", PSum(prod), CL)
    # (19)-style definition of Theta^(L)_{ii'} and the induction hypothesis
    s = s.replace(lambda t: isinstance(t, PSum), lambda t: Theta(L, *_pair(t)))
    s = r("delta_sum", r("induction_hypothesis", s, CL), CL)
    lim = r("law_of_large_numbers", s, CL)
    lim = r("gaussian_moments", r("independence", r("linearity", lim, CL), CL), CL)
    lim = r("gaussian_process", lim, CL)
    env["Sigmadot(L+1)"] = sp.simplify(lim / (dK * Theta_inf(L)))
    return Tends(LHS6, lim, nL)


LHS7 = _param_sum(L, alpha_t(L + 1)[k], alpha_t(L + 1, True)[kp], nL, nL1)
P7 = Tends(LHS7, (sw**2 * GaussE(sigma(u) * sigma(v), u, v, L) + beta**2) * dK, nL)


def d7(env: dict) -> sp.Basic:
    finite = _eval_d(LHS7, CL, 1)
    lim = r("law_of_large_numbers", finite, CL.replace(ranges={**CL.ranges, "lln_index": i}))
    return Tends(LHS7, r("gaussian_process", unfold(lim, CL), CL), nL)


P8 = sp.Eq(Theta(L + 1, k, kp), (Theta_inf(L) * Sigma_dot(L + 1) + Sigma(L + 1)) * dK)


def d8(env: dict) -> sp.Basic:
    # (6): Theta^(L+1) = the theta~ part (6 here) + the last layer's part (7 here)
    total = env["6"].rhs + env["7"].rhs
    sdot = env["Sigmadot(L+1)"]
    sig = env["4"].rhs.subs(l, L)
    named = total.subs(sdot * Theta_inf(L) * dK, Sigma_dot(L + 1) * Theta_inf(L) * dK)
    named = sp.expand(named).subs(sp.expand(sig * dK), Sigma(L + 1) * dK)
    if not symbolic_equal(named.subs({Sigma_dot(L + 1): sdot, Sigma(L + 1): sig}), total, CL):
        raise ValueError("naming changed the value")
    return sp.Eq(Theta(L + 1, k, kp), sp.factor_terms(named))


LABELS = {"sigma1": "1", "sigma_next": "4", "sigmadot": "Sigmadot(L+1)", "theta": "8"}

DERIVATION = Derivation(
    name="weight_variance",
    title="NTK recursion with weight scale sigma_w (NTK parameterization)",
    steps=(
        Step("1", P1, "expectation", derive=d1, ctx=C1, configs=CFG1),
        Step("2", P2, "expectation", derive=d2, ctx=Cl, configs=CFGl[1:]),
        Step("3", P3, "law_of_large_numbers", uses=("2",), derive=d3, ctx=Cl),
        Step("4", P4, "gaussian_process", uses=("3",), derive=d4, ctx=Cl),
        Step("5", P5, "delta_sum", uses=("1",), derive=d5, ctx=C1N, configs=CFG1),
        Step(
            "6",
            P6,
            "law_of_large_numbers",
            uses=("4",),
            derive=d6,
            ctx=CL,
            note=text(
                "chain rule, sum over {t}, induction hypothesis, law of large numbers, "
                "Gaussian moments, Gaussian process limit",
                t=Tex(r"\tilde\theta", "theta~"),
            ),
        ),
        Step("7", P7, "law_of_large_numbers", uses=("4",), derive=d7, ctx=CL),
        Step(
            "8",
            P8,
            "algebra",
            uses=("6", "7"),
            derive=d8,
            ctx=CL,
            extra_check=recursion_check(LABELS, weight_std_value=1.7, bias_std=0.3),
        ),
    ),
    hypotheses=(
        text(
            "{wb} i.i.d. {N}; preactivations scaled by {s}",
            wb=Tex("W, b", "W, b"),
            N=Tex(r"\mathcal{N}(0, 1)", "N(0, 1)"),
            s=weight_std,
        ),
        "limits taken sequentially",
    ),
)
