"""A block of n branches in a described network: ``fan_in_sum``'s and ``fan_in_concat``'s maps.

A block ``FanOut(n), parallel(...), FanInSum()`` (unit kind ``"branches"``,
:mod:`ntksym.notes.network_units`) adds n >= 2 fields: branches that each end in an
activation and a Dense layer of their own and, at most once, the ``Identity`` (the
block's input itself). ``derivations/_block_sum.py`` derives for the block's n that the
cross terms vanish and the kernels add: its (3) ``Sigma = Sigma_1 + ... (+ Sigma_z)`` and
(7) ``Theta = Theta_1 + ... (+ Theta_z)``. Each Dense branch's own kernels are
``per_layer``'s (4), ``Sigmadot(L+1)`` and (8) at ``l = L = m - 1`` with the branch's
scales; the Identity's are the layer before's, ``Sigma^(m-1)`` and ``Theta^(m-1)``. The
branches' activations are written ``phi``, ``psi``, ``chi``, ``omega`` (then
``phi^[b]``), each its own function of the layer, so that their expectations are told
apart. The block's derivation is derived (not re-checked) once per process and n.

The same block with ``FanInConcat()`` (kind ``"concat"``) averages the same branch
kernels with the branches' widths as weights: ``fan_in_concat``'s (4) and (5), applied
from the left for n > 2 (:func:`concat_derived`).

A branch with layers of its own before its last pair (:class:`~ntksym.notes.network_units.Chain`)
has its inner units written at the block's placeholder layer ``m`` and renamed to
``m.b.j`` (:func:`in_branch`, :func:`relabel`); its last pair then reads its last layer.
A block inside a branch is such an inner unit: its statements (3), (7) or (4), (5) are
written at ``m`` and renamed, and its Dense branches are numbered after the enclosing
block's (:attr:`~ntksym.notes.network_units.Unit.first`), so that each has an
activation of its own name (two branches reading one layer must not share ``psi``).

Reference: Novak et al. (2020), neural-tangents' ``stax.FanInSum`` and ``FanInConcat``;
Yang (2019), "Tensor programs I".
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import sympy as sp

from ntksym.architecture.description import LayerNorm
from ntksym.derive.layered import layer_activation
from ntksym.derive.symbols import GaussE, Sigma, Sigma_dot, Theta_inf
from ntksym.derive.text import Text, text
from ntksym.notes.network_engine import sign_covariance
from ntksym.notes.network_layers import derive_all, general_statements, number
from ntksym.notes.network_units import Unit

__all__ = [
    "branch_activations",
    "branch_derived",
    "branch_functions",
    "branch_note",
    "branch_printed",
    "concat_derived",
    "in_branch",
    "relabel",
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


def relabel(e: Any, names: dict) -> Any:
    """``e`` with the layer indices ``names`` maps (integers) renamed, all at once.

    The kernels, the activations ``phi_l(u)``, the scales ``sigma_w^(l)``, ``beta^(l)``
    and the layer of every Gaussian expectation are the functions whose first argument
    is a layer; nothing else is touched.
    """
    if not names or not isinstance(e, sp.Basic):
        return e

    def layered(t: sp.Basic) -> bool:
        if isinstance(t, GaussE):
            return t.args[3] in names
        plain = isinstance(t, sp.Function) and not isinstance(t, sp.KroneckerDelta)
        return plain and bool(t.args) and t.args[0] in names

    def renamed(t: sp.Basic) -> sp.Basic:
        if isinstance(t, GaussE):
            return GaussE(*t.args[:3], names[t.args[3]])
        return t.func(names[t.args[0]], *t.args[1:])

    return e.replace(layered, renamed)


def in_branch(unit: Unit, e: Any) -> Any:
    """A statement of a unit inside a branch: its branch's activation, its layers' names.

    A block inside a branch keeps its own branches' activations (:attr:`Unit.first`).
    """
    if not unit.names:
        return e
    own = e if unit.kind in ("branches", "concat") else _renamed(e, unit.branch)
    return relabel(own, dict(unit.names))


def _source(unit: Unit, b: int) -> Any:
    """The layer Dense branch ``b``'s last pair reads."""
    return unit.sources[b] if unit.sources else unit.m - 1


def _branch_kernels(unit: Unit, b: int, derived_of: Derived) -> tuple[sp.Expr, sp.Expr]:
    """Dense branch ``b``'s ``Sigma`` and ``Theta`` by ``per_layer`` at this layer (derived).

    ``per_layer`` is instantiated at ``l = L = m - 1`` and, for a branch with layers of
    its own, the layer it reads is then renamed to the branch's last one.
    """
    act, dense = unit.branches[b]
    if act is None:  # a whole branch: its last layer's kernels, a step of their own
        return Sigma(_source(unit, b)), Theta_inf(_source(unit, b))
    # Sign: per_layer's map through derivation sign (its expectations, no gradient)
    one = Unit("layer_sign" if act.zero_ntk else "layer", unit.m, dense, act, ())
    out = {part: derived_of(one, part).rhs for part in ("S", "D", "T")}
    named = {Sigma(unit.m): out["S"], Sigma_dot(unit.m): out["D"]}
    source = {unit.m - 1: _source(unit, b)} if _source(unit, b) != unit.m - 1 else {}
    sig, theta = (
        _renamed(out["S"], unit.first + b),
        _renamed(out["T"].xreplace(named), unit.first + b),
    )
    return relabel(sig, source), relabel(theta, source)


def _kernels(unit: Unit, derived_of: Derived) -> list[tuple[sp.Expr, sp.Expr]]:
    """Each branch's derived ``(Sigma, Theta)``, the Identity's first."""
    kernels = [_branch_kernels(unit, b, derived_of) for b in range(len(unit.branches))]
    kernels[:0] = [(Sigma(unit.m - 1), Theta_inf(unit.m - 1))] * unit.skip
    return kernels


def branch_derived(unit: Unit, part: str, derived_of: Derived) -> sp.Eq:
    """The block's (3) (``part="S"``) or (7) (``"T"``) with each branch's kernels.

    ``derived_of(unit, part)`` is a ``"layer"`` unit's derived statement (``per_layer``'s
    at that layer: :mod:`ntksym.notes.network`). A ``"concat"`` unit is
    :func:`concat_derived`'s.
    """
    if unit.kind == "concat":
        return concat_derived(unit, part, derived_of)
    g = block_maps(len(unit.branches), unit.skip)
    kernels = _kernels(unit, derived_of)
    col, lhs, key = (0, Sigma(unit.m), "3") if part == "S" else (1, Theta_inf(unit.m), "7")
    values = {syms[col]: k[col] for syms, k in zip(g["symbols"], kernels, strict=True)}
    return sp.Eq(lhs, g[key].rhs.xreplace(values))


@functools.lru_cache(maxsize=1)
def concat_maps() -> dict[str, Any]:
    """The derived (4) and (5) of ``fan_in_concat`` (derived once, not re-checked)."""
    from ntksym.derivations import fan_in_concat as fc

    env = derive_all(fc.DERIVATION)
    return {"S": env["4"].args[1], "T": env["5"].args[1], "fc": fc}


def concat_derived(unit: Unit, part: str, derived_of: Derived) -> sp.Eq:
    """``fan_in_concat``'s (4) (``part="S"``) or (5) (``"T"``) at the block's branches.

    The two-branch map is applied from the left, ``((K_1, n_1), (K_2, n_2))`` to their
    weighted mean of width ``n_1 + n_2``, then that with ``(K_3, n_3)``, ...: a
    concatenation of n blocks of units is the concatenation of the first n - 1 (stacked)
    and the last, so the split of step (1) applies as it is at each stage.
    """
    g = concat_maps()
    fc, col = g["fc"], 0 if part == "S" else 1
    left, right = (fc.SA, fc.SB) if part == "S" else (fc.TA, fc.TB)
    kernels = _kernels(unit, derived_of)
    acc, width = kernels[0][col], sp.Integer(unit.widths[0])
    for k, w in zip(kernels[1:], unit.widths[1:], strict=True):
        acc = g[part].xreplace({fc.ra: width, fc.rb: sp.Integer(w), left: acc, right: k[col]})
        width += w
    return sp.Eq(Sigma(unit.m) if part == "S" else Theta_inf(unit.m), acc)


def _own_printed(unit: Unit) -> list[tuple[sp.Expr, sp.Expr]]:
    """Each branch's ``(Sigma, Theta)`` as its records imply them, the Identity's first."""
    out = [(Sigma(unit.m - 1), Theta_inf(unit.m - 1))] * unit.skip
    for b, (act, d) in enumerate(unit.branches):
        f, fdot, p = *branch_functions(unit.first + b), _source(unit, b)
        if act is None:  # a whole branch: the kernels of its last layer, as they are
            out.append((Sigma(p), Theta_inf(p)))
            continue
        w2, b2 = number(d.w_std) ** 2, number(d.b_std) ** 2
        if act.zero_ntk:  # Sign: (2/pi) arcsin(rho), and no gradient (docs/architectures.md)
            own = sign_covariance(p, w2, b2)
            out.append((own, own))
            continue
        own = w2 * GaussE(f(p, _u) * f(p, _v), _u, _v, p) + b2
        out.append((own, Theta_inf(p) * w2 * GaussE(fdot(p, _u) * fdot(p, _v), _u, _v, p) + own))
    return out


def branch_printed(unit: Unit) -> dict[str, sp.Basic]:
    """The block's kernels as its records imply them (``docs/architectures.md``).

    A sum adds the branches' kernels; a concatenation averages them with the branches'
    widths as weights (``sum_i n_i K_i / sum_i n_i``).
    """
    m, own = unit.m, _own_printed(unit)
    if unit.kind != "concat":
        return {
            "S": sp.Eq(Sigma(m), sp.Add(*[s for s, _t in own])),
            "T": sp.Eq(Theta_inf(m), sp.Add(*[t for _s, t in own])),
        }
    ws = [sp.Integer(w) for w in unit.widths]

    def mean(col: int) -> sp.Expr:  # written unevaluated, so that the widths show
        terms = [sp.Mul(w, k[col], evaluate=False) for w, k in zip(ws, own, strict=True)]
        total = sp.Pow(sp.Add(*ws), -1, evaluate=False)
        return sp.Mul(total, sp.Add(*terms, evaluate=False), evaluate=False)

    return {"S": sp.Eq(Sigma(m), mean(0)), "T": sp.Eq(Theta_inf(m), mean(1))}


def branch_activations(unit: Unit) -> dict[tuple, Any]:
    """The activations of the Dense branches, as the numeric check reads them."""
    names = dict(unit.names)
    return {
        (branch_functions(unit.first + b)[0], names.get(_source(unit, b), _source(unit, b))): (
            a.activation
        )
        for b, (a, _d) in enumerate(unit.branches)
        if a is not None
    }


#: What a branch ending in a block is, in a block's note.
_BLOCK_LAST = (
    "a block: a sum of fields, each with zero-mean weights of its own after this block's "
    "FanOut or, once, the field the inner block reads (the kernels refuse it twice), so by "
    "bilinearity its cross terms with the other branches are sums of those of (2), each 0"
)


#: What a branch ending in a LayerNorm is, in a block's note.
_NORM_LAST = (
    "every other branch ends in a Dense layer of its own, whose zero-mean weights make the "
    "cross terms with it vanish by (2)"
)


def branch_note(unit: Unit, part: str) -> Text:
    """Which steps, at which layer and values, the statement instantiates."""
    from ntksym.activations.expr import u as act_u

    p, count = unit.m - 1, len(unit.branches) + unit.skip
    lab, own = ("3", "(4)") if part == "S" else ("7", "(4), Sigmadot(L+1) and (8)")
    whole = ""
    if any(act is None for act, _d in unit.branches):
        whole = (
            " (a branch read whole -- its last Dense layer standard or after a Dropout, a "
            "block or a LayerNorm last, or a branch on the network's input: its last "
            "layer's kernels, derived in a step of their own)"
        )
    if unit.kind == "concat":
        out = Text(
            f"engine-derived step ({'4' if part == 'S' else '5'}) of derivation "
            f"fan_in_concat (the width-weighted mean), applied from the left to {count} "
            f"branches of widths {', '.join(map(str, unit.widths))}, each Dense branch's "
            f"kernels by {own} of derivation per_layer, l = L = {p}{whole}: "
        )
    else:
        out = Text(
            f"engine-derived step ({lab}) of derivation fan_in_sum for {count} branches "
            "(the cross terms vanish), each Dense branch's kernels by "
            f"{own} of derivation per_layer, l = L = {p}{whole}: "
        )
    if unit.skip:
        times = f", {unit.skip} times" if unit.skip > 1 else ""
        out = Text(out, f"the Identity{times} (the kernels of layer {dict(unit.names).get(p, p)})")
    for b, (act, d) in enumerate(unit.branches):
        q = _source(unit, b)
        sep = "; " if b or unit.skip else ""
        if act is None:
            last = _BLOCK_LAST if d is None else d
            if isinstance(d, LayerNorm):
                last = f"{d}; {_NORM_LAST}"
            out = Text(out, sep, f"the kernels of layer {q}, the branch's last ({last})")
            continue
        fu = sp.Eq(
            branch_functions(unit.first + b)[0](q, _u), act.activation.expr.xreplace({act_u: _u})
        )
        then = f" then Dense with W_std = {d.w_std}, b_std = {d.b_std}"
        if act.zero_ntk:
            then += " (E[sign sign] by step (3), E[sign' sign'] = 0 by step (4) of derivation sign)"
        if q != p:
            then += f" (l = L = {q}: the branch's last layer of its own)"
        out = Text(out, sep, text("{f}", f=sp.Eq(fu.lhs, fu.rhs, evaluate=False)), then)
    return out
