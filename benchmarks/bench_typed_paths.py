"""A kinked typed sum on its two float64 paths: the layer maps (``auto``) and ``"dual"``.

``ntksym.kernel("relu(u) + 0.1*erf(u)", depth)`` has no generated module. From depth 3
on, ``backend="auto"`` computes it by the layer maps of the described networks, which
carry the determinants (session 28); ``backend="dual"`` forms them by subtraction, which
costs a nearly parallel pair ``eps / theta`` in the angle. For each depth this prints the
median CPU seconds of both on N random inputs (NNGP and NTK, called in turn, after one
warm-up call each), their ratio, and each path's largest error against the mpmath
referee (40 digits) on four hostile inputs: a pair 1e-8 apart, its anti-parallel twin
and a generic input, as K(X, X) (its diagonal is one input twice). Run on one core:

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 taskset -c 1 python benchmarks/bench_typed_paths.py
    python benchmarks/bench_typed_paths.py --n 2000 --depths 3 10 --repeat 5
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import ntksym
from ntksym import reference

ACTIVATION = "relu(u) + 0.1*erf(u)"
PATHS = ("auto", "dual")


def _hostile() -> np.ndarray:
    rng = np.random.default_rng(7)
    x, d = rng.standard_normal((2, 10))
    return np.stack([x, x + 1e-8 * d, -x + 1e-8 * d, 2 * x + d])


def _error(depth: int, backend: str) -> float:
    X = _hostile()
    want_n, want_t = reference.kernel(
        ACTIVATION, X, None, depth=depth, bias_std=0.1, weight_std=1.2, dps=40
    )
    got = ntksym.kernel(ACTIVATION, depth, 0.1, 1.2, backend=backend)(X, get=("nngp", "ntk"))
    return float(
        max(
            np.max(np.abs(got.nngp - want_n) / np.abs(want_n)),
            np.max(np.abs(got.ntk - want_t) / np.abs(want_t)),
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--depths", type=int, nargs="+", default=[3, 10])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    X = np.random.default_rng(0).standard_normal((args.n, 10))
    print(f"{ACTIVATION}, N = {args.n}, d = 10, NNGP and NTK; CPU s, medians of {args.repeat}")
    print("depth | auto (layer maps) | dual | auto / dual | error auto | error dual")
    for depth in args.depths:
        kernels = {p: ntksym.kernel(ACTIVATION, depth, 0.1, 1.2, backend=p) for p in PATHS}
        times: dict[str, list[float]] = {p: [] for p in PATHS}
        for p in PATHS:
            kernels[p](X[:50], get=("nngp", "ntk"))  # (warm-up: the derivations, caches)
        for _ in range(args.repeat):
            for p in PATHS:
                start = time.process_time()
                kernels[p](X, get=("nngp", "ntk"))
                times[p].append(time.process_time() - start)
        med = {p: float(np.median(times[p])) for p in PATHS}
        errs = {p: _error(depth, p) for p in PATHS}
        print(
            f"{depth} | {med['auto']:.2f} | {med['dual']:.2f} | {med['auto'] / med['dual']:.1f}x"
            f" | {errs['auto']:.1e} | {errs['dual']:.1e}"
        )


if __name__ == "__main__":
    main()
