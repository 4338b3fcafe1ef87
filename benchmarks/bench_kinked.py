"""Kinked activations without a closed form: the kink-aware rule against the trapezoid.

Times ``kernel(expr, depth)`` on N random inputs (first call, which compiles the
activation, and a later one) with the kink-aware rule (``ntksym.dual.kinked``, the default
for kinked activations now) and with the session-5 path (the adaptive trapezoid of
``ntksym.dual.quadrature``, forced here), and the worst error of each against
``ntksym.reference.kernel`` on the first few inputs.

    python benchmarks/bench_kinked.py [N] [depth] [expr ...]
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np

import ntksym
from ntksym import reference
from ntksym.dual import quadrature

EXPRS = ["relu(u) + 0.1*tanh(u)", "max(u, 0)*tanh(u)"]


def _run(expr: str, X: np.ndarray, depth: int) -> tuple[float, float, np.ndarray]:
    k = ntksym.kernel(expr, depth=depth, backend="dual", degree=None)
    t0 = time.perf_counter()
    k(X)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    K = k(X)
    return first, time.perf_counter() - t0, K


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    depth = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    exprs = sys.argv[3:] or EXPRS
    X = np.random.default_rng(0).standard_normal((n, 4))
    m = min(n, 2)
    for expr in exprs:
        want = np.array(reference.kernel(expr, X[:m], X[:m], depth=depth, dps=17)[1], dtype=float)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            first, later, K = _run(expr, X, depth)
        err = float(np.max(np.abs(K[:m, :m] - want) / np.abs(want)))
        print(
            f"{expr}: kink-aware  first {first:7.2f} s  later {later:7.2f} s  "
            f"error {err:.1e}  warnings {len(caught)}"
        )
        original = quadrature.is_kinked
        quadrature.is_kinked = lambda act: False  # the session-5 path: trapezoid everywhere
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                tfirst, tlater, T = _run(expr, X, depth)
        finally:
            quadrature.is_kinked = original
        terr = float(np.max(np.abs(T[:m, :m] - want) / np.abs(want)))
        print(
            f"{expr}: trapezoid   first {tfirst:7.2f} s  later {tlater:7.2f} s  "
            f"error {terr:.1e}  warnings {len(caught)}  "
            f"(time ratio {tlater / later:.2f}x)"
        )


if __name__ == "__main__":
    main()
