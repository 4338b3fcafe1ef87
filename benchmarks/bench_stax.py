"""Speed and accuracy of described networks: ntksym's fused kernel, its layer path, neural-tangents.

Methods, each computing the NNGP and the NTK ``K(X, X)`` of the same network (X: N x 256
standard normal, seed 0), each run in a fresh subprocess pinned to one core with one
thread (``NUMBA_NUM_THREADS=1``, BLAS threads 1; XLA:
``--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1``):

* ``fused``  - ``kernel_fn(X, backend="fused")``: the network's generated Numba module
  (cold first call: generation and compilation; then Numba's cache);
* ``fused_out`` - the same into two preallocated arrays, the same ones at every call
  (``kernel_fn(X, backend="fused", out=(K, T))``: no fresh pages to map);
* ``layers`` - ``kernel_fn(X, backend="layers")``: float64 NumPy layer maps;
* ``nt``     - neural-tangents 0.6.5 ``stax`` kernel_fn, ``jax.jit``-compiled, float64,
  run with the interpreter of its own virtual environment (``--nt-python``);
* ``blas``   - the floor: the Gram product ``X @ X.T`` alone (NumPy's BLAS);
* ``blas_out`` - the floor into one preallocated array: ``np.matmul(X, X.T, out=buf)``;
* ``ceiling`` - the cheapest kernel of neural-tangents' form into two preallocated arrays
  (``ceiling_kernels.py``: minimal maps, no carried determinant, no checks): a measured
  ceiling for any kernel's speed-up over neural-tangents, not a kernel to use.

Each cell is the median wall time of ``--repeat`` calls (each after ``--idle`` seconds
asleep: 0 by default; on a guest that hands freed memory back to its host, 3 s makes a
fresh output cold, see docs/performance.md, branch fresh); the CPU time of the same calls
is printed too (the machine is shared: CPU time is less sensitive to other jobs).

Memory: "peak / out" is the rise of the process's peak resident set (``ru_maxrss``) during
the timed calls above the resident set before them, divided by the outputs' bytes (both
N x N float64 matrices; one for the floors). It is printed only where the timed calls set a
new peak (else an earlier peak, e.g. a compilation, hides theirs: "-").

Networks (spelled identically in both libraries, :func:`build`):

* ``residual`` - depth 10: Dense, 8 residual blocks ``x + Dense(Relu(x))``, Relu, Dense;
* ``mixed``    - depth 10 of relu, erf and gelu layers with different variances;
* ``standard`` - depth 6, standard parameterization (width 512), relu and erf layers;
* ``dropout``  - depth 4: ``(Dense, Relu, Dropout(0.8) train) x 3, Dense`` (the row
  "Dropout(0.8) train" of ``bench_arch_accuracy.py``, width 512);
* ``tanh``     - depth 4: tanh, relu, tanh layers; tanh has no closed form: ntksym's fused
  module evaluates its Mehler series per pair (coefficients per input), the ``layers``
  path the same series per block (else the adaptive rule), and neural-tangents'
  ``ElementwiseNumerical(jnp.tanh, deg=25)`` integrates by Gauss-Hermite;
* ``mixed_tanh`` - ``mixed`` with tanh in place of GELU (depth 10: relu, erf, tanh x 3);
* ``silu_gelu`` - depth 4: SiLU, relu, GELU's tanh form (no closed forms; their means are
  of the order of their spread, so the covariance crosses 0 at negative correlations);
  neural-tangents integrates both by ``ElementwiseNumerical(deg=25)``;
* ``sinrelu``  - depth 4: ``sin(u) + u``, relu, ``sin(u) + u``, relu; the sum carries no
  determinant, so each relu step of the fused module is guarded (its nearly parallel
  pairs, none here, would be computed again by the layer maps); neural-tangents integrates
  ``sin(u) + u`` by ``ElementwiseNumerical(deg=25)``.

Accuracy: the largest relative error of each method over a 3 x 2 sample of entries
(rows 0..2 against rows 3..4) against ntksym's mpmath referee
(``stax.reference_kernels``, 20 digits, every dual map by quadrature).

Usage::

    python benchmarks/bench_stax.py                       # N = 1000 2000 4000, all
    python benchmarks/bench_stax.py --n 1000 --methods fused layers
    python benchmarks/bench_stax.py --nets mixed residual --n 1000 4000 --methods fused nt blas
    python benchmarks/bench_stax.py --nets mixed residual --n 4000 \
        --methods fused fused_out blas blas_out          # fresh outputs and out= side by side
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
D = 256
WIDTH = 512
NETWORKS = (
    "residual",
    "mixed",
    "standard",
    "dropout",
    "tanh",
    "sinrelu",
    "mixed_tanh",
    "silu_gelu",
)
METHODS = ("fused", "fused_out", "layers", "nt", "blas", "blas_out", "ceiling")
SAMPLE = (slice(0, 3), slice(3, 5))


def _tanh(s: Any) -> Any:
    """tanh in ``s``: neural-tangents integrates it by Gauss-Hermite of degree 25."""
    if hasattr(s, "ElementwiseNumerical"):
        import jax.numpy as jnp

        return s.ElementwiseNumerical(jnp.tanh, deg=25)
    return s.Elementwise("tanh(u)")


def build(s: Any, name: str) -> Any:
    """The network ``name`` built with ``s``: ``ntksym.stax`` or ``neural_tangents.stax``."""
    if name == "residual":
        block = s.serial(
            s.FanOut(2),
            s.parallel(s.serial(s.Relu(), s.Dense(WIDTH, 1.2, 0.1)), s.Identity()),
            s.FanInSum(),
        )
        return s.serial(
            s.Dense(WIDTH, 1.0, 0.1), s.repeat(block, 8), s.Relu(), s.Dense(1, 1.0, 0.1)
        )
    if name in ("mixed", "mixed_tanh"):
        acts = [s.Relu, s.Erf, s.Gelu if name == "mixed" else lambda: _tanh(s)] * 3
        layers = []
        for i, act in enumerate(acts):
            layers += [s.Dense(WIDTH, 1.0 + 0.05 * i, 0.05 + 0.02 * i), act()]
        return s.serial(*layers, s.Dense(1, 1.1, 0.1))
    if name == "standard":
        p = {"parameterization": "standard"}
        layers = []
        for act in [s.Relu, s.Erf, s.Relu, s.Erf, s.Relu]:
            layers += [s.Dense(WIDTH, 1.3, 0.1, **p), act()]
        return s.serial(*layers, s.Dense(1, 1.0, 0.1, **p))
    if name == "dropout":
        layers = [s.Dense(WIDTH, 1.2, 0.2), s.Relu(), s.Dropout(0.8, "train")] * 3
        return s.serial(*layers, s.Dense(1, 0.9, 0.1))
    if name == "tanh":  # an activation without a closed form (the dual maps by quadrature)
        tanh = _tanh(s)
        acts = [tanh, s.Relu(), tanh]
        layers = []
        for i, act in enumerate(acts):
            layers += [s.Dense(WIDTH, 1.5 - 0.1 * i, 0.1), act]
        return s.serial(*layers, s.Dense(1, 1.0, 0.1))
    if name == "sinrelu":  # a sum of families (no carried determinant), then kinked layers
        if hasattr(s, "ElementwiseNumerical"):  # neural-tangents: Gauss-Hermite, degree 25
            import jax.numpy as jnp

            sin_u = s.ElementwiseNumerical(lambda x: jnp.sin(x) + x, deg=25)
        else:
            sin_u = s.Elementwise("sin(u) + u")
        acts = [sin_u, s.Relu(), sin_u, s.Relu()]
        layers = []
        for i, act in enumerate(acts):
            layers += [s.Dense(WIDTH, 1.2 - 0.05 * i, 0.1), act]
        return s.serial(*layers, s.Dense(1, 1.0, 0.1))
    if name == "silu_gelu":  # means of the order of the spread: E[sigma sigma] crosses 0
        return s.serial(*_silu_gelu_layers(s), s.Dense(1, 1.0, 0.1))
    raise ValueError(name)


def _silu_gelu_layers(s: Any) -> list[Any]:
    """SiLU, relu, GELU's tanh form; neural-tangents integrates the two smooth ones by
    Gauss-Hermite of degree 25 (``ElementwiseNumerical``)."""
    if hasattr(s, "ElementwiseNumerical"):
        import jax

        silu = s.ElementwiseNumerical(jax.nn.silu, deg=25)
        gelu = s.ElementwiseNumerical(lambda x: jax.nn.gelu(x, approximate=True), deg=25)
    else:
        silu, gelu = s.Elementwise("u / (1 + exp(-u))"), s.Gelu(approximate=True)
    layers = []
    for i, act in enumerate([silu, s.Relu(), gelu]):
        layers += [s.Dense(WIDTH, 1.5 - 0.1 * i, 0.1), act]
    return layers


def _rss() -> tuple[int, int]:
    """(resident set now, peak resident set so far) of this process, in bytes."""
    import resource

    with open("/proc/self/statm", encoding="ascii") as fh:
        now = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return now, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def worker(method: str, name: str, n: int, repeat: int, idle: float = 0.0) -> dict:
    """Time one (method, network, N) in this process; returns a JSON-able record."""
    import numpy as np

    X = np.random.default_rng(0).standard_normal((n, D))
    t0 = time.perf_counter()
    # (the out= methods' arrays: mapped by the first call, reused by the timed ones)
    n_bufs = {"blas_out": 1, "fused_out": 2, "ceiling": 2}.get(method, 0)
    bufs = [np.empty((n, n)) for _ in range(n_bufs)]
    if method == "blas":

        def call() -> tuple:
            return (X @ X.T,)
    elif method == "blas_out":

        def call() -> tuple:
            return (np.matmul(X, X.T, out=bufs[0]),)
    elif method == "ceiling":
        sys.path.insert(0, str(REPO / "src"))
        from ceiling_kernels import ceiling_kernel

        ceiling = ceiling_kernel(name)

        def call() -> tuple:
            return ceiling(X, out=tuple(bufs))
    elif method == "nt":
        import jax
        from neural_tangents import stax as nts

        jax.config.update("jax_enable_x64", True)
        fn = jax.jit(build(nts, name)[2], static_argnames="get")
        Xj = jax.numpy.asarray(X)

        def call() -> tuple:
            k = fn(Xj, None, get=("nngp", "ntk"))
            return np.asarray(k.nngp.block_until_ready()), np.asarray(k.ntk)
    else:
        sys.path.insert(0, str(REPO / "src"))
        from ntksym import stax

        kernel_fn = build(stax, name).kernel_fn
        backend, outs = method.removesuffix("_out"), tuple(bufs) or None

        def call() -> tuple:
            return tuple(kernel_fn(X, backend=backend, out=outs))

    out = call()
    first = time.perf_counter() - t0
    sample = [o[SAMPLE].tolist() for o in out] if "blas" not in method else None
    del out
    walls, cpus = [], []
    base, peak0 = _rss()
    for _ in range(repeat):
        time.sleep(idle)
        w0 = time.perf_counter()
        c0 = time.process_time()
        out = call()
        cpus.append(time.process_time() - c0)
        walls.append(time.perf_counter() - w0)
        del out
    rec = {"method": method, "net": name, "n": n, "first": first, "walls": walls, "cpus": cpus}
    peak = _rss()[1]
    if peak > peak0:
        rec["peak_per_out"] = (peak - base) / ((1 if "blas" in method else 2) * n * n * 8)
    if sample is not None:
        rec["sample"] = sample
    return rec


def run_one(method: str, name: str, n: int, repeat: int, nt_python: str, idle: float) -> dict:
    """One configuration in a subprocess pinned to one core."""
    env = dict(os.environ)
    for k in ("OMP", "OPENBLAS", "MKL", "NUMBA"):
        env[f"{k}_NUM_THREADS"] = "1"
    env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    env["JAX_PLATFORMS"] = "cpu"
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    python = nt_python if method == "nt" else sys.executable
    args = [python, __file__, "--worker", method, name, str(n), str(repeat), str(idle)]
    core = sorted(os.sched_getaffinity(0))[:1]
    proc = subprocess.run(
        args, env=env, capture_output=True, text=True, check=False,
        preexec_fn=lambda: os.sched_setaffinity(0, core),
    )  # fmt: skip
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            return json.loads(line)
    err = proc.stderr.strip().splitlines()[-1:] or ["no output"]
    return {"method": method, "net": name, "n": n, "error": err}


def reference(name: str, store: str | None = None) -> list:
    """The mpmath referee's NNGP and NTK on the sample entries (kept in ``store``, a JSON
    file of previous runs, when given: the referee takes minutes per network)."""
    import numpy as np

    kept = json.loads(Path(store).read_text()) if store and Path(store).exists() else {}
    if name in kept:
        return [np.asarray(r) for r in kept[name]]
    sys.path.insert(0, str(REPO / "src"))
    from ntksym import stax

    X = np.random.default_rng(0).standard_normal((5, D))
    (ref,) = stax.reference_kernels(build(stax, name).description, X[0:3], X[3:5], dps=20)
    out = [np.asarray(r, dtype=float) for r in ref]
    if store:
        kept[name] = [r.tolist() for r in out]
        tmp = Path(f"{store}.tmp")
        tmp.write_text(json.dumps(kept))
        tmp.replace(store)
    return out


def _err(sample: list, ref: list) -> float:
    import numpy as np

    pairs = zip(sample, ref, strict=True)
    return max(float(np.max(np.abs(np.asarray(s) - r) / np.abs(r))) for s, r in pairs)


def _row(name: str, n: int, res: dict[str, dict], ref: list, methods: list[str]) -> str:
    """One Markdown table row of the results ``res`` (by method) of one network and N."""
    med = {m: statistics.median(r["walls"]) for m, r in res.items() if "walls" in r}
    cpu = {m: statistics.median(r["cpus"]) for m, r in res.items() if "cpus" in r}
    errs = {m: _err(r["sample"], ref) for m, r in res.items() if "sample" in r}

    def cell(m: str) -> str:
        return f"{med[m]:.2f}" if m in med else "-"

    def ratio(a: str, b: str, of: dict = med) -> str:
        return f"{of[a] / of[b]:.1f}x" if a in of and b in of else "-"

    cold = f"{res['fused']['first']:.1f}" if "first" in res.get("fused", {}) else "-"
    err = " / ".join(f"{errs[m]:.1e}" if m in errs else "-" for m in methods if "blas" not in m)
    mem = " / ".join(
        f"{res[m]['peak_per_out']:.2f}" if "peak_per_out" in res.get(m, {}) else "-"
        for m in methods
    )
    cells = [name, str(n), *(cell(m) for m in ("fused", "fused_out", "layers", "nt", "blas"))]
    cells += [cell("blas_out"), ratio("layers", "fused"), ratio("nt", "fused")]
    cells += [ratio("nt", "fused", cpu), ratio("fused", "blas"), ratio("fused_out", "blas_out")]
    cells += [ratio("fused", "fused_out"), cold, err, mem, cell("ceiling")]
    cells += [ratio("nt", "ceiling"), ratio("nt", "ceiling", cpu), ratio("ceiling", "blas_out")]
    return "| " + " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> int:
    """Run the sweep and print one Markdown table row per (network, N)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", nargs=5, metavar=("METHOD", "NET", "N", "REPEAT", "IDLE"))
    ap.add_argument("--n", type=int, nargs="+", default=[1000, 2000, 4000])
    ap.add_argument("--nets", nargs="+", default=list(NETWORKS), choices=NETWORKS)
    ap.add_argument("--methods", nargs="+", default=["fused", "layers", "nt"], choices=METHODS)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--idle", type=float, default=0.0, help="seconds asleep before each call")
    ap.add_argument("--layers-max-n", type=int, default=2000, help="largest N for layers")
    ap.add_argument("--nt-python", default="/tmp/nt-venv/bin/python")
    ap.add_argument("--ref-json", default=None, help="keep the referee's values in this file")
    args = ap.parse_args(argv)
    if args.worker:
        method, name, n, repeat, idle = args.worker
        print(json.dumps(worker(method, name, int(n), int(repeat), float(idle))), flush=True)
        return 0
    print("| network | N | fused (s) | fused out= (s) | layers (s) | nt (s) | floor (s) "
          "| floor out= (s) | layers/fused | nt/fused | nt/fused CPU | fused/floor "
          "| fused out=/floor out= | fused/fused out= | fused first call (s) | max rel. err "
          f"{' / '.join(m for m in args.methods if 'blas' not in m)} | peak / out "
          f"{' / '.join(args.methods)} | ceiling (s) | nt/ceiling | nt/ceiling CPU "
          "| ceiling/floor out= |")  # fmt: skip
    print("|---" * 21 + "|")
    for name in args.nets:
        ref = reference(name, args.ref_json)
        for n in args.n:
            res: dict[str, dict] = {}
            for method in args.methods:
                if method == "layers" and n > args.layers_max_n:
                    continue
                rep = 1 if method == "layers" else args.repeat
                res[method] = run_one(method, name, n, rep, args.nt_python, args.idle)
                print(json.dumps({k: v for k, v in res[method].items() if k != "sample"}),
                      file=sys.stderr, flush=True)  # fmt: skip
            print(_row(name, n, res, ref, args.methods), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
