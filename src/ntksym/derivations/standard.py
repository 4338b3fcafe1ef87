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
  the *NTK* parameterization; the Monte-Carlo quantity of (8), ``sigma_w^2 a.a'/n +
  beta^2``, is also the finite network's NNGP.
* (5): ``Theta^(1) = (x.x' + beta^2) delta``: in terms of ``Sigma^(1)`` the weight part
  carries the factor ``n_0 / sigma_w^2``.
* (6): the last layer's weight part of ``Theta^(L+1)`` is ``n_L`` times a finite limit:
  divided by ``n_L`` it tends to ``E_g[sigma sigma]``, so the NTK diverges linearly in the
  width unless the learning rate of the weights is scaled down.
* (7), (8): with the weights' learning rate scaled by ``sigma_w^2 / n_m`` (biases
  unscaled) the weighted kernel of layer 1 is exactly ``Sigma^(1)`` and the last layer's
  part tends to ``Sigma^(L+1)`` -- the NTK parameterization's terms.
* (9), (10): through the earlier layers (the seed's (24)) the weighted kernel tends to
  ``sigma_w^2 E_g[sigmadot sigmadot] Theta_inf^(L)``, so the learning-rate-scaled NTK obeys
  the NTK parameterization's recursion ``Theta_inf^(L) Sigmadot^(L+1) + Sigma^(L+1)``,
  compared with ``ntksym.reference.recursion`` and with empirical NTKs. (9) has no
  ``1/n_L`` in front of its sum (each ``w`` carries ``1/sqrt(n_L)``); the derivation
  writes ``sum_i g_i = (1/n_L) sum_i n_L g_i`` so the law of large numbers applies to the
  O(1) terms ``n_L g_i``.

For learning rates: with one rate ``eta`` for every parameter the kernel that gradient
descent sees, ``eta Theta``, grows like the widths ((5), (6)), so ``eta`` must shrink like
``1/n`` for training to stay stable, and then the bias terms (of order 1) drop out of the
limit; scaling only the weights' rates by ``sigma_w^2/n_m`` gives the NTK
parameterization's kernel, bias terms included ((7)-(10)).

Monte Carlo: ``ntksym.empirical.Network`` cannot express the standard parameterization
(it is written in the NTK one); its forward pass has the same law, so the checks of (6),
(8), (9) use its hidden layer with the standard parameterization's gradients written out
(:func:`mc_check`). For (10) the empirical NTK of NTK-parameterized networks is the
learning-rate-scaled standard one exactly (``sigma_w^2/n (d f/d w)^2 = (d f/d omega)^2``).
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from ntksym.derive.finite_width import NotExact
from ntksym.derive.numeric import MC_SAMPLES, MC_WIDTHS, fit_rate, mc_inputs
from ntksym.derive.steps import CheckFn
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
    Text,
    Theta,
    Theta_inf,
    W,
    WidthConfig,
    alpha_t,
    apply_rule,
    b,
    beta,
    index,
    l,
    merge_sums,
    nngp_check,
    recursion_check,
    sigma,
    sigmadot,
    symbolic_equal,
    text,
    theta,
    unfold,
    weight_std,
    width,
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
from ntksym.extend import (
    with_theta as _with_theta,
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
CFG1: tuple[WidthConfig, ...] = (({}, {0: 2, 1: 2}), ({}, {0: 3, 1: 1}))
CFGl: tuple[WidthConfig, ...] = (({l: 1}, {0: 2, 1: 2, 2: 2}),)
#: The values of sigma_w and beta in the numeric and Monte-Carlo checks.
SW, BETA = 1.7, 0.3


def r(name: str, e: sp.Basic, ctx: Context) -> sp.Basic:
    return apply_rule(name, e, ctx)


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


# ---------------------------------------------------------------- through the earlier layers
LHS9 = PSum(_d(ZL, theta) * _d(ZLP, theta))
P9 = Tends(LHS9, sw**2 * dK * GaussE(sigmadot(u) * sigmadot(v), u, v, L) * Theta_inf(L), nL)


def d9(env: dict) -> sp.Basic:
    fx, fxp = (_with_theta(unfold(z, CL, 2)) for z in (ZL, ZLP))
    prod = r("chain_rule", sp.Derivative(fx, theta), CL) * r(
        "chain_rule", sp.Derivative(fxp, theta), CL
    )
    prod = sp.Add(*[merge_sums(t) for t in sp.Add.make_args(sp.expand(prod))])
    s = r("parameter_sum", PSum(prod), CL)
    # the weighted kernel of the first L layers is Theta^(L); the hypothesis (19)
    s = s.replace(lambda t: isinstance(t, PSum), lambda t: Theta(L, *_pair(t)))
    s = r("delta_sum", r("induction_hypothesis", s, CL), CL)
    # no 1/n_L in front: each w carries 1/sqrt(n_L). Write sum_i g_i = (1/n_L) sum_i n_L g_i
    # (an identity), so that the law of large numbers applies to the O(1) terms n_L g_i.
    s = s.replace(
        lambda t: isinstance(t, sp.Sum) and t.limits[0][2] == nL,
        lambda t: sp.Sum(nL * t.function, *t.limits) / nL,
    )
    lim = r("law_of_large_numbers", s, CL)
    lim = r("gaussian_moments", r("independence", r("linearity", lim, CL), CL), CL)
    lim = r("gaussian_process", lim, CL)
    env["Sigmadot(L+1)"] = sp.simplify(lim / (dK * Theta_inf(L)))
    return Tends(LHS9, lim, nL)


P10 = sp.Eq(Theta(L + 1, k, kp), (Theta_inf(L) * Sigma_dot(L + 1) + Sigma(L + 1)) * dK)


def d10(env: dict) -> sp.Basic:
    total = env["9"].rhs + env["8"].rhs.subs(Sigma(L + 1), env["4"].rhs.subs(l, L))
    sdot, sig = env["Sigmadot(L+1)"], env["4"].rhs.subs(l, L)
    named = total.subs(sdot * Theta_inf(L) * dK, Sigma_dot(L + 1) * Theta_inf(L) * dK)
    named = sp.expand(named).subs(sp.expand(sig * dK), Sigma(L + 1) * dK)
    if not symbolic_equal(named.subs({Sigma_dot(L + 1): sdot, Sigma(L + 1): sig}), total, CL):
        raise ValueError("naming changed the value")
    return sp.Eq(Theta(L + 1, k, kp), sp.factor_terms(named))


LABELS = {"sigma1": "1", "sigma_next": "4", "sigmadot": "Sigmadot(L+1)", "theta": "10"}


# ---------------------------------------------------------------- Monte Carlo
def _gram(limit: sp.Expr, env: dict) -> Any:
    """The derived limit at ``L = 1`` (``k = k'``) on the Monte-Carlo inputs (mpmath).

    ``Theta_inf^(1)`` is ``Sigma^(1)``: step (7) shows it exactly.
    """
    from ntksym.activations import get_activation
    from ntksym.derive.recursion import next_gram, sigma1_gram
    from ntksym.derive.symbols import weight_std as sw_sym

    scalars = {beta: sp.Float(BETA, 20), sw_sym: sp.Float(SW, 20)}
    e = limit.xreplace({dK: sp.Integer(1)}).subs(Sigma(L + 1), env["4"].rhs.subs(l, L))
    e = e.subs(L, 1)
    s1 = sigma1_gram(env["1"].args[-1], mc_inputs(), scalars, 15)
    if not e.has(Theta_inf(1)):
        return next_gram(e, s1, get_activation("relu"), scalars, 15)
    per = sp.expand(e / Theta_inf(1))
    if per.has(Theta_inf(1)):
        raise NotExact(f"the limit is not linear in Theta_inf^(1): {e}")
    return next_gram(per, s1, get_activation("relu"), scalars, 15) * s1


def _finite(kind: str, net: Any, X: Any, n: int, s1: Any) -> Any:
    """The finite-width quantity of step ``kind`` on one network (``k = k' = 1``)."""
    passes = net.forward(X)
    a = passes[-1].inputs  # the hidden layer alpha^(1)
    if kind == "6":  # (1/n) sum_j d f/d w_j d f'/d w_j, with d f / d w_j = alpha_j
        return (a @ a.T) / n
    if kind == "8":  # the same with the learning rate sigma_w^2/n, plus the bias part
        return SW**2 * (a @ a.T) / n + BETA**2
    # "9": sum_i w_i^2 sigmadot(z_i) sigmadot(z'_i) Theta^(1)_ii with w ~ N(0, sigma_w^2/n)
    w = SW * net.weights[1][0] / n**0.5
    dz = net.activation.numpy_derivative(passes[0].preactivations)
    return ((dz * w**2) @ dz.T) * s1


def mc_check(kind: str) -> CheckFn:
    """Finite standard-parameterization networks ``[10, n, 1]`` against the derived limit.

    ``ntksym.empirical.Network`` is written in the NTK parameterization and cannot express
    the standard one directly; its forward pass has the same law (``w = sigma_w omega /
    sqrt(n)``), so its hidden layer and ``sigma_w omega / sqrt(n)`` serve as a standard
    network's. The standard parameterization's gradients are written out
    (``d alpha~_k / d w_kj = alpha_j``, ``d alpha~_k / d b_k = beta``; exact, steps (5),
    (7)); the distance to the derived limit must shrink like ``n^(-1/2)``
    (:func:`ntksym.derive.numeric.fit_rate`).
    """

    def check(stmt: sp.Basic, ctx: Context, env: dict) -> tuple[bool, str, Text | str]:
        import numpy as np

        from ntksym.derive.recursion import sigma1_gram
        from ntksym.empirical import Network

        lim = _gram(stmt.rhs, env)
        X = mc_inputs()
        s1 = sigma1_gram(env["1"].args[-1], X, {beta: BETA, weight_std: SW}, 15)
        dists = []
        root = np.random.SeedSequence(60 + int(kind))
        for n, ws in zip(MC_WIDTHS, root.spawn(len(MC_WIDTHS)), strict=True):
            d = []
            for child in ws.spawn(MC_SAMPLES):
                net = Network([X.shape[1], n, 1], "relu", BETA, SW, np.random.default_rng(child))
                emp = _finite(kind, net, X, n, s1)
                d.append(np.linalg.norm(emp - lim) / np.linalg.norm(lim))
            dists.append(d)
        fit = fit_rate(MC_WIDTHS, dists)
        return (
            fit.consistent(),
            "monte-carlo",
            Text("finite SP networks tend to the limit: ", fit.describe()),
        )

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
            note=text("the NNGP map of the NTK parameterization with weight scale {s}", s=sw),
        ),
        Step("5", P5, "chain_rule", uses=("1",), derive=d5, ctx=C1N, configs=CFG1),
        Step(
            "6",
            P6,
            "law_of_large_numbers",
            uses=("4",),
            derive=d6,
            ctx=CL,
            extra_check=mc_check("6"),
            note=text("the last layer's weight part of {T} grows like {n}", T=Theta(L + 1), n=nL),
        ),
        Step("7", P7, "chain_rule", uses=("1",), derive=d7, ctx=C1N, configs=CFG1),
        Step(
            "8",
            P8,
            "law_of_large_numbers",
            uses=("4",),
            derive=d8,
            ctx=CL,
            extra_check=mc_check("8"),
            note=text(
                "weights' learning rate scaled by {r}: the NTK parameterization's term",
                r=sw**2 / nL,
            ),
        ),
        Step(
            "9",
            P9,
            "law_of_large_numbers",
            uses=("4",),
            derive=d9,
            ctx=CL,
            extra_check=mc_check("9"),
            note=text(
                "{T} here is the kernel of the first {L} layers with the weights' learning "
                "rates scaled by {r} (hypothesis (19) for it)",
                T=Theta(L),
                L=L,
                r=Tex(r"\sigma_w^2/n_m", "sigma_w^2/n_m"),
            ),
        ),
        Step(
            "10",
            P10,
            "algebra",
            uses=("4", "8", "9"),
            derive=d10,
            ctx=CL,
            extra_check=recursion_check(LABELS, weight_std_value=SW, bias_std=BETA),
            note="the learning-rate-scaled NTK has the NTK parameterization's recursion",
        ),
    ),
    hypotheses=(
        text(
            "{w} i.i.d. {Nw}, {b} i.i.d. {Nb}; no {s} in the forward pass",
            w=Tex(r"w^{(l)}", "w^(l)"),
            Nw=Tex(r"\mathcal{N}(0, \sigma_w^2/n_l)", "N(0, sigma_w^2/n_l)"),
            b=Tex("b", "b"),
            Nb=Tex(r"\mathcal{N}(0, 1)", "N(0, 1)"),
            s=Tex(r"1/\sqrt{n}", "1/sqrt(n)"),
        ),
        "limits taken sequentially",
        text(
            "(19) for the learning-rate-scaled kernel: {f}",
            f=Tex(
                r"\Theta^{(L)}_{ii'} \to \Theta_\infty^{(L)}\,\delta_{ii'}",
                "Theta^(L)_ii' -> Theta_inf^(L) delta_ii'",
            ),
        ),
    ),
)
