"""Does ``ntksym gram --block-seconds S`` keep each block within S? Measured on slow kernels.

For each case, :func:`ntksym.kernels.tiles.gram_to_file` runs on ``N x d`` standard normal
inputs (seed 0) with ``block_seconds=S``; printed: the rate the probe measured (wall-clock
seconds per entry) and its own cost, the block side chosen, and the blocks' wall-clock and
CPU times after the first (which also holds the probe): the median, the largest, and the
largest over S. Wall-clock is what the bound is about (a waiting user); the load
is printed, since a loaded machine makes blocks (and the measured rate) longer.

Usage::

    python benchmarks/bench_block_seconds.py                       # the default cases, S = 10
    python benchmarks/bench_block_seconds.py --seconds 30 --n 3000
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ntksym.kernels import tileplan
from ntksym.kernels.tiles import gram_to_file

#: (label, gram_to_file keywords): kernels slow enough for the time bound to bind.
CASES = {
    "tanh-dual-d3": {"activation": "tanh", "depth": 3, "backend": "dual"},
    "softplus-numba-d5": {"activation": "softplus", "depth": 5, "backend": "numba"},
    "gelu-numpy-d20": {"activation": "gelu", "depth": 20, "backend": "numpy"},
}


def _run(X: np.ndarray, kw: dict, seconds: float, out: Path) -> dict:
    """One run: the probe's rate and cost, the chosen side, each block's wall and CPU time."""
    probes: list[tuple[float, float]] = []
    real = tileplan.measure_rate

    def timed_probe(*args, **kwargs) -> float:
        start = time.perf_counter()
        rate = real(*args, **kwargs)
        probes.append((rate, time.perf_counter() - start))
        return rate

    tileplan.measure_rate = timed_probe
    marks = [(time.perf_counter(), time.process_time())]
    sides: list[int] = []
    real_plan = tileplan.time_tile

    def recorded_plan(*args, **kwargs) -> int:
        sides.append(real_plan(*args, **kwargs))
        return sides[-1]

    tileplan.time_tile = recorded_plan
    try:
        gram_to_file(
            X, None, out, get="both", block_seconds=seconds, overwrite=True,
            progress=lambda d, t: marks.append((time.perf_counter(), time.process_time())), **kw,
        )  # fmt: skip
    finally:
        tileplan.measure_rate, tileplan.time_tile = real, real_plan
    walls = [b[0] - a[0] for a, b in zip(marks[1:], marks[2:], strict=False)]
    cpus = [b[1] - a[1] for a, b in zip(marks[1:], marks[2:], strict=False)]
    return {"probes": probes, "sides": sides, "walls": walls, "cpus": cpus}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1500)
    ap.add_argument("--d", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--cases", nargs="*", default=list(CASES))
    args = ap.parse_args()
    X = np.random.default_rng(0).standard_normal((args.n, args.d))
    print(f"N={args.n} d={args.d} block_seconds={args.seconds} load={os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        for label in args.cases:
            X_warm = X[:80]  # (compile or load the kernels first: not part of a block)
            gram_to_file(X_warm, None, Path(tmp) / "w.npy", overwrite=True, tile=80, **CASES[label])
            r = _run(X, CASES[label], args.seconds, Path(tmp) / "K.npy")
            rate, cost = r["probes"][0] if r["probes"] else (float("nan"), 0.0)
            walls, cpus = r["walls"], r["cpus"]
            print(
                f"{label}: rate {rate:.3g} s/entry (probe {cost:.2f} s wall), side "
                f"{r['sides'][0] if r['sides'] else 'memory'}, {len(walls) + 1} blocks; block "
                f"wall max {max(walls, default=0):.2f} s median "
                f"{statistics.median(walls) if walls else 0:.2f} s (max/S "
                f"{max(walls, default=0) / args.seconds:.2f}); CPU max {max(cpus, default=0):.2f}"
                f" s; load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    sys.exit(0)


if __name__ == "__main__":
    main()
