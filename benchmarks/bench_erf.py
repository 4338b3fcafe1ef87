"""The runtime's vectorised erf and erfc against what ntksym used before and a peer.

Times, side by side in one process, on the same arrays (standard normal times a scale, so
that every branch is taken): ``ntksym.codegen.runtime.numpy_erf`` (``erf``, ``erfc``),
``numpy.vectorize(math.erf)`` (ntksym's NumPy paths until session 29) and, when SciPy is
installed, ``scipy.special.erf``. Prints the median seconds of ``--repeat`` calls, in turn,
and the ratios; ns per element in brackets.

    taskset -c 1 python benchmarks/bench_erf.py --n 1000000 --repeat 7
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

import numpy as np

from ntksym.codegen.runtime import numpy_erf


def _methods() -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    methods = {
        "ntksym erf": numpy_erf.erf,
        "ntksym erfc": numpy_erf.erfc,
        "vectorize(math.erf)": np.vectorize(math.erf, otypes=[float]),
        "vectorize(math.erfc)": np.vectorize(math.erfc, otypes=[float]),
    }
    try:
        from scipy import special
    except ImportError:
        return methods
    methods["scipy.special.erf"] = special.erf
    methods["scipy.special.erfc"] = special.erfc
    return methods


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--scale", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    methods = _methods()
    for n in args.n:
        x = np.random.default_rng(0).standard_normal(n) * args.scale
        times: dict[str, list[float]] = {name: [] for name in methods}
        for _ in range(args.repeat):
            for name, f in methods.items():  # in turn, so that load hits all alike
                start = time.perf_counter()
                f(x)
                times[name].append(time.perf_counter() - start)
        med = {name: statistics.median(t) for name, t in times.items()}
        print(f"N = {n}, x ~ {args.scale} N(0, 1), median of {args.repeat} calls")
        for name, t in med.items():
            base = "ntksym erfc" if "erfc" in name else "ntksym erf"
            ratio = t / med[base]
            print(f"  {name:22s} {t:9.4f} s  ({t / n * 1e9:6.1f} ns/el)  {ratio:5.2f}x ntksym")


if __name__ == "__main__":
    main()
