"""The recursion a described network's records imply, for the units written with widths.

``Dense(..., parameterization="standard")`` (its NTK has the input width ``n_in`` and
the multiplier ``s_in``) and a ``Dropout(rate)`` before a Dense layer (one mask per
example: ``delta_{x x'}``): the layer maps of ``docs/architectures.md``, read from the
layer records only. These are the *printed* statements of such steps; the engine's
statements they are compared with come from ``derivations/standard.py``
(:mod:`ntksym.notes.network_engine`) and ``derivations/dropout.py``
(:mod:`ntksym.notes.network_layers`).
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from ntksym.derive.symbols import GaussE, Sigma, Sigma_dot, Theta_inf, index, width, x
from ntksym.notes.network_check import SAME_EXAMPLE
from ntksym.notes.network_layers import number
from ntksym.notes.network_units import Unit

__all__ = ["printed_records"]

_u, _v = sp.symbols("u v", real=True)


def _gauss(f: Any, m: int) -> sp.Expr:
    return GaussE(f(m, _u) * f(m, _v), _u, _v, m)


def printed_records(unit: Unit, phi: Any, phidot: Any) -> dict[str, sp.Eq]:
    """The layer map of a standard or Dropout unit, from its layer records."""
    m, p = unit.m, unit.m - 1
    d = unit.dense
    assert d is not None
    w2, b2, one = number(d.w_std) ** 2, number(d.b_std) ** 2, int(d.b_std is not None)
    s_in = d.s[0]
    if unit.kind == "input_standard":
        i = index("i")
        dot = sp.Sum(x()[i] * x(True)[i], (i, 1, width(0)))
        return {
            "S": sp.Eq(Sigma(1), w2 * dot / width(0) + b2),
            "T": sp.Eq(Theta_inf(1), dot / s_in + one),
        }
    # Dropout keeps a unit with probability r and divides it by r: an input with itself
    # (one mask) has its second moments over r, two examples (two masks) keep theirs
    f = sp.Integer(1)
    if unit.dropout is not None:
        f = 1 + (1 / number(unit.dropout.rate) - 1) * SAME_EXAMPLE
    out = {
        "S": sp.Eq(Sigma(m), w2 * f * _gauss(phi, p) + b2),
        "D": sp.Eq(Sigma_dot(m), w2 * f * _gauss(phidot, p)),
        "T": sp.Eq(Theta_inf(m), Theta_inf(p) * Sigma_dot(m) + Sigma(m)),
    }
    if unit.kind.endswith("_standard"):
        n_eff = sp.Rational(unit.n_in, s_in)
        rhs = Theta_inf(p) * Sigma_dot(m) + n_eff * f * _gauss(phi, p) + one
        out["T"] = sp.Eq(Theta_inf(m), rhs)
    return out
