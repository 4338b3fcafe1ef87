"""The derived kernel recursion evaluated with mpmath, and compared with the reference.

The derived statements (Sigma^(1) from the covariance step, Sigma^(l+1) and Sigmadot^(l+1)
from the limit steps, the Theta recursion from the final step) are evaluated as they came
out of the rules, with the Gaussian expectations ``E_{g ~ N(0, Sigma)}`` computed by
:func:`ntksym.reference.dual` (mpmath), and compared with
:func:`ntksym.reference.recursion`, an independent implementation of the conventions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import mpmath
import sympy as sp

from ntksym.derive.symbols import (
    OBJECTS,
    GaussE,
    L,
    Sigma,
    Sigma_dot,
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
    "compare_with_reference",
    "derived_recursion",
    "next_gram",
    "parts_from",
    "sigma1_gram",
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
        s11, s12, s22 = S
        return sp.Float(_dual(act, F, u, v, s11, s12, s22, dps=dps), dps)

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
        info = OBJECTS.get(ind.base)
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


def sigma1_gram(expr: sp.Expr, X: Any, scalars: dict, dps: int) -> Any:
    """The derived Sigma^(1) on every pair of rows of X (the sum written out, then numpy)."""
    import numpy as np

    N, n0 = X.shape
    e = expr.xreplace({s: sp.Integer(n0) for s in expr.free_symbols if s.name == "n_{0}"})
    e = e.doit().xreplace(scalars)
    a = sp.symbols(f"a0:{n0}", real=True)
    c = sp.symbols(f"c0:{n0}", real=True)
    rep = {}
    for ind in e.atoms(sp.Indexed):
        info = OBJECTS.get(ind.base)
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


def next_gram(expr: sp.Expr, S: Any, act: Any, scalars: dict, dps: int) -> Any:
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
