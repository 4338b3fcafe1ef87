"""Kinked activations without a closed form: the split rule against the kink-aware rule.

Times ``kernel(expr, depth)`` on N random inputs (first call, which compiles the
activation, and a later one) with the split rule (``ntksym.dual.split``: ramps in closed
form plus a smooth remainder, the default now), and gives its worst relative error
against ``ntksym.reference.kernel`` (mpmath) on the first two inputs and against the
kink-aware rule on sigma itself (``ntksym.dual.kinked`` without the split) on the first
``M`` inputs (that rule takes about 20 ms per covariance).

    python benchmarks/bench_kinked.py [N] [depth] [M] [expr ...]
"""

from __future__ import annotations

import os
import sys
import time
import warnings

import numpy as np

import ntksym
from ntksym import reference
from ntksym.dual import kinked

EXPRS = [
    "relu(u) + 0.1*tanh(u)",
    "max(min(u, 1), -1) + 0.1*tanh(u)",  # two corners
    "abs(u) + sin(u)",
    "0.7*max(u, 0) + softplus(u)",
]


def _run(expr: str, X: np.ndarray, depth: int, times: int) -> tuple[list[float], np.ndarray]:
    """Wall and CPU seconds of ``times`` calls (wall, cpu, wall, cpu, ...), the last kernel."""
    k = ntksym.kernel(expr, depth=depth, backend="dual", degree=None)
    took = []
    K = np.empty(0)
    for _ in range(times):
        t0, c0 = time.perf_counter(), time.process_time()
        K = k(X)
        took += [time.perf_counter() - t0, time.process_time() - c0]
    return took, K


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / np.abs(b)))


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    depth = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    m = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    exprs = sys.argv[4:] or EXPRS
    X = np.random.default_rng(0).standard_normal((n, 4))
    print(f"N = {n}, depth {depth}, load average {os.getloadavg()[0]:.2f}")
    for expr in exprs:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            took, K = _run(expr, X, depth, 2)
        print(
            f"{expr}: first {took[0]:6.2f} s (cpu {took[1]:6.2f} s)  later {took[2]:6.2f} s "
            f"(cpu {took[3]:6.2f} s)  warnings {len(caught)}  "
            f"(load average {os.getloadavg()[0]:.2f})",
            flush=True,
        )
        original = kinked.split_of
        kinked.split_of = lambda act: None  # the kink-aware rule on sigma itself
        try:
            old_took, old = _run(expr, X[:m], depth, 1)
        finally:
            kinked.split_of = original
        print(
            f"  vs kink-aware rule ({m} inputs, {old_took[0]:.1f} s): {_rel(K[:m, :m], old):.1e}",
            flush=True,
        )
        try:
            want = reference.kernel(expr, X[:2], X[:2], depth=depth, dps=17)[1]
        except reference.QuadratureError as err:  # (its pieces miss a corner: see performance.md)
            print(f"  vs reference (2 inputs): the reference does not converge ({err})")
            continue
        print(
            f"  vs reference (2 inputs): {_rel(K[:2, :2], np.array(want, float)):.1e}", flush=True
        )


if __name__ == "__main__":
    main()
