"""What fresh outputs cost a depth-2 call: cold memory handed back to the hypervisor.

This machine is a Firecracker guest whose kernel runs virtio-balloon's free page
reporting (``page_reporting.page_reporting_order=11`` on its command line): about 2 s
after a block of 8 MB or more is freed, the guest reports it to the host, which drops its
backing. The next first touch of that memory (the kernel zeroing the new page) stalls
while the host backs it again, and the stall is counted as the process's *system* time.
So a fresh array costs little when it reuses memory freed a moment ago (warm) and about
1 s of system time per GB when the memory was free for longer (cold: the first call of a
process, or any call after the caller did something else for a few seconds).

The committed ReLU module (depth 2, one thread, both outputs) is called in rounds, each
variant once per round: both outputs as ``out=`` (already mapped), both fresh right after
a call of the same size freed its outputs (warm), both fresh after ``--idle`` seconds
asleep (cold), and the NTK's array alone cold; beside them ``X @ X.T`` and a filled
``numpy.empty`` array, warm and cold. Prints the median CPU seconds, user and system
seconds and minor page faults of each as JSON. Pin it::

    taskset -c 0 python benchmarks/bench_fresh_outputs.py 4000 5 --idle 3
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_depth_parts  # noqa: E402


def _variants(mod: Any, X: np.ndarray, idle: float) -> dict[str, tuple[Callable, Callable]]:
    """Name -> (preparation, timed call); the preparation runs untimed just before."""
    n = X.shape[0]
    K, T = np.ones((n, n)), np.ones((n, n))

    def call(out: Any = None) -> Any:
        return mod.nngp_ntk(X, None, 2, 0.1, 1.0, out=out)

    def warm(f: Callable) -> Callable:  # a call of the same size frees its outputs just before
        return lambda: f()

    def cold() -> None:
        time.sleep(idle)

    return {
        "both out= (mapped)": (lambda: None, lambda: call((K, T))),
        "both fresh, warm": (warm(call), call),
        "both fresh, cold": (cold, call),
        "NNGP out=, NTK fresh, cold": (cold, lambda: call((K, None))),
        "X @ X.T, warm": (warm(lambda: X @ X.T), lambda: X @ X.T),
        "X @ X.T, cold": (cold, lambda: X @ X.T),
        "2 arrays filled, warm": (warm(lambda: _filled(n, 2)), lambda: _filled(n, 2)),
        "2 arrays filled, cold": (cold, lambda: _filled(n, 2)),
    }


def _filled(n: int, k: int) -> list:
    out = [np.empty((n, n)) for _ in range(k)]
    for a in out:
        a.fill(1.0)
    return out


def main(argv: list[str] | None = None) -> int:
    """Time the variants in rounds; print medians (CPU, user, system s; faults) as JSON."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("n", type=int)
    p.add_argument("rounds", type=int)
    p.add_argument("--idle", type=float, default=3.0, help="seconds asleep before a cold call")
    a = p.parse_args(sys.argv[1:] if argv is None else argv)
    numba.set_num_threads(1)
    mod = bench_depth_parts._module("relu")
    X = np.random.default_rng(0).standard_normal((a.n, 256))
    v = _variants(mod, X, a.idle)
    call = v["both out= (mapped)"][1]
    call()  # (compiled, or loaded from Numba's cache)
    rec: dict[str, list] = {k: [] for k in v}
    for _ in range(a.rounds):
        for k, (prep, f) in v.items():
            r = prep()
            del r
            r0 = resource.getrusage(resource.RUSAGE_SELF)
            c0 = time.process_time()
            o = f()
            c1 = time.process_time()
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            del o
            rec[k].append(
                (
                    c1 - c0,
                    r1.ru_utime - r0.ru_utime,
                    r1.ru_stime - r0.ru_stime,
                    r1.ru_minflt - r0.ru_minflt,
                )
            )
    med = {
        k: [round(statistics.median(x[i] for x in rs), 3) for i in range(3)]
        + [int(statistics.median(x[3] for x in rs))]
        for k, rs in rec.items()
    }
    print(json.dumps({"cpu, user, system s, faults": med}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
