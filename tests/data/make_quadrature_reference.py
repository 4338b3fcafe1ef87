"""Write ``quadrature_reference.json``: mpmath references for the generated quadrature kernels.

Run from the repository root (takes about an hour on two cores)::

    python tests/data/make_quadrature_reference.py

Every value comes from :mod:`ntksym.reference` at 30 digits (its own quadrature, no
closed form), rounded to float64:

* ``pairs``: ``E[sigma(u) sigma(v)]`` and ``E[sigma'(u) sigma'(v)]`` for tanh, sigmoid,
  softplus and silu, at standard deviations ``a1, a2`` from 2^-10 to 31.5 (variances
  ~1e-6 to ~1e3) and correlations -1, -(1 - 1e-8), -0.6, 0, 0.4, 0.9999, 1 - 1e-8, 1;
  ``det`` is ``a1^2 a2^2 - s12^2`` computed exactly and rounded.
* ``diag``: ``E[sigma(u)^2]`` at the standard deviations in ``DIAG_STDS``.
* ``kernels``: ``Sigma^(l)`` and ``Theta^(l)``, l = 1..5, for every pair i <= j of the
  adversarial inputs ``X`` (near-parallel, near anti-parallel, zero, norm 1e-3, norm 30
  and a near-parallel partner, an exactly parallel multiple), per ``(activation, b, w)``.
"""

from __future__ import annotations

import itertools
import json
from multiprocessing import Pool
from pathlib import Path

import mpmath
import numpy as np

from ntksym import reference

OUT = Path(__file__).with_name("quadrature_reference.json")
ACTIVATIONS = ("tanh", "sigmoid", "softplus", "silu")
STDS = (
    (2.0**-10, 2.0**-10),
    (0.75, 1.25),
    (1.25, 31.5),
    (31.5, 5.5),
    (5.5, 5.5),
    (31.5, 31.5),
    (3 * 2.0**-7, 0.75),
)
DIAG_STDS = (2.0**-10, 3 * 2.0**-7, 0.75, 1.25, 5.5, 31.5)
RHOS = (-1.0, -0.99999999, -0.6, 0.0, 0.4, 0.9999, 0.99999999, 1.0)
KERNEL_CASES = (
    ("tanh", 0.3, 1.2),
    ("sigmoid", 0.3, 1.2),
    ("softplus", 0.3, 1.2),
    ("silu", 0.3, 1.2),
    ("tanh", 0.1, 2.0),
    ("sigmoid", 0.1, 2.0),
    ("tanh", 0.0, 1.0),
)
DEPTH = 5


def adversarial(seed: int = 0) -> np.ndarray:
    """Nine inputs in five dimensions that stress the first layer and the quadrature."""
    rng = np.random.default_rng(seed)
    x0 = rng.normal(size=5)
    big = rng.normal(size=5)
    big *= 30 / np.linalg.norm(big)
    small = rng.normal(size=5)
    small *= 1e-3 / np.linalg.norm(small)
    mid = rng.normal(size=5)
    return np.array(
        [
            x0,
            x0 * (1 + 1e-8 * rng.normal(size=5)),  # near-parallel
            -x0 * (1 + 1e-8 * rng.normal(size=5)),  # near anti-parallel
            np.zeros(5),  # zero vector
            small,  # norm 1e-3
            big,  # norm 30
            big * (1 + 1e-8 * rng.normal(size=5)),  # near-parallel, norm 30
            2.0 * x0,  # exactly parallel, another norm
            mid,
        ]
    )


def _pair(args: tuple) -> list:
    act, a1, a2, rho = args
    s12 = rho * (a1 * a2)
    with mpmath.workdps(60):
        det = mpmath.mpf(a1 * a1) * mpmath.mpf(a2 * a2) - mpmath.mpf(s12) ** 2
    values = [
        float(reference.dual(act, a1 * a1, s12, a2 * a2, dps=30, derivative=d))
        for d in (False, True)
    ]
    return [act, a1, a2, s12, float(det), *values]


def _diag(args: tuple) -> list:
    act, a = args
    return [act, a, float(reference.dual(act, a * a, a * a, a * a, dps=30))]


def _kernel(args: tuple) -> list:
    act, b, w, i, j = args
    X = adversarial()
    r = reference.recursion(act, X[i], X[j], depth=DEPTH, bias_std=b, weight_std=w, dps=30)
    return [act, b, w, i, j, [float(x) for x in r.sigma], [float(x) for x in r.theta]]


def main() -> None:
    """Compute everything (two processes) and write the JSON file."""
    pairs = [(act, a1, a2, rho) for act in ACTIVATIONS for (a1, a2) in STDS for rho in RHOS]
    n = len(adversarial())
    cases = [
        (act, b, w, i, j)
        for act, b, w in KERNEL_CASES
        for i, j in itertools.combinations_with_replacement(range(n), 2)
    ]
    with Pool(2) as pool:
        pair_rows = pool.map(_pair, pairs)
        diag_rows = pool.map(_diag, [(act, a) for act in ACTIVATIONS for a in DIAG_STDS])
        kernel_rows = pool.map(_kernel, cases)
    write(adversarial().tolist(), pair_rows, diag_rows, kernel_rows)


def write(X: list, pairs: list, diag: list, kernels: list) -> None:
    """Write the JSON file, one row per line."""
    parts = [f'{{"dps": 30,\n"X": {json.dumps(X)}']
    for name, rows in (("pairs", pairs), ("diag", diag), ("kernels", kernels)):
        parts.append(f'"{name}": [\n' + ",\n".join(json.dumps(r) for r in rows) + "\n]")
    OUT.write_text(",\n".join(parts) + "}\n")


if __name__ == "__main__":
    main()
