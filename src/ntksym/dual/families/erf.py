"""erf: Williams (1997), derived by the Gaussian MGF and Price's theorem."""

from __future__ import annotations

import sympy as sp

from ntksym.activations import Activation
from ntksym.dual import derive as _d
from ntksym.dual.family import DualMaps, Family, NumericFn, stable_numeric
from ntksym.dual.sources import PRICE, WILLIAMS
from ntksym.dual.stable import (
    S11,
    S12,
    S22,
    D,
    LayerMap,
)


def _erf(act: Activation) -> tuple[DualMaps, NumericFn]:
    """erf: derivative map by the Gaussian MGF, nngp map by Price's theorem (erf is odd)."""
    ntk = _d.exp_quadratic_expectation(act.derivative, act.derivative)
    nngp = _d.price_integrate(ntk, sp.Integer(0))
    maps = DualMaps(
        act,
        nngp,
        ntk,
        "derived: Gaussian MGF (ntk), Price's theorem (nngp)",
        f"{WILLIAMS}; {PRICE}",
        True,
    )

    return maps, stable_numeric(erf())


def erf() -> LayerMap:
    """erf: Williams (1997), "Computing with infinite networks".

    ``E[erf(u) erf(v)] = (2/pi) asin(2 S12 / sqrt((1+2 S11)(1+2 S22)))`` and
    ``E[erf'(u) erf'(v)] = 4 / (pi sqrt((1+2 S11)(1+2 S22) - 4 S12^2))``. Both are written
    with ``(1+2 S11)(1+2 S22) - 4 S12^2 = 1 + 2 (S11 + S22) + 4 D``, which never cancels,
    and the arcsine as ``atan2(2 S12, sqrt(1 + 2 (S11 + S22) + 4 D))``. The next
    determinant is formed directly: after one erf layer every variance is at most
    ``W2 + B2`` and only enters through ``1 + 2 (S11 + S22) + 4 D``.
    """
    q = 1 + 2 * (S11 + S22) + 4 * D
    e = 2 * sp.atan2(2 * S12, sp.sqrt(q)) / sp.pi
    ed = 4 / (sp.pi * sp.sqrt(q))
    return LayerMap(e, ed, None, "closed form")


FAMILY = Family(name="erf", members=("erf",), derive=_erf, stable={"erf": erf})
