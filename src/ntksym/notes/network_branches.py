"""A sum of two branches in a described network, from ``derivations/fan_in_sum.py``.

A block ``FanOut(2), parallel(serial(phi, Dense_A), serial(psi, Dense_B)), FanInSum()``
(unit kind ``"branches"``, :mod:`ntksym.notes.network_units`) adds two fields that each
end in a Dense layer of their own. ``fan_in_sum.py`` derives that the cross terms then
vanish and the kernels add: its (3) ``Sigma_{A+B} = Sigma_A + Sigma_B`` and (7)
``Theta_{A+B} = Theta_A + Theta_B``. Each branch's own kernels are ``per_layer``'s (4),
``Sigmadot(L+1)`` and (8) at ``l = L = m - 1`` with the branch's scales; the second
branch's activation is written ``psi`` (its own function of the layer) so that the two
expectations are told apart. The general statements are derived once per process.

Reference: Novak et al. (2020), neural-tangents' ``stax.FanInSum``; Yang (2019),
"Tensor programs I".
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import sympy as sp

from ntksym.derive.layered import layer_activation
from ntksym.derive.symbols import GaussE, Sigma, Sigma_dot, Theta_inf
from ntksym.derive.text import Text, text
from ntksym.notes.network_layers import derive_all, general_statements, number
from ntksym.notes.network_units import Unit

__all__ = ["branch_activations", "branch_derived", "branch_note", "branch_printed", "psi"]

#: The second branch's activation and its derivative, ``psi_l(u)``.
psi, psidot = layer_activation("psi", r"\psi")

_u, _v = sp.symbols("u v", real=True)
#: A unit's derived statement of one part.
Derived = Callable[[Unit, str], sp.Eq]


@functools.lru_cache(maxsize=1)
def fan_in_sum_maps() -> dict[str, Any]:
    """The derived (3) and (7) of ``fan_in_sum`` and its symbols."""
    from ntksym.derivations import fan_in_sum

    env = derive_all(fan_in_sum.DERIVATION)
    return {"doc": fan_in_sum, "3": env["3"], "7": env["7"]}


def _as_second(e: sp.Expr) -> sp.Expr:
    """``e`` with ``phi`` renamed ``psi`` (the second branch's activation)."""
    g = general_statements()
    return e.replace(g["phi"], psi).replace(g["phidot"], psidot)


def _branch_kernels(unit: Unit, i: int, derived_of: Derived) -> dict[str, sp.Expr]:
    """Branch ``i``'s ``S``, ``D``, ``T`` by ``per_layer`` at this layer (derived)."""
    act, dense = unit.branches[i]
    one = Unit("layer", unit.m, dense, act, ())
    out = {part: derived_of(one, part).rhs for part in ("S", "D", "T")}
    named = {Sigma(unit.m): out["S"], Sigma_dot(unit.m): out["D"]}
    out["T"] = out["T"].xreplace(named)
    return {k: _as_second(e) if i == 1 else e for k, e in out.items()}


def branch_derived(unit: Unit, part: str, derived_of: Derived) -> sp.Eq:
    """``fan_in_sum``'s (3) (``part="S"``) or (7) (``"T"``) with each branch's kernels.

    ``derived_of(unit, part)`` is a ``"layer"`` unit's derived statement (``per_layer``'s
    at that layer: :mod:`ntksym.notes.network`).
    """
    g = fan_in_sum_maps()
    doc = g["doc"]
    a, b = _branch_kernels(unit, 0, derived_of), _branch_kernels(unit, 1, derived_of)
    if part == "S":
        rhs = g["3"].rhs.xreplace({doc.SA: a["S"], doc.SB: b["S"]})
        return sp.Eq(Sigma(unit.m), rhs)
    rhs = g["7"].rhs.xreplace({doc.TA: a["T"], doc.TB: b["T"]})
    return sp.Eq(Theta_inf(unit.m), rhs)


def branch_printed(unit: Unit) -> dict[str, sp.Basic]:
    """The block's kernels as its records imply them (``docs/architectures.md``)."""
    g, m, p = general_statements(), unit.m, unit.m - 1
    fs = ((g["phi"], g["phidot"]), (psi, psidot))
    sig, theta = sp.Integer(0), sp.Integer(0)
    for (f, fdot), (_act, d) in zip(fs, unit.branches, strict=True):
        w2, b2 = number(d.w_std) ** 2, number(d.b_std) ** 2
        own = w2 * GaussE(f(p, _u) * f(p, _v), _u, _v, p) + b2
        sig += own
        theta += Theta_inf(p) * w2 * GaussE(fdot(p, _u) * fdot(p, _v), _u, _v, p) + own
    return {"S": sp.Eq(Sigma(m), sig), "T": sp.Eq(Theta_inf(m), theta)}


def branch_activations(unit: Unit) -> dict[tuple, Any]:
    """The activations of both branches, as the numeric check reads them."""
    phi, p = general_statements()["phi"], unit.m - 1
    return {(f, p): act.activation for f, (act, _d) in zip((phi, psi), unit.branches, strict=True)}


def branch_note(unit: Unit, part: str) -> Text:
    """Which steps, at which layer and values, the statement instantiates."""
    from ntksym.activations.expr import u as act_u

    phi, p = general_statements()["phi"], unit.m - 1
    lab, own = ("3", "(4)") if part == "S" else ("7", "(4), Sigmadot(L+1) and (8)")
    out = Text(
        f"engine-derived step ({lab}) of derivation fan_in_sum (the cross terms vanish), "
        f"each branch's kernels by {own} of derivation per_layer, l = L = {p}: "
    )
    for i, (f, (act, d)) in enumerate(zip((phi, psi), unit.branches, strict=True)):
        fu = sp.Eq(f(p, _u), act.activation.expr.xreplace({act_u: _u}), evaluate=False)
        then = f" then Dense with W_std = {d.w_std}, b_std = {d.b_std}"
        out = Text(out, "; " if i else "", text("{f}", f=fu), then)
    return out
