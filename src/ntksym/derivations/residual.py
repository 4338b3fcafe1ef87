"""A residual network: the NNGP and NTK recursions of a branch with multiplier lambda.

The network (NTK parameterization, every ``W``, ``b`` i.i.d. N(0, 1), hidden widths all
equal, ``n_l = n_{l+1}``):

* ``alpha^(0) = x``; ``alpha~^(1)_k = sum_j w^(0)_kj x_j / sqrt(n_0) + beta b^(0)_k``;
* ``alpha~^(l+1)_k = alpha~^(l)_k + lambda sum_j w^(l)_kj alpha^(l)_j / sqrt(n_l) + beta
  b^(l)_k`` for ``l = 1..L-1``: the identity plus a branch ``lambda W sigma(.)``;
* ``alpha^(l) = sigma(alpha~^(l))`` for ``l = 1..L-1``.

The engine derives, from these definitions,

    Sigma^(l+1) = Sigma^(l) + lambda^2 E[sigma(u) sigma(v)] + beta^2,
    Theta^(L+1) = Theta^(L) (1 + lambda^2 E[sigma'(u) sigma'(v)]) + lambda^2 E[sigma(u) sigma(v)]
                  + beta^2,

with ``(u, v) ~ N(0, Sigma^(l))``: the skip connection carries the kernels forward
unchanged and the branch adds a feedforward layer's increment. On the way, (6) shows
the cross terms between the skip and the branch, ``(lambda / sqrt(n)) w_{k'k}
sigma'(alpha~_k) Theta^(L)``, vanish only in the limit: at finite width they are the
residual network's own fluctuation, of order ``n^(-1/2)``.

Compared with a published form: with ``lambda^2 E[sigma sigma] + beta^2 = Sigma^(L+1) -
Sigma^(L)`` the recursion reads ``Theta^(L+1) = Theta^(L)(1 + lambda^2 Sigmadot) +
Sigma^(L+1) - Sigma^(L)``, the form of the residual-NTK literature (Huang et al. 2020;
Hayou et al. 2021, "Stable ResNet", with ``lambda_l`` per block). The papers' own
displays were not available offline to transcribe line by line, so no slip in them is
claimed here; the recursion itself is checked numerically against
``ntksym.stax.reference_kernels`` of ``stax.serial(Dense, [FanOut(2), parallel(serial(Relu,
Dense(W_std=lambda, b_std=beta)), Identity), FanInSum] x 2)`` and by Monte Carlo.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy as sp

from ntksym.extend import (
    OBJECTS,
    ZF,
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
    beta,
    definition_check,
    index,
    kernel_check,
    l,
    layer_parameter_sum,
    merge_sums,
    scalar,
    sigma,
    sigmadot,
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

lam = scalar("lambda")
k, kp, i, ip, j = (index(s) for s in ("k", "k'", "i", "i'", "j"))
n0, n1, nl, nl1, nL, nL1 = (width(m) for m in (0, 1, l, l + 1, L, L + 1))
dK = sp.KroneckerDelta(k, kp)
u, v = sp.symbols("u v", real=True)


def r(name: str, e: sp.Basic, ctx: Context) -> sp.Basic:
    return apply_rule(name, e, ctx)


def unfold_activations(e: sp.Basic, ctx: Context) -> sp.Basic:
    """Unfold only ``alpha^(m)`` (the branch's input), not the skip's ``alpha~^(m)``."""

    def is_post(t: sp.Basic) -> bool:
        info = OBJECTS.get(getattr(t, "base", None))
        return isinstance(t, sp.Indexed) and info is not None and info.kind == "a"

    return e.replace(is_post, lambda t: r("definition", t, ctx))


def _param_sum(layer: object, fx: sp.Expr, fxp: sp.Expr, n_in: sp.Expr, n_out: sp.Expr) -> sp.Expr:
    """Definition of the NTK: the sum over one layer's weights and biases."""
    return layer_parameter_sum(layer, fx, fxp, n_in, n_out, i, j)


# ---------------------------------------------------------------- the network
BRANCH = lam * sp.Sum(W(l)[k, j] * alpha(l)[j], (j, 1, nl)) / sp.sqrt(nl) + beta * b(l)[k]
D0 = sp.Eq(alpha(0)[k], x()[k])
D1 = sp.Eq(
    alpha_t(1)[k],
    sp.Sum(W(0)[k, j] * alpha(0)[j], (j, 1, n0)) / sp.sqrt(n0) + beta * b(0)[k],
)
D2 = ForAll(sp.Eq(alpha_t(l + 1)[k], alpha_t(l)[k] + BRANCH), sp.Tuple(l, 1, L - 1))
D3 = ForAll(sp.Eq(alpha(l)[k], sigma(alpha_t(l)[k])), sp.Tuple(l, 1, L - 1))
H = Tends(Theta(L, i, ip), Theta_inf(L) * sp.KroneckerDelta(i, ip), nL)
DEFS = {"d0": D0, "d1": D1, "d2": D2, "d3": D3}

C1 = Context(ranges={k: n1, kp: n1, i: n0, j: n1})
Cl = Context(ranges={k: nl1, kp: nl1, i: nl, j: nl, "limit_width": nl})
CL = Context(ranges={k: nL1, kp: nL1, i: nL, ip: nL, j: nL1, "limit_width": nL})
#: through the skip, k and k' index units of alpha~^(L) too (n_{L+1} = n_L)
CL6 = CL.replace(ranges={**CL.ranges, k: nL, kp: nL})
C1N = C1.replace(names={Sigma(1): E(alpha_t(1)[k] * alpha_t(1, True)[k])})
CFG1: tuple[WidthConfig, ...] = (({}, {0: 2, 1: 2}), ({}, {0: 3, 1: 1}))
#: residual layers need equal widths on both sides of a block
CFGl: tuple[WidthConfig, ...] = (({l: 1}, {0: 2, 1: 2, 2: 2}), ({l: 2}, {0: 1, 1: 2, 2: 2, 3: 2}))
CFGL: tuple[WidthConfig, ...] = (({L: 1, "theta_layers": 1}, {0: 1, 1: 2, 2: 2}),)

# ---------------------------------------------------------------- the NNGP
P1 = Chain(
    Sigma(1),
    E(alpha_t(1)[k] * alpha_t(1, True)[k]),
    sp.Sum(x()[i] * x(True)[i], (i, 1, n0)) / n0 + beta**2,
)


def d1(env: dict) -> sp.Basic:
    zz = E(alpha_t(1)[k] * alpha_t(1, True)[k])
    return Chain(Sigma(1), zz, r("expectation", unfold(zz, C1, 2), C1))


ZZ = alpha_t(l)[k] * alpha_t(l, True)[k]
#: Sigma~^(l+1)_k: the covariance of unit k over the block's own parameters, given the
#: earlier layers. Through the skip it depends on k (alpha~^(l)_k is fixed), so the name
#: carries the index; its finite-width value is the conditional expectation.
ST = Sigma_t(l + 1, k)
GIVEN = E(alpha_t(l + 1)[k] * alpha_t(l + 1, True)[k], l)
Cl2 = Cl.replace(names={ST: GIVEN})
P2 = sp.Eq(
    ST,
    ZZ
    + lam**2 * sp.Sum(sigma(alpha_t(l)[i]) * sigma(alpha_t(l, True)[i]), (i, 1, nl)) / nl
    + beta**2,
)


def d2(env: dict) -> sp.Basic:
    given = r("expectation", unfold(GIVEN, Cl), Cl)  # over w^(l), b^(l) only
    return sp.Eq(ST, unfold_activations(given, Cl))


P3 = Tends(
    ST,
    ZZ + lam**2 * E(sigma(alpha_t(l)[i]) * sigma(alpha_t(l, True)[i])) + beta**2,
    nl,
)


def d3(env: dict) -> sp.Basic:
    return Tends(ST, r("law_of_large_numbers", env["2"].rhs, Cl), nl)


P4 = sp.Eq(Sigma(l + 1), Sigma(l) + lam**2 * GaussE(sigma(u) * sigma(v), u, v, l) + beta**2)


def d4(env: dict) -> sp.Basic:
    # Sigma^(l+1) is the covariance E[alpha~^(l+1)_k alpha~^(l+1)_k'] in the limit: the
    # expectation of (3) (tower property), every expectation taken in the Gaussian limit
    e = r("tower", r("linearity", E(env["3"].rhs), Cl), Cl)
    e = r("gaussian_covariance", r("gaussian_process", e, Cl), Cl)
    return sp.Eq(Sigma(l + 1), e)


# ---------------------------------------------------------------- Theta^(1)
LHS5 = _param_sum(0, alpha_t(1)[k], alpha_t(1, True)[kp], n0, n1)
P5 = Chain(Theta(1, k, kp), LHS5, Sigma(1) * dK)


def d5(env: dict) -> sp.Basic:
    m2 = r("delta_sum", _eval_d(LHS5, C1, 2), C1)
    if not symbolic_equal(m2, env["1"].args[-1] * dK, C1):
        return Chain(Theta(1, k, kp), LHS5, m2)
    return Chain(Theta(1, k, kp), LHS5, Sigma(1) * dK)


# ---------------------------------------------------------------- Theta^(L+1)
ZL, ZLP = alpha_t(L + 1)[k], alpha_t(L + 1, True)[kp]
LHS6 = PSum(_d(ZL, theta) * _d(ZLP, theta))
SDOT = GaussE(sigmadot(u) * sigmadot(v), u, v, L)
# the sum at finite width, after the hypothesis: the skip, two cross terms, the branch
Zf, Zfp = ZF(L), ZF(L, True)
P6a = sp.Eq(
    LHS6,
    Theta(L, k, kp)
    + lam / sp.sqrt(nL) * sp.Sum(W(L)[kp, i] * sigmadot(Zfp(i, theta)) * Theta(L, k, i), (i, 1, nL))
    + lam / sp.sqrt(nL) * sp.Sum(W(L)[k, i] * sigmadot(Zf(i, theta)) * Theta(L, i, kp), (i, 1, nL))
    + lam**2
    / nL
    * sp.Sum(
        W(L)[k, i]
        * W(L)[kp, ip]
        * sigmadot(Zf(i, theta))
        * sigmadot(Zfp(ip, theta))
        * Theta(L, i, ip),
        (i, 1, nL),
        (ip, 1, nL),
    ),
)
_AC = (sp.Dummy("a", integer=True), sp.Dummy("c", integer=True))
#: Theta^(L)_ac at finite width: the sum over the first layers' parameters
_THETA = PSum(_d(Zf(_AC[0], theta), theta) * _d(Zfp(_AC[1], theta), theta))
P6 = Tends(LHS6, (1 + lam**2 * SDOT) * Theta_inf(L) * dK, nL)


def _finite_6() -> sp.Expr:
    """The parameter sum through the first layers, written with ``Theta^(L)``."""
    fx, fxp = (_with_theta(unfold_activations(unfold(z, CL6), CL6)) for z in (ZL, ZLP))
    prod = r("chain_rule", sp.Derivative(fx, theta), CL6) * r(
        "chain_rule", sp.Derivative(fxp, theta), CL6
    )
    prod = sp.Add(*[merge_sums(t) for t in sp.Add.make_args(sp.expand(prod))])
    s = r("parameter_sum", PSum(prod), CL6)
    return s.replace(lambda t: isinstance(t, PSum), lambda t: Theta(L, *_pair(t)))


def d6a(env: dict) -> sp.Basic:
    env["6.finite"] = _finite_6()
    return sp.Eq(LHS6, env["6.finite"])


def d6(env: dict) -> sp.Basic:
    finite = env["6.finite"] if "6.finite" in env else _finite_6()
    s = r("delta_sum", r("induction_hypothesis", finite, CL6), CL6)
    # the cross terms carry lambda/sqrt(n_L) and no sum: they vanish in the limit
    s = r("vanishing_terms", s, CL6)
    lim = r("law_of_large_numbers", s, CL6)
    lim = r("gaussian_moments", r("independence", r("linearity", lim, CL6), CL6), CL6)
    lim = r("gaussian_process", lim, CL6)
    return Tends(LHS6, sp.factor_terms(lim), nL)


LHS7 = _param_sum(L, ZL, ZLP, nL, nL1)
P7 = Tends(LHS7, (lam**2 * GaussE(sigma(u) * sigma(v), u, v, L) + beta**2) * dK, nL)


def d7(env: dict) -> sp.Basic:
    finite = _eval_d(LHS7, CL, 1)
    lim = r("law_of_large_numbers", finite, CL.replace(ranges={**CL.ranges, "lln_index": i}))
    return Tends(LHS7, r("gaussian_process", unfold(lim, CL), CL), nL)


P8 = Tends(
    Theta(L + 1, k, kp),
    (Theta_inf(L) * (1 + lam**2 * SDOT) + lam**2 * GaussE(sigma(u) * sigma(v), u, v, L) + beta**2)
    * dK,
    nL,
)


def d8(env: dict) -> sp.Basic:
    # the NTK is the sum over the first layers' parameters (6) and the last block's (7)
    return Tends(Theta(L + 1, k, kp), sp.factor_terms(sp.expand(env["6"].rhs + env["7"].rhs)), nL)


# ---------------------------------------------------------------- the numeric checks
#: The branch multiplier, bias scale and number of residual blocks of the checked network.
LAMBDA, BETA, BLOCKS = 0.7, 0.3, 2


def stax_network(width: int) -> Layer:
    """``Dense`` then :data:`BLOCKS` residual blocks ``x + Dense(lambda, beta)(relu(x))``."""
    from ntksym import stax

    block = stax.serial(
        stax.FanOut(2),
        stax.parallel(
            stax.serial(stax.Relu(), stax.Dense(width, W_std=LAMBDA, b_std=BETA)),
            stax.Identity(),
        ),
        stax.FanInSum(),
    )
    return stax.serial(stax.Dense(width, W_std=1.0, b_std=BETA), *[block] * BLOCKS)


ARCH = Architecture(
    network=stax_network,
    values={lam: LAMBDA, beta: BETA},
    activations={sigma: "relu"},
    depth=1 + BLOCKS,
    # the network's output is a whole hidden layer: its NTK costs ~ n^3 per network
    widths=(32, 64, 128, 256),
)
LABELS = {"sigma1": "1", "sigma_next": "4", "theta": "8"}

DERIVATION = Derivation(
    name="residual",
    title="A residual network: NNGP and NTK with a branch multiplier lambda",
    steps=(
        Step("d0", D0, "definition", note="the input layer"),
        Step("d1", D1, "definition", uses=("d0",), derive=definition_check("d1", DEFS)),
        Step(
            "d2",
            D2,
            "definition",
            uses=("d1", "d3"),
            derive=definition_check("d2", DEFS),
            note=text("the skip needs {n}", n=sp.Eq(nl1, nl)),
        ),
        Step("d3", D3, "definition", uses=("d1", "d2"), derive=definition_check("d3", DEFS)),
        Step("h", H, "hypothesis", note=text("induction hypothesis at depth {L}", L=L)),
        Step("1", P1, "expectation", derive=d1, ctx=C1, configs=CFG1),
        Step(
            "2",
            P2,
            "expectation",
            derive=d2,
            ctx=Cl2,
            configs=CFGl,
            note="over the block's own parameters, given the earlier layers",
        ),
        Step("3", P3, "law_of_large_numbers", uses=("2",), derive=d3, ctx=Cl),
        Step(
            "4",
            P4,
            "gaussian_covariance",
            uses=("3",),
            derive=d4,
            ctx=Cl,
            extra_check=kernel_check(LABELS, ARCH, own="sigma_next", monte_carlo=False),
            note=text("the skip carries {S} forward unchanged", S=Sigma(l)),
        ),
        Step("5", P5, "delta_sum", uses=("1",), derive=d5, ctx=C1N, configs=CFG1),
        Step(
            "6.1",
            P6a,
            "parameter_sum",
            uses=("h",),
            derive=d6a,
            ctx=CL6.replace(names={Theta: sp.Lambda((sp.Dummy("m"), *_AC), _THETA)}),
            configs=CFGL,
            note="the sum over the first layers' parameters, with the chain rule through "
            "the skip and the branch; exact at finite width",
        ),
        Step(
            "6",
            P6,
            "vanishing_terms",
            uses=("6.1", "h"),
            derive=d6,
            ctx=CL6,
            note=text(
                "the cross terms between skip and branch carry {c} and vanish in the limit",
                c=lam / sp.sqrt(nL),
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
            extra_check=kernel_check(LABELS, ARCH),
        ),
    ),
    network=("d0", "d1", "d2", "d3", "h"),
    hypotheses=(
        text("{wb} i.i.d. {N}", wb=Tex("W, b", "W, b"), N=Tex(r"\mathcal{N}(0, 1)", "N(0, 1)")),
        "all hidden widths equal; limits taken sequentially",
    ),
)
