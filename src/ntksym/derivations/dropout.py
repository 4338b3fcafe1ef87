"""Dropout in training mode: the kernel map from the Bernoulli mask's moments.

The layer (neural-tangents' ``Dropout(rate, mode="train")``, ``rate = q`` the probability
of *keeping* a unit): ``y_k(x) = xi_k(x) h_k(x) / q`` with ``xi_k(x) ~ Bernoulli(q)``
independent over units and over examples, drawn independently of the network. Two
different examples ``x != x'`` get independent masks ``xi, eta``; an example paired with
itself gets one mask.

The engine derives, from ``xi^p = xi`` and ``E[xi] = q`` alone (rule
``bernoulli_moments``),

    E[y_k(x) y_k(x')] = E[h_k(x) h_k(x')]        (independent masks),
    E[y_k(x) y_k(x)]  = E[h_k(x)^2] / q          (one mask),

and the same factors for every parameter's gradient product (the mask does not depend
on the parameters), hence for the NTK: the covariance and the NTK keep their off-diagonal
entries and divide the diagonal ones (an example with itself) by ``q``. Each map is
compared at random points with the code's layer maps, the float64
(``ntksym.kernels.layer_maps.Float64Ops.dropout``) and the mpmath one
(``ntksym.reference.architecture.MpmathOps.dropout``), and each mask moment with a
Monte-Carlo average over seeded masks.

Reference: Srivastava et al. (2014), "Dropout: a simple way to prevent neural networks
from overfitting", JMLR 15 (the inverted-dropout scaling ``1/q``); the infinite-width
limit as in neural-tangents' ``stax.Dropout`` (Novak et al. 2020).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp

from ntksym.derive.layer_checks import (
    Point,
    both_checks,
    code_layer_map,
    covariance_points,
    value_check,
)
from ntksym.derive.rules_layers import Ex, facts
from ntksym.extend import Context, Derivation, Step, Tex, apply_rule, index, scalar, text, theta

q = scalar("q")
k = index("k")
h, hp = sp.IndexedBase("h"), sp.IndexedBase("h'")
xi, xip = sp.IndexedBase("xi"), sp.IndexedBase("eta")  # the masks at x and at x' != x
#: the kernels of the layer's input: Sigma(x, x), Sigma(x', x'), Sigma(x, x'), and the
#: NTK Theta(x, x'), Theta(x, x)
S11, S22 = scalar("Sigma_11"), scalar("Sigma_22")
S12, T12, T11 = scalar("Sigma_12", False), scalar("Theta_12", False), scalar("Theta_11")
#: a unit of the input as a function of one parameter p (= theta) of the earlier layers
hf, hfp = sp.Function("h_k"), sp.Function("h'_k")

MOMENTS = {
    Ex(h[k] * hp[k]): S12,
    Ex(h[k] ** 2): S11,
    Ex(sp.Derivative(hf(theta), theta) * sp.Derivative(hfp(theta), theta)): T12,
    Ex(sp.Derivative(hf(theta), theta) ** 2): T11,
}
#: the masks xi (at x) and eta (at x' != x), each Bernoulli(q); the input's moments
CTX = Context(facts=facts(masks={xi: q, xip: q}, moments=MOMENTS))

Y, YP = xi[k] * h[k] / q, xip[k] * hp[k] / q  # two examples, two masks
YS = xi[k] * h[k] / q  # the same example: one mask


def r(name: str, e: sp.Basic) -> sp.Basic:
    return apply_rule(name, e, CTX)


# ---------------------------------------------------------------- covariance
P1 = sp.Eq(Ex(xi[k] * xip[k]), q**2)
P2 = sp.Eq(Ex(xi[k] ** 2), q)


def d1(env: dict) -> sp.Basic:
    return sp.Eq(P1.lhs, r("bernoulli_moments", P1.lhs))


def d2(env: dict) -> sp.Basic:
    return sp.Eq(P2.lhs, r("bernoulli_moments", P2.lhs))


P3 = sp.Eq(Ex(Y * YP), S12)
P4 = sp.Eq(Ex(YS * YS), S11 / q)


def d_cov(lhs: sp.Expr) -> sp.Basic:
    return sp.Eq(lhs, r("field_moments", r("bernoulli_moments", lhs)))


# ---------------------------------------------------------------- NTK
#: y as a function of the parameter: the mask does not depend on it
YF, YFP = xi[k] * hf(theta) / q, xip[k] * hfp(theta) / q
YFS = xi[k] * hf(theta) / q
G = sp.Derivative(YF, theta, evaluate=False) * sp.Derivative(YFP, theta, evaluate=False)
GS = sp.Derivative(YFS, theta, evaluate=False) ** 2
P5 = sp.Eq(Ex(G), T12)
P6 = sp.Eq(Ex(GS), T11 / q)


def d_ntk(lhs: sp.Expr) -> sp.Basic:
    grads = lhs.replace(lambda t: isinstance(t, sp.Derivative), lambda t: t.doit())
    return sp.Eq(lhs, r("field_moments", r("bernoulli_moments", grads)))


# ---------------------------------------------------------------- the checks
def _monte_carlo(diag: bool) -> Any:
    """``E[xi eta]`` (two masks) or ``E[xi^2]`` (one), averaged over 400000 seeded masks."""
    masks = 400_000

    def ref(p: Point) -> float:
        rng = np.random.default_rng(7)
        a = rng.random(masks) < p[q]
        c = a if diag else rng.random(masks) < p[q]
        return float(np.mean(a & c))

    return ref


def _code(field: str, same: bool, backend: str) -> Any:
    """The code's Dropout map of one pair's ``field`` (``s12`` or ``ntk``)."""
    from ntksym.architecture.description import Dropout

    def ref(p: Point) -> Any:
        s11 = p[S11]
        s22 = s11 if same else p[S22]
        s12 = s11 if same else p[S12]
        ntk = p[T11] if same else p[T12]
        pair = (s11, s22, s12, ntk)
        return code_layer_map("dropout", Dropout(p[q]), field, backend, pair, same)

    return ref


POINTS = covariance_points(
    S11, S12, S22, seed=14, more={q: (0.1, 1.0), T12: (-2, 2), T11: (0.1, 3)}
)
#: Monte Carlo: keep probabilities >= 0.3, where 400000 masks give E[xi eta] to a relative
#: standard error <= 5e-3 (the tolerance, 2e-2, is four of them)
MC_POINTS = covariance_points(S11, S12, S22, seed=15, more={q: (0.3, 1.0)})


def code_check(field: str, same: bool) -> Any:
    """The map against the code's float64 and mpmath Dropout maps."""
    f64 = value_check(_code(field, same, "float64"), POINTS, "the code's float64 map", 1e-14)
    mpm = value_check(_code(field, same, "mpmath"), POINTS, "the code's mpmath map", 1e-25)
    return both_checks(f64, mpm)


def mc_check(diag: bool) -> Any:
    what = "a Monte-Carlo average of 400000 masks"
    return value_check(_monte_carlo(diag), MC_POINTS, what, 2e-2, method="monte-carlo")


DEFINITION = sp.Eq(sp.IndexedBase("y")[k], Y)
NOTE_SAME = "the same example: one mask (eta = xi)"

DERIVATION = Derivation(
    name="dropout",
    title="Dropout (training mode): the kernel map from the Bernoulli mask",
    steps=(
        Step("def", DEFINITION, "definition", note="inverted dropout with keep probability q"),
        Step("1", P1, "bernoulli_moments", derive=d1, extra_check=mc_check(False)),
        Step("2", P2, "bernoulli_moments", derive=d2, extra_check=mc_check(True), note=NOTE_SAME),
        Step(
            "3",
            P3,
            "bernoulli_moments",
            uses=("1",),
            derive=lambda env: d_cov(P3.lhs),
            extra_check=code_check("s12", False),
            note="two different examples: the covariance is kept",
        ),
        Step(
            "4",
            P4,
            "bernoulli_moments",
            uses=("2",),
            derive=lambda env: d_cov(P4.lhs),
            extra_check=code_check("s12", True),
            note=NOTE_SAME,
        ),
        Step(
            "5",
            P5,
            "bernoulli_moments",
            uses=("1",),
            derive=lambda env: d_ntk(P5.lhs),
            extra_check=code_check("ntk", False),
            note="every parameter's gradient product; summed over the parameters, the NTK",
        ),
        Step(
            "6",
            P6,
            "bernoulli_moments",
            uses=("2",),
            derive=lambda env: d_ntk(P6.lhs),
            extra_check=code_check("ntk", True),
            note=NOTE_SAME,
        ),
    ),
    hypotheses=(
        text(
            "{xi} independent over units and examples and of the network",
            xi=Tex(r"\xi_k(x) \sim \mathrm{Bernoulli}(q)", "xi_k(x) ~ Bernoulli(q)"),
        ),
        "an example paired with itself draws one mask (neural-tangents' convention)",
        text(
            "the input's kernels {s} are those of the layer before (the limit's values)",
            s=Tex(r"\Sigma, \Theta", "Sigma, Theta"),
        ),
    ),
)
