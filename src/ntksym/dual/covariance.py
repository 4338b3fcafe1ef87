"""Checked float64 covariances for the dual maps: validation and an accurate determinant."""

from __future__ import annotations

from typing import Any

import numpy as np

from ntksym.codegen.runtime.numpy_long import two_product
from ntksym.errors import InputError, NonFiniteError

__all__ = ["careful_det", "prepare", "prepare_gap", "product_difference", "two_product"]

_DET_SLACK = 32 * np.finfo(float).eps


def product_difference(a: Any, b: Any, c: Any, d: Any) -> np.ndarray:
    """``a b - c d`` with both products carried in double-double (few ulps relative)."""
    p1, e1 = two_product(a, b)
    p2, e2 = two_product(c, d)
    return (p1 - p2) + (e1 - e2)


def careful_det(s11: np.ndarray, s12: np.ndarray, s22: np.ndarray) -> np.ndarray:
    """s11*s22 - s12**2 with both products carried in double-double (few ulps relative)."""
    return product_difference(s11, s22, s12, s12)


def prepare(
    s11: Any, s12: Any, s22: Any, det: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate, broadcast and return (s11, s12, s22, det) as float64 arrays."""
    try:
        arrays = [np.asarray(x, dtype=np.float64) for x in (s11, s12, s22)]
        s11, s12, s22 = np.broadcast_arrays(*arrays)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"s11, s12, s22 must be real numbers or broadcastable arrays: {exc}"
        ) from None
    for name, x in (("s11", s11), ("s12", s12), ("s22", s22)):
        if not np.all(np.isfinite(x)):
            raise NonFiniteError(
                f"{name} contains NaN or infinite values; all entries must be finite"
            )
    for name, x in (("s11", s11), ("s22", s22)):
        if np.any(x < 0):
            raise InputError(f"{name} is a variance and must be >= 0; got min {x.min():g}")
    with np.errstate(over="ignore"):
        scale = s11 * s22
    if not np.all(np.isfinite(scale)) or np.any(np.maximum(s11, s22) > 1e150):
        raise NonFiniteError("variances too large: s11 and s22 must be at most 1e150")
    if det is None:
        d = careful_det(s11, s12, s22)
    else:
        d = _shaped(det, s11.shape, "det")
    bad = d < -_DET_SLACK * scale
    if np.any(bad):
        i = np.unravel_index(np.argmax(bad), bad.shape) if bad.ndim else ()
        raise InputError(
            f"not a covariance: |s12| > sqrt(s11*s22) (s11={s11[i]!r}, s12={s12[i]!r}, "
            f"s22={s22[i]!r}, s11*s22 - s12**2 = {d[i]!r}); need s11*s22 - s12**2 >= 0"
        )
    return s11, s12, s22, np.maximum(d, 0.0)


#: How far a given root gap may be from the rounded roots' difference, relative to the
#: roots' sum (the rounded difference is within a few ``eps`` of it).
_GAP_SLACK = 1e-6


def prepare_gap(gap: Any, s11: np.ndarray, s22: np.ndarray) -> np.ndarray | None:
    """Validate a root gap ``sqrt(s11) - sqrt(s22)`` against the prepared variances.

    Args:
        gap: The gap, more accurate than the rounded roots' difference, or None.
        s11: The variances of u, as :func:`prepare` returns them.
        s22: The variances of v.

    Returns:
        The gap as a float64 array of their shape, or None.

    Raises:
        InputError: ``gap`` does not broadcast, or is not that difference (beyond rounding).
        NonFiniteError: ``gap`` has NaN or infinite entries.
    """
    if gap is None:
        return None
    g = _shaped(gap, s11.shape, "root_gap")
    r1, r2 = np.sqrt(s11), np.sqrt(s22)
    off = np.abs(g - (r1 - r2)) > _GAP_SLACK * (r1 + r2)
    if np.any(off):
        i = np.unravel_index(np.argmax(off), off.shape) if off.ndim else ()
        raise InputError(
            f"root_gap must be sqrt(s11) - sqrt(s22), given more accurately; got "
            f"{g[i]!r} where the rounded roots give {r1[i] - r2[i]!r}"
        )
    return g


def _shaped(x: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    """``x`` as finite float64 of the variances' ``shape``, or an error naming ``name``."""
    try:
        a = np.broadcast_to(np.asarray(x, dtype=np.float64), shape)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must broadcast against s11, s12, s22: {exc}") from None
    if not np.all(np.isfinite(a)):
        raise NonFiniteError(f"{name} contains NaN or infinite values")
    return a
