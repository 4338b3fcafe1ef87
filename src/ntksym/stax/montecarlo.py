"""Monte Carlo over finite networks of a description: the kernels' means with error bars.

At finite width the empirical kernels fluctuate around the infinite-width ones (with
relative fluctuations of order ``width^-1/2`` and a bias of order ``width^-1``); the mean
over independent draws, with its standard error, is the check of ``kernel_fn`` that
shares no code with it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ntksym.architecture.description import Net, positive_int
from ntksym.empirical import architecture as finite
from ntksym.errors import InputError
from ntksym.kernels import validate_inputs
from ntksym.stax.layers import Layer

__all__ = ["MonteCarlo", "monte_carlo"]


class MonteCarlo(NamedTuple):
    """Means over drawn networks and their standard errors, each (N, N)."""

    nngp: np.ndarray
    nngp_sem: np.ndarray
    ntk: np.ndarray
    ntk_sem: np.ndarray
    n_samples: int


def monte_carlo(network: Layer | Net, x: Any, n_samples: int = 100, seed: Any = 0) -> MonteCarlo:
    """Empirical NNGP (``f f^T / n_out``) and NTK averaged over ``n_samples`` drawn networks.

    Args:
        network: A Layer of :mod:`ntksym.stax` or its description; one output.
        x: Inputs, shape (N, n0).
        n_samples: Number of independent networks (>= 2).
        seed: Seed of the draws (an int, a Generator or an integer array).

    Returns:
        A :class:`MonteCarlo`.

    Raises:
        InputError: Bad inputs, ``n_samples`` or seed, or a network with several outputs.
    """
    net = network.description if isinstance(network, Layer) else network
    n = positive_int("n_samples", n_samples, minimum=2)
    X, _ = validate_inputs(x)
    rng = finite.as_generator(seed)
    sums = np.zeros((2, 2) + (X.shape[0],) * 2)
    for _ in range(n):
        _, params = finite.init(net, rng, X.shape)
        nngp, ntk = finite.empirical_kernels(net, params, X, rng)
        for i, k in enumerate((nngp, ntk)):
            sums[i, 0] += k
            sums[i, 1] += k * k
    means = sums[:, 0] / n
    var = np.maximum(sums[:, 1] / n - means**2, 0.0) * (n / (n - 1))
    sem = np.sqrt(var / n)
    if not np.all(np.isfinite(means)):
        raise InputError("the drawn networks overflowed at these inputs; reduce their scale")
    return MonteCarlo(means[0], sem[0], means[1], sem[1], n)
