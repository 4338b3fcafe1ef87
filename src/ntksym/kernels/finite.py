"""Refusing an infinite kernel before computing it.

For an activation that grows like ``exp(a u^2)`` (:func:`ntksym.activations.checks.gaussian_growth`)
``E[sigma(u)^2]`` with ``u ~ N(0, S)`` is finite only for ``a S < 1/4`` (the Gaussian
integral of ``exp((2a - 1/(2S)) u^2)``); the same holds for ``sigma'``, which grows at the
same rate, and, by Cauchy-Schwarz, for ``E[sigma(u) sigma(v)]`` when both variances pass.
So the diagonal recursion decides: it is followed layer by layer and the first layer whose
largest variance reaches ``1/(4a)`` is named in the error. Closed forms evaluated past that
bound return numbers (a square root of a negative determinant, or a wrapped value); this
check is what keeps such a number from being returned.
"""

from __future__ import annotations

import functools

import numpy as np
import sympy as sp

from ntksym import dual
from ntksym.activations import Activation
from ntksym.activations.checks import gaussian_growth
from ntksym.errors import InputError

__all__ = ["check_finite"]


@functools.lru_cache(maxsize=256)
def _growth(expr: sp.Expr) -> float:
    return gaussian_growth(expr)


def check_finite(
    act: Activation,
    X1: np.ndarray,
    X2: np.ndarray | None,
    depth: int,
    bias_std: float,
    weight_std: float,
) -> None:
    """Raise InputError if the kernel of ``act`` is infinite for some of these inputs.

    Costs nothing for activations that grow slower than every ``exp(a u^2)``; otherwise
    one diagonal recursion (``O(N depth)`` dual-map evaluations).
    """
    a = _growth(act.expr)
    if a == 0.0 or depth == 1:
        return
    rows = X1 if X2 is None else np.concatenate([X1, X2])
    w2, b2 = weight_std**2, bias_std**2
    S = w2 * np.einsum("ij,ij->i", rows, rows) / rows.shape[1] + b2
    bound = 1 / (4 * a)
    for layer in range(1, depth):
        worst = float(S.max())
        if worst >= bound:
            raise InputError(
                f"the kernel of {act.name!r} is infinite at these inputs: sigma grows like "
                f"exp({a:.4g} u^2), so E[sigma(u)^2] with u ~ N(0, S) is finite only for "
                f"S < 1/(4*{a:.4g}) = {bound:.4g}, and the variance Sigma^({layer})(x, x) "
                f"reaches {worst:.4g} (feeding layer {layer + 1} of {depth}); reduce the "
                "inputs' scale, weight_std, bias_std or the depth"
            )
        e, _ = dual.evaluate(act, S, S, S, det=np.zeros_like(S))
        S = w2 * np.asarray(e, dtype=np.float64) + b2
