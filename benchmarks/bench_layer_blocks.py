"""Memory and CPU time of a described network's layer path, before and after row blocks.

Each measurement is a fresh process (so that its peak resident set is the call's):
``kernel_fn(X, get=("nngp", "ntk"), backend="layers")`` for a network the fused kernel
does not cover (Dropout in train mode), N x 16 Gaussian inputs. Printed per source tree
and N: the process's peak resident set over the outputs' bytes, the growth of the peak
during the call over the outputs, and the call's CPU time; then the ratios of the two
trees measured side by side in one run.

Usage::

    python benchmarks/bench_layer_blocks.py --before /work/main/src --after src --n 2000 4000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

_CHILD = r"""
import json, resource, sys, time
import numpy as np
from ntksym import stax
net = stax.serial(
    stax.Dense(512, 1.2, 0.1), stax.Relu(), stax.Dropout(0.8),
    stax.Dense(512, 1.1, 0.2), stax.Erf(), stax.Dropout(0.9), stax.Dense(1, 0.9, 0.1),
)
n = int(sys.argv[1])
X = np.random.default_rng(0).standard_normal((n, 16))
net.kernel_fn(X[:40], None, ("nngp", "ntk"), backend="layers")  # warm: lambdified maps
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
t = time.process_time()
nngp, ntk = net.kernel_fn(X, None, ("nngp", "ntk"), backend="layers")
cpu = time.process_time() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
out = nngp.nbytes + ntk.nbytes
print(json.dumps({"peak": peak / out, "growth": (peak - base) / out, "cpu": cpu}))
"""


def measure(src: str, n: int) -> dict[str, float]:
    """One fresh process's figures with ``src`` first on the path."""
    env = dict(os.environ, PYTHONPATH=os.path.abspath(src))
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(n)], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    """Measure both trees at every N and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="src directory of the baseline tree")
    parser.add_argument("--after", required=True, help="src directory of the tree measured")
    parser.add_argument("--n", type=int, nargs="+", default=[2000, 4000])
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}")
    print("N      tree    peak RSS/outputs  growth/outputs  CPU s")
    for n in args.n:
        rows = {
            name: measure(src, n) for name, src in (("before", args.before), ("after", args.after))
        }
        for name, r in rows.items():
            print(f"{n:<6} {name:7s} {r['peak']:16.2f}  {r['growth']:14.2f}  {r['cpu']:6.2f}")
        b, a = rows["before"], rows["after"]
        print(
            f"{n:<6} ratio   peak {b['peak'] / a['peak']:.2f}x lower, "
            f"CPU after/before {a['cpu'] / b['cpu']:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
