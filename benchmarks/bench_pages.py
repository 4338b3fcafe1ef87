"""What mapping fresh output pages costs, with and without transparent huge pages.

A shallow network's Gram matrices cost little arithmetic per entry, so writing 2 x 512 MB of
fresh outputs (N = 8000) is a large part of a call. This script writes one fresh N x N
float64 array (``numpy.empty`` then ``fill``) under NumPy's ``madvise(MADV_HUGEPAGE)``
(NumPy's default where ``/sys/kernel/mm/transparent_hugepage/enabled`` is ``madvise``) and
without it, alternately, and an array already mapped (what ``out=`` buffers give), and
prints median CPU seconds (``time.process_time``: user + system, so the kernel's page
faults count), minor page faults and ratios. With an activation name as third argument,
the same for a call of its committed Numba module's ``nngp_ntk`` (depth 2, d = 256): fresh
outputs with and without huge pages, and ``out=`` arrays already mapped. Run pinned:
``taskset -c 0 python benchmarks/bench_pages.py [N] [rounds] [relu]``.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from numpy._core import multiarray


def _fill(n: int) -> None:
    a = np.empty((n, n))
    a.fill(1.0)


def _fresh(n: int, huge: bool, work=None) -> tuple[float, int]:  # noqa: ANN001
    multiarray._set_madvise_hugepage(huge)
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    c0 = time.process_time()
    (work or _fill)(n)
    cpu = time.process_time() - c0
    multiarray._set_madvise_hugepage(True)
    return cpu, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0


def _kernel(act: str, n: int):  # noqa: ANN202
    """The committed Numba module's nngp_ntk at depth 2 on N x 256 inputs, and out= arrays."""
    import importlib.util

    from ntksym.codegen.files import package_generated_dir

    name = f"{act}_numba"
    spec = importlib.util.spec_from_file_location(name, package_generated_dir() / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    X = np.random.default_rng(0).standard_normal((n, 256))
    mod.nngp_ntk(X[:64], None, 2)  # (compile or load from Numba's cache)
    kept = mod.nngp_ntk(X, None, 2, 0.1, 1.0)
    return (lambda _n: mod.nngp_ntk(X, None, 2, 0.1, 1.0)), (
        lambda _n: mod.nngp_ntk(X, None, 2, 0.1, 1.0, out=kept)
    )


def main() -> int:
    """Measure and print one markdown table."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    print(f"# THP: {thp.read_text().strip() if thp.exists() else 'n/a'}; N = {n}, {rounds} rounds")
    work = reuse = None
    if len(sys.argv) > 3:
        work, reuse = _kernel(sys.argv[3], n)
    runs: dict[str, list[tuple[float, int]]] = {"huge pages": [], "4 KiB pages": []}
    kept = np.empty((n, n))
    kept.fill(0.0)
    runs["already mapped (out=)"] = []
    for _ in range(rounds):
        runs["huge pages"].append(_fresh(n, True, work))
        runs["4 KiB pages"].append(_fresh(n, False, work))
        runs["already mapped (out=)"].append(_fresh(n, True, reuse or (lambda _n: kept.fill(1.0))))
    base = statistics.median(c for c, _ in runs["already mapped (out=)"])
    what = f"{sys.argv[3]} nngp_ntk, depth 2" if work else "write one fresh array"
    print(f"| {what} | median cpu s | faults | vs already mapped |")
    print("|---|---|---|---|")
    for name, r in runs.items():
        cpu = statistics.median(c for c, _ in r)
        faults = int(statistics.median(f for _, f in r))
        print(f"| {name} | {cpu:.3f} | {faults} | {cpu / base:.1f}x |")
    print(f"# load average: {Path('/proc/loadavg').read_text().split()[:3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
