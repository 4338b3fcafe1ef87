"""Which fresh output costs a depth-2 call its extra time: the NNGP's, the NTK's, or both.

The committed ReLU module (depth 2, one thread) is called in rounds with both outputs
fresh, both given as ``out=``, one of each, and both fresh without NumPy's
``madvise(MADV_HUGEPAGE)``; beside it ``X @ X.T`` fresh and a fresh array filled. Prints
the median CPU seconds and minor page faults of each as JSON. Pin it::

    taskset -c 0 python benchmarks/bench_fresh_outputs.py 4000 5
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numba
import numpy as np
from numpy._core import multiarray

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_depth_parts  # noqa: E402


def _no_thp(f: Any) -> Any:
    """``f`` called with NumPy's huge-page advice off."""

    def g() -> Any:
        multiarray._set_madvise_hugepage(False)
        try:
            return f()
        finally:
            multiarray._set_madvise_hugepage(True)

    return g


def main(argv: list[str] | None = None) -> int:
    """Time the variants in rounds; print medians (CPU s, minor faults) as JSON."""
    argv = sys.argv[1:] if argv is None else argv
    n, rounds = int(argv[0]), int(argv[1])
    numba.set_num_threads(1)
    mod = bench_depth_parts._module("relu")
    X = np.random.default_rng(0).standard_normal((n, 256))
    K, T = np.ones((n, n)), np.ones((n, n))
    v = {
        "out both": lambda: mod.nngp_ntk(X, None, 2, 0.1, 1.0, out=(K, T)),
        "fresh both": lambda: mod.nngp_ntk(X, None, 2, 0.1, 1.0),
        "K out, T fresh": lambda: mod.nngp_ntk(X, None, 2, 0.1, 1.0, out=(K, None)),
        "K fresh, T out": lambda: mod.nngp_ntk(X, None, 2, 0.1, 1.0, out=(None, T)),
        "fresh both, no THP": _no_thp(lambda: mod.nngp_ntk(X, None, 2, 0.1, 1.0)),
        "gram fresh": lambda: X @ X.T,
        "empty+fill fresh": lambda: np.empty((n, n)).fill(1.0),
    }
    for f in v.values():
        f()
    cpu: dict[str, list] = {k: [] for k in v}
    flt: dict[str, list] = {k: [] for k in v}
    for _ in range(rounds):
        for k, f in v.items():
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            c0 = time.process_time()
            o = f()
            cpu[k].append(time.process_time() - c0)
            flt[k].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
            del o
    med = {
        k: (round(statistics.median(x), 3), int(statistics.median(flt[k]))) for k, x in cpu.items()
    }
    print(json.dumps(med))
    return 0


if __name__ == "__main__":
    sys.exit(main())
