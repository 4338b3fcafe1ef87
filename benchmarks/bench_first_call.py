"""Time to the first answer on a fresh install: Numba compiles before it answers, or not.

Each run is a fresh subprocess with an empty Numba cache directory (a fresh install, as
far as compiled code goes) that imports ntksym and calls ``ntksym.kernel(ACT, depth)`` on
``X`` (N x 20 standard normal, seed 0) three times: ``k(X)``, ``k(X, X[:N//2])`` and, after
waiting for any background compilation, ``k(X)`` again (``get``: both kernels, or the NNGP
alone with ``--get nngp``). Two modes:

* ``wait``       - ``NTKSYM_BACKGROUND_COMPILE=0``: every call waits for Numba to compile
  (the behaviour before the background compilation existed);
* ``background`` - the default: while Numba compiles in a background thread, small calls
  are answered by the generated NumPy module (up to 4e6 entry-layers for a closed form,
  3e6 for a quadrature module: tanh, sigmoid, typed smooth expressions).

Printed per run: the import time, each call's time, the wait for the background thread,
and the largest difference between the first answer and the second ``k(X)`` (Numba once
compiled, or the NumPy module again where it answers without compiling), relative to the
largest entry: the two backends differ by rounding only. ``--first-only`` stops each run
after its first call (no waiting for a compilation).

Inputs (``--inputs``): ``independent`` (the rows above), ``twins`` (the second half of the
rows is the first half plus 1e-6 times fresh noise: one nearly parallel partner per row),
``parallel`` (every row is x0 + 0.05 z: all correlations about 0.995, where the Mehler
series of degree 48 of the NumPy quadrature declines), ``cap`` (rows on a cap of the sphere
of radius sqrt(20), the norm of a standard normal row: all correlations above 0.9, all
variances equal). ``--trees NAME=SRC ...`` runs each tree's
``src`` (PYTHONPATH) in turn, side by side (e.g. ``main=/tmp/base/src this=src``);
``--modes`` picks the modes. Times are wall seconds, and CPU seconds of the process
(``time.process_time``) for the first call (the background thread starts after it).

Usage::

    python benchmarks/bench_first_call.py                  # relu and erf, N = 1000, depth 3
    python benchmarks/bench_first_call.py --acts gelu --n 200 1000
    python benchmarks/bench_first_call.py --acts tanh "tanh(u) + 0.1*u" --n 100 1000 --get nngp
    python benchmarks/bench_first_call.py --acts tanh --inputs independent twins parallel \
        --modes background --trees main=/tmp/base/src this=src
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

_CHILD = r"""
import json, os, sys, threading, time
t0 = time.perf_counter()
import numpy as np
import ntksym
t_import = time.perf_counter() - t0
act, n, depth, get = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].split(",")
get = get[0] if len(get) == 1 else tuple(get)
inputs = sys.argv[5]
def arrays(out):
    return out if isinstance(out, tuple) else (out,)
rng = np.random.default_rng(0)
X = rng.standard_normal((n, 20))
if inputs == "twins":
    h = n // 2
    X[h:] = X[: n - h] + 1e-6 * rng.standard_normal((n - h, 20))
elif inputs == "parallel":
    X = X[0] + 0.05 * rng.standard_normal((n, 20))
elif inputs == "cap":
    X = X[0] / np.linalg.norm(X[0]) + 0.15 * rng.standard_normal((n, 20)) / np.sqrt(20)
    X *= np.sqrt(20) / np.linalg.norm(X, axis=1, keepdims=True)
k = ntksym.kernel(act, depth, bias_std=0.1)
times = []
if sys.argv[6] == "1":
    c = time.process_time()
    t = time.perf_counter()
    k(X, get=get)
    t, c = time.perf_counter() - t, time.process_time() - c
    nan = float("nan")
    print(json.dumps({"import": t_import, "calls": [t, nan, nan], "cpu": c, "wait": nan,
                      "diff": nan}), flush=True)
    os._exit(0)  # (not waiting for a compiling thread)
for args in ((X,), (X, X[: n // 2])):
    t = time.perf_counter()
    c = time.process_time()
    out = k(*args, get=get)
    times.append(time.perf_counter() - t)
    if len(times) == 1:
        first = out
        cpu = time.process_time() - c
t = time.perf_counter()
for th in threading.enumerate():
    if th.name.startswith("ntksym-compile"):
        th.join()
wait = time.perf_counter() - t
t = time.perf_counter()
again = k(X, get=get)
times.append(time.perf_counter() - t)
diff = max(
    float(np.max(np.abs(a - b)) / np.max(np.abs(b))) for a, b in zip(arrays(first), arrays(again))
)
print(json.dumps({"import": t_import, "calls": times, "cpu": cpu, "wait": wait, "diff": diff}))
"""


def run(
    act: str, n: int, depth: int, mode: str, get: str, inputs: str, src: str | None, first: bool
) -> dict:
    """One fresh subprocess (empty Numba and ntksym caches); its timings as a dict."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        env["NTKSYM_CACHE_DIR"] = os.path.join(cache, "ntksym")
        env["NTKSYM_BACKGROUND_COMPILE"] = "0" if mode == "wait" else "1"
        if src is not None:
            env["PYTHONPATH"] = os.path.abspath(src)
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, act, str(n), str(depth), get, inputs, str(int(first))],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    """Parse the arguments and print one line per (activation, N, mode)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--acts", nargs="+", default=["relu", "erf"])
    parser.add_argument("--n", nargs="+", type=int, default=[1000])
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--get", default="nngp,ntk", help="nngp,ntk (default) or nngp")
    parser.add_argument(
        "--inputs",
        nargs="+",
        default=["independent"],
        choices=["independent", "twins", "parallel", "cap"],
    )
    parser.add_argument("--modes", nargs="+", default=["wait", "background"])
    parser.add_argument("--first-only", action="store_true", help="stop after the first call")
    parser.add_argument("--trees", nargs="+", default=[], help="NAME=SRC (PYTHONPATH)")
    args = parser.parse_args()
    trees = [t.split("=", 1) for t in args.trees] or [["", None]]
    print(
        f"{'tree':>6} {'act':>16} {'inputs':>11} {'N':>6} {'mode':>10} {'import':>7} "
        f"{'k(X)':>7} {'CPU':>7} {'k(X,Y)':>7} {'wait':>7} {'k(X) 2nd':>8} {'first vs 2nd':>12}"
    )
    for act in args.acts:
        for inputs in args.inputs:
            for n in args.n:
                for mode in args.modes:
                    for name, src in trees:
                        r = run(act, n, args.depth, mode, args.get, inputs, src, args.first_only)
                        c = r["calls"]
                        print(
                            f"{name:>6} {act:>16} {inputs:>11} {n:>6} {mode:>10} "
                            f"{r['import']:7.2f} {c[0]:7.2f} {r['cpu']:7.2f} {c[1]:7.2f} "
                            f"{r['wait']:7.2f} {c[2]:8.3f} {r['diff']:12.2e}",
                            flush=True,
                        )


if __name__ == "__main__":
    main()
