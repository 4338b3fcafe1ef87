"""Accuracy of the quadrature modules' layer map (Mehler series + adaptive fallback) vs mpmath.

For the generated NumPy module of each activation, E[sigma(u) sigma(v)] and
E[sigma'(u) sigma'(v)] at variances 1e-4..1e4 and correlations up to 1 - 1e-12 in absolute
value, against ``ntksym.reference.dual`` at 30 digits (tanh-sinh quadrature in mpmath): the
relative error (against sqrt(E[f(u)^2] E[f(v)^2]) where the value is below 1e-3 of it, the
measure of tests/test_codegen_quadrature.py), and whether the Mehler series answered the
entry or the adaptive rule did (the fallback).

Usage::

    python benchmarks/bench_mehler_accuracy.py                   # tanh and softplus
    python benchmarks/bench_mehler_accuracy.py --acts sigmoid silu
"""

from __future__ import annotations

import argparse
import functools
import itertools

import mpmath
import numpy as np

from ntksym import reference
from ntksym.codegen import load

VARIANCES = [(1e-4, 1e-4), (1e-2, 1.0), (1.0, 1.0), (1.0, 30.0), (1e2, 1e2), (1e4, 1e4)]
RHOS = [0.1, -0.5, 0.7, 0.95, 1 - 1e-6, -(1 - 1e-12)]


def main() -> None:
    """Print one row per (activation, variances, correlation, function) and a summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--acts", nargs="+", default=["tanh", "softplus"])
    args = parser.parse_args()
    for name in args.acts:
        m = load(name, "numpy")
        worst = {True: 0.0, False: 0.0}
        count = {True: 0, False: 0}
        for (s1, s2), rho in itertools.product(VARIANCES, RHOS):
            s12 = rho * np.sqrt(s1 * s2)
            with mpmath.workdps(40):
                det = float(mpmath.mpf(s1) * s2 - mpmath.mpf(s12) ** 2)
            for d in (0, 1):
                arr = [np.array([x]) for x in (s1, s2, s12, det, np.sqrt(s1), np.sqrt(s2))]
                _, ok = m._series(*arr, functools.partial(m._fn, d), None)
                e, ed, _ = m._pair(
                    arr[0], arr[1], arr[2], arr[3], 0.0, 0.0, 0.0, 0.0, arr[4], arr[5], 0.0, 0.0
                )
                got = (e if d == 0 else ed)[0]
                ref = float(reference.dual(name, s1, s12, s2, dps=30, derivative=bool(d)))
                cs = (
                    np.sqrt(m._diag(np.array([s1]))[0] * m._diag(np.array([s2]))[0])
                    if d == 0
                    else abs(ref)
                )
                den = abs(ref) if abs(ref) >= 1e-3 * cs else cs
                err = abs(got - ref) / den
                used = bool(ok[0])
                worst[used] = max(worst[used], err)
                count[used] += 1
                what = ("sigma " if d == 0 else "sigma1") + (" series  " if used else " fallback")
                print(f"{name:10s} S=({s1:.0e},{s2:.0e}) rho={rho:+.12f} {what} err {err:.2e}")
        print(
            f"{name}: series {count[True]} entries, worst {worst[True]:.2e}; "
            f"fallback {count[False]} entries, worst {worst[False]:.2e}",
            flush=True,
        )


if __name__ == "__main__":
    main()
