"""What a layer map must cost per entry: a lower bound for the speed-up over neural-tangents.

Each *minimal map* below is one layer of the NNGP and the NTK for one pair, in the form
neural-tangents evaluates it (no carried determinant, so near-parallel pairs lose digits
there), with everything that depends on the row or the column alone hoisted out of the
pair loop (the diagonal variances, their roots and products): what is left per entry is
what any kernel of this form must do. Each runs in a Numba loop over 256 columns of one
row, vectorised (``fastmath={"contract"}``, ``atan2`` as the branch-free ``_atan2`` of the
generated modules), and for comparison with libm's scalar ``atan2``. Sources of the maps:
ReLU, Cho & Saul (2009); erf, Williams (1997); GELU, Tsuchida et al. (2021),
arXiv:2002.08517, as neural-tangents' ``stax.Gelu`` writes it.

``dense``: the Dense layer's update of one entry (``S <- W2 S + B2``, ``T <- T W2 Sd + S``).
``write``: storing two float64 outputs per entry into mapped memory (one pass, 8 MB rows,
out of cache), and ``fault``: the same into freshly allocated pages (first touch).

Prints JSON: CPU ns per entry, the minimum over 5 rounds. Pin it to one core::

    taskset -c 1 python benchmarks/bench_bound.py
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any

import numba
import numpy as np

from ntksym.codegen.runtime.numba_atan2 import _atan2

PI = math.pi
FM = {"contract"}


def _best(run: Any, reps: int, entries: int) -> float:
    """Min over 5 rounds of the CPU ns per entry of ``run(reps)``."""
    best = math.inf
    for _ in range(5):
        t0 = time.process_time()
        run(reps)
        best = min(best, (time.process_time() - t0) / reps / entries * 1e9)
    return round(best, 2)


def _maps(at2: Any) -> dict:
    """The minimal ReLU, erf and GELU maps with ``at2`` as their ``atan2``."""

    @numba.njit(inline="always", error_model="numpy", fastmath=FM)
    def relu(s12, r12, p1, t):  # r12 = sqrt(S11 S22), hoisted
        h = math.sqrt(max(r12 * r12 - s12 * s12, 0.0))
        th = at2(h, s12)
        e = (h + (PI - th) * s12) * (0.5 / PI)
        ed = (PI - th) * (0.5 / PI)
        return e, t * ed + e

    @numba.njit(inline="always", error_model="numpy", fastmath=FM)
    def erf(s12, r12, p1, t):  # p1 = (1 + 2 S11)(1 + 2 S22), hoisted
        h = math.sqrt(p1 - 4.0 * s12 * s12)
        e = (2.0 / PI) * at2(2.0 * s12, h)
        ed = (4.0 / PI) / h
        return e, t * ed + e

    @numba.njit(inline="always", error_model="numpy", fastmath=FM)
    def gelu(s12, r12, p1, t):  # r12 = S11 S22, p1 = (1 + S11)(1 + S22), hoisted
        d2 = p1 - s12 * s12
        d = math.sqrt(d2)
        a = at2(s12, d)
        e = ((s12 * s12 + r12 * d2) / (p1 * d) + s12 * a) * (0.5 / PI) + 0.25 * s12
        first = (1.0 / d2 + (1.0 - r12) / p1 + 1.0) * s12 / d * (0.5 / PI)
        ed = first + 0.25 + a * (0.5 / PI)
        return e, t * ed + e

    return {"relu": relu, "erf": erf, "gelu": gelu}


def _loop(f: Any) -> Any:
    """A Numba loop over one row's columns calling ``f`` (closed over, so it is inlined;
    passed as an argument it would be a call, and the loop would not vectorise)."""

    @numba.njit(error_model="numpy", fastmath=FM)
    def loop(reps, s12, r12, p1, t, S, T):  # type: ignore[no-untyped-def]
        for _ in range(reps):
            for q in range(s12.shape[0]):
                S[q], T[q] = f(s12[q], r12[q], p1[q], t[q])

    return loop


def maps(reps: int) -> dict:
    """CPU ns/entry of each minimal map, with the vectorised and with libm's atan2."""
    rng = np.random.default_rng(0)
    m = 256
    s11, s22 = rng.uniform(0.5, 2.0), rng.uniform(0.5, 2.0, m)
    s12 = rng.uniform(-0.9, 0.9, m) * np.sqrt(s11 * s22)
    hoisted = {  # the row x column terms each map reads (see _maps)
        "relu": (np.sqrt(s11 * s22), s22),
        "erf": (s22, (1 + 2 * s11) * (1 + 2 * s22)),
        "gelu": (s11 * s22, (1 + s11) * (1 + s22)),
    }
    t = rng.uniform(1.0, 2.0, m)
    out = {}
    for kind, at2 in (("vectorised", _atan2), ("libm atan2", math.atan2)):
        for name, f in _maps(at2).items():
            loop = _loop(f)
            r12, p1 = hoisted[name]
            S, T = np.empty(m), np.empty(m)
            loop(1, s12, r12, p1, t, S, T)
            run = lambda r, a=(s12, r12, p1, t, S, T), loop=loop: loop(r, *a)  # noqa: E731
            out[f"{name} ({kind})"] = _best(run, reps, m)
    return out


@numba.njit(error_model="numpy", fastmath=FM)
def _dense(reps, S, T, Sd, W2, B2):  # type: ignore[no-untyped-def]
    for _ in range(reps):
        for q in range(S.shape[0]):
            s = W2 * S[q] + B2
            T[q] = T[q] * (W2 * Sd[q]) + s
            S[q] = s


@numba.njit(error_model="numpy")
def _store(K, T):  # type: ignore[no-untyped-def]
    for i in range(K.shape[0]):
        for j in range(K.shape[1]):
            K[i, j] = 1.0
            T[i, j] = 2.0


def memory(n: int) -> dict:
    """CPU ns/entry of writing two n x n outputs: mapped, and into fresh pages."""
    rng = np.random.default_rng(0)
    S, T, Sd = rng.uniform(0.5, 1, 256), rng.uniform(0.5, 1, 256), rng.uniform(0.5, 1, 256)
    _dense(1, S, T, Sd, 1.1, 0.01)
    out = {"dense": _best(lambda r: _dense(r, S, T, Sd, 1.0, 0.0), 20000, 256)}
    km, tm = np.empty((n, n)), np.empty((n, n))
    _store(km, tm)  # compiled, and pages mapped
    out["write (mapped)"] = _best(lambda r: _store(km, tm), 1, n * n)
    best = math.inf
    for _ in range(3):
        t0 = time.process_time()
        K, T2 = np.empty((n, n)), np.empty((n, n))
        _store(K, T2)
        best = min(best, (time.process_time() - t0) / (n * n) * 1e9)
        del K, T2
    out["fault (fresh pages)"] = round(best, 2)
    return out


def main(argv: list[str] | None = None) -> int:
    """Print the JSON of the maps' and the memory passes' costs."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=20000)
    ap.add_argument("--n", type=int, default=4000, help="side of the output arrays")
    args = ap.parse_args(argv)
    print(json.dumps({**maps(args.reps), **memory(args.n)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
