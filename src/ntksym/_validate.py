"""Input checks shared by the numerical entry points (kernels, empirical networks, predict).

Each returns the cleaned value or raises :class:`~ntksym.errors.InputError` with a
message that names the argument, what was given and what is allowed.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from ntksym.errors import InputError

__all__ = ["real_matrix", "nonnegative_std"]


def nonnegative_std(name: str, value: Any) -> float:
    """A finite real number >= 0 (a weight or bias scale), as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{name} must be a finite real number >= 0, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise InputError(f"{name} must be a finite real number >= 0, got {value!r}")
    return v


def real_matrix(X: Any, name: str = "X", n_features: int | None = None) -> np.ndarray:
    """A non-empty, finite 2-D array of real numbers as C-contiguous float64.

    Args:
        X: The candidate array (anything ``numpy.asarray`` accepts).
        name: Its name in error messages.
        n_features: Required number of columns, if any.

    Raises:
        InputError: Not convertible, not a real dtype, not 2-D, empty, the
            wrong number of columns, or holding NaN or infinity (the message
            gives the first offending position).
    """
    try:
        arr = np.asarray(X)
    except Exception as exc:  # noqa: BLE001 - ragged lists and the like
        raise InputError(f"{name} must be a 2-D array of real numbers: {exc}") from None
    if arr.dtype.kind not in "iuf":
        raise InputError(
            f"{name} must hold real numbers (a float or integer dtype), got dtype {arr.dtype}"
        )
    if arr.ndim != 2:
        raise InputError(
            f"{name} must be 2-D with shape (n_inputs, n_features), got shape {arr.shape}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"{name} must have at least one input and one feature, got {arr.shape}")
    if n_features is not None and arr.shape[1] != n_features:
        raise InputError(
            f"{name} has {arr.shape[1]} features per input, but {n_features} are expected"
        )
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise InputError(
            f"{name} contains NaN or infinity (first at row {bad[0]}, column {bad[1]}); "
            "inputs must be finite"
        )
    return arr
