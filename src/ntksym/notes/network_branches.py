"""A sum of n branches in a described network, from ``fan_in_sum``'s n-branch form.

A block ``FanOut(n), parallel(...), FanInSum()`` (unit kind ``"branches"``,
:mod:`ntksym.notes.network_units`) adds n >= 2 fields: ``serial(activation, Dense)``
branches that each end in a Dense layer of their own and, at most once, the ``Identity``
(the block's input itself). ``derivations/_block_sum.py`` derives for the block's n that
the cross terms vanish and the kernels add: its (3) ``Sigma = Sigma_1 + ... (+ Sigma_z)``
and (7) ``Theta = Theta_1 + ... (+ Theta_z)``. Each Dense branch's own kernels are
``per_layer``'s (4), ``Sigmadot(L+1)`` and (8) at ``l = L = m - 1`` with the branch's
scales; the Identity's are the layer before's, ``Sigma^(m-1)`` and ``Theta^(m-1)``. The
branches' activations are written ``phi``, ``psi``, ``chi``, ``omega`` (then
``phi^[b]``), each its own function of the layer, so that their expectations are told
apart. The block's derivation is derived (not re-checked) once per process and n.

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

__all__ = [
    "branch_activations",
    "branch_derived",
    "branch_functions",
    "branch_note",
    "branch_printed",
    "psi",
]

#: The second branch's activation and its derivative, ``psi_l(u)``.
psi, psidot = layer_activation("psi", r"\psi")
_NAMED = (("chi", r"\chi"), ("omega", r"\omega"))

_u, _v = sp.symbols("u v", real=True)
#: A unit's derived statement of one part.
Derived = Callable[[Unit, str], sp.Expr]


def branch_functions(b: int) -> tuple[Any, Any]:
    """The activation (and derivative) that names Dense branch ``b`` (0-based) of a block."""
    if b == 0:
        g = general_statements()
        return g["phi"], g["phidot"]
    if b == 1:
        return psi, psidot
    if b - 2 < len(_NAMED):
        return layer_activation(*_NAMED[b - 2])
    return layer_activation(f"phi_b{b + 1}", rf"\phi^{{[{b + 1}]}}")


@functools.lru_cache(maxsize=8)
def block_maps(dense_branches: int, skip: bool) -> dict[str, Any]:
    """The derived (3) and (7) of the block's ``block_sum`` and its branches' symbols."""
    from ntksym.derivations._block_sum import block_sum, branch_symbols

    env = derive_all(block_sum(dense_branches, skip))
    return {"3": env["3"], "7": env["7"], "symbols": branch_symbols(dense_branches, skip)}


def _renamed(e: sp.Expr, b: int) -> sp.Expr:
    """``e`` (written with ``phi``) with branch ``b``'s own activation."""
    if b == 0:
        return e
    g, (f, fdot) = general_statements(), branch_functions(b)
    return e.replace(g["phi"], f).replace(g["phidot"], fdot)


def _branch_kernels(unit: Unit, b: int, derived_of: Derived) -> tuple[sp.Expr, sp.Expr]:
    """Dense branch ``b``'s ``Sigma`` and ``Theta`` by ``per_layer`` at this layer (derived)."""
    act, dense = unit.branches[b]
    one = Unit("layer", unit.m, dense, act, ())
    out = {part: derived_of(one, part).rhs for part in ("S", "D", "T")}
    named = {Sigma(unit.m): out["S"], Sigma_dot(unit.m): out["D"]}
    return _renamed(out["S"], b), _renamed(out["T"].xreplace(named), b)


def branch_derived(unit: Unit, part: str, derived_of: Derived) -> sp.Eq:
    """The block's (3) (``part="S"``) or (7) (``"T"``) with each branch's kernels.

    ``derived_of(unit, part)`` is a ``"layer"`` unit's derived statement (``per_layer``'s
    at that layer: :mod:`ntksym.notes.network`).
    """
    g = block_maps(len(unit.branches), unit.skip)
    kernels = [_branch_kernels(unit, b, derived_of) for b in range(len(unit.branches))]
    if unit.skip:
        kernels.insert(0, (Sigma(unit.m - 1), Theta_inf(unit.m - 1)))
    col, lhs, key = (0, Sigma(unit.m), "3") if part == "S" else (1, Theta_inf(unit.m), "7")
    values = {syms[col]: k[col] for syms, k in zip(g["symbols"], kernels, strict=True)}
    return sp.Eq(lhs, g[key].rhs.xreplace(values))


def branch_printed(unit: Unit) -> dict[str, sp.Basic]:
    """The block's kernels as its records imply them (``docs/architectures.md``)."""
    m, p = unit.m, unit.m - 1
    sig = Sigma(p) if unit.skip else sp.Integer(0)
    theta = Theta_inf(p) if unit.skip else sp.Integer(0)
    for b, (_act, d) in enumerate(unit.branches):
        f, fdot = branch_functions(b)
        w2, b2 = number(d.w_std) ** 2, number(d.b_std) ** 2
        own = w2 * GaussE(f(p, _u) * f(p, _v), _u, _v, p) + b2
        sig += own
        theta += Theta_inf(p) * w2 * GaussE(fdot(p, _u) * fdot(p, _v), _u, _v, p) + own
    return {"S": sp.Eq(Sigma(m), sig), "T": sp.Eq(Theta_inf(m), theta)}


def branch_activations(unit: Unit) -> dict[tuple, Any]:
    """The activations of the Dense branches, as the numeric check reads them."""
    p = unit.m - 1
    return {(branch_functions(b)[0], p): a.activation for b, (a, _d) in enumerate(unit.branches)}


def branch_note(unit: Unit, part: str) -> Text:
    """Which steps, at which layer and values, the statement instantiates."""
    from ntksym.activations.expr import u as act_u

    p, count = unit.m - 1, len(unit.branches) + unit.skip
    lab, own = ("3", "(4)") if part == "S" else ("7", "(4), Sigmadot(L+1) and (8)")
    out = Text(
        f"engine-derived step ({lab}) of derivation fan_in_sum for {count} branches "
        "(the cross terms vanish), each Dense branch's kernels by "
        f"{own} of derivation per_layer, l = L = {p}: "
    )
    if unit.skip:
        out = Text(out, f"the Identity (the kernels of layer {p})")
    for b, (act, d) in enumerate(unit.branches):
        fu = sp.Eq(branch_functions(b)[0](p, _u), act.activation.expr.xreplace({act_u: _u}))
        then = f" then Dense with W_std = {d.w_std}, b_std = {d.b_std}"
        sep = "; " if b or unit.skip else ""
        out = Text(out, sep, text("{f}", f=sp.Eq(fu.lhs, fu.rhs, evaluate=False)), then)
    return out
