"""Weighted straight-line fits, used wherever a convergence rate is measured.

A rate such as ``distance ~ C n^(-1/2)`` is fitted as a line through
``(log n, log distance)`` by weighted least squares, with the error bars of the points
as weights; the slope's standard error is inflated by ``sqrt(chi2/dof)`` when that
exceeds one (the Birge ratio), so an over-dispersed fit does not claim more precision
than the scatter allows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["LineFit", "fit_power_law", "weighted_line"]


@dataclass(frozen=True)
class LineFit:
    """A fitted line ``y = intercept + slope * x``.

    Attributes:
        slope: The fitted slope.
        slope_stderr: Its standard error (Birge-inflated when ``chi2_dof > 1``).
        intercept: The fitted intercept.
        chi2_dof: Chi-square per degree of freedom (nan with two points).
    """

    slope: float
    slope_stderr: float
    intercept: float
    chi2_dof: float


def weighted_line(x: np.ndarray, y: np.ndarray, sigma: np.ndarray) -> LineFit:
    """Fit ``y = a + s x`` by weighted least squares with standard errors ``sigma``."""
    x, y, sigma = (np.asarray(v, dtype=np.float64) for v in (x, y, sigma))
    w = 1.0 / sigma**2
    design = np.stack([np.ones_like(x), x], axis=1)
    cov = np.linalg.inv(design.T @ (w[:, None] * design))
    intercept, slope = cov @ (design.T @ (w * y))
    resid = y - (intercept + slope * x)
    dof = len(x) - 2
    chi2_dof = float(np.sum(w * resid**2) / dof) if dof > 0 else float("nan")
    scale = max(1.0, chi2_dof) if dof > 0 else 1.0
    return LineFit(float(slope), float(math.sqrt(cov[1, 1] * scale)), float(intercept), chi2_dof)


def fit_power_law(n: np.ndarray, mean: np.ndarray, stderr: np.ndarray) -> LineFit:
    """Fit ``mean ~ C n^slope``: a weighted line in log-log with ``sigma = stderr / mean``."""
    n, mean, stderr = (np.asarray(v, dtype=np.float64) for v in (n, mean, stderr))
    return weighted_line(np.log(n), np.log(mean), stderr / mean)
