"""LayerNorm over a wide layer: the covariance and NTK maps in the infinite-width limit.

The layer normalises the ``n`` units of a layer by their empirical mean and variance,
``y_k(x) = (z_k(x) - mu(x)) / sqrt(s^2(x) + eps)`` with ``mu = (1/n) sum_m z_m`` and
``s^2 = (1/n) sum_m (z_m - mu)^2``. Its input units are, in the limit (the engine's
Gaussian-process statement), i.i.d. centred with covariance ``Sigma`` and NTK
``Theta_{jj'} -> Theta delta_{jj'}``. The engine derives

* (1) ``mu -> 0`` and (2) ``s^2 -> Sigma(x, x)``: the law of large numbers (the rule the
  seed uses for a Dense layer) on ``(1/n) sum z_m`` and ``(1/n) sum z_m^2``, after
  ``s^2 = (1/n) sum z_m^2 - mu^2`` (algebra);
* (3) ``y_k -> z_k / sqrt(Sigma(x, x) + eps)``: the continuous-mapping theorem, which
  needs ``Sigma(x, x) + eps > 0``;
* (4) ``E[y_k(x) y_k(x')] -> Sigma(x, x') / sqrt((Sigma(x, x) + eps)(Sigma(x', x') +
  eps))``, the code's LayerNorm map; taking the limit inside the expectation assumes
  uniform integrability (true for Gaussian units: ``s^2`` has exponential tails away
  from 0);
* (5) the Jacobian ``dy_k/dz_j = (delta_kj - 1/n)/s - c_k c_j / (n s)`` with ``s =
  sqrt(s^2 + eps)`` and ``c = (z - mu)/s``, by the chain rule through ``mu`` and ``s^2``;
* (6) the NTK ``sum_j J_kj(x) J_k'j(x') Theta -> Theta delta_kk' / sqrt((Sigma(x, x) +
  eps)(Sigma(x', x') + eps))``: every term but the first carries more powers of
  ``1/n`` than sums over the units (rule ``power_counting``).

(4) and (6) are compared with the code's float64 and mpmath LayerNorm maps at random
points and with Monte Carlo at width 1024; (5) with finite differences in mpmath.

Reference: Ba, Kiros & Hinton (2016), "Layer normalization"; the infinite-width map as
in neural-tangents' ``stax.LayerNorm`` (Novak et al. 2020).
"""

from __future__ import annotations

from typing import Any

import mpmath
import numpy as np
import sympy as sp

from ntksym.derive.canonical import pull_constants
from ntksym.derive.layer_checks import (
    Point,
    code_layer_map,
    covariance_points,
    mean_check,
    value_check,
)
from ntksym.derive.rules_layers import Ex, facts, with_limits
from ntksym.derive.symbols import E
from ntksym.extend import (
    Context,
    Derivation,
    Step,
    Tends,
    Tex,
    apply_rule,
    index,
    scalar,
    symbolic_equal,
    text,
    width,
)

k, kp, j, m, i = (index(s) for s in ("k", "k'", "j", "m", "i"))
n = width(1)
z, zp, y = sp.IndexedBase("z"), sp.IndexedBase("z'"), sp.IndexedBase("y")
eps = scalar("epsilon")
S11, S22 = scalar("Sigma_11"), scalar("Sigma_22")
S12, T12 = scalar("Sigma_12", False), scalar("Theta_12", False)
#: s and c at x and at x' in the NTK step (a unit's normalised value c_j)
sg, sgp = scalar("s_x"), scalar("s_x'")
cc, ccp = sp.IndexedBase("c"), sp.IndexedBase("c'")

MU = sp.Sum(z[m], (m, 1, n)) / n
S2 = sp.Sum((z[m] - MU) ** 2, (m, 1, n)) / n
YK = (z[k] - MU) / sp.sqrt(S2 + eps)
MOMENTS = {Ex(z[m]): sp.S.Zero, Ex(z[m] ** 2): S11, Ex(z[k] * zp[k]): S12}
CTX = Context(
    ranges={k: n, kp: n, j: n, m: n, i: n, "limit_width": n}, facts=facts(moments=MOMENTS)
)


def r(name: str, e: sp.Basic, ctx: Context = CTX) -> sp.Basic:
    return apply_rule(name, e, ctx)


def at_xp(e: sp.Basic) -> sp.Basic:
    """The same quantity at ``x'``."""
    return e.xreplace({z: zp, S11: S22, sg: sgp, cc: ccp})


def lln(e: sp.Expr) -> sp.Expr:
    """The law of large numbers, then the declared moments of the units."""
    out = r("law_of_large_numbers", e).replace(lambda t: isinstance(t, E), lambda t: Ex(*t.args))
    return r("field_moments", out)


# ---------------------------------------------------------------- (1)-(4) the covariance
P1 = Tends(MU, 0, n)
P2 = Tends(S2, S11, n)
P3 = Tends(YK, z[k] / sp.sqrt(S11 + eps), n)
P4 = Tends(Ex(YK * at_xp(YK)), S12 / (sp.sqrt(S11 + eps) * sp.sqrt(S22 + eps)), n)


def d1(env: dict) -> sp.Basic:
    return Tends(MU, lln(MU), n)


def d2(env: dict) -> sp.Basic:
    mh = sp.Dummy("mu")
    e = sp.expand(sp.Sum(sp.expand((z[m] - mh) ** 2), (m, 1, n)).expand() / n)
    e = sp.expand(pull_constants(e)).xreplace({sp.Sum(z[m], (m, 1, n)): n * mh})
    # e = (1/n) sum z_m^2 - mu^2: the law of large numbers, then mu -> (1)
    limits = with_limits(CTX, {mh: env["1"].args[1]})
    return Tends(S2, r("continuous_mapping", lln(e), limits), n)


def d3(env: dict) -> sp.Basic:
    mh, sh = sp.Dummy("mu"), sp.Dummy("s2")  # mu and s^2, whose limits (1), (2) derive
    limits = with_limits(CTX, {mh: env["1"].args[1], sh: env["2"].args[1]})
    return Tends(YK, r("continuous_mapping", (z[k] - mh) / sp.sqrt(sh + eps), limits), n)


def d4(env: dict) -> sp.Basic:
    lim = env["3"].args[1]
    return Tends(P4.args[0], r("field_moments", r("bilinearity", Ex(lim * at_xp(lim)))), n)


# ---------------------------------------------------------------- (5) the Jacobian
#: the mean and s = sqrt(s^2 + eps) of the units at x, named
mu = scalar("mu_x", False)
DY = sp.Derivative(y[k], z[j])
P5 = sp.Eq(
    DY,
    (sp.KroneckerDelta(k, j) - 1 / n) / sg - (z[k] - mu) * (z[j] - mu) / (n * sg**3),
)


def d5(env: dict) -> sp.Basic:
    mh, sh = sp.Dummy("mu"), sp.Dummy("s2")
    yh = (z[k] - mh) / sp.sqrt(sh + eps)
    dmu = r("delta_sum", sp.diff(MU, z[j]))
    s2h = sp.Sum((z[m] - mh) ** 2, (m, 1, n)) / n
    ds = r("delta_sum", sp.diff(s2h, z[j])) + sp.diff(s2h, mh) * dmu
    # the definition of the mean: sum_m z_m = n mu
    ds = sp.expand(pull_constants(sp.expand(ds).expand()))
    ds = sp.expand(ds.xreplace({sp.Sum(z[m], (m, 1, n)): n * mh}))
    total = sp.diff(yh, z[j]) + sp.diff(yh, mh) * dmu + sp.diff(yh, sh) * ds
    total = r("delta_sum", total).xreplace({mh: mu}).subs(sh, sg**2 - eps)
    return sp.Eq(DY, sp.expand(total))


# ---------------------------------------------------------------- (6) the NTK
def jac(kk: Any, at_x: bool) -> sp.Expr:
    """(5) with ``s`` and ``c`` named, at ``x`` or ``x'``."""
    e = (sp.KroneckerDelta(kk, j) - 1 / n) / sg - cc[kk] * cc[j] / (n * sg)
    return e if at_x else at_xp(e)


LHS6 = T12 * sp.Sum(jac(k, True) * jac(kp, False), (j, 1, n))
P6 = Tends(LHS6, T12 * sp.KroneckerDelta(k, kp) / (sp.sqrt(S11 + eps) * sp.sqrt(S22 + eps)), n)


def d6(env: dict) -> sp.Basic:
    # the Jacobian used here is (5)'s, with s and c named
    unnamed = jac(k, True).replace(
        lambda t: isinstance(t, sp.Indexed) and t.base == cc,
        lambda t: (z[t.indices[0]] - mu) / sg,
    )
    if not symbolic_equal(unnamed, env["5"].rhs, CTX):
        raise ValueError("(5) is not the Jacobian the NTK step uses")
    e = sp.Sum(sp.expand(jac(k, True) * jac(kp, False)), (j, 1, n))
    e = r("delta_sum", sp.expand(pull_constants(e.expand())))
    e = r("power_counting", sp.expand(pull_constants(e)))
    s_lim = sp.sqrt(env["2"].args[1] + eps)
    limits = with_limits(CTX, {sg: s_lim, sgp: at_xp(s_lim)})
    return Tends(LHS6, sp.factor_terms(T12 * r("continuous_mapping", e, limits)), n)


# ---------------------------------------------------------------- the checks
POINTS = covariance_points(
    S11, S12, S22, count=5, seed=33, more={eps: (1e-3, 0.5), T12: (-2.0, 2.0)}
)
for _p in POINTS:
    _p.update({k: 1, kp: 1})
WIDTH, DRAWS = 1024, 40
NTK_WIDTH = 512  # the NTK's Monte Carlo forms two WIDTH x WIDTH Jacobians per draw


def _layer_norm(u: np.ndarray, e: float) -> np.ndarray:
    """The layer on the rows of ``u`` (units along the last axis)."""
    c = u - u.mean(axis=-1, keepdims=True)
    return c / np.sqrt((c * c).mean(axis=-1, keepdims=True) + e)


def _pairs(p: Point, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``DRAWS`` draws of ``WIDTH`` i.i.d. units at x and x' with covariance Sigma."""
    cov = np.array([[p[S11], p[S12]], [p[S12], p[S22]]])
    units = rng.multivariate_normal([0.0, 0.0], cov, size=(DRAWS, WIDTH))
    return units[..., 0], units[..., 1]


def _mc_variance(p: Point, rng: np.random.Generator) -> np.ndarray:
    u, _ = _pairs(p, rng)
    return (u - u.mean(axis=-1, keepdims=True)).var(axis=-1) + 0 * u[:, 0]


def _mc_covariance(p: Point, rng: np.random.Generator) -> np.ndarray:
    u, v = _pairs(p, rng)  # one sample per draw: the units of a draw are not independent
    return (_layer_norm(u, p[eps]) * _layer_norm(v, p[eps])).mean(axis=-1)


def _mc_ntk(p: Point, rng: np.random.Generator) -> np.ndarray:
    """``Theta sum_j J_kj(x) J_kj(x')`` averaged over k, with (5)'s Jacobian at WIDTH."""
    u, v = _pairs(p, rng)
    out = []
    for a, b in zip(u[:, :NTK_WIDTH], v[:, :NTK_WIDTH], strict=True):
        jacs = []
        for w in (a, b):
            s = np.sqrt(w.var() + p[eps])
            c = (w - w.mean()) / s
            eye = np.eye(NTK_WIDTH)
            jacs.append((eye - 1.0 / NTK_WIDTH) / s - np.outer(c, c) / (NTK_WIDTH * s))
        out.append(p[T12] * np.einsum("kj,kj->k", *jacs).mean())
    return np.array(out)  # one sample per draw


def _code(field: str, backend: str) -> Any:
    """The code's LayerNorm map of a pair's ``field`` (``s11``, ``s12`` or ``ntk``)."""
    from ntksym.architecture.description import LayerNorm

    def ref(p: Point) -> Any:
        vals = (p[S11], p[S22], p[S12], p[T12])
        return code_layer_map("layer_norm", LayerNorm(p[eps]), field, backend, vals)

    return ref


def code_and_mc(field: str, sampler: Any, width_: int = WIDTH) -> Any:
    """The code's float64 and mpmath maps, then Monte Carlo at WIDTH."""
    checks = (
        value_check(_code(field, "float64"), POINTS, "the code's float64 LayerNorm", 1e-14),
        value_check(_code(field, "mpmath"), POINTS, "the code's mpmath LayerNorm", 1e-25),
        mean_check(sampler, POINTS[:3], f"Monte Carlo at width {width_} ({DRAWS} draws)"),
    )

    def check(stmt: sp.Basic, ctx: Context, env: dict) -> tuple[bool, str, Any]:
        details = []
        for c in checks:
            ok, method, d = c(stmt, ctx, env)
            if not ok:
                return ok, method, d
            details.append(d)
        return True, "numeric", text("{a}; {b}; {c}", a=details[0], b=details[1], c=details[2])

    return check


def jacobian_check(stmt: sp.Basic, ctx: Context, env: dict) -> tuple[bool, str, Any]:
    """(5) against mpmath's numerical derivative of the layer at width 4, every k and j."""
    rng = np.random.default_rng(5)
    width_, e = 4, mpmath.mpf(0.375)  # exact in binary
    zs = [mpmath.mpf(float(t)) for t in rng.normal(size=width_)]

    def unit(kk: int, jj: int, t: Any) -> Any:
        w = list(zs)
        w[jj] = t
        mean = mpmath.fsum(w) / width_
        var = mpmath.fsum((q - mean) ** 2 for q in w) / width_
        return (w[kk] - mean) / mpmath.sqrt(var + e)

    worst = mpmath.mpf(0)
    with mpmath.workdps(30):
        mean = mpmath.fsum(zs) / width_
        s = mpmath.sqrt(mpmath.fsum((q - mean) ** 2 for q in zs) / width_ + e)
        for kk in range(width_):
            for jj in range(width_):
                want = mpmath.diff(lambda t, a=kk, c=jj: unit(a, c, t), zs[jj])
                at = stmt.rhs.xreplace({n: width_, k: kk + 1, j: jj + 1})
                vals = {mu: mean, sg: s, eps: e, **{z[t + 1]: zs[t] for t in range(width_)}}
                got = sp.N(at.xreplace({a: sp.Float(str(c), 30) for a, c in vals.items()}), 30)
                worst = max(worst, abs(mpmath.mpf(str(got)) - want))
    ok = worst < 1e-20
    verdict = "matches" if ok else "differs from"
    detail = (
        f"{verdict} mpmath's numerical derivative of the layer at width 4 (every k, j; "
        f"worst difference {float(worst):.1e})"
    )
    return ok, "numeric", text(detail)


DEFINITION = sp.Eq(y[k], YK)
DERIVATION = Derivation(
    name="layer_norm",
    title="LayerNorm over a wide layer: covariance and NTK maps",
    steps=(
        Step("def", DEFINITION, "definition", note="mean and variance over the layer's units"),
        Step("1", P1, "law_of_large_numbers", derive=d1, ctx=CTX),
        Step(
            "2",
            P2,
            "law_of_large_numbers",
            uses=("1",),
            derive=d2,
            ctx=CTX,
            extra_check=mean_check(_mc_variance, POINTS[:3], f"Monte Carlo at width {WIDTH}"),
        ),
        Step(
            "3",
            P3,
            "continuous_mapping",
            uses=("1", "2"),
            derive=d3,
            ctx=CTX,
            note=text(
                "needs {c}: the map is continuous there",
                c=Tex(r"\Sigma_{11} + \epsilon > 0", "Sigma_11 + epsilon > 0"),
            ),
        ),
        Step(
            "4",
            P4,
            "field_moments",
            uses=("3",),
            derive=d4,
            ctx=CTX,
            extra_check=code_and_mc("s12", _mc_covariance),
            note="the limit taken inside the expectation (uniform integrability)",
        ),
        Step(
            "5",
            P5,
            "delta_sum",
            derive=d5,
            ctx=CTX,
            extra_check=jacobian_check,
            note=text("the chain rule through the mean {m} and {s}", m=mu, s=sg),
        ),
        Step(
            "6",
            P6,
            "power_counting",
            uses=("2", "5"),
            derive=d6,
            ctx=CTX,
            extra_check=code_and_mc("ntk", _mc_ntk, NTK_WIDTH),
            note=text(
                "with the input's NTK {t} (the engine's induction hypothesis)",
                t=Tends(sp.Symbol("Theta_jj'"), T12 * sp.KroneckerDelta(j, kp), n),
            ),
        ),
    ),
    hypotheses=(
        text(
            "the units {z} i.i.d. over k, centred, with covariance {s} (the Gaussian limit)",
            z=z[k],
            s=sp.Tuple(S11, S12, S22),
        ),
        text(
            "{c} and {s} (so the map is continuous also at the code's {z})",
            c=Tex(r"\epsilon \ge 0", "epsilon >= 0"),
            s=Tex(r"\Sigma_{11}, \Sigma_{22} > 0", "Sigma_11, Sigma_22 > 0"),
            z=Tex(r"\epsilon = 0", "epsilon = 0"),
        ),
    ),
)
