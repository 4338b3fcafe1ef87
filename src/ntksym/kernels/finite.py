"""Refusing an infinite kernel before computing it.

For an activation that grows like ``exp(a u^2)`` (:func:`ntksym.dual.growth_rate`)
``E[sigma(u)^2]`` with ``u ~ N(0, S)`` is finite only for ``a S < 1/4`` (the Gaussian
integral of ``exp((2a - 1/(2S)) u^2)``); the same holds for ``sigma'``, which grows at the
same rate, and, by Cauchy-Schwarz, for ``E[sigma(u) sigma(v)]`` when both variances pass.
So the diagonal recursion decides: it is followed layer by layer and the first layer whose
largest variance reaches ``1/(4a)`` is named in the error. Closed forms evaluated past that
bound return numbers (a square root of a negative determinant, or a wrapped value); this
check is what keeps such a number from being returned.
"""

from __future__ import annotations

import math
import os

import numpy as np

from ntksym import dual
from ntksym.activations import Activation
from ntksym.errors import InputError

__all__ = ["check_cost", "check_finite", "MAX_SECONDS"]

#: Work estimated at 2 ns per entry and layer (measured: relu, one core), plus 100 ns per row
#: and layer (the loops' overhead, which dominates for a few rows at a huge depth); a call
#: that would take longer than this is refused, saying how long it would take. The memory
#: of a call does not grow with the depth: the generated modules and the dual path keep the
#: diagonal variances of the current and the next layer only.
MAX_SECONDS = 7 * 86400
_SECONDS_PER_ENTRY_LAYER = 2e-9
_SECONDS_PER_ROW_LAYER = 1e-7


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
    with np.errstate(over="ignore"):  # (a float's ** raises OverflowError; inf is refused below)
        w2, b2 = np.float64(weight_std) ** 2, np.float64(bias_std) ** 2
    S = np.concatenate([_first_variances(X, w2, b2, name) for X, name in ((X1, "X1"), (X2, "X2"))])
    a = dual.growth_rate(act)
    if a == 0.0 or depth == 1:
        return
    bound = 1 / (4 * a)
    for layer in range(1, depth):
        worst = float(S.max())
        if worst >= bound:
            raise InputError(
                f"the kernel of {act.name!r} is infinite at these inputs: sigma grows "
                f"{dual.describe_growth(a)}, and the variance Sigma^({layer})(x, x) reaches "
                f"{worst:.4g} "
                f"(feeding layer {layer + 1} of {depth}); "
                + (
                    "no finite kernel exists after such a layer: use an activation that grows "
                    "at most like exp(a u^2)"
                    if math.isinf(a)
                    else "reduce the inputs' scale, weight_std, bias_std or the depth"
                )
            )
        e, _ = dual.evaluate(act, S, S, S, det=np.zeros_like(S))
        S = w2 * np.asarray(e, dtype=np.float64) + b2


def squared_norms(X: np.ndarray, name: str) -> np.ndarray:
    """``|x|^2`` of each row of ``X``; an InputError where float64 overflows.

    Past that no float64 computation of a kernel is meaningful (the Gram product itself
    overflows): refused here, before a module returns infinities or fails inside.

    Args:
        X: Checked float64 inputs, shape (N, d).
        name: How the error names ``X`` (``"X1"``, ``"X2"``).

    Returns:
        The squared norms, shape (N,).

    Raises:
        InputError: Naming the first row whose squared norm overflows.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        squares = np.einsum("ij,ij->i", X, X)
    _refuse_overflow(squares, "squared norm |x|^2", name, "scale the inputs down")
    return squares


def _refuse_overflow(values: np.ndarray, what: str, name: str, fix: str) -> None:
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise InputError(
            f"the {what} of row {int(bad[0])} of {name} overflows float64 (> 1.8e308), "
            f"so its kernel cannot be computed in float64; {fix}"
        )


def _first_variances(X: np.ndarray | None, w2: float, b2: float, name: str) -> np.ndarray:
    """``w^2 |x|^2 / d + b^2`` of each row of ``X`` (InputError as :func:`squared_norms`)."""
    if X is None:
        return np.empty(0)
    squares = squared_norms(X, name)
    with np.errstate(over="ignore", invalid="ignore"):
        S = w2 * (squares / X.shape[1]) + b2
    what = "first-layer variance weight_std^2 |x|^2/d + bias_std^2"
    _refuse_overflow(S, what, name, "scale the inputs, weight_std or bias_std down")
    return S


def check_cost(n1: int, n2: int | None, depth: int) -> None:
    """Refuse a call whose estimated work would take longer than :data:`MAX_SECONDS`.

    Args:
        n1: Rows of ``X1``.
        n2: Rows of ``X2``, or None for ``X1`` against itself.
        depth: Number of layers.

    Raises:
        InputError: Saying how long the call would take, or how much memory its output
            needs, and what to change.
    """
    rows = n1 + (n2 or 0)
    entries = n1 * (n1 if n2 is None else n2)
    seconds = depth * (entries * _SECONDS_PER_ENTRY_LAYER + rows * _SECONDS_PER_ROW_LAYER)
    if seconds > MAX_SECONDS:
        raise InputError(
            f"{entries} entries at depth {depth} would take about {_duration(seconds)} on one "
            f"core (calls longer than {MAX_SECONDS / 86400:.3g} days are not started); split "
            "the inputs into tiles (ntksym gram) or reduce the depth (the kernel of a very "
            "deep network approaches a fixed point long before)"
        )
    memory = _physical_memory()
    if memory and entries * 8 > memory:
        raise InputError(
            f"{entries} entries need {_bytes(entries * 8)} for each output array, more than "
            f"this machine's {_bytes(memory)} of memory; write the Gram matrix to disk in "
            "tiles instead (ntksym gram X.npy -o K.npy)"
        )


def _physical_memory() -> int:
    """This machine's physical memory in bytes, or 0 where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return 0


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} TiB"  # (not reached)


def _duration(seconds: float) -> str:
    """``seconds`` in days, or in years past a year."""
    days = seconds / 86400
    return f"{days:.3g} days" if days < 365 else f"{days / 365.25:.3g} years"
