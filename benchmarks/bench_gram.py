"""Speed of NNGP+NTK Gram matrices K(X, X): ntksym's generated kernels against peers.

Methods, all computing both the NNGP and the NTK of the same network on the same
inputs (X: N x d standard normal, seed 0; bias_std 0.1, weight_std 1.0):

* ``numba``  - the generated fused Numba kernel (``generated/<act>_numba.py``);
* ``numpy``  - the generated vectorised NumPy kernel;
* ``plain``  - a layer-by-layer NumPy implementation as a user would write it
  (:func:`plain_numpy` below: arccos / arcsin of a clipped correlation);
* ``nt``     - neural-tangents ``stax`` kernel_fn, ``jax.jit``-compiled, float64
  (``jax_enable_x64``); the compile time is reported separately;
* ``blas``   - the bare BLAS product ``X @ X.T``, the floor;
* ``numba_out`` - ``numba`` with ``out=``: every timed call writes into the arrays of the
  call before (memory already mapped), as a caller computing many Gram matrices would;
* ``blas_out`` - ``numpy.matmul(X, X.T, out=...)`` into the array of the call before;
* ``ceiling`` - the cheapest kernel of neural-tangents' form (``ceiling_kernels.py``:
  minimal maps, no carried determinant, no checks) into the arrays of the call before: a
  measured ceiling for any kernel's ratios to neural-tangents and to the floor (both
  kernels only: ``--get both``);
* ``numba_ref`` - the generated Numba module of an older revision (``--ref-rev``,
  default: the last per-entry kernel, before the column loop was vectorised),
  extracted with ``git show`` into a temporary directory, for before/after runs.

Every (method, activation, depth, N, threads) runs in a fresh subprocess pinned
to ``threads`` cores (``os.sched_setaffinity``) with the thread-count variables
set (OMP/OPENBLAS/MKL/NUMBA_NUM_THREADS, XLA intra-op threads), so first-call
times include imports and compilation (or Numba's cache load), and the peak
memory is the subprocess's ``ru_maxrss`` (tracemalloc cannot see Numba/BLAS/XLA
buffers); ``(peak-base)/out`` divides its rise above the resident size just before
the first call (interpreter, libraries, inputs) by the bytes of the outputs.
``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` are removed from the workers'
environment so OpenBLAS picks its kernel for the actual CPU; the kernel
threadpoolctl reports is printed.

Usage::

    python benchmarks/bench_gram.py                    # reduced sweep
    python benchmarks/bench_gram.py --full             # relu, erf; depth 2 5 10; N 1000..8000
    python benchmarks/bench_gram.py --n 8000 --depths 10 --acts relu --threads 1 2
    python benchmarks/bench_gram.py --n 8000 --depths 2 3 5 10 --threads 1 --get both nngp \
        --methods numba numba_out nt blas     # issue 14's table (vs nt, vs floor, by CPU too)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
METHODS = (
    "numba", "numpy", "plain", "nt", "blas", "numba_ref", "numba_out", "blas_out", "ceiling"
)  # fmt: skip
#: The last commit whose Numba kernel ran the depth recursion per entry (scalar).
REF_REV = "dfd9db7"
D = 256
BIAS_STD, WEIGHT_STD = 0.1, 1.0


# ----------------------------------------------------------------------------- plain NumPy
def plain_numpy(X, X2, act, depth, bias_std, weight_std):  # noqa: ANN001, ANN201
    """NNGP and NTK layer by layer, the textbook way (Cho & Saul 2009; Williams 1997).

    No care for rounding: rho = S12 / sqrt(S11 S22) is clipped to [-1, 1] and fed to
    arccos (ReLU), and erf's determinant is formed by subtraction.
    """
    import numpy as np

    Y = X if X2 is None else X2
    w2, b2 = weight_std**2, bias_std**2
    d = X.shape[1]
    S = w2 * (X @ Y.T) / d + b2
    s1 = w2 * np.einsum("ij,ij->i", X, X) / d + b2
    s2 = w2 * np.einsum("ij,ij->i", Y, Y) / d + b2
    T = S.copy()
    for _ in range(depth - 1):
        if act == "relu":
            norm = np.sqrt(np.outer(s1, s2))
            rho = np.clip(S / norm, -1.0, 1.0)
            theta = np.arccos(rho)
            E = norm * (np.sin(theta) + (np.pi - theta) * rho) / (2 * np.pi)
            Edot = (np.pi - theta) / (2 * np.pi)
            s1, s2 = w2 * s1 / 2 + b2, w2 * s2 / 2 + b2
        elif act == "erf":
            q = np.outer(1 + 2 * s1, 1 + 2 * s2)
            E = 2 / np.pi * np.arcsin(np.clip(2 * S / np.sqrt(q), -1.0, 1.0))
            Edot = 4 / np.pi / np.sqrt(q - 4 * S * S)
            s1 = w2 * 2 / np.pi * np.arcsin(2 * s1 / (1 + 2 * s1)) + b2
            s2 = w2 * 2 / np.pi * np.arcsin(2 * s2 / (1 + 2 * s2)) + b2
        else:
            raise ValueError(act)
        S = w2 * E + b2
        T = T * (w2 * Edot) + S
    return S, T


def nt_kernel_fn(act, depth, bias_std, weight_std):  # noqa: ANN001, ANN201
    """neural-tangents kernel_fn of the same network (NTK parameterization)."""
    from neural_tangents import stax

    a = {"relu": stax.Relu, "erf": stax.Erf}[act]
    layers = []
    for _ in range(depth - 1):
        layers += [stax.Dense(512, W_std=weight_std, b_std=bias_std, parameterization="ntk"), a()]
    layers.append(stax.Dense(1, W_std=weight_std, b_std=bias_std, parameterization="ntk"))
    return stax.serial(*layers)[2]


def _reusing(mod, X, depth: int, get: str):  # noqa: ANN001, ANN202
    """A call of ``mod`` that passes the arrays of its previous call as ``out=``."""
    held: list = []

    def call():  # noqa: ANN202
        if get == "nngp":
            r = (mod.nngp(X, None, depth, BIAS_STD, WEIGHT_STD, out=held[0] if held else None),)
        else:
            r = mod.nngp_ntk(X, None, depth, BIAS_STD, WEIGHT_STD, out=tuple(held) or None)
        if not held:
            held.extend(r)
        return r

    return call


# ----------------------------------------------------------------------------- worker
def _rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def worker(
    method: str,
    act: str,
    depth: int,
    n: int,
    threads: int,
    repeat: int,
    get: str = "both",
    idle: float = 0.0,
) -> dict:
    """Run one configuration in this (fresh) process; returns a result record.

    ``idle`` seconds pass (asleep) between freeing a call's outputs and the next timed
    call: long enough (> 2 s) for the guest kernel's free page reporting to hand the freed
    memory back to the hypervisor, so that the next call's fresh outputs are cold memory,
    as for a caller who does something else between calls.
    """
    import resource

    t_start = time.perf_counter()
    import numpy as np

    sys.path.insert(0, str(REPO))
    X = np.random.default_rng(0).standard_normal((n, D))
    info = {}
    try:
        import threadpoolctl

        info = {
            f"{p['internal_api']}": f"{p.get('architecture')} x{p['num_threads']}"
            for p in threadpoolctl.threadpool_info()
        }
    except ImportError:
        pass

    if os.environ.get("NTKSYM_BENCH_THP") == "0":  # numpy's madvise(MADV_HUGEPAGE) off
        np._core.multiarray._set_madvise_hugepage(False)
    if method in ("numba", "numpy", "numba_ref", "numba_out"):

        def setup():  # noqa: ANN202
            # import the committed module as a user would (no SymPy; Numba's disk cache,
            # shared with ntksym.codegen.load, which uses the same module name)
            import importlib.util

            from ntksym.codegen.files import package_generated_dir

            path = package_generated_dir() / f"{act}_{method.replace('_out', '')}.py"
            if method == "numba_ref":
                path = Path(os.environ["NTKSYM_BENCH_REF_DIR"]) / f"{act}_numba_ref.py"
            name = f"{act}_{method.replace('_out', '')}"  # (Numba's cache knows the name)
            spec = importlib.util.spec_from_file_location(name, path)
            mod = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = mod
            spec.loader.exec_module(mod)
            if method != "numpy":
                import numba

                numba.set_num_threads(threads)
            if method == "numba_out":
                return _reusing(mod, X, depth, get)
            if get == "nngp":
                return lambda: (mod.nngp(X, None, depth, BIAS_STD, WEIGHT_STD),)
            return lambda: mod.nngp_ntk(X, None, depth, BIAS_STD, WEIGHT_STD)
    elif method == "plain":

        def setup():  # noqa: ANN202
            return lambda: plain_numpy(X, None, act, depth, BIAS_STD, WEIGHT_STD)[
                : 1 if get == "nngp" else 2
            ]
    elif method == "nt":

        def setup():  # noqa: ANN202
            import jax

            jax.config.update("jax_enable_x64", True)
            fn = jax.jit(nt_kernel_fn(act, depth, BIAS_STD, WEIGHT_STD), static_argnames="get")
            Xj = jax.numpy.asarray(X)

            def call():  # noqa: ANN202
                if get == "nngp":
                    return (np.asarray(fn(Xj, None, get="nngp").block_until_ready()),)
                k = fn(Xj, None, get=("nngp", "ntk"))
                return np.asarray(k.nngp.block_until_ready()), np.asarray(k.ntk)

            return call
    elif method == "blas":

        def setup():  # noqa: ANN202
            return lambda: (X @ X.T,)
    elif method == "blas_out":

        def setup():  # noqa: ANN202
            buf = np.empty((n, n))
            return lambda: (np.matmul(X, X.T, out=buf),)
    elif method == "ceiling":

        def setup():  # noqa: ANN202
            from ceiling_kernels import ceiling_kernel

            if get != "both":
                raise ValueError("the ceiling kernel computes both kernels: --get both")
            bufs = (np.empty((n, n)), np.empty((n, n)))
            ceiling = ceiling_kernel(f"{act}{depth}")  # (its program built once, not per call)
            return lambda: ceiling(X, out=bufs)
    else:
        raise ValueError(method)

    rss0 = _rss_kib()
    t0 = time.perf_counter()
    call = setup()
    out = call()
    first = time.perf_counter() - t0
    sample = [o[:16, :16].tolist() for o in out]
    del out
    walls, cpus = [], []
    for _ in range(repeat):
        time.sleep(idle)
        c0, w0 = time.process_time(), time.perf_counter()
        out = call()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
        del out
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "method": method, "act": act, "depth": depth, "n": n, "threads": threads,
        "first": first, "walls": walls, "cpus": cpus, "peak_kib": peak, "get": get,
        "base_kib": rss0, "out_bytes": 8 * n * n * len(sample),
        "blas": info, "sample": sample, "total": time.perf_counter() - t_start,
    }  # fmt: skip


# ----------------------------------------------------------------------------- driver
def run_one(
    method: str,
    act: str,
    depth: int,
    n: int,
    threads: int,
    repeat: int,
    get: str = "both",
    idle: float = 0.0,
) -> dict:
    """One configuration in a subprocess pinned to ``threads`` cores."""
    drop = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    for k in ("OMP", "OPENBLAS", "MKL", "NUMBA"):
        env[f"{k}_NUM_THREADS"] = str(threads)
    env["XLA_FLAGS"] = (
        f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} "
        f"intra_op_parallelism_threads={threads}"
    )
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    args = [sys.executable, __file__, "--worker", method, act, str(depth), str(n), str(threads)]
    args += [str(repeat), get, str(idle)]
    cores = sorted(os.sched_getaffinity(0))[:threads]
    proc = subprocess.run(
        args, env=env, capture_output=True, text=True, check=False,
        preexec_fn=lambda: os.sched_setaffinity(0, cores),
    )  # fmt: skip
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            return json.loads(line)
    return {"method": method, "act": act, "depth": depth, "n": n, "threads": threads,
            "error": proc.stderr.strip().splitlines()[-1:] or ["no output"]}  # fmt: skip


def _rel(a: list, b: list) -> float:
    import numpy as np

    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b) / np.abs(b)))


def _committed_at(rev: str, name: str) -> str:
    """A committed kernel module at ``rev`` (src/ntksym/generated/ since the src layout)."""
    for folder in ("src/ntksym/generated", "generated"):
        proc = subprocess.run(
            ["git", "-C", str(REPO), "show", f"{rev}:{folder}/{name}"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if proc.returncode == 0:
            return proc.stdout
    raise SystemExit(f"no {name} at {rev}")


def _merge(runs: list[dict]) -> dict:
    """One record from the rounds of one method: medians over every timed call."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return runs[0]
    r = dict(ok[0])
    for key in ("wall", "cpu"):
        r[key] = statistics.median(x for q in ok for x in q[f"{key}s"])
    r["best"] = min(x for q in ok for x in q["walls"])
    r["peak_kib"] = max(q["peak_kib"] for q in ok)
    return r


def _compare(a: argparse.Namespace, act: str, depth: int, n: int, th: int, get: str) -> list:
    """Every method on one configuration, ``a.rounds`` times in turn; prints their rows."""
    runs: dict[str, list] = {m: [] for m in a.methods}
    for _ in range(a.rounds):
        for m in a.methods:
            # the slow peers run once at N >= 8000; the others keep their repeats
            rep = 1 if n >= 8000 and m in ("plain", "numpy") else a.repeat
            runs[m].append(run_one(m, act, depth, n, th, rep, get, a.idle))
    rs = {m: _merge(v) for m, v in runs.items()}
    for m, r in rs.items():
        if "error" in r:
            print(f"| {act} | {depth} | {get} | {n} | {th} | {m} | error: {r['error']} |")
            continue
        nt = rs.get("nt", {}).get("wall")
        fl = rs.get("blas", {}).get("wall")  # the floor: a fresh X @ X.T
        ref = (rs.get("numba") or rs.get("numba_out") or {}).get("sample")
        diff = (
            max(_rel(x, y) for x, y in zip(r["sample"], ref, strict=False))
            if ref and not m.startswith("blas") else math.nan
        )  # fmt: skip
        peak = r["peak_kib"] / 1024
        rise = (r["peak_kib"] - r["base_kib"]) * 1024 / r["out_bytes"]
        vs_nt = f"{nt / r['wall']:.1f}x" if nt else "-"
        vs_fl = f"{r['wall'] / fl:.1f}x" if fl else "-"
        # the same ratios of CPU seconds (user + system: page faults count), which a
        # machine shared with other jobs disturbs less than the wall clock
        nt_c = rs.get("nt", {}).get("cpu")
        fl_c = rs.get("blas", {}).get("cpu")
        vs_nt += f" ({nt_c / r['cpu']:.1f}x)" if nt_c else ""
        vs_fl += f" ({r['cpu'] / fl_c:.1f}x)" if fl_c else ""
        print(
            f"| {act} | {depth} | {get} | {n} | {th} | {m} | {r['wall']:.3f} | {r['best']:.3f} | "
            f"{r['cpu']:.3f} | {vs_nt} | {vs_fl} | {r['first']:.2f} | {peak:.0f} | {rise:.2f} | "
            f"{diff:.1e} |",
            flush=True,
        )
    return [r for v in runs.values() for r in v]


def main(argv: list[str] | None = None) -> int:
    """Parse options, run the sweep, print a markdown table and write JSON."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--full", action="store_true", help="relu, erf; depth 2 5 10; N 1000..8000")
    p.add_argument("--acts", nargs="+", default=["relu", "erf"])
    p.add_argument("--depths", nargs="+", type=int, default=[2, 10])
    p.add_argument("--n", nargs="+", type=int, default=[1000, 4000])
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    p.add_argument("--methods", nargs="+", default=list(METHODS[:5]), choices=METHODS)
    p.add_argument("--repeat", type=int, default=2, help="timed calls after the first")
    p.add_argument("--rounds", type=int, default=1, help="runs of every method, in turn")
    p.add_argument(
        "--get", nargs="+", default=["both"], choices=("both", "nngp"),
        help="both kernels (nngp_ntk, nt's get=('nngp', 'ntk')) or the NNGP alone",
    )  # fmt: skip
    p.add_argument(
        "--idle", type=float, default=0.0,
        help="seconds asleep before each timed call (> 2: its fresh outputs are cold memory)",
    )  # fmt: skip
    p.add_argument("--json", default=None, help="also write the records here")
    p.add_argument("--ref-rev", default=REF_REV, help="git revision for numba_ref")
    a = p.parse_args(argv)
    if "numba_ref" in a.methods:
        ref_dir = Path(tempfile.gettempdir()) / f"ntksym_bench_ref_{a.ref_rev}"
        ref_dir.mkdir(exist_ok=True)
        for act in a.acts:
            src = _committed_at(a.ref_rev, f"{act}_numba.py")
            (ref_dir / f"{act}_numba_ref.py").write_text(src)
        os.environ["NTKSYM_BENCH_REF_DIR"] = str(ref_dir)
        print(f"# numba_ref: generated/<act>_numba.py at {a.ref_rev}", flush=True)
    if a.full:
        a.depths, a.n = [2, 5, 10], [1000, 2000, 4000, 8000]
    print(f"# load average before: {os.getloadavg()}", flush=True)
    print("| act | depth | get | N | thr | method | median wall s | best s | cpu s |"
          " vs nt (cpu) | vs floor (cpu) | first s | peak MiB | (peak-base)/out |"
          " max rel diff vs numba (or numba_out) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    records = []
    for act in a.acts:
        for depth in a.depths:
            for n in a.n:
                for th in a.threads:
                    for get in a.get:
                        records += _compare(a, act, depth, n, th, get)
    blas = next((r["blas"] for r in records if r.get("blas")), {})
    print(f"# BLAS in workers (threadpoolctl): {blas}; load average after: {os.getloadavg()}")
    if a.json:
        Path(a.json).write_text(json.dumps(records, indent=1))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        m, act, depth, n, th, rep, get, idle = sys.argv[2:10]
        print(json.dumps(worker(m, act, int(depth), int(n), int(th), int(rep), get, float(idle))))
        sys.exit(0)
    sys.exit(main())
