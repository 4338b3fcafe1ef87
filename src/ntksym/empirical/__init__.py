"""The finite-width network of equations (1)-(4), its exact empirical NTK, and Monte Carlo.

:mod:`ntksym.empirical.network` holds the network and its NTK; :mod:`~ntksym.empirical.montecarlo`
the evidence that it converges to the infinite-width kernel.
"""

from ntksym.empirical.montecarlo import (
    ConvergenceResult,
    MonteCarloResult,
    convergence_study,
    monte_carlo_ntk,
)
from ntksym.empirical.network import LayerPass, Network

__all__ = [
    "LayerPass",
    "Network",
    "MonteCarloResult",
    "ConvergenceResult",
    "monte_carlo_ntk",
    "convergence_study",
]
