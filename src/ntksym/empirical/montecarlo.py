"""Monte-Carlo evidence for the infinite-width limit.

The empirical NTK over independent initialisations, and the rate at which it approaches
the limit as the width grows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ntksym import reference
from ntksym.activations import Activation
from ntksym.empirical.network import (
    Network,
    check_inputs,
    check_positive_int,
    check_widths,
    resolve_activation,
)
from ntksym.errors import InputError
from ntksym.stats import fit_power_law

__all__ = ["MonteCarloResult", "monte_carlo_ntk", "ConvergenceResult", "convergence_study"]


# --------------------------------------------------------------------------- Monte Carlo
@dataclass(frozen=True)
class MonteCarloResult:
    """Empirical NTK entries over independent initialisations.

    Attributes:
        mean: Mean over the samples, shape (N1, N2).
        stderr: Standard error of the mean, ``std(ddof=1) / sqrt(n_samples)``,
            shape (N1, N2).
        samples: Every sample, shape (n_samples, N1, N2).
        widths: The network widths used.
        n_samples: Number of independent networks.
        seed: The root seed; sample ``i`` uses the ``i``-th child of
            ``numpy.random.SeedSequence(seed)``.
    """

    mean: np.ndarray
    stderr: np.ndarray
    samples: np.ndarray
    widths: tuple[int, ...]
    n_samples: int
    seed: int


def _sample_seeds(seed: Any, n: int) -> list[np.random.SeedSequence]:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.SeedSequence(int(seed)).spawn(n)


def monte_carlo_ntk(
    X1: Any,
    X2: Any,
    widths: Sequence[int],
    activation: str | Activation | Any = "relu",
    bias_std: float = 0.0,
    weight_std: float = 1.0,
    *,
    n_samples: int = 32,
    seed: int = 0,
    output: int = 0,
) -> MonteCarloResult:
    """Mean and standard error of ``Theta_emp[:, :, output, output]`` over initialisations.

    Args:
        X1: Inputs, shape (N1, n0).
        X2: Inputs, shape (N2, n0), or None for ``X1``.
        widths: Network widths ``[n0, ..., nL]``.
        activation: Activation (see :class:`Network`).
        bias_std: ``beta``.
        weight_std: ``w``.
        n_samples: Number of independent networks (>= 2).
        seed: Root seed (non-negative integer).
        output: Which output unit's diagonal NTK entry to record (``0 <= output < nL``).

    Returns:
        A :class:`MonteCarloResult`.
    """
    widths_t = check_widths(widths)
    n_samples = check_positive_int("n_samples", n_samples, minimum=2)
    if isinstance(output, bool) or not isinstance(output, (int, np.integer)):
        raise InputError(f"output must be an integer in [0, {widths_t[-1]}), got {output!r}")
    if not 0 <= output < widths_t[-1]:
        raise InputError(
            f"output must be in [0, {widths_t[-1]}) (nL = {widths_t[-1]}), got {output}"
        )
    act = resolve_activation(activation)
    A = check_inputs(X1, widths_t[0], "X1")
    B = None if X2 is None else check_inputs(X2, widths_t[0], "X2")
    samples = []
    for child in _sample_seeds(seed, n_samples):
        net = Network(widths_t, act, bias_std, weight_std, seed=np.random.default_rng(child))
        samples.append(net.ntk(A, B)[:, :, output, output])
    stack = np.stack(samples)
    return MonteCarloResult(
        mean=stack.mean(axis=0),
        stderr=stack.std(axis=0, ddof=1) / math.sqrt(n_samples),
        samples=stack,
        widths=widths_t,
        n_samples=n_samples,
        seed=int(seed),
    )


@dataclass(frozen=True)
class ConvergenceResult:
    """How fast the empirical NTK approaches its infinite-width limit.

    Attributes:
        widths: The hidden widths ``n`` studied, shape (W,).
        mean_distance: Mean over seeds of
            ``||Theta_emp(X, X) - Theta_inf||_F / ||Theta_inf||_F``, shape (W,).
        stderr_distance: Standard error of each mean, shape (W,).
        slope: Slope of the weighted least-squares line through
            ``(log n, log mean_distance)`` (``-1/2`` is the theory's rate).
        slope_stderr: Standard error of the slope: the formal one from the
            error bars (``sigma_log = stderr / mean``), inflated by
            ``sqrt(chi2_dof)`` when that exceeds 1 (the Birge ratio).
        intercept: Intercept of the fitted line (log scale).
        chi2_dof: Chi-square of the fit per degree of freedom (nan with 2 widths).
        limit: The infinite-width NTK used, shape (N, N).
        n_samples: Seeds per width.
    """

    widths: np.ndarray
    mean_distance: np.ndarray
    stderr_distance: np.ndarray
    slope: float
    slope_stderr: float
    intercept: float
    chi2_dof: float
    limit: np.ndarray
    n_samples: int


def convergence_study(
    X: Any,
    depth: int,
    hidden_widths: Sequence[int],
    activation: str | Activation | Any = "relu",
    bias_std: float = 0.0,
    weight_std: float = 1.0,
    *,
    n_samples: int = 32,
    seed: int = 0,
    limit: np.ndarray | None = None,
) -> ConvergenceResult:
    """Distance of the empirical NTK from its limit as the width grows, and its rate.

    For each hidden width ``n`` the network is ``[n0] + [n] * (depth - 1) + [1]``;
    the relative Frobenius distance of ``Theta_emp(X, X)[:, :, 0, 0]`` from
    ``Theta_inf`` is averaged over ``n_samples`` seeds (the ``k``-th width uses
    child ``k`` of ``SeedSequence(seed)``, itself split per sample). The theory
    (Jacot et al. 2018; fluctuations are a sum of ``n`` weakly dependent terms)
    predicts ``distance ~ C n^{-1/2}``.

    Args:
        X: Inputs, shape (N, n0).
        depth: ``L >= 2`` affine layers (depth 1 has no hidden layer: its NTK is exact).
        hidden_widths: At least two distinct positive widths.
        activation: Activation (see :class:`Network`).
        bias_std: ``beta``.
        weight_std: ``w``.
        n_samples: Seeds per width (>= 2).
        seed: Root seed.
        limit: ``Theta_inf(X, X)``, shape (N, N). If None it is computed with
            :func:`ntksym.reference.kernel` (mpmath, 30 digits).

    Returns:
        A :class:`ConvergenceResult`.
    """
    depth = check_positive_int("depth", depth, minimum=2)
    hw = _check_hidden_widths(hidden_widths)
    n_samples = check_positive_int("n_samples", n_samples, minimum=2)
    act = resolve_activation(activation)
    Xa = _check_matrix(X)
    limit_arr = _limit(act, Xa, depth, bias_std, weight_std, limit)
    norm = float(np.linalg.norm(limit_arr))
    if norm == 0:
        raise InputError("the infinite-width NTK is zero; relative distances are undefined")
    means, errs = [], []
    for width_seed, n in zip(_sample_seeds(seed, len(hw)), hw, strict=True):
        widths = [Xa.shape[1]] + [n] * (depth - 1) + [1]
        d = []
        for child in width_seed.spawn(n_samples):
            net = Network(widths, act, bias_std, weight_std, seed=np.random.default_rng(child))
            d.append(np.linalg.norm(net.ntk(Xa)[:, :, 0, 0] - limit_arr) / norm)
        darr = np.asarray(d)
        means.append(darr.mean())
        errs.append(darr.std(ddof=1) / math.sqrt(n_samples))
    m, e = np.asarray(means), np.asarray(errs)
    fit = fit_power_law(np.asarray(hw, dtype=float), m, e)
    return ConvergenceResult(
        widths=np.asarray(hw),
        mean_distance=m,
        stderr_distance=e,
        slope=fit.slope,
        slope_stderr=fit.slope_stderr,
        intercept=fit.intercept,
        chi2_dof=fit.chi2_dof,
        limit=limit_arr,
        n_samples=n_samples,
    )


def _check_hidden_widths(hidden_widths: Any) -> tuple[int, ...]:
    if isinstance(hidden_widths, (str, bytes)) or not isinstance(
        hidden_widths, Sequence | np.ndarray
    ):
        raise InputError(
            f"hidden_widths must be a sequence of positive integers, got {hidden_widths!r}"
        )
    hw = check_widths([1, *hidden_widths])[1:]
    if len(set(hw)) < 2:
        raise InputError(f"hidden_widths needs at least two distinct widths, got {hidden_widths!r}")
    return hw


def _check_matrix(X: Any) -> np.ndarray:
    try:
        n0 = np.shape(X)[1] if np.ndim(X) == 2 else -1
    except ValueError:  # ragged nested lists
        n0 = -1
    if n0 < 0:
        raise InputError("X must be a 2-D array of real numbers with shape (N, n0)")
    return check_inputs(X, n0, "X")


def _limit(
    act: Activation, X: np.ndarray, depth: int, bias_std: float, weight_std: float, limit: Any
) -> np.ndarray:
    """The infinite-width NTK of ``X``: ``limit`` checked, or the mpmath reference."""
    N = X.shape[0]
    if limit is None:
        _, limit_arr = reference.kernel(
            act, X, None, depth=depth, bias_std=bias_std, weight_std=weight_std
        )
        limit_arr = np.asarray(limit_arr, dtype=np.float64)
    else:
        limit_arr = np.asarray(limit, dtype=np.float64)
    if limit_arr.shape != (N, N) or not np.all(np.isfinite(limit_arr)):
        raise InputError(f"limit must be a finite ({N}, {N}) array, got shape {limit_arr.shape}")
    return limit_arr
