"""Which bound ``TAU`` lets a fused chunk skip the carried determinants: error vs margin.

A fused module (:mod:`ntksym.codegen.architecture`) runs a chunk of pairs without carried
determinants when every pair has ``1 - rho^2 > tau`` at the input of every activation
(``arch_runtime._run_steps``). For single pairs ``(x, x')`` with ``x' = cos(phi) x +
sin(phi) y`` (``y`` orthogonal to ``x``, norms and ``phi`` spread from near-parallel
through orthogonal to anti-parallel, ``d = 256``), this prints per pair:

* ``margin``: the least ``1 - rho^2`` over the activations' inputs, found as the largest
  ``tau = 2^-k`` (``k = 0..50``) at which the module runs the pair without carried
  determinants;
* ``plain``: the largest relative error (NNGP and NTK) against the mpmath referee
  (:func:`ntksym.stax.reference_kernels`, ``--dps``) with every pair forced through the
  plain path (``tau = 0``: only pairs of one input twice are refused);
* ``carried``: the same with the determinants carried everywhere (``tau = -1``).

Then, per ``tau = 2^-k``, the largest ``plain`` error over the pairs whose margin exceeds
``tau`` (the pairs the kernel would run plain at that bound). Usage::

    PYTHONPATH=src python benchmarks/bench_chunk_tau.py --nets mixed residual relu20
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_stax  # noqa: E402


def network(s: Any, name: str) -> Any:
    """The networks of ``bench_stax`` and ``relu20`` (depth 20, ReLU, with biases)."""
    if name == "relu20":
        layers = []
        for _ in range(20):
            layers += [s.Dense(bench_stax.WIDTH, 1.4, 0.1), s.Relu()]
        return s.serial(*layers, s.Dense(1, 1.0, 0.1))
    return bench_stax.build(s, name)


def pairs(n: int, d: int = 256) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` pairs at angles from 1e-9 to pi - 1e-9, norms from 1e-3 to 1e3 (seed 3)."""
    rng = np.random.default_rng(3)
    half = np.logspace(-9, np.log10(np.pi / 2), n // 2)
    phis = np.concatenate([half, np.pi - half[::-1]])
    out = []
    for phi in phis:
        x, y = rng.standard_normal((2, d))
        x /= np.linalg.norm(x)
        y -= (y @ x) * x
        y /= np.linalg.norm(y)
        s1, s2 = 10.0 ** rng.uniform(-3, 3, 2)
        out.append((s1 * x, s2 * (np.cos(phi) * x + np.sin(phi) * y)))
    return out


def rel(a: np.ndarray, r: np.ndarray) -> float:
    return float(np.max(np.abs(a - r) / np.abs(r)))


def measure(name: str, n: int, dps: int) -> dict:
    """Margin and errors of each pair, and the worst plain error per bound."""
    from ntksym import stax
    from ntksym.codegen import architecture

    net = network(stax, name)
    mod = architecture.fused_kernel(net.description).module
    counts = np.zeros(2, dtype=np.int64)
    rows = []
    for x, y in pairs(n):
        X1, X2 = x[None, :], y[None, :]
        (ref,) = stax.reference_kernels(net.description, X1, X2, dps=dps)
        margin = 0.0
        for k in range(51):
            mod._compute(X1, X2, True, 2.0**-k, counts)
            if counts[1] == 0:
                margin = 2.0**-k
                break
        errs = {}
        for label, tau in (("plain", 0.0), ("carried", -1.0)):
            K, T = mod._compute(X1, X2, True, tau, counts)
            errs[label] = max(rel(K, ref[0]), rel(T, ref[1]))
        cos = float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))
        rows.append({"cos": cos, "margin": margin, **errs})
    worst = {}
    for k in range(0, 31):
        tau = 2.0**-k
        errs = [r["plain"] for r in rows if r["margin"] > tau]
        worst[f"2^-{k}"] = (len(errs), max(errs, default=0.0))
    return {"pairs": rows, "worst_plain_by_tau": worst}


def main(argv: list[str] | None = None) -> int:
    """Print the JSON of each network's measurement."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", nargs="+", default=["mixed", "residual", "relu20"])
    ap.add_argument("--pairs", type=int, default=40)
    ap.add_argument("--dps", type=int, default=30)
    args = ap.parse_args(argv)
    out = {name: measure(name, args.pairs, args.dps) for name in args.nets}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
