"""A sum of parallel branches (``FanOut``, ``parallel``, ``FanInSum``): when kernels add.

Two branches ``A`` and ``B`` of one input, summed unit by unit. By bilinearity (1) the
covariance of the sum is the two covariances plus two cross terms. When a branch ends in
its own Dense layer, ``A_k = sigma_A sum_j U_kj a_j / sqrt(n) + beta_A c_k`` with
zero-mean ``U, c`` independent of everything else, each cross term has a factor of mean 0
that nothing else in it depends on, so it vanishes (2): then (3) the kernels add,
``Sigma_{A+B} = Sigma_A + Sigma_B``, which is the code's ``FanInSum`` map. The same holds
when the other branch is the skip ``z`` itself (4): the residual block. When *neither*
branch has a Dense layer of its own (``Identity + Identity``), nothing vanishes: the sum
is ``2 z`` and its covariance is ``4 Sigma`` (5), not the ``2 Sigma`` that adding the
kernels would give. The code refuses that network with an error naming the problem
(``ntksym.architecture.walk``: "carries the same Gaussian field"); the check of (5) runs
the code's structure check on it.

The NTK: for a parameter ``p`` before the ``FanOut`` the cross term of the gradients has
the same zero-mean factor (6), so the tangent kernels add too (7); the branches' own
parameters give no cross term at all (``B`` does not depend on ``U``). At finite width the
cross terms are zero-mean fluctuations; their vanishing in the limit is the law of large
numbers (as for the residual network's cross terms in ``residual.py``).

Reference: the composition rules of neural-tangents' ``stax.FanInSum`` (Novak et al.
2020), which assume independent branches; Yang (2019), "Tensor programs I", for the
general rule that a sum of fields with independent zero-mean last layers is Gaussian
with the summed kernel.
"""

from __future__ import annotations

from typing import Any

import mpmath
import numpy as np
import sympy as sp

from ntksym.derive.layer_checks import Point, covariance_points, mean_check, value_check
from ntksym.derive.rules_layers import Ex, facts
from ntksym.extend import (
    Context,
    Derivation,
    PSum,
    Step,
    apply_rule,
    index,
    scalar,
    text,
    theta,
    width,
)

k, j, i = index("k"), index("j"), index("i")
n = width(1)
U, c, V, d = (sp.IndexedBase(s) for s in ("U", "c", "V", "d"))
a, ap, g, gp = (sp.IndexedBase(s) for s in ("a", "a'", "g", "g'"))
z, zp = sp.IndexedBase("z"), sp.IndexedBase("z'")
A, Ap, B, Bp = (sp.IndexedBase(s) for s in ("A", "A'", "B", "B'"))
wa, ba, wb, bb = (scalar(s) for s in ("sigma_A", "beta_A", "sigma_B", "beta_B"))
SA, SB, SZ = (scalar(s, False) for s in ("Sigma_A", "Sigma_B", "Sigma_z"))
TA, TB = scalar("Theta_A", False), scalar("Theta_B", False)


def dense(
    w: sp.IndexedBase, bias: sp.IndexedBase, x: Any, sw: sp.Expr, sb: sp.Expr, jj: Any
) -> Any:
    """A Dense layer's unit ``k`` on the input ``x`` (indexed by ``jj``)."""
    return sw * sp.Sum(w[k, jj] * x(jj), (jj, 1, n)) / sp.sqrt(n) + sb * bias[k]


#: the branches: A ends in a Dense layer on a, B in one on g (x and x')
DEFS = {
    A[k]: dense(U, c, lambda t: a[t], wa, ba, j),
    Ap[k]: dense(U, c, lambda t: ap[t], wa, ba, j),
    B[k]: dense(V, d, lambda t: g[t], wb, bb, i),
    Bp[k]: dense(V, d, lambda t: gp[t], wb, bb, i),
}
#: the same, as functions of a parameter p = theta before the FanOut
af, gf = sp.Function("a"), sp.Function("g'")
AF = dense(U, c, lambda t: af(t, theta), wa, ba, j)
BF = dense(V, d, lambda t: gf(t, theta), wb, bb, i)
Af, Apf, Bf, Bpf = (sp.Function(s)(k, theta) for s in ("A", "A'", "B", "B'"))


def D(e: sp.Expr) -> sp.Expr:
    return sp.Derivative(e, theta, evaluate=False)


MOMENTS = {
    Ex(A[k] * Ap[k]): SA,
    Ex(B[k] * Bp[k]): SB,
    Ex(z[k] * zp[k]): SZ,
    Ex(PSum(D(Af) * D(Apf))): TA,
    Ex(PSum(D(Bf) * D(Bpf))): TB,
}
#: the branches' own Dense parameters are zero-mean and independent of all else
CTX = Context(ranges={k: n, j: n, i: n}, facts=facts(zero_mean={U, c, V, d}, moments=MOMENTS))


def r(name: str, e: sp.Basic) -> sp.Basic:
    return apply_rule(name, e, CTX)


def unfold(e: sp.Basic) -> sp.Basic:
    return e.xreplace(DEFS)


SUM = Ex((A[k] + B[k]) * (Ap[k] + Bp[k]))
P1 = sp.Eq(SUM, Ex(A[k] * Ap[k]) + Ex(B[k] * Bp[k]) + Ex(A[k] * Bp[k]) + Ex(B[k] * Ap[k]))
P2 = sp.Eq(Ex(A[k] * Bp[k]), 0)


def d1(env: dict) -> sp.Basic:
    return sp.Eq(SUM, r("bilinearity", SUM))


def cross_zero(e: sp.Expr) -> sp.Expr:
    """A cross term unfolded, expanded and its zero-mean factors averaged."""
    return sp.simplify(r("independent_zero_mean", r("bilinearity", unfold(e))))


def d2(env: dict) -> sp.Basic:
    return sp.Eq(P2.lhs, cross_zero(P2.lhs))


def d3(env: dict) -> sp.Basic:
    own = (Ex(A[k] * Ap[k]), Ex(B[k] * Bp[k]))
    terms = [t if t in own else cross_zero(t) for t in sp.Add.make_args(env["1"].rhs)]
    return sp.Eq(SUM, r("field_moments", sp.Add(*terms)))


#: the residual block: A = Dense(phi(z)), B = z (the skip)
P4 = sp.Eq(Ex(A[k] * zp[k]), 0)
#: Identity + Identity: no Dense layer of its own on either branch
II = Ex((z[k] + z[k]) * (zp[k] + zp[k]))
P5 = sp.Eq(II, 4 * SZ)


def d5(env: dict) -> sp.Basic:
    return sp.Eq(II, r("field_moments", r("bilinearity", II)))


# ---------------------------------------------------------------- NTK
NTK = Ex(PSum(D(Af + Bf) * D(Apf + Bpf)))
CROSS = Ex(PSum(D(Af) * D(Bpf)))
P6 = sp.Eq(CROSS, 0)
P7 = sp.Eq(NTK, TA + TB)


def d6(env: dict) -> sp.Basic:
    grads = PSum(sp.diff(AF, theta) * sp.diff(BF, theta).xreplace({j: i}))
    e = r("bilinearity", Ex(r("parameter_sum", grads)))
    return sp.Eq(CROSS, sp.simplify(r("independent_zero_mean", e)))


def d7(env: dict) -> sp.Basic:
    grads = NTK.args[0].replace(lambda t: isinstance(t, sp.Derivative), lambda t: t.doit())
    terms = r("bilinearity", Ex(r("parameter_sum", PSum(grads.args[0]))))
    out = []
    for t in sp.Add.make_args(terms):
        # the two cross terms are (6) and its mirror image
        if t.has(Af) and t.has(Bpf) or t.has(Bf) and t.has(Apf):
            mirror = t.xreplace({Bf: Af, Apf: Bpf, Af: Bf, Bpf: Apf})
            if env["6"].lhs not in (t, mirror) or env["6"].rhs != 0:
                raise ValueError(f"unexpected cross term {t}")
            continue
        out.append(t)
    return sp.Eq(NTK, r("field_moments", sp.Add(*out)))


# ---------------------------------------------------------------- the checks
POINTS = covariance_points(SA, SB, SZ, count=5, seed=23, more={TA: (-2.0, 2.0), TB: (-2.0, 2.0)})


def _code_sum(field: str, backend: str, keys: tuple[sp.Symbol, ...] = ()) -> Any:
    """The code's FanInSum of blocks whose ``field`` is ``keys`` (default ``Sigma_A``, ...)."""
    keys = keys or ((SA, SB) if field == "s12" else (TA, TB))

    def ref(p: Point) -> Any:
        if backend == "mpmath":
            from ntksym.reference.architecture import MpmathOps, Pair

            with mpmath.workdps(30):
                ps = [Pair(1, 1, mpmath.mpf(p[key]), mpmath.mpf(p[key])) for key in keys]
                return getattr(MpmathOps(30, "quadrature").fan_in_sum(ps), field)
        from ntksym.kernels.layer_maps import Block, Float64Ops

        def block(key: sp.Symbol) -> Block:
            val = np.full((1, 1), p[key])
            return Block(np.ones(1), np.ones(1), val, None, val, np.zeros((1, 1), bool))

        return float(getattr(Float64Ops().fan_in_sum([block(kk) for kk in keys]), field)[0, 0])

    return ref


def code_check(field: str, keys: tuple[sp.Symbol, ...] = (), points: Any = None) -> Any:
    """The statement against the code's float64 and mpmath ``FanInSum`` of ``keys``."""
    at = POINTS if points is None else points
    f64 = value_check(_code_sum(field, "float64", keys), at, "the code's float64 FanInSum", 1e-15)
    mpm = value_check(_code_sum(field, "mpmath", keys), at, "the code's mpmath FanInSum", 1e-28)

    def check(stmt: sp.Basic, ctx: Context, env: dict) -> tuple[bool, str, Any]:
        ok1, m1, t1 = f64(stmt, ctx, env)
        if not ok1:
            return ok1, m1, t1
        ok2, m2, t2 = mpm(stmt, ctx, env)
        return ok2, "numeric", text("{a}; {b}", a=t1, b=t2)

    return check


def _cross_samples(residual: bool) -> Any:
    """``A_k(x) B_k(x')`` over seeded draws of the branches' own parameters (width 3)."""

    def sampler(p: Point, rng: np.random.Generator) -> np.ndarray:
        draws, w = 200_000, 3
        av = rng.normal(size=w) if not residual else np.maximum(rng.normal(size=w), 0)
        other = rng.normal(size=w)
        Us, cs = rng.normal(size=(draws, w)), rng.normal(size=draws)
        left = 1.3 * Us @ av / np.sqrt(w) + 0.4 * cs
        if residual:  # B' = z'_k, fixed: the skip (a = relu(z) is the branch's input)
            return left * other[0]
        Vs, ds = rng.normal(size=(draws, w)), rng.normal(size=draws)
        return left * (0.8 * Vs @ other / np.sqrt(w) + 0.6 * ds)

    return sampler


def refused_check(stmt: sp.Basic, ctx: Context, env: dict) -> tuple[bool, str, Any]:
    """Identity + Identity: the code must not return the summed kernels (``2 Sigma``).

    Both the float64 ``kernel_fn`` and the mpmath referee are run on the network.
    """
    from ntksym import stax
    from ntksym.errors import InputError

    net = stax.serial(
        stax.Dense(4),
        stax.FanOut(2),
        stax.parallel(stax.Identity(), stax.Identity()),
        stax.FanInSum(),
    )
    x = np.array([[1.0, 0.5]])
    said = []
    for name, run in (
        ("kernel_fn", lambda: net.kernel_fn(x, x, "nngp")),
        ("reference_kernels", lambda: stax.reference_kernels(net.description, x, dps=20)),
    ):
        try:
            got = run()
        except InputError as exc:
            if "same Gaussian field" not in str(exc):
                return False, "code", text(f"{name} refuses it for another reason: {exc}")
            said.append(name)
            continue
        return False, "code", text(f"{name} returned a kernel for it ({got}) instead of refusing")
    return (
        True,
        "code",
        text(
            f"the code ({' and '.join(said)}) refuses this network: its branches carry "
            "the same Gaussian field"
        ),
    )


def _twice_samples(p: Point, rng: np.random.Generator) -> np.ndarray:
    """``(z + z)(z' + z')`` at ``x' = x``: ``z ~ N(0, Sigma_z)``, 200000 draws."""
    zs = rng.normal(scale=np.sqrt(p[SZ]), size=200_000)
    return (zs + zs) * (zs + zs)


def identity_check(stmt: sp.Basic, ctx: Context, env: dict) -> tuple[bool, str, Any]:
    """Monte Carlo of ``(z + z)(z' + z')``, then the code's refusal of the network."""
    ok, method, mc = mean_check(_twice_samples, POINTS[:3], "Monte Carlo (x' = x)")(stmt, ctx, env)
    if not ok:
        return ok, method, mc
    ok, method, code = refused_check(stmt, ctx, env)
    return ok, "monte-carlo" if ok else method, text("{a}; {b}", a=mc, b=code)


CROSS_MC = "a Monte-Carlo average over the branch's own parameters (width 3, 200000 draws)"
DERIVATION = Derivation(
    name="fan_in_sum",
    title="Sums of parallel branches: the cross terms, and when the kernels add",
    steps=(
        Step("1", P1, "bilinearity", derive=d1, ctx=CTX),
        Step(
            "2",
            P2,
            "independent_zero_mean",
            derive=d2,
            ctx=CTX,
            extra_check=mean_check(_cross_samples(False), POINTS[:3], CROSS_MC),
            note="both branches end in a Dense layer of their own",
        ),
        Step(
            "3",
            sp.Eq(SUM, SA + SB),
            "independent_zero_mean",
            uses=("1", "2"),
            derive=d3,
            ctx=CTX,
            extra_check=code_check("s12"),
        ),
        Step(
            "4",
            P4,
            "independent_zero_mean",
            derive=lambda env: sp.Eq(P4.lhs, cross_zero(P4.lhs)),
            ctx=CTX,
            extra_check=mean_check(_cross_samples(True), POINTS[:3], CROSS_MC),
            note="the residual block: B is the skip z, A a Dense layer on relu(z)",
        ),
        Step(
            "5",
            P5,
            "bilinearity",
            derive=d5,
            ctx=CTX,
            extra_check=identity_check,
            note="Identity + Identity: the cross terms stay; the code refuses the network",
        ),
        Step("6", P6, "independent_zero_mean", derive=d6, ctx=CTX, note="p before the FanOut"),
        Step(
            "7",
            P7,
            "independent_zero_mean",
            uses=("6",),
            derive=d7,
            ctx=CTX,
            extra_check=code_check("ntk"),
            note="the branches' own parameters give no cross term",
        ),
    ),
    hypotheses=(
        text(
            "{p} zero-mean, independent of each other and of the branches' inputs",
            p=sp.Tuple(U[k, j], c[k], V[k, i], d[k]),
        ),
    ),
)
