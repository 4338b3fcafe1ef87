"""Input checks for the mpmath references: exact conversion to mpf and the precision limits."""

from __future__ import annotations

import math
import numbers
from typing import Any

import mpmath
import numpy as np
import sympy as sp

from ntksym.activations import Activation, get_activation
from ntksym.errors import IndefiniteCovarianceError, InputError, QuadratureError
from ntksym.typing import ActivationLike

__all__ = [
    "ActivationLike",
    "QuadratureError",
    "ReferenceNotConverged",
    "check_dps",
    "check_method",
    "as_activation",
    "covariance",
    "vector",
    "check_std",
    "check_depth",
    "matrix",
    "to_float",
]


mp = mpmath.mp


#: Extra decimal digits carried internally on top of the requested ``dps``.
GUARD_DIGITS = 15
#: Extra digits requested from each dual kernel inside the recursion.
LAYER_GUARD_DIGITS = 5
MIN_DPS = 15
MAX_DPS = 1000
METHODS = ("auto", "quadrature", "closed_form")


class ReferenceNotConverged(QuadratureError):
    """The referee's own error estimate exceeds its target: it gives no number.

    Raised by :func:`ntksym.reference.dual_quadrature` (and everything built on it) with a
    message naming the expression, the covariance, the estimate and the target.
    """


# --------------------------------------------------------------------------- input checks
def _as_mpf(value: Any, what: str) -> mpmath.mpf:
    """Convert a real scalar exactly (floats, ints) or at working precision (strings)."""
    if isinstance(value, bool):
        raise InputError(f"{what} must be a real number, got a bool")
    if isinstance(value, mpmath.mpf):
        x = +value
    elif isinstance(value, (numbers.Integral, np.integer)):
        x = mpmath.mpf(int(value))
    elif isinstance(value, (numbers.Real, np.floating)):
        x = mpmath.mpf(float(value))
    elif isinstance(value, sp.Rational):
        x = mpmath.mpf(int(value.p)) / int(value.q)
    elif isinstance(value, sp.Float):
        x = mpmath.mpf(value._mpf_)
    elif isinstance(value, str):
        try:
            x = mpmath.mpf(value.strip())
        except (ValueError, TypeError):
            raise InputError(f"{what} must be a real number, got the string {value!r}") from None
    else:
        raise InputError(
            f"{what} must be a real number (int, float, mpf or decimal string), got "
            f"{type(value).__name__}"
        )
    if not mpmath.isfinite(x):
        raise InputError(f"{what} must be finite, got {value!r}")
    return x


def check_dps(dps: Any) -> int:
    """The number of decimal digits, checked to lie in [MIN_DPS, MAX_DPS]."""
    if isinstance(dps, bool) or not isinstance(dps, (int, np.integer)):
        raise InputError(f"dps must be an integer, got {dps!r}")
    if not MIN_DPS <= dps <= MAX_DPS:
        raise InputError(f"dps must be between {MIN_DPS} and {MAX_DPS}, got {dps}")
    return int(dps)


def check_method(method: Any) -> str:
    """The method name, checked against METHODS."""
    if method not in METHODS:
        raise InputError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    return method


def as_activation(activation: ActivationLike) -> Activation:
    """The Activation named or given by ``activation``."""
    return get_activation(activation)


def covariance(s11: Any, s12: Any, s22: Any) -> tuple[Any, Any, Any, Any]:
    """Convert and validate a 2x2 covariance; return (s11, s12, s22, det) as mpf.

    ``det`` is formed at twice the working precision, hence exactly for inputs
    that are exact at working precision. A determinant that is negative only by
    rounding (|det| below 10^-(working dps) * max(s11, s22)^2: a covariance carries the
    rounding of the larger variance, even when the other one is exactly 0) is set to 0.
    """
    a = _as_mpf(s11, "s11")
    b = _as_mpf(s12, "s12")
    c = _as_mpf(s22, "s22")
    if a < 0 or c < 0:
        raise InputError(f"variances must be >= 0; got s11={s11!r}, s22={s22!r}")
    with mpmath.workprec(2 * mp.prec + 16):
        det = a * c - b * b
    scale = max(a, c) ** 2
    if det < 0:
        if -det <= scale * mpmath.mpf(10) ** (-(mp.dps - 2)):
            det = mpmath.mpf(0)
        else:
            raise IndefiniteCovarianceError(
                "covariance [[s11, s12], [s12, s22]] is not positive semidefinite: "
                f"s12^2 > s11*s22 (s11={s11!r}, s12={s12!r}, s22={s22!r})"
            )
    return a, b, c, +det


def vector(x: Any, what: str) -> list[Any]:
    """A 1-D real input as a list of exact mpf numbers."""
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "iuf" and x.dtype != object:
            raise InputError(f"{what} must be a real vector, got dtype {x.dtype}")
        if x.ndim != 1:
            raise InputError(f"{what} must be 1-D, got shape {x.shape}")
        items = list(x)
    elif isinstance(x, (list, tuple)):
        items = list(x)
    else:
        raise InputError(f"{what} must be a 1-D sequence or array, got {type(x).__name__}")
    if not items:
        raise InputError(f"{what} is empty; an input needs at least one coordinate")
    return [_as_mpf(v, f"{what}[{i}]") for i, v in enumerate(items)]


def check_std(value: Any, what: str) -> Any:
    """A non-negative scale (bias or weight standard deviation) as mpf."""
    x = _as_mpf(value, what)
    if x < 0:
        raise InputError(f"{what} must be >= 0, got {value!r}")
    return x


def check_depth(depth: Any) -> int:
    """The number of affine layers, checked to be an integer >= 1."""
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 1:
        raise InputError(f"depth must be an integer >= 1 (number of affine layers), got {depth!r}")
    return int(depth)


def matrix(X: Any, what: str) -> list[list[Any]]:
    """A 2-D real input (rows of inputs) as lists of exact mpf numbers."""
    if isinstance(X, (list, tuple)):
        try:
            X = np.asarray(X, dtype=float)
        except (TypeError, ValueError):
            raise InputError(f"{what} must be a 2-D array of real numbers") from None
    if not isinstance(X, np.ndarray):
        raise InputError(f"{what} must be a 2-D array, got {type(X).__name__}")
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise InputError(f"{what} must be a non-empty 2-D array (N, n0), got shape {X.shape}")
    if X.dtype.kind not in "iuf":
        raise InputError(f"{what} must hold real numbers, got dtype {X.dtype}")
    if not np.all(np.isfinite(X)):
        raise InputError(f"{what} contains NaN or inf")
    return [[mpmath.mpf(float(v)) for v in row] for row in X]


def to_float(x: Any) -> float:
    """An mpf rounded to the nearest float64, refusing a non-finite result."""
    value = float(x)  # mpf -> float rounds to nearest
    if not math.isfinite(value):
        raise InputError(f"kernel entry {mpmath.nstr(x, 10)} overflows float64")
    return value
