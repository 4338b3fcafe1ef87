"""The gate of :mod:`.mgf_expr_det`: a derived next determinant is used only once certified.

The derivation is mechanical, but its forms are chosen by conditions on the sizes of the
exponents, and whether float64 keeps the digits through a form of thousands of terms is a
question of numbers, not of algebra. So each derived form is compared with mpmath (50
digits) on a fixed scan before a kernel prints it: pairs whose directly formed determinant
would cancel (the only pairs the kernels hand to the form, :data:`GATE`), at input scales
1e-6..1e6 and three choices of ``W2, B2``. A form that misses :data:`TOLERANCE` anywhere
on the scan is not used, and the kernels keep the direct formation.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mpmath as mp
import numpy as np
import sympy as sp

from ntksym.dual import derive as _d
from ntksym.dual.families.mgf_expr_det import GAP, ROOT, expression_det
from ntksym.dual.family import numpy_function
from ntksym.dual.stable import B2, W2, U

__all__ = ["GATE", "MAX_NODES", "TOLERANCE", "Certified", "certified_det", "numeric", "scan"]

#: The kernels use the derived form where ``N11 N22 - S12'^2 < GATE N11 N22`` (elsewhere
#: the direct difference loses at most a few times 1/GATE ulps).
GATE = 1.0 / 64.0
#: Worst error accepted on the scan, of the sine of the next angle ``sqrt(D' / (N11 N22))``:
#: the next layer reads D' through that angle (kinked maps: a kernel error of about the
#: same size) or through ``D' / N`` (smaller still). A relative error of D' itself is no
#: measure: at a tiny D' (parallel inputs of different norms at variance 1e-6) 1e-4 of D'
#: is 1e-14 of the sine, where the direct difference is off by 1e-8.
TOLERANCE = 1e-13

_SCALES = tuple(10.0 ** (k / 2) for k in range(-12, 13))
_KINDS = ("twin", "near", "near9", "anti", "parallel", "angle")
_PARAMS = ((1.44, 0.01), (1.0, 0.0), (0.5, 2.0))
#: The largest forms certified and printed, in expression nodes: ``sin(u) + u`` has 1.2e5
#: (certified in about 12 s, printed in 4 s); ``u sin(u)`` 3.5e5 (29 s to certify) and
#: ``sin(u) + 0.3 u^3`` more still (53 s) are left to the direct difference.
MAX_NODES = 200_000
#: The largest ``min_variance`` accepted (the variances of inputs near unit norm).
_MAX_FLOOR = 0.25


def _pair(rnd: random.Random, scale: float, kind: str) -> tuple[list[float], list[float]]:
    """Two inputs in four dimensions of the given kind (floats, so exact in mpmath)."""
    x = [rnd.gauss(0.0, 1.0) * scale for _ in range(4)]
    dv = [rnd.gauss(0.0, 1.0) * scale for _ in range(4)]
    step = {"near": 1e-8, "near9": 1e-9, "anti": 1e-7, "angle": 3e-2}.get(kind, 0.0)
    if kind == "twin":
        return x, list(x)
    if kind == "parallel":
        return x, [a * 1.001 for a in x]
    sign = -1.0 if kind == "anti" else 1.0
    return x, [sign * a + step * b for a, b in zip(x, dv, strict=True)]


@dataclass(frozen=True)
class Certified:
    """A derived next determinant and where the scan certified it.

    Attributes:
        forms: :func:`.expression_det`'s two forms (``S12 > 0``, ``S12 <= 0``).
        min_variance: The kernels use the forms only where ``min(S11, S22)`` is at least
            this: four times the largest variance of a pair that missed
            :data:`TOLERANCE` (0 when none did).
        worst: The worst error on the scan at the variances used.
        numeric: The forms in float64 (NumPy arrays), arguments ``(R, U, gap, W2, B2)``.
    """

    forms: tuple[sp.Expr, sp.Expr]
    min_variance: float
    worst: float
    numeric: tuple[Callable[..., Any], Callable[..., Any]] = field(compare=False, repr=False)


def numeric(forms: tuple[sp.Expr, sp.Expr]) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The forms in float64, arguments ``(R, U, gap, W2, B2)`` (NumPy arrays broadcast)."""
    pos, neg = (numpy_function((ROOT, U, GAP, W2, B2), f) for f in forms)
    return pos, neg


def scan(
    expr: sp.Expr, fns: tuple[Callable[..., Any], Callable[..., Any]]
) -> list[tuple[float, float]]:
    """``(min(S11, S22), error)`` at each gated pair of the scan (see :data:`TOLERANCE`).

    ``fns``: the forms of ``expr`` in float64 (:func:`numeric`).
    """
    rnd = random.Random(2026)
    e = _d.exp_quadratic_expectation(expr, expr)
    moment = sp.lambdify((_d.S11, _d.S12, _d.S22), e, "mpmath")
    found: list[tuple[float, float]] = []
    with mp.workdps(50), np.errstate(all="ignore"):  # (branches not taken overflow)
        for scale in _SCALES:
            for kind in _KINDS:
                x, y = (list(map(mp.mpf, v)) for v in _pair(rnd, scale, kind))
                found += _pair_errors(moment, fns, x, y)
    return found


def _pair_errors(
    moment: Callable[..., Any], fns: tuple[Callable[..., Any], ...], x: list, y: list
) -> list[tuple[float, float]]:
    """``(min(S11, S22), error)`` at one pair for each gated choice of :data:`_PARAMS`."""
    s11, s22, s12 = (
        sum(a * b for a, b in zip(p, q, strict=True)) for p, q in ((x, x), (y, y), (x, y))
    )
    r1, r2 = mp.sqrt(s11), mp.sqrt(s22)
    gap = (s11 * s22 - s12**2) / (r1 * r2 + abs(s12)) if r1 * r2 + abs(s12) > 0 else mp.mpf(0)
    args = (float(r2), float(r1 - r2), float(gap))
    g11, g22, g12 = moment(s11, s11, s11), moment(s22, s22, s22), moment(s11, s12, s22)
    found = []
    for w2, b2 in _PARAMS:
        n11, n22, n12 = (w2 * g + b2 for g in (g11, g22, g12))
        ref = n11 * n22 - n12**2
        if not ref < GATE * n11 * n22 or not n11 * n22 < 1e300:
            continue  # (not gated, or beyond float64: the kernels report an overflow)
        got = float(fns[0 if s12 > 0 else 1](*args, w2, b2))
        # (the error of the sine of the next angle, sqrt(D' / (N11 N22)): what the next
        # layer's maps read, through the angle or through D' / N)
        sine = mp.sqrt(max(got, 0.0)) - mp.sqrt(ref)
        err = float(abs(sine) / mp.sqrt(n11 * n22)) if math.isfinite(got) else math.inf
        found.append((float(min(s11, s22)), err))
    return found


@functools.lru_cache(maxsize=64)
def certified_det(expr: sp.Expr) -> Certified | None:
    """:func:`.expression_det`'s forms and where the scan certified them, or None.

    None when there are no forms, when they are larger than :data:`MAX_NODES`, or when
    a pair at a variance above :data:`_MAX_FLOOR` misses :data:`TOLERANCE` (a form that
    fails at moderate or large variances is not used at all).
    """
    forms = expression_det(expr)
    if forms is None or sum(1 for f in forms for _ in sp.preorder_traversal(f)) > MAX_NODES:
        return None
    fns = numeric(forms)
    found = scan(expr, fns)
    failed = [v for v, err in found if not err <= TOLERANCE]
    floor = 4.0 * max(failed) if failed else 0.0
    if floor > _MAX_FLOOR:
        return None
    worst = max((err for v, err in found if v >= floor), default=0.0)
    return Certified(forms, floor, worst, fns)
