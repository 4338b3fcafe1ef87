"""Polynomial activations: Isserlis (1918) / Wick pairings."""

from __future__ import annotations

from ntksym.activations import Activation, u
from ntksym.dual import derive as _d
from ntksym.dual.families.polynomial_det import layer_map, monomial
from ntksym.dual.family import DualMaps, Family, NumericFn, lambdified
from ntksym.dual.sources import ISSERLIS


def _isserlis(act: Activation) -> tuple[DualMaps, NumericFn]:
    """Polynomials in u (monomials and user polynomials): Isserlis/Wick pairings."""
    nngp = _d.polynomial_expectation(act.expr, act.expr)
    ntk = _d.polynomial_expectation(act.derivative, act.derivative)
    maps = DualMaps(act, nngp, ntk, "derived: Isserlis", ISSERLIS, True)
    return maps, lambdified(nngp, ntk)


def _is_polynomial(act: Activation) -> bool:
    return bool(act.expr.is_polynomial(u))


FAMILY = Family(
    name="polynomial",
    members=("monomial",),
    derive=_isserlis,
    matches=_is_polynomial,
    stable={"monomial": monomial},
    layer_map=layer_map,
)
