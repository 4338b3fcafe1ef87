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
and the largest difference between the first answer and the Numba one (relative to the
largest entry: the two backends differ by rounding only).

Usage::

    python benchmarks/bench_first_call.py                  # relu and erf, N = 1000, depth 3
    python benchmarks/bench_first_call.py --acts gelu --n 200 1000
    python benchmarks/bench_first_call.py --acts tanh "tanh(u) + 0.1*u" --n 100 1000 --get nngp
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

_CHILD = r"""
import json, sys, threading, time
t0 = time.perf_counter()
import numpy as np
import ntksym
t_import = time.perf_counter() - t0
act, n, depth, get = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].split(",")
get = get[0] if len(get) == 1 else tuple(get)
def arrays(out):
    return out if isinstance(out, tuple) else (out,)
X = np.random.default_rng(0).standard_normal((n, 20))
k = ntksym.kernel(act, depth, bias_std=0.1)
times = []
for args in ((X,), (X, X[: n // 2])):
    t = time.perf_counter()
    out = k(*args, get=get)
    times.append(time.perf_counter() - t)
    if len(times) == 1:
        first = out
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
print(json.dumps({"import": t_import, "calls": times, "wait": wait, "diff": diff}))
"""


def run(act: str, n: int, depth: int, mode: str, get: str) -> dict:
    """One fresh subprocess (empty Numba cache); its timings as a dict."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        env["NTKSYM_BACKGROUND_COMPILE"] = "0" if mode == "wait" else "1"
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, act, str(n), str(depth), get],
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
    args = parser.parse_args()
    print(
        f"{'act':>16} {'N':>6} {'mode':>10} {'import':>7} {'k(X)':>7} {'k(X,Y)':>7} "
        f"{'wait':>7} {'k(X) 2nd':>8} {'first vs numba':>14}"
    )
    for act in args.acts:
        for n in args.n:
            for mode in ("wait", "background"):
                r = run(act, n, args.depth, mode, args.get)
                c = r["calls"]
                print(
                    f"{act:>16} {n:>6} {mode:>10} {r['import']:7.2f} {c[0]:7.2f} {c[1]:7.2f} "
                    f"{r['wait']:7.2f} {c[2]:8.3f} {r['diff']:14.2e}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
