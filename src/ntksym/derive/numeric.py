"""Numeric and Monte-Carlo checks of a derived kernel recursion.

The derived statements (Sigma^(1) from the covariance step, Sigma^(l+1) and Sigmadot^(l+1)
from the limit steps, the Theta recursion from the final step) are evaluated as they came
out of the rules, with the Gaussian expectations ``E_{g ~ N(0, Sigma)}`` computed by
:func:`ntksym.reference.dual` (mpmath). The result is compared with

* :func:`ntksym.reference.recursion`, an independent implementation of the conventions
  (method ``numeric``), and
* the empirical NTK of finite networks from :mod:`ntksym.empirical` at growing widths,
  whose distance to the derived limit must shrink like ``width^(-1/2)`` (``monte-carlo``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import mpmath
import sympy as sp

from ntksym.derive.symbols import (
    REGISTRY,
    GaussE,
    L,
    Sigma,
    Sigma_dot,
    Theta,
    Theta_inf,
    as_expr,
    beta,
    l,
    sigma,
    sigmadot,
    weight_std,
)
from ntksym.errors import InputError

__all__ = [
    "DerivedRecursion",
    "RateFit",
    "compare_with_reference",
    "derived_recursion",
    "derived_theta_gram",
    "fit_rate",
    "gradient_sum_monte_carlo",
    "limit_check",
    "monte_carlo",
    "nngp_monte_carlo",
    "recursion_check",
]


@dataclass(frozen=True)
class DerivedRecursion:
    """The symbolic pieces of a derived recursion.

    Attributes:
        sigma1: ``Sigma^(1)`` in ``x``, ``x'`` (a finite sum over ``n_0``).
        sigma_next: ``Sigma^(l+1)`` in terms of ``GaussE(..., l)``.
        sigmadot_next: ``Sigmadot^(L+1)`` in terms of ``GaussE(..., L)``.
        theta_next: ``Theta^(L+1)`` in terms of ``Theta_inf^(L)``, ``Sigmadot^(L+1)``,
            ``Sigma^(L+1)``.
    """

    sigma1: sp.Expr
    sigma_next: sp.Expr
    sigmadot_next: sp.Expr
    theta_next: sp.Expr


def _dual(
    act: Any, F: sp.Expr, u: sp.Symbol, v: sp.Symbol, s11: Any, s12: Any, s22: Any, dps: int
) -> Any:
    from ntksym.reference import dual

    if F == sigma(u) * sigma(v):
        return dual(act, s11, s12, s22, dps=dps)
    if F == sigmadot(u) * sigmadot(v):
        return dual(act, s11, s12, s22, dps=dps, derivative=True)
    for f, deriv in ((sigma, False), (sigmadot, True)):
        # E[f(u)^2] (u ~ N(0, s11)) and E[f(v)^2]: the dual kernel on the diagonal
        if F == f(u) ** 2:
            return dual(act, s11, s11, s11, dps=dps, derivative=deriv)
        if F == f(v) ** 2:
            return dual(act, s22, s22, s22, dps=dps, derivative=deriv)
    raise NotImplementedError(f"no numeric rule for E[{F}]")


def _eval_gauss(expr: sp.Expr, act: Any, S: tuple, dps: int) -> sp.Expr:
    def ev(g: GaussE) -> sp.Expr:
        F, u, v, _ = g.args
        return sp.Float(_dual(act, F, u, v, *S, dps=dps), dps)

    return expr.replace(lambda t: isinstance(t, GaussE), ev)


def _num(expr: sp.Expr, subs: dict, dps: int) -> Any:
    val = as_expr(expr).xreplace(subs)
    val = sp.N(val, dps)
    if val.free_symbols or not val.is_number:
        raise ValueError(f"could not evaluate {expr} (left: {val.free_symbols})")
    return mpmath.mpf(str(val))


def _sigma1(expr: sp.Expr, a: Sequence[float], c: Sequence[float], dps: int, scalars: dict) -> Any:
    n0 = len(a)
    e = expr
    for s in list(e.free_symbols):
        if s.name == "n_{0}":
            e = e.xreplace({s: n0})
    e = e.doit()
    rep = {}
    for ind in e.atoms(sp.Indexed):
        info = REGISTRY.get(ind.base)
        if info is not None and info.kind in ("x", "a") and info.layer == 0:
            vec = c if info.prime else a
            rep[ind] = sp.Float(float(vec[int(ind.indices[0]) - 1]), dps)
    return _num(e.xreplace(rep), scalars, dps)


def derived_recursion(
    parts: DerivedRecursion,
    activation: Any,
    x1: Sequence[float],
    x2: Sequence[float],
    depth: int,
    bias_std: float = 0.0,
    weight_std_value: float = 1.0,
    dps: int = 30,
) -> dict[str, list]:
    """Evaluate the derived recursion for one pair of inputs (mpmath, ``dps`` digits)."""
    if depth < 1:
        raise InputError(f"depth must be >= 1, got {depth}")
    with mpmath.workdps(dps):
        scalars = {beta: sp.Float(bias_std, dps), weight_std: sp.Float(weight_std_value, dps)}
        s12 = _sigma1(parts.sigma1, x1, x2, dps, scalars)
        s11 = _sigma1(parts.sigma1, x1, x1, dps, scalars)
        s22 = _sigma1(parts.sigma1, x2, x2, dps, scalars)
        sig, sdot, th = [s12], [], [s12]
        for m in range(1, depth):
            nxt = parts.sigma_next.subs(l, m)
            new12 = _num(_eval_gauss(nxt, activation, (s11, s12, s22), dps), scalars, dps)
            new11 = _num(_eval_gauss(nxt, activation, (s11, s11, s11), dps), scalars, dps)
            new22 = _num(_eval_gauss(nxt, activation, (s22, s22, s22), dps), scalars, dps)
            dot = _num(
                _eval_gauss(parts.sigmadot_next.subs(L, m), activation, (s11, s12, s22), dps),
                scalars,
                dps,
            )
            theta = _num(
                parts.theta_next.subs(L, m).xreplace(
                    {
                        Theta_inf(m): sp.Float(str(th[-1]), dps),
                        Sigma_dot(m + 1): sp.Float(str(dot), dps),
                        Sigma(m + 1): sp.Float(str(new12), dps),
                    }
                ),
                scalars,
                dps,
            )
            s11, s12, s22 = new11, new12, new22
            sig.append(s12)
            sdot.append(dot)
            th.append(theta)
        return {"sigma": sig, "sigma_dot": sdot, "theta": th}


def parts_from(
    env: dict, sigma1: str, sigma_next: str, sigmadot: str, theta: str
) -> DerivedRecursion:
    """Collect the derived pieces from a derivation's environment by step label."""
    s1 = env[sigma1]
    s1 = s1.args[-1] if not isinstance(s1, sp.Eq) else s1.rhs
    sn = env[sigma_next].rhs
    sd = env[sigmadot]
    tn = env[theta].rhs
    kk = [d for d in tn.atoms(sp.KroneckerDelta)]
    tn = tn.subs({d: 1 for d in kk})
    return DerivedRecursion(s1, sn, sd, tn)


def compare_with_reference(
    parts: DerivedRecursion,
    activation: str = "relu",
    depth: int = 3,
    bias_std: float = 0.5,
    weight_std_value: float = 1.0,
    dps: int = 30,
    pairs: Sequence[tuple[Sequence[float], Sequence[float]]] | None = None,
    keys: Sequence[str] = ("sigma", "theta", "sigma_dot"),
) -> float:
    """Worst relative difference between the derived recursion and the reference.

    ``keys`` selects the sequences compared (``"sigma"`` alone for an NNGP step).
    """
    from ntksym.reference import recursion

    pairs = pairs or [((1.0, 0.5, -0.3), (0.2, -1.0, 0.7)), ((0.3, 0.4, 1.2), (0.3, 0.4, 1.1))]
    worst = mpmath.mpf(0)
    for a, c in pairs:
        got = derived_recursion(parts, activation, a, c, depth, bias_std, weight_std_value, dps)
        ref = recursion(activation, list(a), list(c), depth, bias_std, weight_std_value, dps=dps)
        for key in keys:
            for g, r in zip(got[key], getattr(ref, key), strict=True):
                worst = max(worst, abs(g - r) / max(abs(r), mpmath.mpf(10) ** (-dps)))
    return float(worst)


_ = Theta  # re-exported name used by derivations


# ----------------------------------------------------------------------------- limit steps
#: Allowance for the model error of the pure power law ``distance = C n^(-1/2)`` over the
#: widths used below: for a normalised sum of n i.i.d. terms the mean distance is
#: ``C n^(-1/2) (1 + O(1/n))`` (plus an O(1/n) bias at depth 3). Measured with 400 seeds
#: per width and two root seeds (``benchmarks/bench_verify.py --rates``): (12) -0.501 +-
#: 0.009, -0.502 +- 0.006; (24) -0.493 +- 0.005, -0.489 +- 0.005; (25) -0.498 +- 0.012,
#: -0.500 +- 0.021; (27) -0.499 +- 0.009, -0.497 +- 0.006. The largest offset, 0.011 for
#: (24), bounds the model error; 0.02 covers it with a factor ~2 margin.
RATE_ALLOWANCE = 0.02
#: The widths and seeds per width of the limit checks.
MC_WIDTHS = (64, 128, 256, 512, 1024)
MC_SAMPLES = 48


@dataclass(frozen=True)
class RateFit:
    """A weighted log-log fit of mean distance against width.

    Attributes:
        widths: the widths.
        mean: mean relative distance per width.
        stderr: its standard error.
        slope: the fitted exponent (theory: -1/2).
        slope_stderr: its standard error, inflated by sqrt(chi2/dof) when that exceeds 1.
        chi2_dof: chi-square per degree of freedom of the fit.
    """

    widths: tuple[int, ...]
    mean: tuple[float, ...]
    stderr: tuple[float, ...]
    slope: float
    slope_stderr: float
    chi2_dof: float

    def consistent(self, allowance: float = RATE_ALLOWANCE) -> bool:
        """Whether the slope is -1/2 within 3 standard errors plus ``allowance``."""
        informative = self.slope_stderr < 0.05
        return informative and abs(self.slope + 0.5) <= 3 * self.slope_stderr + allowance

    def describe(self, allowance: float = RATE_ALLOWANCE) -> str:
        """One line: the distances, the fitted rate with its error bar and the criterion."""
        return (
            f"distance {self.mean[0]:.3g} at n={self.widths[0]} -> {self.mean[-1]:.3g} at "
            f"n={self.widths[-1]}; rate {self.slope:.3f} +- {self.slope_stderr:.3f} "
            f"(chi2/dof {self.chi2_dof:.2f}; accepted if |rate + 1/2| <= 3 s.e. + {allowance})"
        )


def fit_rate(widths: Sequence[int], distances: Sequence[Sequence[float]]) -> RateFit:
    """Fit ``log mean = a + s log n`` by weighted least squares (``sigma_log = se / mean``)."""
    import numpy as np

    d = [np.asarray(x, dtype=float) for x in distances]
    mean = np.array([x.mean() for x in d])
    se = np.array([x.std(ddof=1) / np.sqrt(len(x)) for x in d])
    xs, ys, sig = np.log(np.asarray(widths, dtype=float)), np.log(mean), se / mean
    w = 1.0 / sig**2
    design = np.stack([np.ones_like(xs), xs], axis=1)
    cov = np.linalg.inv(design.T @ (w[:, None] * design))
    a, s = cov @ (design.T @ (w * ys))
    dof = len(xs) - 2
    chi2 = float(np.sum(w * (ys - a - s * xs) ** 2) / dof) if dof > 0 else float("nan")
    err = float(np.sqrt(cov[1, 1] * max(1.0, chi2 if dof > 0 else 1.0)))
    return RateFit(
        tuple(int(n) for n in widths), tuple(mean.tolist()), tuple(se.tolist()), float(s), err, chi2
    )


def mc_inputs(n: int = 20, dim: int = 10, seed: int = 30) -> Any:
    """``n`` seeded standard-normal inputs in ``dim`` dimensions (rows)."""
    import numpy as np

    return np.random.default_rng(seed).standard_normal((n, dim))


def _sigma1_gram(expr: sp.Expr, X: Any, scalars: dict, dps: int) -> Any:
    """The derived Sigma^(1) on every pair of rows of X (the sum written out, then numpy)."""
    import numpy as np

    N, n0 = X.shape
    e = expr.xreplace({s: sp.Integer(n0) for s in expr.free_symbols if s.name == "n_{0}"})
    e = e.doit().xreplace(scalars)
    a = sp.symbols(f"a0:{n0}", real=True)
    c = sp.symbols(f"c0:{n0}", real=True)
    rep = {}
    for ind in e.atoms(sp.Indexed):
        info = REGISTRY.get(ind.base)
        if info is None or info.kind not in ("x", "a") or info.layer != 0:
            raise ValueError(f"Sigma^(1) depends on {ind}, not only on the inputs")
        rep[ind] = (c if info.prime else a)[int(ind.indices[0]) - 1]
    e = e.xreplace(rep)
    if e.free_symbols - set(a) - set(c):
        raise ValueError(f"Sigma^(1) left with symbols {e.free_symbols - set(a) - set(c)}")
    f = sp.lambdify((a, c), e, "numpy")
    out = np.empty((N, N))
    for i in range(N):
        for j in range(i, N):
            out[i, j] = out[j, i] = float(f(X[i], X[j]))
    return out


def _next_gram(expr: sp.Expr, S: Any, act: Any, scalars: dict, dps: int) -> Any:
    """A derived ``Sigma^(m+1)``-type expression (one GaussE over Sigma^(m)) on every pair.

    The Gaussian expectation is :func:`ntksym.reference.dual` (mpmath, ``dps`` digits);
    the rest of the expression is lambdified once.
    """
    import numpy as np

    gs = list(expr.atoms(GaussE))
    if len(gs) != 1:
        raise NotImplementedError(f"expected one Gaussian expectation in {expr}")
    (g,) = gs
    F, u, v, _ = g.args
    t = sp.Dummy("g")
    rest = expr.xreplace({g: t}).xreplace(scalars)
    if rest.free_symbols - {t}:
        raise ValueError(f"left with symbols {rest.free_symbols - {t}}")
    f = sp.lambdify(t, rest, "math")
    N = S.shape[0]
    out = np.empty((N, N))
    for i in range(N):
        for j in range(i, N):
            val = float(_dual(act, F, u, v, S[i, i], S[i, j], S[j, j], dps=dps))
            out[i, j] = out[j, i] = f(val)
    return out


def _fix_layer(expr: sp.Expr, layer_sym: sp.Symbol, m: int) -> sp.Expr:
    return expr.subs(layer_sym, m)


def nngp_monte_carlo(
    sigma1: sp.Expr,
    sigma_next: sp.Expr,
    layer_sym: sp.Symbol,
    depth: int,
    activation: str = "relu",
    bias_std: float = 0.5,
    widths: Sequence[int] = MC_WIDTHS,
    n_samples: int = MC_SAMPLES,
    seed: int = 12,
) -> tuple[RateFit, str]:
    """Finite-width NNGP ``Sigma~^(depth)`` against the derived limit ``Sigma^(depth)``.

    The limit is the derived recursion: ``sigma1`` (a derived Sigma^(1)) then
    ``sigma_next`` (a derived Sigma^(m+1) in ``GaussE`` over Sigma^(m), with the layer
    symbol ``layer_sym``) evaluated with :func:`ntksym.reference.dual`. The finite-width
    side is :meth:`ntksym.empirical.Network.nngp_empirical` of networks
    ``[n0, n, ..., n, 1]`` (all hidden widths ``n``) on 20 inputs in 10 dimensions.
    """
    import numpy as np

    from ntksym.activations import get_activation
    from ntksym.empirical import Network

    X = mc_inputs()
    activation = get_activation(activation)
    scalars = {beta: sp.Float(bias_std, 20), weight_std: sp.Float(1, 20)}
    S = _sigma1_gram(sigma1, X, scalars, 15)
    for m in range(1, depth):
        S = _next_gram(_fix_layer(sigma_next, layer_sym, m), S, activation, scalars, 15)
    norm = np.linalg.norm(S)
    dists = []
    root = np.random.SeedSequence(seed)
    for n, ws in zip(widths, root.spawn(len(widths)), strict=True):
        d = []
        for child in ws.spawn(n_samples):
            net = Network(
                [X.shape[1]] + [n] * (depth - 1) + [1],
                activation,
                bias_std,
                1.0,
                seed=np.random.default_rng(child),
            )
            d.append(np.linalg.norm(net.nngp_empirical(X) - S) / norm)
        dists.append(d)
    fit = fit_rate(widths, dists)
    return fit, f"empirical NNGP Sigma~^({depth}) -> derived Sigma^({depth}): " + fit.describe()


def gradient_sum_monte_carlo(
    sigma1: sp.Expr,
    limit: sp.Expr,
    layer_sym: sp.Symbol,
    activation: str = "relu",
    bias_std: float = 0.5,
    widths: Sequence[int] = MC_WIDTHS,
    n_samples: int = MC_SAMPLES,
    seed: int = 24,
) -> tuple[RateFit, str]:
    """The finite sum of (24) against its derived limit, at ``L = 1``.

    Finite width: ``(1/n) sum_i w_ki w_k'i sigmadot(z_i(x)) sigmadot(z_i(x')) Theta^(1)``
    for ``k, k' in {1, 2}`` on networks ``[n0, n, 2]`` from :mod:`ntksym.empirical`
    (``z = z^(1)``, ``w = W^(1)``; ``Theta^(1) = Sigma^(1)`` exactly by (18)). The limit is
    the derived ``delta_kk' E_g[sigmadot sigmadot] Theta_inf^(1)`` with ``Theta_inf^(1)``
    replaced by the derived ``Sigma^(1)``.
    """
    import numpy as np

    from ntksym.activations import get_activation
    from ntksym.derive.symbols import Theta_inf
    from ntksym.empirical import Network

    X = mc_inputs()
    activation = get_activation(activation)
    N = X.shape[0]
    scalars = {beta: sp.Float(bias_std, 20), weight_std: sp.Float(1, 20)}
    S1 = _sigma1_gram(sigma1, X, scalars, 15)
    lim1 = _fix_layer(limit, layer_sym, 1)
    t = sp.Dummy("theta1")
    lim1 = lim1.xreplace({Theta_inf(1): t})
    deltas = list(lim1.atoms(sp.KroneckerDelta))
    lim = np.zeros((2, 2, N, N))
    for kk in range(2):
        for kp in range(2):
            e = lim1.xreplace({dd: sp.Integer(int(kk == kp)) for dd in deltas})
            if e == 0:
                continue
            g = list(e.atoms(GaussE))
            coeff = sp.simplify(e / g[0]) if len(g) == 1 else None
            if coeff is None or coeff.free_symbols - {t}:
                raise NotImplementedError(f"limit of unexpected form: {e}")
            G = _next_gram(g[0], S1, activation, scalars, 15)
            lim[kk, kp] = G * sp.lambdify(t, coeff, "numpy")(S1)
    norm = np.linalg.norm(lim)
    dists = []
    root = np.random.SeedSequence(seed)
    for n, ws in zip(widths, root.spawn(len(widths)), strict=True):
        d = []
        for child in ws.spawn(n_samples):
            net = Network(
                [X.shape[1], n, 2], activation, bias_std, 1.0, seed=np.random.default_rng(child)
            )
            z = net.forward(X)[0].preactivations
            D = net.activation.numpy_derivative(z)
            Wl = net.weights[1]
            emp = np.einsum("ki,li,ai,bi->klab", Wl, Wl, D, D, optimize=True) / n * S1
            d.append(np.linalg.norm(emp - lim) / norm)
        dists.append(d)
    fit = fit_rate(widths, dists)
    return fit, (
        "(1/n) sum_i w_ki w_k'i sigmadot sigmadot Theta^(1) -> derived limit: " + fit.describe()
    )


def limit_check(kind: str, **kw: Any):
    """An ``extra_check`` giving Monte-Carlo evidence for a limit step.

    ``kind`` is ``"nngp"`` (kw: ``sigma1`` label, ``depth``, optionally ``sigma_next``
    label; default the step's own limit with the ``gaussian_process`` rule applied) or
    ``"gradient_sum"`` (kw: ``sigma1`` label).
    """
    from ntksym.derive.rules import apply_rule

    def check(stmt: sp.Basic, ctx: Any, env: dict) -> tuple[bool, str, str]:
        s1 = env[kw["sigma1"]]
        s1 = s1.args[-1] if not isinstance(s1, sp.Eq) else s1.rhs
        if kind == "nngp":
            if "sigma_next" in kw:
                nxt = env[kw["sigma_next"]].rhs
            else:
                nxt = apply_rule("gaussian_process", stmt.rhs, ctx)
            fit, detail = nngp_monte_carlo(
                s1, nxt, kw.get("layer_sym", l), kw["depth"], widths=kw.get("widths", MC_WIDTHS)
            )
        else:
            lim = stmt.rhs
            for r in ("linearity", "independence", "gaussian_moments", "gaussian_process"):
                lim = apply_rule(r, lim, ctx)
            fit, detail = gradient_sum_monte_carlo(s1, lim, L)
        return fit.consistent(), "monte-carlo", detail

    return check


def derived_theta_gram(
    parts: DerivedRecursion,
    activation: Any,
    X: Any,
    bias_std: float,
    weight_std_value: float,
) -> Any:
    """The derived depth-2 NTK ``Theta^(2)`` on every pair of rows of ``X`` (float64).

    ``Theta^(2) = theta_next`` at ``L = 1`` with ``Theta_inf^(1) = Sigma^(1)`` (17)-(18),
    ``Sigmadot^(2)`` and ``Sigma^(2)`` from the derived pieces; the Gaussian expectations
    by :func:`ntksym.reference.dual`.
    """
    scalars = {beta: sp.Float(bias_std, 20), weight_std: sp.Float(weight_std_value, 20)}
    s1 = _sigma1_gram(parts.sigma1, X, scalars, 15)
    s2 = _next_gram(parts.sigma_next.subs(l, 1), s1, activation, scalars, 15)
    sd = _next_gram(parts.sigmadot_next.subs(L, 1), s1, activation, scalars, 15)
    t1, d2, g2 = sp.Dummy("t1"), sp.Dummy("d2"), sp.Dummy("g2")
    th = (
        parts.theta_next.subs(L, 1)
        .xreplace({Theta_inf(1): t1, Sigma_dot(2): d2, Sigma(2): g2})
        .xreplace(scalars)
    )
    if th.free_symbols - {t1, d2, g2}:
        raise ValueError(f"Theta^(2) left with symbols {th.free_symbols - {t1, d2, g2}}")
    return sp.lambdify((t1, d2, g2), th, "numpy")(s1, sd, s2)


def monte_carlo(
    parts: DerivedRecursion,
    activation: str = "relu",
    bias_std: float = 0.5,
    weight_std_value: float = 1.0,
    widths: Sequence[int] = MC_WIDTHS,
    n_samples: int = MC_SAMPLES,
    seed: int = 27,
) -> tuple[bool, str]:
    """Empirical NTKs of depth 2 approach the derived limit at rate ``n^(-1/2)``.

    :func:`ntksym.empirical.convergence_study` on 20 inputs in 10 dimensions against the
    derived ``Theta^(2)``; accepted when the fitted rate is -1/2 within 3 standard errors
    plus :data:`RATE_ALLOWANCE` and its error bar is below 0.05.
    """
    from ntksym.activations import get_activation
    from ntksym.empirical import convergence_study

    act = get_activation(activation)
    X = mc_inputs()
    lim = derived_theta_gram(parts, act, X, bias_std, weight_std_value)
    res = convergence_study(
        X,
        2,
        list(widths),
        act,
        bias_std,
        weight_std_value,
        n_samples=n_samples,
        seed=seed,
        limit=lim,
    )
    fit = RateFit(
        tuple(int(n) for n in res.widths),
        tuple(res.mean_distance.tolist()),
        tuple(res.stderr_distance.tolist()),
        res.slope,
        res.slope_stderr,
        res.chi2_dof,
    )
    return fit.consistent(), "empirical NTK (depth 2) -> derived Theta^(2): " + fit.describe()


def recursion_check(
    labels: dict[str, str],
    activation: str = "relu",
    depth: int = 3,
    bias_std: float = 0.5,
    weight_std_value: float = 1.0,
    with_monte_carlo: bool = True,
):
    """An ``extra_check`` for the final step: numeric vs reference, then Monte Carlo."""

    def check(stmt: sp.Basic, ctx: Any, env: dict) -> tuple[bool, str, str]:
        env = {**env, labels["theta"]: stmt}
        parts = parts_from(env, **labels)
        try:
            worst = compare_with_reference(parts, activation, depth, bias_std, weight_std_value)
        except ValueError as exc:  # e.g. a name the recursion does not define
            return False, "numeric", f"the recursion cannot be evaluated: {exc}"
        detail = f"derived recursion vs ntksym.reference.recursion: worst rel. diff {worst:.1e}"
        if worst > 1e-20:
            return False, "numeric", detail
        if not with_monte_carlo:
            return True, "numeric", detail
        ok, mc = monte_carlo(parts, activation, bias_std, weight_std_value)
        return ok, "numeric+monte-carlo", detail + "; monte-carlo: " + mc

    return check


def nngp_check(
    sigma1: str,
    activation: str = "relu",
    depth: int = 3,
    bias_std: float = 0.5,
    weight_std_value: float = 1.0,
):
    """An ``extra_check`` for a ``Sigma^(l+1) = <map of Sigma^(l)>`` step: the NNGP.

    The statement's right-hand side, iterated from the ``Sigma^(1)`` of step ``sigma1``,
    against :func:`ntksym.reference.recursion` (mpmath) at ``depth`` layers.
    """

    def check(stmt: sp.Basic, ctx: Any, env: dict) -> tuple[bool, str, str]:
        s1 = env[sigma1]
        s1 = s1.args[-1] if not isinstance(s1, sp.Eq) else s1.rhs
        parts = DerivedRecursion(s1, stmt.rhs, sp.Integer(0), sp.Integer(0))
        try:
            worst = compare_with_reference(
                parts, activation, depth, bias_std, weight_std_value, keys=("sigma",)
            )
        except (ValueError, NotImplementedError) as exc:
            return False, "numeric", f"the map cannot be evaluated: {exc}"
        detail = f"NNGP map vs ntksym.reference.recursion: worst rel. diff {worst:.1e}"
        return worst <= 1e-20, "numeric", detail

    return check
