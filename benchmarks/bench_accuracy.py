"""Accuracy of NNGP/NTK Gram matrices on adversarial inputs, against ntksym.reference.

The set (issue 4): one random direction x in R^16 (seed 0) at norms
1e-6, 1e-3, 1, 1e3, 1e6; for each norm s the pairs (s x, s x) (diagonal),
(s x, s x (1 + 1e-8 noise)) (near-parallel) and (s x, -s x) (anti-parallel),
every cross-norm pair between them, and (with bias_std > 0) the zero vector;
depths 1 to 20; bias_std 0 and 0.5, weight_std 1. Both ``K(X1, X2)`` and the
symmetric ``K(X2, X2)`` are checked. The referee is :func:`ntksym.reference.kernel`
(mpmath, ``--dps`` digits, default 50), rounded to float64.

Methods: ntksym's generated Numba and NumPy kernels, ntksym's ``"dual"`` backend
(layer-by-layer NumPy evaluation of ntksym.dual), neural-tangents in float64
and in float32 (inputs cast to float32), and the plain NumPy port of
``bench_gram.plain_numpy``. Printed per activation / method / NNGP-NTK, over all
depths: the maximum relative error over the entries with
``|K| >= 1e-10 sqrt(K(x,x) K(x',x'))`` (for exactly anti-parallel ReLU pairs the
true value can be 1e-50 of that scale, and any rounding of the inputs' angle
changes it entirely), and the maximum error scaled by ``sqrt(K(x,x) K(x',x'))``
over all entries.

Usage::

    python benchmarks/bench_accuracy.py                   # relu, erf; depths 1..20
    python benchmarks/bench_accuracy.py --depths 1 5 10   # faster
    # the other closed forms, ntksym's generated kernels only (step and sign: NNGP only,
    # their NTK is infinite on the diagonal; exp on smaller norms and depths, where its
    # kernel stays finite)
    python benchmarks/bench_accuracy.py --ours-only --acts leaky_relu abs identity step sign
    python benchmarks/bench_accuracy.py --ours-only --acts sin cos gaussian gelu
    python benchmarks/bench_accuracy.py --ours-only --acts exp --norms 1e-6 1e-3 0.5 --depths 1 2 3

The reference evaluates each dual kernel by ntksym.dual's closed form where one exists
(``method="auto"``; gelu's whole set takes ~45 s), else by mpmath quadrature.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench_gram import nt_kernel_fn, plain_numpy  # noqa: E402

NORMS = (1e-6, 1e-3, 1.0, 1e3, 1e6)


def adversarial_inputs(
    zero: bool, norms: tuple[float, ...] = NORMS
) -> tuple[np.ndarray, np.ndarray]:
    """``(X1, X2)``: X1 the base points, X2 their twins, near-twins and opposites."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(16)
    X1 = [s * x for s in norms]
    X2 = []
    for s in norms:
        X2 += [s * x, s * x * (1 + 1e-8 * rng.standard_normal(16)), -s * x]
    if zero:
        X1.append(np.zeros(16))
        X2.append(np.zeros(16))
    return np.array(X1), np.array(X2)


def _methods(act: str, depth: int, b: float, ours_only: bool = False):  # noqa: ANN202
    import ntksym
    from ntksym.codegen import kernel_spec

    get = ("nngp", "ntk") if kernel_spec(act).has_ntk else ("nngp",)

    def nt(dtype):  # noqa: ANN001, ANN202
        def f(X1, X2):  # noqa: ANN001, ANN202
            import jax

            jax.config.update("jax_enable_x64", dtype == np.float64)
            fn = nt_kernel_fn(act, depth, b, 1.0)
            k = fn(jax.numpy.asarray(X1.astype(dtype)), None if X2 is None else
                   jax.numpy.asarray(X2.astype(dtype)), ("nngp", "ntk"))  # fmt: skip
            assert k.ntk.dtype == dtype, k.ntk.dtype
            return np.asarray(k.nngp, dtype=np.float64), np.asarray(k.ntk, dtype=np.float64)

        return f

    def ours(backend):  # noqa: ANN001, ANN202
        k = ntksym.kernel(act, depth, b, 1.0, backend=backend)

        def f(X1, X2):  # noqa: ANN001, ANN202
            out = tuple(k(X1, X2, get=get))
            return out if len(out) == 2 else (out[0], np.full_like(out[0], np.nan))

        return f

    if ours_only:
        return {"ntksym numba": ours("numba"), "ntksym numpy": ours("numpy")}
    return {
        "ntksym numba": ours("numba"),
        "ntksym numpy": ours("numpy"),
        "ntksym dual": ours("dual"),
        "neural-tangents f64": nt(np.float64),
        "neural-tangents f32": nt(np.float32),
        "plain numpy f64": lambda X1, X2: plain_numpy(X1, X2, act, depth, b, 1.0),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the accuracy comparison and print a markdown table."""
    from ntksym import reference

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--acts", nargs="+", default=["relu", "erf"])
    p.add_argument("--depths", nargs="+", type=int, default=list(range(1, 21)))
    p.add_argument("--dps", type=int, default=50)
    p.add_argument("--norms", nargs="+", type=float, default=list(NORMS))
    p.add_argument("--ours-only", action="store_true", help="only ntksym's generated kernels")
    a = p.parse_args(argv)
    from ntksym.codegen import kernel_spec

    t0 = time.time()
    worst: dict[tuple[str, str, str, str], tuple[float, str]] = {}

    def record(key: tuple[str, str, str, str], err: np.ndarray, where: str) -> None:
        e = float(np.max(np.where(np.isnan(err), np.inf, err), initial=0.0))
        if e > worst.get(key, (-1.0, ""))[0]:
            idx = np.unravel_index(np.argmax(err), err.shape) if err.size else ()
            worst[key] = (e, f"{where}{tuple(int(t) for t in idx)}")

    for act in a.acts:
        for b in (0.0, 0.5):
            X1, X2 = adversarial_inputs(zero=b > 0, norms=tuple(a.norms))
            rows1 = [3 * k for k in range(len(a.norms))] + ([len(X2) - 1] if b > 0 else [])
            assert np.array_equal(X2[rows1], X1)
            has_ntk = kernel_spec(act).has_ntk
            for depth in a.depths:
                sym = reference.kernel(
                    act, X2, None, depth=depth, bias_std=b, dps=a.dps, ntk=has_ntk
                )
                for pair in ((X2, None), (X1, X2)):
                    ref = (
                        sym
                        if pair[1] is None
                        else reference.kernel(
                            act, *pair, depth=depth, bias_std=b, dps=a.dps, ntk=has_ntk
                        )
                    )
                    for name, f in _methods(act, depth, b, a.ours_only).items():
                        with np.errstate(all="ignore"):
                            try:
                                got = f(*pair)
                            except Exception as exc:  # noqa: BLE001 - reported in the table
                                got = (np.full_like(ref[0], np.nan),) * 2
                                print(f"# {name} {act} depth {depth}: {exc}", file=sys.stderr)
                            for what, g, r, s in zip(("nngp", "ntk"), got, ref, sym, strict=True):
                                d2 = np.diag(s)
                                d1 = d2 if pair[1] is None else d2[rows1]
                                # Cauchy-Schwarz scale of each entry: sqrt(K(x,x) K(x',x'))
                                scale = np.sqrt(np.outer(d1, d2))
                                err = np.abs(g - r)
                                where = (
                                    f"depth {depth}, b {b}, "
                                    f"{'K(X2,X2)' if pair[1] is None else 'K(X1,X2)'}"
                                )
                                ok = np.abs(r) >= 1e-10 * scale
                                record(
                                    (act, name, what, "rel"),
                                    np.where(ok, err / np.where(ok, np.abs(r), 1), 0),
                                    where,
                                )
                                record((act, name, what, "scaled"), err / scale, where)
    print(f"# reference: ntksym.reference at dps={a.dps}; depths {a.depths}; "
          f"{time.time() - t0:.0f} s")  # fmt: skip
    print(
        "# rel: |err|/|K| over entries with |K| >= 1e-10 sqrt(K(x,x)K(x',x')); "
        "scaled: |err|/sqrt(K(x,x)K(x',x')) over all entries"
    )
    print(
        "| activation | method | NNGP rel | NTK rel | NNGP scaled | NTK scaled | worst (NTK) rel |"
    )
    print("|---|---|---|---|---|---|---|")
    for act in a.acts:
        has_ntk = kernel_spec(act).has_ntk
        for name in _methods(act, 1, 0.0, a.ours_only):
            w = {(k[2], k[3]): v for k, v in worst.items() if k[:2] == (act, name)}
            cells = [f"{w[(x, y)][0]:.1e}" if has_ntk or x == "nngp" else "-"
                     for y in ("rel", "scaled") for x in ("nngp", "ntk")]  # fmt: skip
            where = w[("ntk", "rel")][1] if has_ntk else w[("nngp", "rel")][1] + " (NNGP)"
            print(f"| {act} | {name} | {' | '.join(cells)} | {where} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
