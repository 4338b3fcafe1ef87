"""Numeric checks of a single layer's derived kernel map: the statement at random points.

A layer derivation (``derivations/dropout.py``, ``sign.py``, ``fan_in_sum.py``,
``fan_in_concat.py``, ``layer_norm.py``) ends each map in a closed form of the layer's
input kernels. These checks evaluate that closed form in mpmath at seeded random points
and compare it with something computed another way: an mpmath integral of the quantity
the left side names, a Monte-Carlo average, or the layer maps of the code
(``ntksym.kernels.layer_maps``'s float64 maps and ``ntksym.reference.architecture``'s
mpmath maps), so that the derived statement and the code that computes kernels are tied
together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import mpmath
import numpy as np
import sympy as sp

from ntksym.derive.statements import pairs
from ntksym.derive.steps import CheckFn
from ntksym.derive.text import text

__all__ = [
    "Point", "both_checks", "code_layer_map", "covariance_points", "mean_check", "value_check"
]  # fmt: skip

#: Values of the statement's scalars at one point, by symbol.
Point = dict[sp.Symbol, float | int]


def covariance_points(
    s11: sp.Symbol,
    s12: sp.Symbol,
    s22: sp.Symbol,
    count: int = 6,
    seed: int = 0,
    more: dict[sp.Symbol, tuple[float, float]] | None = None,
) -> list[Point]:
    """Seeded random valid covariances ``[[S11, S12], [S12, S22]]`` (|correlation| < 0.97).

    ``more`` maps extra symbols to ``(low, high)``: each drawn uniformly.
    """
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        a, c = rng.uniform(0.2, 3.0, size=2)
        rho = rng.uniform(-0.97, 0.97)
        p: Point = {s11: float(a), s22: float(c), s12: float(rho * np.sqrt(a * c))}
        for sym, (lo, hi) in (more or {}).items():
            p[sym] = float(rng.uniform(lo, hi))
        out.append(p)
    return out


def value_check(
    reference: Callable[[Point], Any],
    points: Sequence[Point],
    what: str,
    rtol: float = 1e-12,
    method: str = "numeric",
) -> CheckFn:
    """Compare the statement's last right-hand side with ``reference`` at ``points``.

    The side is evaluated in mpmath (30 digits); ``reference(point)`` is a number (float
    or mpf) computed independently (``what`` says how). Passes when every relative
    difference is within ``rtol`` (absolute when the reference is 0).
    """

    def check(statement: sp.Basic, ctx: object, env: dict) -> tuple[bool, str, Any]:
        rhs = pairs(statement)[-1][1]
        worst = 0.0
        for p in points:
            with mpmath.workdps(30):
                got = sp.N(rhs.xreplace(_values(p)), 30)
                if not got.is_number:
                    return False, method, text("it does not evaluate to a number: {g}", g=got)
                want = mpmath.mpf(reference(p))
                diff = abs(mpmath.mpf(str(got)) - want) / max(abs(want), mpmath.mpf(1e-300))
                if abs(want) == 0:
                    diff = abs(mpmath.mpf(str(got)))
            worst = max(worst, float(diff))
        ok = worst <= rtol
        return (
            ok,
            method,
            text(
                f"{'matches' if ok else 'differs from'} {what} at {len(points)} random "
                f"points (worst relative difference {worst:.1e}, tolerance {rtol:.0e})"
            ),
        )

    return check


def mean_check(
    sampler: Callable[[Point, np.random.Generator], np.ndarray],
    points: Sequence[Point],
    what: str,
    seed: int = 0,
    sigmas: float = 4.5,
) -> CheckFn:
    """The statement's last right-hand side against a Monte-Carlo mean with error bars.

    ``sampler(point, rng)`` returns independent samples of the quantity the left side
    takes the expectation of; the check passes when the derived value is within
    ``sigmas`` standard errors of their mean at every point.
    """

    def check(statement: sp.Basic, ctx: object, env: dict) -> tuple[bool, str, Any]:
        rhs = pairs(statement)[-1][1]
        worst = 0.0
        for n, p in enumerate(points):
            got = sp.N(rhs.xreplace(_values(p)), 20)
            if not got.is_number:
                return False, "monte-carlo", text("it does not evaluate to a number: {g}", g=got)
            samples = sampler(p, np.random.default_rng(seed + n))
            se = float(np.std(samples) / np.sqrt(samples.size))
            worst = max(worst, abs(float(got) - float(np.mean(samples))) / max(se, 1e-300))
        ok = worst <= sigmas
        return (
            ok,
            "monte-carlo",
            text(
                f"{'within' if ok else 'outside'} the error bars of {what} at {len(points)} "
                f"random points (worst {worst:.1f} standard errors, limit {sigmas})"
            ),
        )

    return check


def both_checks(first: CheckFn, second: CheckFn) -> CheckFn:
    """A check that passes when ``first`` and then ``second`` pass.

    E.g. the code's float64 map, then its mpmath one: the first failure is the verdict,
    else both checks' texts are.
    """

    def check(stmt: sp.Basic, ctx: Any, env: dict) -> tuple[bool, str, Any]:
        ok1, m1, t1 = first(stmt, ctx, env)
        if not ok1:
            return ok1, m1, t1
        ok2, _, t2 = second(stmt, ctx, env)
        return ok2, "numeric", text("{a}; {b}", a=t1, b=t2)

    return check


def code_layer_map(
    method: str, layer: Any, field: str, backend: str, pair: Sequence[Any], same: bool = False
) -> float | Any:
    """The code's map of one layer at one pair of inputs: the output's ``field``.

    ``method`` names the layer's map in both implementations (``"dropout"``,
    ``"layer_norm"``, ``"nonlinearity"``): ``ntksym.kernels.layer_maps.Float64Ops`` on a
    1 x 1 block (``backend="float64"``), or ``ntksym.reference.architecture.MpmathOps`` at
    30 digits (``backend="mpmath"``). ``pair`` is the input's ``(s11, s22, s12, ntk)``;
    ``same`` marks an input paired with itself.
    """
    if backend == "mpmath":
        from ntksym.reference.architecture import MpmathOps, Pair

        with mpmath.workdps(30):
            args = Pair(*(mpmath.mpf(v) for v in pair), same)
            return getattr(getattr(MpmathOps(30, "quadrature"), method)(args, layer), field)
    from ntksym.kernels.layer_maps import Block, Float64Ops

    s11, s22, s12, ntk = pair
    one = np.ones((1, 1))
    block = Block(
        np.array([s11]), np.array([s22]), s12 * one, None, ntk * one,
        np.zeros((1, 1), dtype=bool), None, same,
    )  # fmt: skip
    return float(np.ravel(getattr(getattr(Float64Ops(), method)(block, layer), field))[0])


def _values(p: Point) -> dict:
    """The point as SymPy numbers: integers (unit indices) exact, the rest 30-digit floats."""
    return {s: sp.Integer(v) if isinstance(v, int) else sp.Float(v, 30) for s, v in p.items()}
