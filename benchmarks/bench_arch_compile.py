"""First calls of the fused kernel of a described network: cold (generate, compile) and cached.

Each measurement is a fresh subprocess pinned to one core (``NUMBA_NUM_THREADS=1``) that
imports ``ntksym`` from one source tree, builds a network with ``ntksym.stax`` and calls
``kernel_fn(X, backend="fused")`` twice (X: 200 x 256 standard normal, seed 0):

* ``cold``   - an empty ``NTKSYM_CACHE_DIR``: lowering, SymPy, rendering, Numba compilation;
* ``cached`` - a second fresh process on the same cache directory: the module and Numba's
  compiled code are loaded from disk.

Printed per (tree, network, mode), all CPU seconds (``time.process_time`` in the child):
``import`` (``import ntksym`` and building the network), ``gen`` (lowering, generation and
import of the module: :func:`ntksym.codegen.architecture.fused_kernel`), ``first`` (the
first call: Numba's compilation or cache load, and the call), ``call`` (a second call, the
steady state) and ``total`` (the whole process, from ``resource.getrusage``). The trees
alternate (A B A B ...), so both see the same load.

Networks (those of ``bench_stax.py`` and one more):

* ``mixed``     - depth 10 of relu, erf and gelu layers with different variances;
* ``residual``  - depth 10: Dense, 8 residual blocks ``x + Dense(Relu(x))``, Relu, Dense;
* ``gelu_relu`` - ``Dense, Gelu, Dense, Relu, Dense`` (a kinked layer after GELU reads
  GELU's carried determinant).

Usage::

    python benchmarks/bench_arch_compile.py                         # main against this tree
    python benchmarks/bench_arch_compile.py --trees this --nets mixed --repeat 2
    python benchmarks/bench_arch_compile.py --trees main=/work/main/src this=src
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NETWORKS = ("mixed", "residual", "gelu_relu")

_CHILD = r"""
import json, sys, time
c0 = time.process_time()
import numpy as np
import ntksym
from ntksym import stax
from ntksym.codegen.architecture import fused_kernel
sys.path.insert(0, sys.argv[2])
from bench_stax import build

name = sys.argv[1]
if name == "gelu_relu":
    net = stax.serial(stax.Dense(8, 1.3, 0.2), stax.Gelu(), stax.Dense(8, 1.1, 0.3),
                      stax.Relu(), stax.Dense(1, 0.9, 0.1))
else:
    net = build(stax, name)
X = np.random.default_rng(0).standard_normal((200, 256))
c1 = time.process_time()
fused_kernel(net.description)
c2 = time.process_time()
net.kernel_fn(X, backend="fused")
c3 = time.process_time()
net.kernel_fn(X, backend="fused")
c4 = time.process_time()
rec = {"file": ntksym.__file__, "import": c1 - c0, "gen": c2 - c1, "first": c3 - c2,
       "call": c4 - c3}
print(json.dumps(rec))
"""


def child(src: str, name: str, cache: str) -> dict:
    """One fresh process on ``cache`` importing ntksym from ``src``; its record."""
    env = dict(os.environ)
    env.pop("NUMBA_CACHE_DIR", None)  # (Numba's cache then follows the modules)
    env.update(PYTHONPATH=src, NTKSYM_CACHE_DIR=cache, NUMBA_NUM_THREADS="1")
    for k in ("OMP", "OPENBLAS", "MKL"):
        env[f"{k}_NUM_THREADS"] = "1"
    core = sorted(os.sched_getaffinity(0))[:1]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, name, str(REPO / "benchmarks")],
        env=env, capture_output=True, text=True, check=False,
        preexec_fn=lambda: os.sched_setaffinity(0, core),
    )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
            if not rec["file"].startswith(str(Path(src).resolve())):
                raise SystemExit(f"imported {rec['file']}, not from {src}")
            return {**rec, "total": total}
    raise SystemExit(f"{name} from {src} failed:\n{proc.stderr[-3000:]}")


def main(argv: list[str] | None = None) -> int:
    """Time the first calls and print one Markdown table row per (network, tree, mode)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nets", nargs="+", default=list(NETWORKS), choices=NETWORKS)
    ap.add_argument(
        "--trees", nargs="+", default=["main=/work/main/src", f"this={REPO / 'src'}"],
        help="NAME=SRC_DIR (or 'this'): the source trees to compare",
    )  # fmt: skip
    ap.add_argument("--repeat", type=int, default=1, help="cold/cached pairs per tree")
    args = ap.parse_args(argv)
    trees = [t.split("=", 1) if "=" in t else (t, str(REPO / "src")) for t in args.trees]
    cols = ("import", "gen", "first", "call", "total")
    print(f"load average: {os.getloadavg()[0]:.1f}")
    print("| network | tree | mode | " + " | ".join(f"{c} CPU s" for c in cols) + " |")
    print("|---|---|---|" + "---|" * len(cols))
    for name in args.nets:
        recs: dict[tuple[str, str], list[dict]] = {}
        for _ in range(args.repeat):
            for label, src in trees:
                with tempfile.TemporaryDirectory() as cache:
                    for mode in ("cold", "cached"):
                        recs.setdefault((label, mode), []).append(child(src, name, cache))
        for (label, mode), rs in recs.items():
            med = [statistics.median(r[c] for r in rs) for c in cols]
            cells = " | ".join(f"{v:.2f}" for v in med)
            print(f"| {name} | {label} | {mode} | {cells} |", flush=True)
    print(f"load average: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
