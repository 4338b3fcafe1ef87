"""Every ``ntksym.stax`` layer type on adversarial inputs: fused kernel and layer path vs mpmath.

Issue 14 asks each layer type for ``<= 1e-13`` relative error against mpmath over the
adversarial set. For each layer type this builds a network that exercises it at a depth
``d`` (``d`` copies of the layer, or of a block made of it; ``Dense, act`` repeated for an
activation) and compares ``kernel_fn(X, backend="layers")`` (the float64 layer maps) and
``kernel_fn(X, backend="fused")`` (the generated fused Numba module, where it covers the
network; ``--paths pairs``: the same module called once per pair, so that each pair
takes the plain or the carried path by its own correlations) with
:func:`ntksym.stax.reference_kernels` (mpmath, ``--dps`` digits; each dual map by its
mpmath closed form where one exists, ``method="auto"``, else by quadrature).

The inputs (dimension 6, seed 5): ``x``; its exact twin; ``x (1 + 1e-9)``; ``x + 1e-8 d``
(near-parallel); ``-x + 1e-7 d`` and ``-x`` (anti-parallel); ``1e3 x``; the zero vector
(every network has a bias on its first layer); ``1e-6 y`` and ``1e6 z``. Printed per layer
type, NNGP and NTK together: the largest relative error over the entries with
``|K| >= 1e-10 sqrt(K(x,x) K(x',x'))`` (as in ``bench_accuracy.py``: an exactly
anti-parallel ReLU pair can have a true value 1e-50 of that scale) over the depths, the
depth where it occurs, and the largest error scaled by ``sqrt(K(x,x) K(x',x'))`` over all
entries. Where a kernel overflows float64 at some input (``exp``, monomials), the largest
norms are dropped (``1e6``, then ``1e3``) and the row says so.

Each fused network is its own generated module (20-40 s of CPU to compile cold), so the
fused path runs at ``--fused-depths`` only (default 20, the deepest). Usage::

    python benchmarks/bench_arch_accuracy.py                        # everything, ~1 h CPU
    python benchmarks/bench_arch_accuracy.py --paths layers         # no compiles
    python benchmarks/bench_arch_accuracy.py --types Relu Gelu --depths 1 20
    python benchmarks/bench_arch_accuracy.py --json out.json        # also write the rows
    python benchmarks/bench_arch_accuracy.py --json out.json --resume  # go on after a stop

With ``--json`` the rows are written after each measurement (atomically: a temporary file
renamed over the old one), so a stopped run loses at most the measurement in progress, and
``--resume`` skips the (type, path, depth) rows the file already holds. The referee's
kernels are computed once per (type, depth, inputs kept) and shared by the paths.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ntksym import stax
from ntksym.errors import NTKSymError

DEPTHS = (1, 2, 5, 10, 20)


def adversarial_inputs() -> tuple[np.ndarray, list[str]]:
    """The inputs and their labels."""
    x, d, y, z = np.random.default_rng(5).standard_normal((4, 6))
    rows = {
        "x": x,
        "twin": x.copy(),
        "x(1+1e-9)": x * (1 + 1e-9),
        "x+1e-8d": x + 1e-8 * d,
        "-x+1e-7d": -x + 1e-7 * d,
        "-x": -x,
        "1e3x": 1e3 * x,
        "zero": np.zeros(6),
        "1e-6y": 1e-6 * y,
        "1e6z": 1e6 * z,
    }
    return np.vstack(list(rows.values())), list(rows)


def _chain(act: Any, w: float = 1.2, b: float = 0.3) -> Callable[[int], Any]:
    """``(Dense, act) * d, Dense``: every Dense has a bias (the zero input stays nonzero)."""
    return lambda d: stax.serial(*[stax.Dense(8, w, b), act] * d, stax.Dense(1, 0.9, 0.1))


def _then_kinked(act: Any, w: float = 1.2) -> Callable[[int], Any]:
    """``(Dense, act, Dense, Relu) * d, Dense``: a kinked layer reading the determinant
    after ``act`` (carried by the residual's integral when ``act``'s family carries none)."""
    pair = [stax.Dense(8, w, 0.3), act, stax.Dense(8, 1.3, 0.2), stax.Relu()]
    return lambda d: stax.serial(*pair * d, stax.Dense(1, 0.9, 0.1))


def _dense_ntk(d: int) -> Any:
    ws, bs = [1.3, 0.9, 1.6, 1.1], [0.2, 0.5, 0.05, 0.3]
    layers = []
    for i in range(d):
        layers += [stax.Dense(8, ws[i % 4], bs[i % 4]), stax.Relu()]
    return stax.serial(*layers, stax.Dense(1, 1.2, 0.1))


def _dense_standard(d: int) -> Any:
    widths = [8, 16, 5, 32]
    layers = []
    for i in range(d):
        layers += [stax.Dense(widths[i % 4], 1.3, 0.2, parameterization="standard"), stax.Relu()]
    return stax.serial(*layers, stax.Dense(1, 1.0, 0.1, parameterization="standard"))


def _residual(norm: bool) -> Callable[[int], Any]:
    branch = stax.parallel(stax.serial(stax.Relu(), stax.Dense(8, 1.2, 0.1)), stax.Identity())
    block = stax.serial(stax.FanOut(2), branch, stax.FanInSum(), *([stax.LayerNorm()] * norm))
    return lambda d: stax.serial(
        stax.Dense(8, 1.1, 0.2), stax.repeat(block, d), stax.Relu(), stax.Dense(1)
    )


def _two_branches(d: int) -> Any:
    block = stax.serial(
        stax.FanOut(2),
        stax.parallel(
            stax.serial(stax.Relu(), stax.Dense(8, 0.9, 0.1)),
            stax.serial(stax.Erf(), stax.Dense(8, 1.0, 0.2)),
        ),
        stax.FanInSum(),
    )
    return stax.serial(stax.Dense(8, 1.1, 0.2), stax.repeat(block, d), stax.Relu(), stax.Dense(1))


def _concat(d: int) -> Any:
    """Blocks of two branches of widths 12 and 4 concatenated, each followed by a Dense."""
    block = stax.serial(
        stax.FanOut(2),
        stax.parallel(
            stax.serial(stax.Relu(), stax.Dense(12, 0.9, 0.1)),
            stax.serial(stax.Erf(), stax.Dense(4, 1.3, 0.2)),
        ),
        stax.FanInConcat(),
        stax.Dense(8, 1.0, 0.1),
    )
    return stax.serial(stax.Dense(8, 1.1, 0.2), stax.repeat(block, d), stax.Relu(), stax.Dense(1))


def _mixed(d: int) -> Any:
    acts = [stax.Relu(), stax.Erf(1.2, 0.7, 0.1), stax.LeakyRelu(0.2), stax.Gelu(), stax.Abs()]
    layers = []
    for i in range(d):
        layers += [stax.Dense(8, 1.2, 0.2), acts[i % len(acts)]]
    return stax.serial(*layers, stax.Dense(1, 1.0, 0.1))


def _dropout(mode: str) -> Callable[[int], Any]:
    return lambda d: stax.serial(
        *[stax.Dense(8, 1.2, 0.2), stax.Relu(), stax.Dropout(0.8, mode)] * d,
        stax.Dense(1, 1.0, 0.1),
    )


#: layer type -> network of depth d. Activations in a chain; structural layers in blocks.
TYPES: dict[str, Callable[[int], Any]] = {
    "serial (mixed relu/erf/leaky/gelu/abs)": _mixed,
    "Dense ntk (per-layer W, b)": _dense_ntk,
    "Dense standard (widths 8,16,5,32)": _dense_standard,
    "FanOut/parallel/Identity/FanInSum, repeat": _residual(False),
    "parallel (relu | erf branches)": _two_branches,
    "FanInConcat (relu | erf branches, widths 12/4)": _concat,
    "LayerNorm (residual, repeat)": _residual(True),
    "Dropout(0.8) train": _dropout("train"),
    "Dropout test": _dropout("test"),
    "Relu": _chain(stax.Relu()),
    "LeakyRelu(0.1)": _chain(stax.LeakyRelu(0.1)),
    "ABRelu(-0.4, 1.3)": _chain(stax.ABRelu(-0.4, 1.3), 1.0),
    "Abs": _chain(stax.Abs()),
    "Erf(1.2, 0.7, 0.1)": _chain(stax.Erf(1.2, 0.7, 0.1)),
    "Sigmoid_like": _chain(stax.Sigmoid_like(), 1.5),
    "Gelu": _chain(stax.Gelu()),
    "Gelu(approximate=True)": _chain(stax.Gelu(approximate=True)),
    "Sin(1.1, 0.8, 0.3)": _chain(stax.Sin(1.1, 0.8, 0.3)),
    "Cos(0.9, 1.2, 0.2)": _chain(stax.Cos(0.9, 1.2, 0.2)),
    "Rbf(0.7)": _chain(stax.Rbf(0.7), 1.0),
    "Exp(0.5, 0.4)": _chain(stax.Exp(0.5, 0.4), 0.9, 0.1),
    "Gaussian(1.3, -0.6)": _chain(stax.Gaussian(1.3, -0.6)),
    "Sign": _chain(stax.Sign()),
    "Monomial(2)": _chain(stax.Monomial(2), 0.7, 0.1),
    "Monomial(3)": _chain(stax.Monomial(3), 0.5, 0.1),
    "RectifiedMonomial(2)": _chain(stax.RectifiedMonomial(2), 0.8, 0.1),
    "Elementwise('tanh(u)')": _chain(stax.Elementwise("tanh(u)")),
    "Elementwise('tanh(u)') then Relu": _then_kinked(stax.Elementwise("tanh(u)")),
    "Monomial(3) then Relu": _then_kinked(stax.Monomial(3), 0.5),
    "Elementwise('sin(u)+u') then Relu": _then_kinked(stax.Elementwise("sin(u)+u")),
}
#: activations the referee integrates by quadrature (no closed form): shallow depths only
QUADRATURE = {
    "Gelu(approximate=True)": (1, 2),
    "Elementwise('tanh(u)')": (1, 2),
    "Elementwise('tanh(u)') then Relu": (1,),
}


def errors(ours: Any, ref: Any) -> tuple[float, float]:
    """(relative error over the entries above the floor, scaled error over all entries)."""
    worst_rel = worst_scaled = 0.0
    for a, r in zip(ours, ref, strict=True):
        scale = np.sqrt(np.outer(np.diag(r), np.diag(r)))
        big = np.abs(r) >= 1e-10 * scale
        rel = np.abs(a - r)[big] / np.abs(r)[big]
        worst_rel = max(worst_rel, float(rel.max()))
        worst_scaled = max(worst_scaled, float(np.max(np.abs(a - r) / scale)))
    return worst_rel, worst_scaled


def _reference(net: Any, X: np.ndarray, dps: int) -> Any:
    """The referee's kernels; more digits where its own rounding breaks a covariance.

    A pair 1e-9 apart keeps a determinant ~1e-18 of its variances at the first layer, and
    contracting layers (erf, sigmoid) shrink it further: at depth 20 it can fall below
    the referee's working precision, which then refuses the covariance it rounded.
    """
    for digits in (dps, 2 * dps, 4 * dps):
        try:
            (ref,) = stax.reference_kernels(net.description, X, dps=digits, method="auto")
            return ref
        except NTKSymError as exc:
            if "positive semidefinite" not in str(exc):
                raise
    return None


def _pairwise(net: Any, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fused kernel entry by entry: each pair a call (and a chunk) of its own.

    The fused module runs a chunk without carried determinants when every pair of the
    chunk allows it (``arch_runtime._run_steps``); on the adversarial set nearly every
    chunk of the whole matrix holds a near-degenerate pair, so this path is what puts
    each pair through the plain maps wherever its own correlations allow. A diagonal entry
    is ``K(x, x)`` of one example (with ``X2`` given it would be two: a Dropout in train
    mode scales only the former).
    """
    n = len(X)
    K, T = np.empty((n, n)), np.empty((n, n))
    for i in range(n):
        for j in range(n):
            other = None if i == j else X[j : j + 1]
            k, t = net.kernel_fn(X[i : i + 1], other, backend="fused")
            K[i, j], T[i, j] = k[0, 0], t[0, 0]
    return K, T


#: the referee's kernels by (network description, kept inputs, digits): shared by the paths
_REFERENCES: dict[tuple[Any, tuple[int, ...], int], Any] = {}


def _reference_once(net: Any, X: np.ndarray, keep: list[int], dps: int) -> Any:
    key = (net.description, tuple(keep), dps)
    if key not in _REFERENCES:
        _REFERENCES[key] = _reference(net, X[keep], dps)
    return _REFERENCES[key]


def measure(make: Callable[[int], Any], depth: int, path: str, dps: int) -> dict[str, Any]:
    """One network, one path: its errors on the inputs that stay finite in float64."""
    X, labels = adversarial_inputs()
    keep = list(range(len(labels)))
    net = make(depth)
    for drop in ([], ["1e6z"], ["1e6z", "1e3x"]):
        keep = [i for i, name in enumerate(labels) if name not in drop]
        try:
            ours = (
                _pairwise(net, X[keep]) if path == "pairs" else net.kernel_fn(X[keep], backend=path)
            )
        except NTKSymError as exc:
            if "infinite" not in str(exc) and "too large" not in str(exc):
                return {"error": str(exc).split(";")[0][:60]}
            continue
        t = time.process_time()
        try:
            ref = _reference_once(net, X, keep, dps)
        except NTKSymError as exc:  # the referee refuses variances above 1e150
            if "too large" not in str(exc):
                raise
            continue
        if ref is None:
            return {"error": f"the referee needs more than {4 * dps} digits"}
        rel, scaled = errors(ours, ref)
        return {"rel": rel, "scaled": scaled, "dropped": drop, "ref_cpu": time.process_time() - t}
    return {"error": "overflows float64 (or the referee's 1e150) at norms <= 1"}


def _load(path: str) -> list[dict[str, Any]]:
    """The rows a previous run wrote to ``path`` (none if it does not exist)."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as fh:
        return list(json.load(fh))


def _save(path: str | None, rows: list[dict[str, Any]]) -> None:
    """Write the rows to ``path`` atomically (a temporary file renamed over it)."""
    if path is None:
        return
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(rows, fh, indent=1)
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--types", nargs="*", default=list(TYPES), help="layer types (see TYPES)")
    ap.add_argument("--depths", nargs="*", type=int, default=list(DEPTHS))
    ap.add_argument("--fused-depths", nargs="*", type=int, default=[20])
    ap.add_argument("--paths", nargs="*", default=["layers", "fused"])
    ap.add_argument("--dps", type=int, default=30)
    ap.add_argument("--json", default=None, help="also write the measurements here")
    ap.add_argument("--resume", action="store_true", help="skip the rows --json holds")
    args = ap.parse_args()
    warnings.simplefilter("ignore", RuntimeWarning)  # overflow is caught and reported
    rows = _load(args.json) if args.resume and args.json else []
    done = {(r["type"], r["path"], r["depth"]) for r in rows}
    print(f"{'layer type':44s} {'path':6s} {'depth':>5s} {'rel. err':>9s} {'scaled':>9s}  note")
    for name in args.types:
        for path in args.paths:
            depths = args.depths if path == "layers" else args.fused_depths
            if path == "layers":
                depths = [d for d in depths if d in QUADRATURE.get(name, depths)]
            for depth in depths:
                if (name, path, depth) in done:
                    continue
                if path in ("fused", "pairs"):
                    from ntksym.codegen.architecture import supported

                    why = supported(TYPES[name](depth).description)
                    if why:
                        rows.append({"type": name, "path": path, "depth": depth, "error": why})
                        _save(args.json, rows)
                        print(f"{name:44s} {path:6s} {depth:5d}  not covered: {why[:50]}")
                        break
                m = measure(TYPES[name], depth, path, args.dps)
                rows.append({"type": name, "path": path, "depth": depth, **m})
                _save(args.json, rows)
                if "error" in m:
                    print(f"{name:44s} {path:6s} {depth:5d}  {m['error']}", flush=True)
                    continue
                note = f"without {', '.join(m['dropped'])}" if m["dropped"] else ""
                print(
                    f"{name:44s} {path:6s} {depth:5d} {m['rel']:9.1e} {m['scaled']:9.1e}  {note}",
                    flush=True,
                )
    print("\nworst over the depths (relative error above the floor; depth):")
    for name in args.types:
        for path in args.paths:
            got = [r for r in rows if r["type"] == name and r["path"] == path and "rel" in r]
            if got:
                w = max(got, key=lambda r: r["rel"])
                print(f"{name:44s} {path:6s} {w['rel']:9.1e} (depth {w['depth']})")


if __name__ == "__main__":
    main()
