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

__all__ = ["check_cost", "check_finite", "MAX_LAYER_STATE_BYTES", "MAX_SECONDS"]

#: The generated modules keep each input's diagonal variance (and its square root) for every
#: layer; beyond this many bytes of that state a call is refused rather than started.
MAX_LAYER_STATE_BYTES = 2**31
#: Work estimated at 2 ns per entry and layer (measured: relu, one core); a call that would
#: take longer than this is refused, saying how long it would take.
MAX_SECONDS = 7 * 86400
_SECONDS_PER_ENTRY_LAYER = 2e-9


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


def check_cost(n1: int, n2: int | None, depth: int) -> None:
    """Refuse a call whose per-layer state or estimated work cannot be afforded."""
    rows = n1 + (n2 or 0)
    state = 16 * depth * rows
    if state > MAX_LAYER_STATE_BYTES:
        raise InputError(
            f"depth {depth} with {rows} input rows needs {state / 2**30:.3g} GiB for the "
            f"per-layer variances (at most {MAX_LAYER_STATE_BYTES / 2**30:.3g} GiB); use fewer "
            "layers (the kernel of a very deep network approaches a fixed point long before)"
        )
    entries = n1 * (n1 if n2 is None else n2)
    seconds = entries * depth * _SECONDS_PER_ENTRY_LAYER
    if seconds > MAX_SECONDS:
        raise InputError(
            f"{entries} entries at depth {depth} would take about {seconds / 86400:.3g} days "
            f"on one core (at most {MAX_SECONDS / 86400:.3g} days are started); split the "
            "inputs into tiles (ntksym gram) or reduce the depth"
        )
