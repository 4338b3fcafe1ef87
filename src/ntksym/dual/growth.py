"""Where the dual maps of a fast-growing activation are infinite, and the refusal there.

An activation with ``|sigma(u)| = exp(a u^2 + o(u^2))`` has, for ``(u, v) ~ N(0, Sigma)``,
``E[sigma(u) sigma(v)]`` finite exactly while the Gaussian integral of
``exp(a u^2 + a v^2)`` is, i.e. while ``Sigma^{-1} - 2a I`` is positive definite: the
largest eigenvalue of ``Sigma`` is below ``1/(2a)`` (``S < 1/(4a)`` for ``u = v`` of
variance ``S``); ``sigma'`` grows at the same rate, so the same bound holds for the
derivative map. Past it the closed forms and the quadratures still return finite numbers
(a wrapped square root, a truncated sum), so every public entry that evaluates a map calls
:func:`check_covariance` first. The rate ``a`` is read by
:func:`ntksym.activations.checks.gaussian_growth`.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import sympy as sp

from ntksym.activations import Activation, get_activation
from ntksym.activations.checks import gaussian_growth
from ntksym.errors import InputError

__all__ = ["growth_rate", "describe_growth", "check_covariance"]


def growth_rate(activation: str | Activation | sp.Expr) -> float:
    """The ``a`` with ``|sigma(u)| = exp(a u^2 + o(u^2))``: 0 if slower, ``inf`` if faster.

    Cached per expression (:func:`ntksym.activations.checks.gaussian_growth`). ``sigma'``
    grows at the same rate, so both dual maps are finite exactly where the Gaussian
    integral of ``exp(a u^2 + a v^2)`` is: while the covariance's largest eigenvalue is
    below ``1 / (2a)`` (for ``u = v`` with variance ``S``: ``S < 1 / (4a)``).
    """
    return _growth(get_activation(activation).expr)


@functools.lru_cache(maxsize=256)
def _growth(expr: sp.Expr) -> float:
    return gaussian_growth(expr)


def describe_growth(a: float) -> str:
    """How sigma grows and where ``E[sigma(u)^2]``, ``u ~ N(0, S)``, is finite, in words."""
    if np.isinf(a):
        return (
            "faster than every exp(a u^2), so E[sigma(u)^2] with u ~ N(0, S) is infinite at "
            "every S > 0"
        )
    return (
        f"like exp({a:.4g} u^2), so E[sigma(u)^2] with u ~ N(0, S) is finite only for "
        f"S < 1/(4*{a:.4g}) = {1 / (4 * a):.4g}"
    )


def check_covariance(activation: str | Activation | sp.Expr, s11: Any, s12: Any, s22: Any) -> None:
    """Refuse covariances at which the dual maps of ``activation`` are infinite.

    Both maps are infinite where the covariance's largest eigenvalue reaches ``1/(2a)``
    (``a``: :func:`growth_rate`); their formulas or a quadrature would still give finite
    numbers there. Every public entry that evaluates a dual map calls this first
    (:func:`evaluate`, :func:`ntksym.reference.dual`, ...).

    Args:
        activation: The activation.
        s11: Variance of u (array-like, broadcastable; ``mpf`` is rounded to float).
        s12: Covariance of u and v.
        s22: Variance of v.

    Raises:
        InputError: Naming the covariance, the activation's growth and the bound.
    """
    arrays = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (s11, s12, s22)))
    _check_finite(get_activation(activation), *arrays)


def _check_finite(act: Activation, s11: np.ndarray, s12: np.ndarray, s22: np.ndarray) -> None:
    a = _growth(act.expr)
    if a == 0.0 or s11.size == 0:
        return
    top = 0.5 * (s11 + s22) + np.hypot(0.5 * (s11 - s22), s12)  # the largest eigenvalue
    worst = int(np.argmax(top))
    if top.flat[worst] < 1 / (2 * a):
        return
    v11, v12, v22 = (float(v.flat[worst]) for v in (s11, s12, s22))
    at = f"s11 = {v11:.4g}, s12 = {v12:.4g}, s22 = {v22:.4g}"
    raise InputError(
        f"the dual maps of {act.name!r} are infinite at {at}: sigma grows {describe_growth(a)}"
        + (
            ""
            if np.isinf(a)
            else f"; for a pair, E[sigma(u) sigma(v)] is finite only while the covariance's "
            f"largest eigenvalue is below 1/(2*{a:.4g}) = {1 / (2 * a):.4g}, and it is "
            f"{float(top.flat[worst]):.4g} here"
        )
        + "; a kernel that needs these maps is infinite (no number is returned for it)"
    )
