"""CPU time per entry of each step of a fused module, and of the operations its maps make.

Steps: for each network (``bench_stax.build``), its fused module is built (or found in
the cache), the program's ``_run_steps`` is run on one chunk of 256 columns of one row
(``N = 512``, ``d = 256``), first every step alone, then the whole program, each
``--reps`` times from a Numba loop (no Python call per repetition); the minimum over 5
rounds of the CPU time per entry is printed as JSON (one row per step: kind, activation,
whether the determinant it reads is carried, ns/entry). A tree whose modules run chunks
without carried determinants (``TAU``) is timed both ways: ``carried`` and ``plain``
(every check passed, ``tau = 0``), and ``plain_at_tau`` says whether the chunk passes
the module's own ``TAU``.

Operations (``--ops``): a vectorised ``sqrt``, a division, the branch-free ``_atan2`` of
the generated modules (also its first-quadrant ``_atan2q``, ``atan`` as ``_atan2(x, 1.0)``
and as ``_atan`` where the tree has it, over -2.4..3: every sector, and their polynomial
alone), and libm's ``atan2``, ``asin``, ``log1p``, ``exp`` (scalar calls:
Numba has no SVML here), each in a loop over 256 entries compiled as the kernels' ``_layer``
(``fastmath={"contract"}``).

Run pinned to one core, and compare two trees in one session (``PYTHONPATH`` and
``NTKSYM_CACHE_DIR`` per tree)::

    taskset -c 0 python benchmarks/bench_fused_steps.py --nets mixed residual
    taskset -c 0 python benchmarks/bench_fused_steps.py --ops
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_stax  # noqa: E402


def _best(run: Any, reps: int, entries: int) -> float:
    """Min over 5 rounds of the CPU ns per entry of ``run(reps)``."""
    best = math.inf
    for _ in range(5):
        t0 = time.process_time()
        run(reps)
        best = min(best, (time.process_time() - t0) / reps / entries * 1e9)
    return round(best, 2)


def steps(name: str, reps: int) -> dict:
    """Per-step and whole-program CPU ns/entry of the fused module of network ``name``."""
    from ntksym import stax
    from ntksym.codegen import architecture

    kernel = architecture.fused_kernel(bench_stax.build(stax, name).description)
    mod = kernel.module
    n, d, i, c0, c1 = 512, bench_stax.D, 3, 256, 512
    X = np.random.default_rng(0).standard_normal((n, d))
    sq = np.einsum("ij,ij->i", X, X)
    a = np.sqrt(sq)
    G = X @ X.T
    np.fill_diagonal(G, sq)
    V = np.empty((mod.NSTATES, n))
    R = np.empty_like(V)
    mod._diag_rows(mod.PROGRAM_I, mod.PROGRAM_F, sq, float(d), V, R)
    S, D, T = (np.empty((mod.NSTATES, 256)) for _ in range(3))
    DX, DN, OM = (np.empty(256) for _ in range(3))
    CO = np.empty(256, dtype=np.bool_)
    mod._prep(i, c0, c1, G, a, a, sq, sq, X, X, DX, DN, OM, CO)
    run_steps = mod._run_steps

    plain = hasattr(mod, "TAU")  # (a tree without chunks that carry no determinant)
    own = False  # (columns 256..511 of row 3: not the pair of a row with itself)

    @numba.njit
    def many(reps, PI, PF, G, V, R, n0f, S, D, T, DX, DN, OM, CO, tau):  # type: ignore[no-untyped-def]
        ok = True
        for _ in range(reps):
            if plain:
                ok = run_steps(
                    PI, PF, i, c0, c1, G, V, R, V, R, n0f, S, D, T, DX, DN, OM, CO, True, tau, own
                )
            else:
                run_steps(PI, PF, i, c0, c1, G, V, R, V, R, n0f, S, D, T, DX, DN, OM, CO, True)
        return ok

    def timed(PI: np.ndarray, PF: np.ndarray, tau: float) -> float:
        args = (G, V, R, float(d), S, D, T, DX, DN, OM, CO, tau)
        many(1, PI, PF, *args)
        return _best(lambda r: many(r, PI, PF, *args), reps, c1 - c0)

    PI, PF = mod.PROGRAM_I, mod.PROGRAM_F
    out: dict[str, Any] = {}
    for label, tau in [("carried", -1.0)] + ([("plain", 0.0)] if plain else []):
        timed(PI, PF, tau)  # every state's rows filled once
        rows = []
        for st in range(PI.shape[0]):
            cost = timed(PI[st : st + 1].copy(), PF[st : st + 1].copy(), tau)
            rows.append((int(PI[st, 0]), int(PI[st, 4]), int(PI[st, 6]), cost))
        whole = timed(PI, PF, tau)
        out[label] = {"steps": rows, "sum": round(sum(r[3] for r in rows), 1), "whole": whole}
    if plain:  # the whole program as the kernel runs it: plain if TAU allows the chunk
        out["tau"] = mod.TAU
        out["plain_at_tau"] = bool(
            many(1, PI, PF, G, V, R, float(d), S, D, T, DX, DN, OM, CO, mod.TAU)
        )
    return out


def _ops_loop(f: Any) -> Any:
    """The 256-entry loop of ``f``, with the flags of the kernels' ``_layer`` (contracted
    multiply-adds); ``f`` is a closure variable, not an argument: Numba's vectoriser
    declined some bodies passed as a default argument."""

    @numba.njit(error_model="numpy", fastmath={"contract"})
    def loop(reps, x, y, o):  # type: ignore[no-untyped-def]
        for _ in range(reps):
            for q in range(x.shape[0]):
                o[q] = f(x[q], y[q])

    return loop


def ops(reps: int) -> dict:
    """CPU ns/entry of the operations the layer maps make, each in a 256-entry loop."""
    from ntksym.codegen.runtime import numba_atan2 as rt

    _atan2, _atan2q, _atan_poly = rt._atan2, rt._atan2q, rt._atan_poly
    bodies = {
        "sqrt (vectorised)": lambda x, y: math.sqrt(x) + y,
        "division (vectorised)": lambda x, y: x / y,
        "_atan2 (branch-free, vectorised)": lambda x, y: _atan2(x, y),
        "_atan2q (first quadrant, vectorised)": lambda x, y: _atan2q(x, y),
        "_atan2(x, 1.0) (atan, vectorised)": lambda x, y: _atan2(6.0 * x - 3.0, 1.0),
        "_atan_poly (its polynomial alone)": lambda x, y: _atan_poly(0.4 * x - 0.2) + y,
        "libm atan2": lambda x, y: math.atan2(x, y),
        "libm asin": lambda x, y: math.asin(0.5 * x),
        "libm log1p": lambda x, y: math.log1p(0.1 * x),
        "libm exp": lambda x, y: math.exp(x),
    }
    if hasattr(rt, "_atan"):  # (a tree before it printed atan as _atan2(x, 1.0))
        _atan = rt._atan
        bodies["_atan (atan, vectorised)"] = lambda x, y: _atan(6.0 * x - 3.0)
    rng = np.random.default_rng(0)
    x, y, o = rng.uniform(0.1, 1.0, 256), rng.uniform(0.1, 1.0, 256), np.empty(256)
    out = {}
    for label, body in bodies.items():
        loop = _ops_loop(numba.njit(inline="always", error_model="numpy")(body))
        loop(1, x, y, o)
        out[label] = _best(lambda r, loop=loop: loop(r, x, y, o), reps, 256)
    return out


def main(argv: list[str] | None = None) -> int:
    """Print the JSON of the steps of each network, or of the operations."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", nargs="+", default=["mixed", "residual"])
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--ops", action="store_true", help="time the operations instead")
    args = ap.parse_args(argv)
    if args.ops:
        print(json.dumps(ops(20 * args.reps)))
    else:
        print(json.dumps({name: steps(name, args.reps) for name in args.nets}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
