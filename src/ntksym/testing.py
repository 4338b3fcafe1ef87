"""Checks of NNGP/NTK kernels against independent references, for tests and for users.

:func:`check_kernel` compares a kernel's Gram matrices with the mpmath recursion of
:mod:`ntksym.reference` (which never uses a closed form unless asked) or with the mean
empirical NTK of finite networks (:mod:`ntksym.empirical`); on failure the message shows
both values, the worst entry and the tolerance. :data:`TOL` is the tolerance table the
project's own tests use.

Example:
    >>> import numpy as np, ntksym
    >>> from ntksym.testing import check_kernel
    >>> X = np.random.default_rng(0).standard_normal((4, 3))
    >>> check_kernel(ntksym.kernel("erf", depth=3), X).worst < 1e-13
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from ntksym import reference
from ntksym.empirical import monte_carlo_ntk
from ntksym.errors import InputError
from ntksym.kernels.api import Kernel, validate_inputs
from ntksym.typing import ArrayLike

__all__ = ["TOL", "CheckResult", "check_kernel"]

#: Relative tolerances, one table (float64 results).
TOL = SimpleNamespace(
    # one float64 evaluation of a dual map or closed form against an mpmath reference
    map=1e-14,
    # a float64 Gram matrix after several layers against mpmath (errors accumulate)
    kernel=1e-13,
    # two float64 algorithms that should agree to a few roundings (e.g. BLAS variants)
    rounding=4 * np.finfo(np.float64).eps,
)


@dataclass(frozen=True)
class CheckResult:
    """The outcome of :func:`check_kernel`.

    Attributes:
        worst: Largest error found, relative to the reference's largest magnitude (for
            ``"mpmath"``) or in standard errors of the Monte-Carlo mean (``"monte-carlo"``).
        where: ``(kernel name, row, column)`` of the worst entry.
        got: The kernel's value there.
        want: The reference value there.
        tolerance: The bound ``worst`` was compared with.
    """

    worst: float
    where: tuple[str, int, int]
    got: float
    want: float
    tolerance: float


def check_kernel(
    kernel: Kernel,
    X1: ArrayLike,
    X2: ArrayLike | None = None,
    *,
    against: str = "mpmath",
    rtol: float | None = None,
    dps: int = 30,
    width: int = 512,
    n_samples: int = 64,
    sigmas: float = 5.0,
    seed: int = 0,
) -> CheckResult:
    """Compare ``kernel``'s NNGP and NTK at ``(X1, X2)`` with an independent reference.

    Args:
        kernel: An ``ntksym.kernel(...)``.
        X1: Inputs (N1, d).
        X2: Inputs (N2, d), or None for ``X1`` against itself.
        against: ``"mpmath"`` (the reference recursion at ``dps`` digits; entries compared
            relative to the largest reference entry, bound ``rtol``, default
            ``TOL.kernel``) or ``"monte-carlo"`` (the NTK only, against the mean empirical
            NTK of ``n_samples`` networks of hidden ``width``; bound ``sigmas`` standard
            errors plus the ``O(1/width)`` bias allowance ``rtol``, default ``2/width``).
        rtol: The bound (see ``against``).
        dps: Decimal digits of the mpmath reference.
        width: Hidden width of the Monte-Carlo networks.
        n_samples: Networks averaged.
        sigmas: Standard errors allowed for the Monte-Carlo mean.
        seed: Root seed of the Monte-Carlo networks.

    Returns:
        The :class:`CheckResult`.

    Raises:
        AssertionError: The kernel disagrees with the reference beyond the bound (the
            message gives both values, the worst entry and the bound).
        InputError: Unknown ``against``.
    """
    A, B = validate_inputs(X1, X2)
    if against == "mpmath":
        return _against_mpmath(kernel, A, B, TOL.kernel if rtol is None else rtol, dps)
    if against == "monte-carlo":
        bias = 2.0 / width if rtol is None else rtol
        return _against_monte_carlo(kernel, A, B, width, n_samples, sigmas, bias, seed)
    raise InputError(f"against must be 'mpmath' or 'monte-carlo', got {against!r}")


def _against_mpmath(
    kernel: Kernel, A: np.ndarray, B: np.ndarray | None, rtol: float, dps: int
) -> CheckResult:
    got = kernel(A, B, get=("nngp", "ntk"))
    want = reference.kernel(
        kernel.activation,
        A,
        B,
        depth=kernel.depth,
        bias_std=kernel.bias_std,
        weight_std=kernel.weight_std,
        dps=dps,
    )
    results = []
    for name, g, w in zip(("nngp", "ntk"), got, want, strict=True):
        w = np.array(w, dtype=np.float64)
        scale = max(float(np.abs(w).max()), np.finfo(np.float64).tiny)
        err = np.abs(g - w) / scale
        i, j = (int(k) for k in np.unravel_index(int(np.argmax(err)), err.shape))
        results.append(CheckResult(float(err[i, j]), (name, i, j), g[i, j], w[i, j], rtol))
    return _verdict(max(results, key=lambda r: r.worst), "mpmath reference")


def _against_monte_carlo(
    kernel: Kernel,
    A: np.ndarray,
    B: np.ndarray | None,
    width: int,
    n_samples: int,
    sigmas: float,
    bias: float,
    seed: int,
) -> CheckResult:
    widths = [A.shape[1]] + [width] * (kernel.depth - 1) + [1]
    mc = monte_carlo_ntk(
        A, B, widths, kernel.activation, kernel.bias_std, kernel.weight_std,
        n_samples=n_samples, seed=seed,
    )  # fmt: skip
    g = kernel(A, B, get="ntk")
    allowed = sigmas * mc.stderr + bias * np.abs(g)
    err = np.abs(mc.mean - g) / np.where(allowed > 0, allowed, np.inf)
    i, j = (int(k) for k in np.unravel_index(int(np.argmax(err)), err.shape))
    result = CheckResult(float(err[i, j]), ("ntk", i, j), g[i, j], mc.mean[i, j], 1.0)
    return _verdict(result, f"Monte-Carlo mean of {n_samples} networks of width {width}")


def _verdict(result: CheckResult, what: str) -> CheckResult:
    if not result.worst <= result.tolerance:
        name, i, j = result.where
        raise AssertionError(
            f"{name}[{i}, {j}] = {result.got!r}, {what} {result.want!r}: error "
            f"{result.worst:.3g} above the bound {result.tolerance:.3g}"
        )
    return result
