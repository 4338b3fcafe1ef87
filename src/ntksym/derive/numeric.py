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
from typing import Any, SupportsFloat

import sympy as sp

from ntksym.derive.recursion import (
    DerivedRecursion,
    compare_with_reference,
    derived_recursion,
    next_gram,
    parts_from,
    sigma1_gram,
)
from ntksym.derive.steps import CheckFn
from ntksym.derive.symbols import (
    GaussE,
    L,
    Sigma,
    Sigma_dot,
    Sigma_t,
    Theta,
    Theta_inf,
    beta,
    l,
    weight_std,
)
from ntksym.derive.text import Config, Measured, Number, RateBound, Tex, Text, text
from ntksym.stats import fit_power_law

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
    "nngp_check",
    "nngp_monte_carlo",
    "parts_from",
    "recursion_check",
]


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
#: "tends to", and the finite sum of (24), as formulas of the check details.
ARROW = Tex(r"\to", "->")
GRADIENT_SUM = Tex(
    r"\frac1n\sum_i w_{ki} w_{k'i}\,\dot\sigma\,\dot\sigma\,\Theta^{(1)}",
    "(1/n) sum_i w_ki w_k'i sigmadot sigmadot Theta^(1)",
)


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

    def describe(self, allowance: float = RATE_ALLOWANCE) -> Text:
        """One line: the distances, the fitted rate with its error bar and the criterion."""
        return text(
            "distance {d0} at {n0} {to} {d1} at {n1}; {rate} ({chi}; accepted if {bound})",
            d0=Number(self.mean[0], ".3g"),
            n0=Config(values=(("n", self.widths[0]),)),
            to=ARROW,
            d1=Number(self.mean[-1], ".3g"),
            n1=Config(values=(("n", self.widths[-1]),)),
            rate=Measured("rate", self.slope, self.slope_stderr),
            chi=Measured("chi2/dof", self.chi2_dof, fmt=".2f"),
            bound=RateBound(3, allowance),
        )


def fit_rate(widths: Sequence[int], distances: Sequence[Sequence[SupportsFloat]]) -> RateFit:
    """Fit ``log mean = a + s log n`` by weighted least squares (``sigma_log = se / mean``)."""
    import numpy as np

    d = [np.asarray(x, dtype=float) for x in distances]
    mean = np.array([x.mean() for x in d])
    se = np.array([x.std(ddof=1) / np.sqrt(len(x)) for x in d])
    fit = fit_power_law(np.asarray(widths, dtype=float), mean, se)
    return RateFit(
        tuple(int(n) for n in widths),
        tuple(mean.tolist()),
        tuple(se.tolist()),
        fit.slope,
        fit.slope_stderr,
        fit.chi2_dof,
    )


def mc_inputs(n: int = 20, dim: int = 10, seed: int = 30) -> Any:
    """``n`` seeded standard-normal inputs in ``dim`` dimensions (rows)."""
    import numpy as np

    return np.random.default_rng(seed).standard_normal((n, dim))


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
) -> tuple[RateFit, Text]:
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
    act = get_activation(activation)
    scalars = {beta: sp.Float(bias_std, 20), weight_std: sp.Float(1, 20)}
    S = sigma1_gram(sigma1, X, scalars, 15)
    for m in range(1, depth):
        S = next_gram(_fix_layer(sigma_next, layer_sym, m), S, act, scalars, 15)
    norm = np.linalg.norm(S)
    dists = []
    root = np.random.SeedSequence(seed)
    for n, ws in zip(widths, root.spawn(len(widths)), strict=True):
        d = []
        for child in ws.spawn(n_samples):
            net = Network(
                [X.shape[1]] + [n] * (depth - 1) + [1],
                act,
                bias_std,
                1.0,
                seed=np.random.default_rng(child),
            )
            d.append(np.linalg.norm(net.nngp_empirical(X) - S) / norm)
        dists.append(d)
    fit = fit_rate(widths, dists)
    what = text("empirical NNGP {e} tends to the derived {d}: ", e=Sigma_t(depth), d=Sigma(depth))
    return fit, what + fit.describe()


def gradient_sum_monte_carlo(
    sigma1: sp.Expr,
    limit: sp.Expr,
    layer_sym: sp.Symbol,
    activation: str = "relu",
    bias_std: float = 0.5,
    widths: Sequence[int] = MC_WIDTHS,
    n_samples: int = MC_SAMPLES,
    seed: int = 24,
) -> tuple[RateFit, Text]:
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
    act = get_activation(activation)
    N = X.shape[0]
    scalars = {beta: sp.Float(bias_std, 20), weight_std: sp.Float(1, 20)}
    S1 = sigma1_gram(sigma1, X, scalars, 15)
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
            G = next_gram(g[0], S1, act, scalars, 15)
            lim[kk, kp] = G * sp.lambdify(t, coeff, "numpy")(S1)
    norm = np.linalg.norm(lim)
    dists = []
    root = np.random.SeedSequence(seed)
    for n, ws in zip(widths, root.spawn(len(widths)), strict=True):
        d = []
        for child in ws.spawn(n_samples):
            net = Network([X.shape[1], n, 2], act, bias_std, 1.0, seed=np.random.default_rng(child))
            z = net.forward(X)[0].preactivations
            D = net.activation.numpy_derivative(z)
            Wl = net.weights[1]
            emp = np.einsum("ki,li,ai,bi->klab", Wl, Wl, D, D, optimize=True) / n * S1
            d.append(np.linalg.norm(emp - lim) / norm)
        dists.append(d)
    fit = fit_rate(widths, dists)
    return fit, Text(GRADIENT_SUM, " tends to the derived limit: ", fit.describe())


def limit_check(kind: str, **kw: Any) -> CheckFn:
    """An ``extra_check`` giving Monte-Carlo evidence for a limit step.

    ``kind`` is ``"nngp"`` (kw: ``sigma1`` label, ``depth``, optionally ``sigma_next``
    label; default the step's own limit with the ``gaussian_process`` rule applied) or
    ``"gradient_sum"`` (kw: ``sigma1`` label).
    """
    from ntksym.derive.rules import apply_rule

    def check(stmt: sp.Basic, ctx: Any, env: dict) -> tuple[bool, str, Text]:
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
    s1 = sigma1_gram(parts.sigma1, X, scalars, 15)
    s2 = next_gram(parts.sigma_next.subs(l, 1), s1, activation, scalars, 15)
    sd = next_gram(parts.sigmadot_next.subs(L, 1), s1, activation, scalars, 15)
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
) -> tuple[bool, Text]:
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
    what = text("empirical NTK (depth 2) tends to the derived {t}: ", t=Theta(2))
    return fit.consistent(), what + fit.describe()


def recursion_check(
    labels: dict[str, str],
    activation: str = "relu",
    depth: int = 3,
    bias_std: float = 0.5,
    weight_std_value: float = 1.0,
    with_monte_carlo: bool = True,
) -> CheckFn:
    """An ``extra_check`` for the final step: numeric vs reference, then Monte Carlo."""

    def check(stmt: sp.Basic, ctx: Any, env: dict) -> tuple[bool, str, Text]:
        env = {**env, labels["theta"]: stmt}
        parts = parts_from(env, **labels)
        try:
            worst = compare_with_reference(parts, activation, depth, bias_std, weight_std_value)
        except ValueError as exc:  # e.g. a name the recursion does not define
            return False, "numeric", Text(f"the recursion cannot be evaluated: {exc}")
        detail = Text(
            "derived recursion vs ntksym.reference.recursion: worst rel. diff ", Number(worst)
        )
        if worst > 1e-20:
            return False, "numeric", detail
        if not with_monte_carlo:
            return True, "numeric", detail
        ok, mc = monte_carlo(parts, activation, bias_std, weight_std_value)
        return ok, "numeric+monte-carlo", Text(detail, "; monte-carlo: ", mc)

    return check


def nngp_check(
    sigma1: str,
    activation: str = "relu",
    depth: int = 3,
    bias_std: float = 0.5,
    weight_std_value: float = 1.0,
) -> CheckFn:
    """An ``extra_check`` for a ``Sigma^(l+1) = <map of Sigma^(l)>`` step: the NNGP.

    The statement's right-hand side, iterated from the ``Sigma^(1)`` of step ``sigma1``,
    against :func:`ntksym.reference.recursion` (mpmath) at ``depth`` layers.
    """

    def check(stmt: sp.Basic, ctx: Any, env: dict) -> tuple[bool, str, Text]:
        s1 = env[sigma1]
        s1 = s1.args[-1] if not isinstance(s1, sp.Eq) else s1.rhs
        parts = DerivedRecursion(s1, stmt.rhs, sp.Integer(0), sp.Integer(0))
        try:
            worst = compare_with_reference(
                parts, activation, depth, bias_std, weight_std_value, keys=("sigma",)
            )
        except (ValueError, NotImplementedError) as exc:
            return False, "numeric", Text(f"the map cannot be evaluated: {exc}")
        detail = Text("NNGP map vs ntksym.reference.recursion: worst rel. diff ", Number(worst))
        return worst <= 1e-20, "numeric", detail

    return check
