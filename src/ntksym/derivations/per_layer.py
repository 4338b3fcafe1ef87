"""A different weight scale, bias scale and activation at every layer.

The network (NTK parameterization, every ``W``, ``b`` i.i.d. N(0, 1)):

* ``alpha^(0) = x``;
* ``alpha~^(l+1)_k = sigma_w^(l) sum_j w^(l)_kj alpha^(l)_j / sqrt(n_l) + beta^(l) b^(l)_k``
  for ``l = 0..L-1``;
* ``alpha^(l)_k = phi_l(alpha~^(l)_k)`` for ``l = 1..L-1``, one activation per layer.

``sigma_w^(l)``, ``beta^(l)`` are declared with :func:`ntksym.extend.layer_scalar` and
``phi_l`` with :func:`ntksym.extend.layer_activation`; the rules unfold *these*
definitions (``network=``), so every step below follows them. What the steps show: the
seed's recursion with layer-indexed maps,

    Sigma^(1) = sigma_w^(0)^2 x.x'/n_0 + beta^(0)^2,
    Sigma^(l+1) = sigma_w^(l)^2 E[phi_l(u) phi_l(v)] + beta^(l)^2,
    Sigmadot^(L+1) = sigma_w^(L)^2 E[phi_L'(u) phi_L'(v)],
    Theta^(L+1) = Theta^(L) Sigmadot^(L+1) + Sigma^(L+1),

with ``(u, v) ~ N(0, Sigma^(l))``. The NNGP step and the final step are evaluated on a
concrete network (three layers: ReLU then erf, different scales) and compared with
``ntksym.stax.reference_kernels`` of the same ``stax.serial(Dense, Relu, Dense, Erf,
Dense)``, and the NTK with Monte Carlo over finite networks (``ntksym.stax.monte_carlo``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import sympy as sp

from ntksym.extend import (
    Architecture,
    Chain,
    Context,
    Derivation,
    E,
    ForAll,
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
    W,
    WidthConfig,
    alpha,
    alpha_t,
    apply_rule,
    b,
    definition_check,
    index,
    kernel_check,
    l,
    layer_activation,
    layer_parameter_sum,
    layer_scalar,
    merge_sums,
    symbolic_equal,
    text,
    theta,
    unfold,
    width,
    x,
)

if TYPE_CHECKING:
    from ntksym.stax import Layer
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

sw = layer_scalar("sigma_w_l", tex=r"\sigma_w", plain="sigma_w")
bt = layer_scalar("beta_l", tex=r"\beta", plain="beta")
phi, phidot = layer_activation("phi")

k, kp, i, ip, j = (index(s) for s in ("k", "k'", "i", "i'", "j"))
n0, n1, nl, nl1, nL, nL1 = (width(m) for m in (0, 1, l, l + 1, L, L + 1))
dK = sp.KroneckerDelta(k, kp)
u, v = sp.symbols("u v", real=True)


def r(name: str, e: sp.Basic, ctx: Context) -> sp.Basic:
    return apply_rule(name, e, ctx)


def _param_sum(layer: object, fx: sp.Expr, fxp: sp.Expr, n_in: sp.Expr, n_out: sp.Expr) -> sp.Expr:
    """Definition of the NTK: the sum over one layer's weights and biases."""
    return layer_parameter_sum(layer, fx, fxp, n_in, n_out, i, j)


# ---------------------------------------------------------------- the network
PRE = sp.Sum(W(l)[k, j] * alpha(l)[j], (j, 1, nl)) / sp.sqrt(nl)
D0 = sp.Eq(alpha(0)[k], x()[k])
D1 = ForAll(sp.Eq(alpha_t(l + 1)[k], sw(l) * PRE + bt(l) * b(l)[k]), sp.Tuple(l, 0, L - 1))
D2 = ForAll(sp.Eq(alpha(l)[k], phi(l, alpha_t(l)[k])), sp.Tuple(l, 1, L - 1))
H = Tends(Theta(L, i, ip), Theta_inf(L) * sp.KroneckerDelta(i, ip), nL)
DEFS = {"d0": D0, "d1": D1, "d2": D2}

C1 = Context(ranges={k: n1, kp: n1, i: n0, j: n1})
Cl = Context(ranges={k: nl1, kp: nl1, i: nl, j: nl})
CL = Context(ranges={k: nL1, kp: nL1, i: nL, ip: nL, j: nL1})
C1N = C1.replace(names={Sigma(1): E(alpha_t(1)[k] * alpha_t(1, True)[k])})
CFG1: tuple[WidthConfig, ...] = (({}, {0: 2, 1: 2}), ({}, {0: 3, 1: 1}))
CFGl: tuple[WidthConfig, ...] = (({l: 1}, {0: 2, 1: 2, 2: 2}), ({l: 2}, {0: 1, 1: 2, 2: 1, 3: 2}))

# ---------------------------------------------------------------- the NNGP
P1 = Chain(
    Sigma(1),
    E(alpha_t(1)[k] * alpha_t(1, True)[k]),
    sw(0) ** 2 * sp.Sum(x()[i] * x(True)[i], (i, 1, n0)) / n0 + bt(0) ** 2,
)


def d1(env: dict) -> sp.Basic:
    zz = E(alpha_t(1)[k] * alpha_t(1, True)[k])
    return Chain(Sigma(1), zz, r("expectation", unfold(zz, C1, 2), C1))


P2 = Chain(
    Sigma_t(l + 1),
    E(alpha_t(l + 1)[k] * alpha_t(l + 1, True)[k], l),
    sw(l) ** 2 * sp.Sum(phi(l, alpha_t(l)[i]) * phi(l, alpha_t(l, True)[i]), (i, 1, nl)) / nl
    + bt(l) ** 2,
)


def d2(env: dict) -> sp.Basic:
    zz = E(alpha_t(l + 1)[k] * alpha_t(l + 1, True)[k], l)
    return Chain(Sigma_t(l + 1), zz, unfold(r("expectation", unfold(zz, Cl), Cl), Cl))


P3 = Tends(
    Sigma_t(l + 1),
    sw(l) ** 2 * E(phi(l, alpha_t(l)[i]) * phi(l, alpha_t(l, True)[i])) + bt(l) ** 2,
    nl,
)


def d3(env: dict) -> sp.Basic:
    return Tends(Sigma_t(l + 1), r("law_of_large_numbers", env["2"].args[-1], Cl), nl)


P4 = sp.Eq(Sigma(l + 1), sw(l) ** 2 * GaussE(phi(l, u) * phi(l, v), u, v, l) + bt(l) ** 2)


def d4(env: dict) -> sp.Basic:
    return sp.Eq(Sigma(l + 1), r("gaussian_process", env["3"].rhs, Cl))


# ---------------------------------------------------------------- Theta^(1)
LHS5 = _param_sum(0, alpha_t(1)[k], alpha_t(1, True)[kp], n0, n1)
P5 = Chain(Theta(1, k, kp), LHS5, Sigma(1) * dK)


def d5(env: dict) -> sp.Basic:
    m2 = r("delta_sum", _eval_d(LHS5, C1, 2), C1)
    if not symbolic_equal(m2, env["1"].args[-1] * dK, C1):
        return Chain(Theta(1, k, kp), LHS5, m2)  # not (1)'s Sigma^(1): say what it is
    return Chain(Theta(1, k, kp), LHS5, Sigma(1) * dK)


# ---------------------------------------------------------------- Theta^(L+1)
ZL, ZLP = alpha_t(L + 1)[k], alpha_t(L + 1, True)[kp]
LHS6 = PSum(_d(ZL, theta) * _d(ZLP, theta))
P6 = Tends(LHS6, sw(L) ** 2 * dK * GaussE(phidot(L, u) * phidot(L, v), u, v, L) * Theta_inf(L), nL)


def d6(env: dict) -> sp.Basic:
    fx, fxp = (_with_theta(unfold(z, CL, 2)) for z in (ZL, ZLP))
    prod = r("chain_rule", sp.Derivative(fx, theta), CL) * r(
        "chain_rule", sp.Derivative(fxp, theta), CL
    )
    prod = sp.Add(*[merge_sums(t) for t in sp.Add.make_args(sp.expand(prod))])
    s = r("parameter_sum", PSum(prod), CL)
    # the sum over the first layers' parameters is Theta^(L)_ii'; the hypothesis (h)
    s = s.replace(lambda t: isinstance(t, PSum), lambda t: Theta(L, *_pair(t)))
    s = r("delta_sum", r("induction_hypothesis", s, CL), CL)
    lim = r("law_of_large_numbers", s, CL)
    lim = r("gaussian_moments", r("independence", r("linearity", lim, CL), CL), CL)
    lim = r("gaussian_process", lim, CL)
    env["Sigmadot(L+1)"] = sp.simplify(lim / (dK * Theta_inf(L)))
    return Tends(LHS6, lim, nL)


LHS7 = _param_sum(L, ZL, ZLP, nL, nL1)
P7 = Tends(LHS7, (sw(L) ** 2 * GaussE(phi(L, u) * phi(L, v), u, v, L) + bt(L) ** 2) * dK, nL)


def d7(env: dict) -> sp.Basic:
    finite = _eval_d(LHS7, CL, 1)
    lim = r("law_of_large_numbers", finite, CL.replace(ranges={**CL.ranges, "lln_index": i}))
    return Tends(LHS7, r("gaussian_process", unfold(lim, CL), CL), nL)


P8 = Tends(Theta(L + 1, k, kp), (Theta_inf(L) * Sigma_dot(L + 1) + Sigma(L + 1)) * dK, nL)


def d8(env: dict) -> sp.Basic:
    # the NTK is the sum over the first layers' parameters (6) and the last layer's (7)
    total = env["6"].rhs + env["7"].rhs
    sdot, sig = env["Sigmadot(L+1)"], env["4"].rhs.subs(l, L)
    named = total.subs(sdot * Theta_inf(L) * dK, Sigma_dot(L + 1) * Theta_inf(L) * dK)
    named = sp.expand(named).subs(sp.expand(sig * dK), Sigma(L + 1) * dK)
    if not symbolic_equal(named.subs({Sigma_dot(L + 1): sdot, Sigma(L + 1): sig}), total, CL):
        raise ValueError("naming Sigma^(L+1), Sigmadot^(L+1) changed the value")
    return Tends(Theta(L + 1, k, kp), sp.factor_terms(named), nL)


# ---------------------------------------------------------------- the numeric checks
#: (sigma_w, beta, activation after the layer) of each layer of the checked network.
LAYERS = ((1.3, 0.4, "relu"), (0.8, 0.2, "erf"), (1.6, 0.5, None))


def stax_network(width: int) -> Layer:
    """``stax.serial(Dense, Relu, Dense, Erf, Dense(1))`` with the scales of :data:`LAYERS`."""
    from ntksym import stax

    acts: dict[str, Callable[[], Layer]] = {"relu": stax.Relu, "erf": stax.Erf}
    layers = []
    for m, (w_std, b_std, act) in enumerate(LAYERS):
        out = 1 if m == len(LAYERS) - 1 else width
        layers.append(stax.Dense(out, W_std=w_std, b_std=b_std))
        if act is not None:
            layers.append(acts[act]())
    return stax.serial(*layers)


ARCH = Architecture(
    network=stax_network,
    values={
        **{sw(m): w for m, (w, _, _) in enumerate(LAYERS)},
        **{bt(m): c for m, (_, c, _) in enumerate(LAYERS)},
    },
    activations={(phi, m + 1): a for m, (_, _, a) in enumerate(LAYERS) if a is not None},
    depth=len(LAYERS),
)
LABELS = {"sigma1": "1", "sigma_next": "4", "sigmadot": "Sigmadot(L+1)", "theta": "8"}

DERIVATION = Derivation(
    name="per_layer",
    title="A different weight scale, bias scale and activation at every layer",
    steps=(
        Step("d0", D0, "definition", note="the input layer"),
        Step("d1", D1, "definition", uses=("d0", "d2"), derive=definition_check("d1", DEFS)),
        Step("d2", D2, "definition", uses=("d1",), derive=definition_check("d2", DEFS)),
        Step("h", H, "hypothesis", note=text("induction hypothesis at depth {L}", L=L)),
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
            extra_check=kernel_check(LABELS, ARCH, own="sigma_next", monte_carlo=False),
            note="the NNGP map of layer l uses that layer's scales and activation",
        ),
        Step("5", P5, "delta_sum", uses=("1",), derive=d5, ctx=C1N, configs=CFG1),
        Step(
            "6",
            P6,
            "law_of_large_numbers",
            uses=("4", "h"),
            derive=d6,
            ctx=CL,
            note=text(
                "chain rule through {p}, sum over {t}, hypothesis (h), law of large numbers, "
                "Gaussian moments, Gaussian-process limit",
                p=phi(L, u),
                t=Tex(r"\tilde\theta", "theta~"),
            ),
        ),
        Step("7", P7, "law_of_large_numbers", uses=("4",), derive=d7, ctx=CL),
        Step(
            "8",
            P8,
            "algebra",
            uses=("6", "7", "4"),
            derive=d8,
            ctx=CL,
            extra_check=kernel_check(LABELS, ARCH),
        ),
    ),
    network=("d0", "d1", "d2", "h"),
    hypotheses=(
        text("{wb} i.i.d. {N}", wb=Tex("W, b", "W, b"), N=Tex(r"\mathcal{N}(0, 1)", "N(0, 1)")),
        "limits taken sequentially",
    ),
)
