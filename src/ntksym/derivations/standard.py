"""The standard parameterization: the same NNGP, a different (diverging) NTK.

The network is the seed's with the forward pass written without ``1/sqrt(n)``:
``alpha~^(l+1) = W^(l) alpha^(l) + beta b^(l)``, ``w^(l)_ki ~ N(0, sigma_w^2 / n_l)``,
``b ~ N(0, 1)`` (Sohl-Dickstein et al. 2020; Lee et al. 2019, appendix). The engine works
on it through ``Context(parameterization="standard", weight_scale=sigma_w)``: the
``definition`` rule then unfolds (2) without ``1/sqrt(n)`` and the Gaussian moments give
``E[w_ki w_k'j] = sigma_w^2 / n_l delta delta``; the exact checker builds the same network.

What the steps show:

* (1)-(4): the NNGP recursion is the one of the NTK parameterization with weight scale
  ``sigma_w`` (the forward pass has the same law); (4) is compared numerically with
  ``ntksym.reference.recursion(..., weight_std=sigma_w)`` (mpmath), an implementation of
  the *NTK* parameterization, and with finite standard-parameterization networks.
* (5): ``Theta^(1) = (x.x' + beta^2) delta``: in terms of ``Sigma^(1)`` the weight part
  carries the factor ``n_0 / sigma_w^2``.
* (6): the last layer's weight part of ``Theta^(L+1)`` is ``n_L`` times a finite limit:
  divided by ``n_L`` it tends to ``E_g[sigma sigma]``, so the NTK diverges linearly in the
  width unless the learning rate of the weights is scaled down.
* (7), (8): with the weights' learning rate scaled by ``sigma_w^2 / n_m`` (biases
  unscaled) the weighted kernel of layer 1 is exactly ``Sigma^(1)`` and the last layer's
  part tends to ``Sigma^(L+1)`` -- the NTK parameterization's terms.

Not derived here: the part of ``Theta^(L+1)`` through the earlier layers (the seed's
(24)) in the standard parameterization. Its sum ``sum_i w_ki w_k'i ...`` is not of the form
``(1/n) sum_i`` the ``law_of_large_numbers`` rule accepts (each ``w`` carries the
``1/sqrt(n)``); deriving it needs a rule that rescales ``w = sigma_w omega / sqrt(n)``.
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from ntksym.derive.numeric import MC_SAMPLES, MC_WIDTHS, fit_rate, mc_inputs
from ntksym.extend import (
    Chain,
    Context,
    Derivation,
    E,
    GaussE,
    L,
    Sigma,
    Sigma_t,
    Step,
    Tends,
    Theta,
    W,
    alpha_t,
    apply_rule,
    b,
    beta,
    index,
    l,
    nngp_check,
    sigma,
    symbolic_equal,
    weight_std,
    width,
    x,
)

sw = weight_std
k, kp, i, j = (index(s) for s in ("k", "k'", "i", "j"))
n0, n1, nl, nl1, nL, nL1 = (width(m) for m in (0, 1, l, l + 1, L, L + 1))
dK = sp.KroneckerDelta(k, kp)
u, v = sp.symbols("u v", real=True)

SP = {"weight_scale": sw, "parameterization": "standard"}
C1 = Context(ranges={k: n1, kp: n1, i: n0, j: n1}, **SP)
Cl = Context(ranges={k: nl1, kp: nl1, i: nl, j: nl}, **SP)
CL = Context(ranges={k: nL1, kp: nL1, i: nL, j: nL1, "lln_index": i}, **SP)
C1N = C1.replace(names={Sigma(1): E(alpha_t(1)[k] * alpha_t(1, True)[k])})
CFG1 = (({}, {0: 2, 1: 2}), ({}, {0: 3, 1: 1}))
CFGl = (({l: 1}, {0: 2, 1: 2, 2: 2}),)
#: The values of sigma_w and beta in the numeric and Monte-Carlo checks.
SW, BETA = 1.7, 0.3


def r(name: str, e: sp.Basic, ctx: Context) -> sp.Basic:
    return apply_rule(name, e, ctx)


def unfold(e: sp.Basic, ctx: Context, times: int = 1) -> sp.Basic:
    for _ in range(times):
        e = r("definition", e, ctx)
    return e


def _d(f: sp.Expr, p: sp.Expr) -> sp.Derivative:
    return sp.Derivative(f, p, evaluate=False)


# ---------------------------------------------------------------- the NNGP, (1)-(4)
P1 = Chain(
    Sigma(1),
    E(alpha_t(1)[k] * alpha_t(1, True)[k]),
    sw**2 * sp.Sum(x()[i] * x(True)[i], (i, 1, n0)) / n0 + beta**2,
)


def d1(env: dict) -> sp.Basic:
    zz = E(alpha_t(1)[k] * alpha_t(1, True)[k])
    return Chain(Sigma(1), zz, r("expectation", unfold(zz, C1, 2), C1))


P2 = Chain(
    Sigma_t(l + 1),
    E(alpha_t(l + 1)[k] * alpha_t(l + 1, True)[k], l),
    sw**2 * sp.Sum(sigma(alpha_t(l)[i]) * sigma(alpha_t(l, True)[i]), (i, 1, nl)) / nl + beta**2,
)


def d2(env: dict) -> sp.Basic:
    zz = E(alpha_t(l + 1)[k] * alpha_t(l + 1, True)[k], l)
    m2 = r("expectation", unfold(zz, Cl), Cl)
    return Chain(Sigma_t(l + 1), zz, unfold(m2, Cl))


P3 = Tends(
    Sigma_t(l + 1), sw**2 * E(sigma(alpha_t(l)[i]) * sigma(alpha_t(l, True)[i])) + beta**2, nl
)


def d3(env: dict) -> sp.Basic:
    return Tends(Sigma_t(l + 1), r("law_of_large_numbers", env["2"].args[-1], Cl), nl)


P4 = sp.Eq(Sigma(l + 1), sw**2 * GaussE(sigma(u) * sigma(v), u, v, l) + beta**2)


def d4(env: dict) -> sp.Basic:
    return sp.Eq(Sigma(l + 1), r("gaussian_process", env["3"].rhs, Cl))


# ---------------------------------------------------------------- Theta^(1), (5) and (7)
def _w_sum(layer: Any, fx: sp.Expr, fxp: sp.Expr, n_in: sp.Expr, n_out: sp.Expr) -> sp.Expr:
    """``sum_{j,i} d fx / d w_ji  d fxp / d w_ji`` over the weights of ``layer``."""
    return sp.Sum(_d(fx, W(layer)[j, i]) * _d(fxp, W(layer)[j, i]), (i, 1, n_in), (j, 1, n_out))


def _b_sum(layer: Any, fx: sp.Expr, fxp: sp.Expr, n_out: sp.Expr) -> sp.Expr:
    """``sum_j d fx / d b_j  d fxp / d b_j`` over the biases of ``layer``."""
    return sp.Sum(_d(fx, b(layer)[j]) * _d(fxp, b(layer)[j]), (j, 1, n_out))


Z1, Z1P = alpha_t(1)[k], alpha_t(1, True)[kp]
LHS5 = _w_sum(0, Z1, Z1P, n0, n1) + _b_sum(0, Z1, Z1P, n1)
P5 = Chain(Theta(1, k, kp), LHS5, (n0 / sw**2 * (Sigma(1) - beta**2) + beta**2) * dK)


def _eval_d(e: sp.Expr, ctx: Context, times: int) -> sp.Expr:
    e = e.replace(
        lambda t: isinstance(t, sp.Derivative),
        lambda t: sp.Derivative(unfold(t.expr, ctx, times), *t.variables),
    )
    return r("chain_rule", e, ctx)


def _in_sigma1(e: sp.Expr, sigma1: sp.Expr) -> sp.Expr:
    """Write the input sum of ``e`` through ``Sigma^(1)`` by solving (1) for it."""
    (s,) = sigma1.atoms(sp.Sum)
    t = sp.Dummy("t")
    (sol,) = sp.solve(sp.Eq(Sigma(1), sigma1.xreplace({s: t})), t)
    (var, lo, hi) = s.limits[0]

    def same(q: sp.Basic) -> bool:
        if not isinstance(q, sp.Sum) or len(q.limits) != 1:
            return False
        v2, lo2, hi2 = q.limits[0]
        return (lo2, hi2) == (lo, hi) and q.function.xreplace({v2: var}) == s.function

    return sp.expand(e.replace(same, lambda q: sol))


def d5(env: dict) -> sp.Basic:
    m2 = r("delta_sum", _eval_d(LHS5, C1, 2), C1)
    return Chain(Theta(1, k, kp), LHS5, sp.factor_terms(_in_sigma1(m2, env["1"].args[-1])))


LHS7 = (sw**2 / n0) * _w_sum(0, Z1, Z1P, n0, n1) + _b_sum(0, Z1, Z1P, n1)
P7 = sp.Eq(LHS7, Sigma(1) * dK)


def d7(env: dict) -> sp.Basic:
    m2 = r("delta_sum", _eval_d(LHS7, C1, 2), C1)
    return sp.Eq(LHS7, sp.factor_terms(_in_sigma1(m2, env["1"].args[-1])))


# ---------------------------------------------------------------- the last layer, (6), (8)
ZL, ZLP = alpha_t(L + 1)[k], alpha_t(L + 1, True)[kp]
WL = _w_sum(L, ZL, ZLP, nL, nL1)
BL = _b_sum(L, ZL, ZLP, nL1)
P6 = Tends(WL / nL, GaussE(sigma(u) * sigma(v), u, v, L) * dK, nL)


def _limit(finite: sp.Expr, ctx: Context) -> sp.Expr:
    """Law of large numbers on the normalised sums, then the Gaussian-process limit.

    Terms with no sum are deterministic: they keep their limit as ``n_L -> oo`` (a
    constant stays, ``beta^2 / n_L`` vanishes).
    """
    lim = r("law_of_large_numbers", finite, ctx)
    kept = sp.Add(*[t for t in sp.Add.make_args(lim) if t.has(E)])
    rest = sp.Add(*[sp.limit(t, nL, sp.oo) for t in sp.Add.make_args(lim) if not t.has(E)])
    return r("gaussian_process", unfold(kept, ctx), ctx) + rest


def d6(env: dict) -> sp.Basic:
    return Tends(WL / nL, _limit(_eval_d(WL, CL, 1) / nL, CL), nL)


P8 = Tends((sw**2 / nL) * WL + BL, Sigma(L + 1) * dK, nL)


def d8(env: dict) -> sp.Basic:
    lim = _limit(_eval_d((sw**2 / nL) * WL + BL, CL, 1), CL)
    sig = env["4"].rhs.subs(l, L)
    named = sp.expand(lim).subs(sp.expand(sig * dK), Sigma(L + 1) * dK)
    if not symbolic_equal(named.subs(Sigma(L + 1), sig), lim, CL):
        raise ValueError("naming Sigma^(L+1) changed the value")
    return Tends((sw**2 / nL) * WL + BL, named, nL)


# ---------------------------------------------------------------- Monte Carlo
def _gram(limit: sp.Expr, env: dict) -> Any:
    """The derived limit at ``L = 1`` (``k = k'``) on the Monte-Carlo inputs (mpmath)."""
    from ntksym.activations import get_activation
    from ntksym.derive.recursion import next_gram, sigma1_gram
    from ntksym.derive.symbols import weight_std as sw_sym

    scalars = {beta: sp.Float(BETA, 20), sw_sym: sp.Float(SW, 20)}
    e = limit.xreplace({dK: sp.Integer(1)}).subs(Sigma(L + 1), env["4"].rhs.subs(l, L))
    s1 = sigma1_gram(env["1"].args[-1], mc_inputs(), scalars, 15)
    return next_gram(e.subs(L, 1), s1, get_activation("relu"), scalars, 15)


def mc_check(lr_scaled: bool):  # noqa: ANN201 - returns a CheckFn
    """Finite standard-parameterization networks ``[10, n, 1]`` against the derived limit.

    ``ntksym.empirical.Network`` is written in the NTK parameterization
    (``W = sigma_w omega / sqrt(n)``); its forward pass has the law of the standard
    parameterization's, and the last layer's gradients in the standard parameterization
    are ``d alpha~_k / d w_kj = alpha_j``, ``d alpha~_k / d b_k = beta``. The finite
    quantity is ``a.a' / n`` (step 6) or ``sigma_w^2 a.a' / n + beta^2`` (step 8, the
    weights' learning rate scaled), ``a`` the hidden layer of the network; the distance to
    the limit must shrink like ``n^(-1/2)`` (:func:`ntksym.derive.numeric.fit_rate`).
    """

    def check(stmt: sp.Basic, ctx: Context, env: dict) -> tuple[bool, str, str]:
        import numpy as np

        from ntksym.empirical import Network

        lim = _gram(stmt.rhs, env)
        X = mc_inputs()
        dists = []
        root = np.random.SeedSequence(68 if lr_scaled else 66)
        for n, ws in zip(MC_WIDTHS, root.spawn(len(MC_WIDTHS)), strict=True):
            d = []
            for child in ws.spawn(MC_SAMPLES):
                net = Network([X.shape[1], n, 1], "relu", BETA, SW, np.random.default_rng(child))
                a = net.forward(X)[-1].inputs
                emp = (SW**2 * (a @ a.T) / n + BETA**2) if lr_scaled else (a @ a.T) / n
                d.append(np.linalg.norm(emp - lim) / np.linalg.norm(lim))
            dists.append(d)
        fit = fit_rate(MC_WIDTHS, dists)
        return fit.consistent(), "monte-carlo", "finite SP networks -> limit: " + fit.describe()

    return check


DERIVATION = Derivation(
    name="standard",
    title="Standard parameterization: the same NNGP, an NTK that grows with the width",
    steps=(
        Step("1", P1, "expectation", derive=d1, ctx=C1, configs=CFG1),
        Step("2", P2, "expectation", derive=d2, ctx=Cl, configs=CFGl),
        Step("3", P3, "law_of_large_numbers", uses=("2",), derive=d3, ctx=Cl),
        Step(
            "4",
            P4,
            "gaussian_process",
            uses=("3",),
            derive=d4,
            ctx=Cl,
            extra_check=nngp_check("1", bias_std=BETA, weight_std_value=SW),
            note="the NNGP map of the NTK parameterization with weight scale sigma_w",
        ),
        Step("5", P5, "chain_rule", uses=("1",), derive=d5, ctx=C1N, configs=CFG1),
        Step(
            "6",
            P6,
            "law_of_large_numbers",
            uses=("4",),
            derive=d6,
            ctx=CL,
            extra_check=mc_check(False),
            note="the last layer's weight part of Theta^(L+1) grows like n_L",
        ),
        Step("7", P7, "chain_rule", uses=("1",), derive=d7, ctx=C1N, configs=CFG1),
        Step(
            "8",
            P8,
            "law_of_large_numbers",
            uses=("4",),
            derive=d8,
            ctx=CL,
            extra_check=mc_check(True),
            note="weights' learning rate scaled by sigma_w^2/n_L: the NTK parameterization's term",
        ),
    ),
    hypotheses=(
        "w^(l) i.i.d. N(0, sigma_w^2/n_l), b i.i.d. N(0, 1); no 1/sqrt(n) in the forward pass",
        "limits taken sequentially",
    ),
)
