"""Generated fused modules side by side in one process: CPU seconds of whole calls.

Fused modules (:mod:`ntksym.codegen.architecture`) are standalone files in a tree's cache
(``$NTKSYM_CACHE_DIR/kernels/arch_<hash>.py``), so two trees' modules of one network can
be imported into one process and timed alternately under the same load: ``_compute(X)``
(NNGP and NTK of ``X``, N x 256 standard normal, seed 0), min over ``--rounds``, beside
the floor ``X @ X.T``; the largest relative difference of each module's outputs to the
first one's; and, for modules that have them, how many chunks ran and how many carried
the determinants (``_compute``'s ``counts``). Run pinned, one thread::

    NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 taskset -c 0 python \\
        benchmarks/bench_fused_modules.py --n 2000 main=/path/a.py chunkdet=/path/b.py
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
import types

import numpy as np


def load(path: str) -> types.ModuleType:
    """The module at ``path``, named by its stem (Numba's cache finds it by that name)."""
    stem = path.rsplit("/", 1)[-1][:-3]
    spec = importlib.util.spec_from_file_location(stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[stem] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    """Print the JSON of the timings."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("modules", nargs="+", help="label=path of a generated module")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv)
    X = np.random.default_rng(0).standard_normal((args.n, 256))
    mods = {label: load(path) for label, path in (m.split("=", 1) for m in args.modules)}
    for m in mods.values():
        m._compute(X[:300], None, True)  # Numba's cache loaded before timing
    cpu: dict[str, list[float]] = {label: [] for label in mods}
    diff: dict[str, float] = {}
    floor = []
    for _ in range(args.rounds):
        first = None
        for label, m in mods.items():
            c = time.process_time()
            out = m._compute(X, None, True)
            cpu[label].append(time.process_time() - c)
            if first is None:
                first = out
            else:
                d = max(
                    float(np.max(np.abs(a - b) / np.abs(b)))
                    for a, b in zip(out, first, strict=True)
                )
                diff[label] = max(diff.get(label, 0.0), d)
        c = time.process_time()
        X @ X.T
        floor.append(time.process_time() - c)
    res: dict[str, object] = {label: min(v) for label, v in cpu.items()}
    res["floor"] = min(floor)
    res["max_rel_diff_to_first"] = diff
    for label, m in mods.items():
        if hasattr(m, "TAU"):
            counts = np.zeros(2, dtype=np.int64)
            m._compute(X, None, True, m.TAU, counts)
            res[f"{label}: chunks run, carried"] = counts.tolist()
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
