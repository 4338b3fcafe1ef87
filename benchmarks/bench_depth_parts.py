"""Where a shallow network's call goes: the Gram product, the first layer, each map, the pages.

In one process pinned to one core, the committed Numba module of an activation
(``generated/<act>_numba.py``, one thread) is called in rounds, each round running every
variant below once in turn (so a change of load hits them all alike), and the median
CPU seconds (``time.process_time``: user + system, so page faults count) and minor page
faults of each variant are printed, with differences that isolate one part:

* ``gram`` / ``gram_out``: ``X @ X.T`` fresh, and into an array already mapped;
* ``nngp d=1 out`` / ``both d=1 out``: the first layer (Gram product, determinant,
  near-parallel test, ``S``; mirror and non-finite check), NNGP alone and with the NTK;
* ``both d=D out`` and ``both d=D fresh`` for each depth given, and the NNGP alone.

Usage::

    taskset -c 0 python benchmarks/bench_depth_parts.py relu 8000 --depths 2 3 --rounds 5
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import statistics
import sys
import time
from typing import Any

import numba
import numpy as np

B, W = 0.1, 1.0


def _module(act: str) -> Any:
    from ntksym.codegen.files import package_generated_dir

    path = package_generated_dir() / f"{act}_numba.py"
    spec = importlib.util.spec_from_file_location(f"{act}_numba", path)
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = mod  # type: ignore[union-attr]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def variants(mod: Any, X: np.ndarray, depths: list[int]) -> dict:
    """Name -> a call to time (``out=`` variants write into arrays kept here)."""
    n = X.shape[0]
    K, T, G = np.empty((n, n)), np.empty((n, n)), np.empty((n, n))
    K.fill(0.0)
    T.fill(0.0)
    G.fill(0.0)
    v = {
        "gram": lambda: X @ X.T,
        "gram_out": lambda: np.matmul(X, X.T, out=G),
        "nngp d=1 out": lambda: mod.nngp(X, None, 1, B, W, out=K),
        "both d=1 out": lambda: mod.nngp_ntk(X, None, 1, B, W, out=(K, T)),
    }
    for d in depths:
        v[f"nngp d={d} out"] = lambda d=d: mod.nngp(X, None, d, B, W, out=K)
        v[f"nngp d={d} fresh"] = lambda d=d: mod.nngp(X, None, d, B, W)
        v[f"both d={d} out"] = lambda d=d: mod.nngp_ntk(X, None, d, B, W, out=(K, T))
        v[f"both d={d} fresh"] = lambda d=d: mod.nngp_ntk(X, None, d, B, W)
    return v


def main(argv: list[str] | None = None) -> int:
    """Time every variant in rounds; print the medians as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("act")
    ap.add_argument("n", type=int)
    ap.add_argument("--depths", type=int, nargs="+", default=[2])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    numba.set_num_threads(1)
    X = np.random.default_rng(0).standard_normal((args.n, 256))
    v = variants(_module(args.act), X, args.depths)
    for call in v.values():  # compiled / loaded, pages of the kept arrays mapped
        call()
    cpu: dict[str, list] = {k: [] for k in v}
    flt: dict[str, list] = {k: [] for k in v}
    for _ in range(args.rounds):
        for name, call in v.items():
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            c0 = time.process_time()
            out = call()
            cpu[name].append(time.process_time() - c0)
            flt[name].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
            del out
    med = {k: round(statistics.median(x), 3) for k, x in cpu.items()}
    faults = {k: int(statistics.median(x)) for k, x in flt.items()}
    print(json.dumps({"cpu_s": med, "minor_faults": faults}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
