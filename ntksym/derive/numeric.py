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
    beta,
    l,
    sigma,
    sigmadot,
    weight_std,
)
from ntksym.errors import InputError

__all__ = ["DerivedRecursion", "derived_recursion", "compare_with_reference", "monte_carlo"]


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


def _dual(act: Any, F: sp.Expr, u: sp.Symbol, v: sp.Symbol, s11: Any, s12: Any, s22: Any,
          dps: int) -> Any:
    from ntksym.reference import dual

    if F == sigma(u) * sigma(v):
        return dual(act, s11, s12, s22, dps=dps)
    if F == sigmadot(u) * sigmadot(v):
        return dual(act, s11, s12, s22, dps=dps, derivative=True)
    raise NotImplementedError(f"no numeric rule for E[{F}]")


def _eval_gauss(expr: sp.Expr, act: Any, S: tuple, dps: int) -> sp.Expr:
    def ev(g: GaussE) -> sp.Expr:
        F, u, v, _ = g.args
        return sp.Float(_dual(act, F, u, v, *S, dps=dps), dps)

    return expr.replace(lambda t: isinstance(t, GaussE), ev)


def _num(expr: sp.Expr, subs: dict, dps: int) -> Any:
    val = sp.sympify(expr).xreplace(subs)
    val = sp.N(val, dps)
    if val.free_symbols or not val.is_number:
        raise ValueError(f"could not evaluate {expr} (left: {val.free_symbols})")
    return mpmath.mpf(str(val))


def _sigma1(expr: sp.Expr, a: Sequence[float], c: Sequence[float], dps: int,
            scalars: dict) -> Any:
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


def parts_from(env: dict, sigma1: str, sigma_next: str, sigmadot: str, theta: str
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
) -> float:
    """Worst relative difference between the derived recursion and the reference."""
    from ntksym.reference import recursion

    pairs = pairs or [((1.0, 0.5, -0.3), (0.2, -1.0, 0.7)), ((0.3, 0.4, 1.2), (0.3, 0.4, 1.1))]
    worst = mpmath.mpf(0)
    for a, c in pairs:
        got = derived_recursion(parts, activation, a, c, depth, bias_std, weight_std_value, dps)
        ref = recursion(activation, list(a), list(c), depth, bias_std, weight_std_value, dps=dps)
        for key in ("sigma", "theta", "sigma_dot"):
            for g, r in zip(got[key], getattr(ref, key), strict=True):
                worst = max(worst, abs(g - r) / max(abs(r), mpmath.mpf(10) ** (-dps)))
    return float(worst)


def monte_carlo(
    parts: DerivedRecursion,
    activation: str = "relu",
    depth: int = 2,
    bias_std: float = 0.5,
    weight_std_value: float = 1.0,
    widths: Sequence[int] = (16, 64, 256),
    n_samples: int = 8,
    seed: int = 0,
) -> tuple[bool, str]:
    """Empirical NTKs at growing widths approach the derived limit at rate ~ n^(-1/2)."""
    import numpy as np

    from ntksym.empirical import convergence_study

    X = np.array([[1.0, 0.5, -0.3], [0.2, -1.0, 0.7]])
    lim = np.zeros((2, 2))
    for a in range(2):
        for c in range(2):
            r = derived_recursion(parts, activation, X[a], X[c], depth, bias_std,
                                  weight_std_value, dps=20)
            lim[a, c] = float(r["theta"][-1])
    res = convergence_study(X, depth, list(widths), activation, bias_std, weight_std_value,
                            n_samples=n_samples, seed=seed, limit=lim)
    ok = bool(abs(res.slope + 0.5) <= max(3 * res.slope_stderr, 0.2))
    detail = (
        f"empirical NTK -> derived limit: distance {res.mean_distance[0]:.3g} at n={widths[0]} "
        f"to {res.mean_distance[-1]:.3g} at n={widths[-1]}, slope {res.slope:.2f} "
        f"+- {res.slope_stderr:.2f} (expected -1/2)"
    )
    return ok, detail


def recursion_check(labels: dict[str, str], activation: str = "relu", depth: int = 3,
                    bias_std: float = 0.5, weight_std_value: float = 1.0,
                    with_monte_carlo: bool = True):
    """An ``extra_check`` for the final step: numeric vs reference, then Monte Carlo."""

    def check(stmt: sp.Basic, ctx: Any, env: dict) -> tuple[bool, str, str]:
        env = {**env, labels["theta"]: stmt}
        parts = parts_from(env, **labels)
        worst = compare_with_reference(parts, activation, depth, bias_std, weight_std_value)
        detail = f"derived recursion vs ntksym.reference.recursion: worst rel. diff {worst:.1e}"
        if worst > 1e-20:
            return False, "numeric", detail
        if not with_monte_carlo:
            return True, "numeric", detail
        ok, mc = monte_carlo(parts, activation, 2, bias_std, weight_std_value)
        return ok, "numeric", detail + "; monte-carlo: " + mc

    return check


_ = Theta  # re-exported name used by derivations
