"""Write ``near_parallel_reference.json``: mpmath references for nearly parallel pairs.

Run from the repository root (a few minutes on two cores)::

    python tests/data/make_near_parallel_reference.py

For the longer Mehler series of the generated NumPy quadrature modules (degree up to 256,
``runtime/numpy_mehler.py``), which answers nearly parallel pairs at moderate variances.
Every value comes from :mod:`ntksym.reference` at 30 digits, rounded to float64:
``E[sigma(u) sigma(v)]`` and ``E[sigma'(u) sigma'(v)]`` for ``ACTIVATIONS`` at variances
``s1`` from 1e-4 to 1e4 (log-uniform, seeded), ``s2 = s1 (1 + delta)`` with delta one of
0, 1e-6, 1e-2, 0.3, and correlations +-(1 - 10^-U(1, 12)); a quarter of the pairs are
twins (``s2 = s1``, correlation 1, ``det = 0``). ``det = s1 s2 - s12^2`` is computed
exactly from the float64 ``s1, s2, s12`` and rounded.
"""

from __future__ import annotations

import json
from multiprocessing import Pool
from pathlib import Path

import mpmath
import numpy as np

from ntksym import reference

OUT = Path(__file__).with_name("near_parallel_reference.json")
ACTIVATIONS = ("tanh", "softplus", "tanh(u) + 0.1*u")
PER_ACTIVATION = 24


def points(seed: int = 11) -> list[tuple[float, float, float]]:
    """(s1, s2, rho) of the pairs (the same for every activation)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(PER_ACTIVATION):
        s1 = float(10.0 ** rng.uniform(-4, 4))
        if i % 4 == 0:  # twins
            out.append((s1, s1, 1.0))
            continue
        s2 = s1 * (1.0 + float(rng.choice([0.0, 1e-6, 1e-2, 0.3])))
        rho = float(rng.choice([-1.0, 1.0, 1.0]) * (1.0 - 10.0 ** rng.uniform(-12, -1)))
        out.append((s1, s2, rho))
    return out


def _pair(args: tuple) -> list:
    act, s1, s2, rho = args
    with mpmath.workdps(60):
        s12 = float(mpmath.mpf(rho) * mpmath.sqrt(mpmath.mpf(s1) * mpmath.mpf(s2)))
        det = mpmath.mpf(s1) * mpmath.mpf(s2) - mpmath.mpf(s12) ** 2
    values = [float(reference.dual(act, s1, s12, s2, dps=30, derivative=d)) for d in (False, True)]
    return [act, s1, s2, s12, float(det), *values]


def main() -> None:
    """Compute every reference (two processes) and write the file."""
    jobs = [(act, *p) for act in ACTIVATIONS for p in points()]
    with Pool(2) as pool:
        pairs = pool.map(_pair, jobs)
    OUT.write_text(json.dumps({"dps": 30, "pairs": pairs}, indent=1) + "\n")


if __name__ == "__main__":
    main()
