"""What the mended next determinant costs where every pair needs it.

The homogeneous modules of ``sin(u) + u`` compute the derived next determinant
(``ntksym.codegen.mend``) only at entries whose direct difference cancels. Random inputs
have none, so ``bench_gram.py`` measures only the check. Here every pair is gated: the
inputs lie within ``--spread`` of one direction, at norm ``--norm``. Two modules are
rendered from this tree, one with the mend and one without (its ``mend_spec``
replaced by None), and called in turn in one process, on one core if pinned. Printed:
the median time of each, their ratio, and how far the unmended NTK is from the mended one.

Usage::

    NUMBA_NUM_THREADS=1 taskset -c 1 python benchmarks/bench_mend_gated.py
    python benchmarks/bench_mend_gated.py --backend numba --n 2000 --norm 100
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np

# (the module: the package ``ntksym.codegen`` exports its function ``render`` by that name)
render_mod = importlib.import_module("ntksym.codegen.render")


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _modules(activation: str, backend: str, where: Path) -> dict[str, ModuleType]:
    """The module with the mend and the module without it, rendered into ``where``."""
    mended = render_mod.render(activation, backend)
    original = render_mod.mend_spec
    render_mod.mend_spec = lambda spec, pr: None
    try:
        plain = render_mod.render(activation, backend)
    finally:
        render_mod.mend_spec = original
    assert "def _pair_mend(" in mended and "def _pair_mend(" not in plain
    out = {}
    for tag, source in (("unmended", plain), ("mended", mended)):
        path = where / f"{tag}_{backend}.py"
        path.write_text(source)
        out[tag] = _load(path, f"bench_mend_{tag}_{backend}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--activation", default="sin(u) + u")
    ap.add_argument("--backend", choices=("numpy", "numba"), default="numpy")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--depth", type=int, default=10)
    ap.add_argument("--spread", type=float, default=0.01)
    ap.add_argument("--norm", type=float, default=100.0)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal(256)
    X = (x0 + args.spread * rng.standard_normal((args.n, 256))) * args.norm / np.linalg.norm(x0)
    with tempfile.TemporaryDirectory() as tmp:
        mods = _modules(args.activation, args.backend, Path(tmp))
        for m in mods.values():  # (compile and warm)
            m.nngp_ntk(X[:8], None, args.depth, 0.1, 1.2)
        times: dict[str, list[float]] = {k: [] for k in mods}
        outs = {}
        for _ in range(args.rounds):
            for tag, m in mods.items():
                t = time.perf_counter()
                outs[tag] = m.nngp_ntk(X, None, args.depth, 0.1, 1.2)
                times[tag].append(time.perf_counter() - t)
    med = {k: float(np.median(v)) for k, v in times.items()}
    off = np.abs(outs["unmended"][1] - outs["mended"][1]) / np.abs(outs["mended"][1])
    print(
        f"{args.activation} {args.backend} N={args.n} depth={args.depth} "
        f"spread={args.spread} norm={args.norm}: unmended {med['unmended']:.3f} s, "
        f"mended {med['mended']:.3f} s, ratio {med['mended'] / med['unmended']:.2f}; "
        f"unmended NTK off the mended by up to {float(np.max(off)):.1e}"
    )


if __name__ == "__main__":
    main()
