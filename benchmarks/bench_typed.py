"""Typed sums of activations against the named activation: time and error (ntksym issue 13).

For each pair (typed expression, named activation) it times ``ntksym.kernel(..., depth=3)``
on N inputs (NNGP and NTK; the first call includes the SymPy derivation of a typed sum's
cross terms, the second is timed separately) and measures the largest error of a few
entries against ``ntksym.reference.kernel`` (mpmath; for the typed sums the reference
evaluates their closed form at 30 digits, which ``tests/test_typed_sums.py`` checks
against quadrature). Run on one core:

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/bench_typed.py [N]
"""

from __future__ import annotations

import sys
import time

import numpy as np

import ntksym
from ntksym import reference

PAIRS = [
    ("relu(u) + 0.1*erf(u)", "relu"),
    ("abs(u) + 1", "abs"),
    ("erf(u) + 0.1*u", "erf"),
]


def _run(activation: str, X: np.ndarray) -> tuple[float, float, ntksym.Kernels]:
    """Seconds for the first and the second call, and the kernels."""
    k = ntksym.kernel(activation, depth=3, bias_std=0.1)
    start = time.perf_counter()
    k(X, get=("nngp", "ntk"))
    first = time.perf_counter() - start
    start = time.perf_counter()
    out = k(X, get=("nngp", "ntk"))
    return first, time.perf_counter() - start, out


def _max_error(activation: str, X: np.ndarray, out: ntksym.Kernels, rows: int = 3) -> float:
    """Largest relative error of the first ``rows`` x ``rows`` block against mpmath."""
    nngp, ntk = reference.kernel(activation, X[:rows], depth=3, bias_std=0.1, dps=30)
    errs = [
        np.max(np.abs(out.nngp[:rows, :rows] - nngp) / np.abs(nngp)),
        np.max(np.abs(out.ntk[:rows, :rows] - ntk) / np.abs(ntk)),
    ]
    return float(max(errs))


def main(n: int) -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 10))
    print(f"N = {n}, depth 3, NNGP and NTK; seconds (first call, second call), max rel. error")
    for typed, named in PAIRS:
        for activation in (typed, named):
            first, second, out = _run(activation, X)
            try:
                err = f"{_max_error(activation, X, out):.1e}"
            except ntksym.errors.NTKSymError as exc:  # the mpmath referee itself failed
                err = f"reference failed: {str(exc)[:60]}"
            print(f"  {activation:24s} {first:8.2f} {second:8.3f}   {err}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
