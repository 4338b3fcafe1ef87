"""Hyperparameter gradients against the kernel alone (issue 16: within 3x at N = 2000, depth 5).

For each activation, ``ntksym.kernel(act, depth, bias_std=0.3)(X, get=...)`` (the generated
Numba kernel) and :func:`ntksym.kernels.gradients.kernel_gradients` (the same Gram matrix and
its derivatives in ``bias_std`` and ``weight_std``) on ``X`` of shape (N, d), standard normal,
seed 0, both after a warm-up call (the one-time Numba compilations are not timed). The two are
timed alternately, ``--repeats`` times each; printed are the medians (wall clock and, for a
single thread, CPU time, which is steadier on a shared machine), their ratio, and the largest
difference between the two Gram matrices, relative to ``sqrt(K(x,x) K(x',x'))``.

Usage::

    NUMBA_NUM_THREADS=1 python benchmarks/bench_gradients.py            # one core
    python benchmarks/bench_gradients.py                                # all cores
    python benchmarks/bench_gradients.py --acts relu --n 4000 --get nngp
"""

from __future__ import annotations

import argparse
import time

import numba
import numpy as np

import ntksym
from ntksym.kernels.gradients import kernel_gradients


def _timed(fn, clock):
    t0 = clock()
    out = fn()
    return clock() - t0, out


def bench(act: str, n: int, d: int, depth: int, get: str, repeats: int) -> dict:
    """Median times of the kernel and of kernel + gradients for one activation."""
    X = np.random.default_rng(0).standard_normal((n, d))
    k = ntksym.kernel(act, depth=depth, bias_std=0.3, backend="numba")
    k(X[:8], get=get)  # compile both before timing
    kernel_gradients(k, X[:8], get=get)
    wall: dict[str, list[float]] = {"kernel": [], "gradient": []}
    cpu: dict[str, list[float]] = {"kernel": [], "gradient": []}
    for _ in range(repeats):
        for name, fn in (
            ("kernel", lambda: k(X, get=get)),
            ("gradient", lambda: kernel_gradients(k, X, get=get)),
        ):
            c0 = time.process_time()
            w, out = _timed(fn, time.perf_counter)
            cpu[name].append(time.process_time() - c0)
            wall[name].append(w)
            if name == "kernel":
                K = out
            else:
                scale = np.sqrt(np.outer(np.diag(K), np.diag(K)))
                diff = float(np.max(np.abs(out[0] - K) / scale))
    med = {
        f"{kind}_{name}": float(np.median(v))
        for kind, t in (("wall", wall), ("cpu", cpu))
        for name, v in t.items()
    }
    med["diff"] = diff
    return med


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--acts", nargs="+", default=["relu", "erf", "gelu"])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--d", type=int, default=10)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--get", choices=("ntk", "nngp"), default="ntk")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    threads = numba.get_num_threads()
    print(
        f"N = {args.n}, d = {args.d}, depth {args.depth}, {args.get}, {threads} thread(s), "
        f"medians of {args.repeats}"
    )
    print(
        f"{'activation':<10} {'kernel s':>9} {'grad s':>8} {'ratio':>6} {'cpu ratio':>9} "
        f"{'max diff':>12}"
    )
    for act in args.acts:
        m = bench(act, args.n, args.d, args.depth, args.get, args.repeats)
        ratio = m["wall_gradient"] / m["wall_kernel"]
        cpu_ratio = m["cpu_gradient"] / m["cpu_kernel"]
        print(
            f"{act:<10} {m['wall_kernel']:9.3f} {m['wall_gradient']:8.3f} {ratio:6.2f} "
            f"{cpu_ratio:9.2f} {m['diff']:12.1e}"
        )


if __name__ == "__main__":
    main()
