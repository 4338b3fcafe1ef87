"""Float64 pieces shared by the arc-cosine families: angles without arccos, and h(x)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


# --------------------------------------------------------------------------- stable numerics
def h_float(x: Any, n: Any, sin_n: Any, cos_n: Any) -> Any:
    """Return n * (sin x - x cos x) for x in [0, pi], given n sin x and n cos x.

    Direct for x > 1 (at most a factor ~3 of cancellation); a Taylor series
    sum_{k>=1} (-1)^(k+1) 2k x^(2k+1) / (2k+1)! for x <= 1, where the direct
    form would cancel like x^3.
    """
    direct = sin_n - x * cos_n
    x2 = x * x
    series = np.zeros_like(x2)
    for k in range(11, 0, -1):
        series = series * x2 * (-1) + 2 * k / math.factorial(2 * k + 1)
    # series now holds sum_k (-1)^(k-1) c_k x^(2k-2); multiply by x^3.
    series = n * series * x2 * x
    return np.where(x > 1, direct, series)


def angles(s12: Any, det: Any) -> tuple[Any, Any, Any]:
    """Angles theta = arccos(rho), psi = pi - theta, phi = arcsin(rho), without arccos."""
    root = np.sqrt(det)
    theta = np.arctan2(root, s12)
    psi = np.arctan2(root, -s12)
    phi = np.arctan2(s12, root)
    return theta, psi, phi
