"""Layers whose kernel map the engine does not derive: stated, then checked numerically.

The derivation engine has no general derivation of the standard parameterization's
layer map for a network with per-layer scales (with or without a Dropout before the
Dense layer); LayerNorm and a Dropout before an NTK-parameterization Dense layer are
derived (:mod:`ntksym.notes.network_layers`).
A network that has them still gets its document (:func:`ntksym.notes.network.network_derivation`):
those steps state the layer map of ``docs/architectures.md`` and are checked, as every
derived step is, against :func:`ntksym.reference.kernel` of the network cut after the
layer. Their rule is ``hypothesis`` and their detail says "not derived by the engine":
the verdict is about a numeric comparison only (nothing is printed to compare the
statement with, so the engine's ``verified`` here means "the check passed").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sympy as sp

from ntksym.derive.symbols import GaussE, Sigma, Sigma_dot, Theta_inf, index, width, x
from ntksym.derive.text import Text
from ntksym.notes.network_check import SAME_EXAMPLE
from ntksym.notes.network_units import Unit

__all__ = ["checked_derive", "checked_note", "checked_statements"]

_u, _v = sp.symbols("u v", real=True)


def _num(value: float | None) -> sp.Expr:
    if value is None:
        return sp.Integer(0)
    v = float(value)
    return sp.Integer(int(v)) if v == int(v) else sp.Float(repr(v))


def _gauss(f: Any, m: int) -> sp.Expr:
    return GaussE(f(m, _u) * f(m, _v), _u, _v, m)


def checked_statements(unit: Unit, phi: Any, phidot: Any) -> dict[str, sp.Eq]:
    """The layer map of a unit the engine does not derive, from its layer records."""
    m, p = unit.m, unit.m - 1
    d = unit.dense
    assert d is not None
    w2, b2, one = _num(d.w_std) ** 2, _num(d.b_std) ** 2, int(d.b_std is not None)
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
        f = 1 + (1 / _num(unit.dropout.rate) - 1) * SAME_EXAMPLE
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


def checked_note(unit: Unit) -> Text:
    """Why the step is stated rather than derived."""
    if unit.dropout is not None:
        param = "standard" if unit.kind.endswith("_standard") else "NTK"
        what = f"{unit.dropout} before a Dense layer ({param} parameterization)"
    else:
        what = "the standard parameterization"
    return Text(
        f"layer map of {what} (docs/architectures.md), not derived by the engine; "
        "checked numerically only"
    )


def checked_derive(stmt: sp.Eq) -> Callable[[dict], sp.Eq]:
    """A ``derive`` that only states ``stmt``: the step's ``extra_check`` decides it."""

    def derive(env: dict) -> sp.Eq:
        return stmt

    return derive
