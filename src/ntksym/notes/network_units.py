"""A described network read as the layers of its kernel recursion.

:func:`units` walks a description (``ntksym.stax`` layer or ``ntksym.architecture``
record) and returns one :class:`Unit` per step ``alpha~^(m-1) -> alpha~^(m)`` of the
recursion that :mod:`ntksym.notes.network` derives: the first Dense layer, an activation
followed by a Dense layer (a ``Dropout`` between them or not), a residual block
``x + Dense(phi(x))``, a sum of n branches ``Dense(phi(x)) + Dense(psi(x)) + ...`` (with
``x`` itself among them or not), the same branches concatenated (``FanInConcat``), or a
``LayerNorm``. A Dense layer with no activation before it (right after a Dense layer, a
LayerNorm or a block, a ``Dropout`` between them or not) has :data:`NO_ACTIVATION`, the
identity. A network may end in an activation (kind ``"activation"``: the kernels of
``phi(h)``). A branch longer than an activation and a Dense layer adds a unit per layer
of its own before the block's (:func:`_chain`); a block inside a branch is one of them,
after the units of its own branches (:func:`_block`, in a :class:`_Scope` that names
them).
A branch whose last Dense layer is standard or follows a Dropout, a branch ending in a
block or a LayerNorm, and every branch of a block on the network's input (its first layer an
``"input"`` unit), is read *whole*:
all its layers are inner units and the block adds the kernels of the last one.
``Identity`` and ``Dropout(mode="test")`` are the identity and are skipped. Two
activations in a row are refused by the kernels themselves (the second one's input is
not a Gaussian field), before any unit is made.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import sympy as sp

from ntksym.activations import get_activation
from ntksym.architecture.description import (
    Dense,
    Dropout,
    FanInConcat,
    FanInSum,
    FanOut,
    LayerNorm,
    Net,
    Nonlinearity,
    Parallel,
    as_description,
)
from ntksym.architecture.leaves import leaves
from ntksym.architecture.walk import check
from ntksym.errors import InputError
from ntksym.notes.network_rules import (
    SUPPORTED,
    activation_layer,
    check_nested_last,
    check_norm_sum,
    dense_layer,
)

__all__ = ["NO_ACTIVATION", "SUPPORTED", "Chain", "Unit", "branch_layer", "units"]

#: The (absent) activation of a Dense layer right after a Dense layer, a LayerNorm, a block
#: (a ``Dropout`` between them or not) or at the start of a branch: the identity.
NO_ACTIVATION = Nonlinearity(get_activation("identity"), "no activation (the identity)")


@dataclass(frozen=True)
class Unit:
    """One layer of the recursion: what takes ``alpha~^(m-1)`` to ``alpha~^(m)``.

    Attributes:
        kind: ``"input"`` (the first Dense layer), ``"layer"`` (an activation, then a
            Dense layer), ``"residual"`` (a residual block around such a pair), the same
            with ``"_standard"`` appended for a standard-parameterization Dense,
            ``"layer_sign"`` (``Sign`` then an NTK-parameterization Dense layer; before
            a standard one or a Dropout the unit keeps that kind, and
            :func:`~ntksym.notes.network_engine.is_sign` tells),
            ``"branches"`` (a sum of two or more such branches, the
            Identity among them or not), ``"concat"`` (the same branches concatenated
            by ``FanInConcat``), ``"layer_norm"``, or ``"activation"`` (the network's
            last layer, an activation: ``dense`` is None). A Dense layer with no
            activation before it (after a Dense layer, a LayerNorm or a ``"concat"``)
            is a ``"layer"`` whose activation is :data:`NO_ACTIVATION`.
        m: the index of the value it defines, ``alpha~^(m)``.
        dense: its Dense layer (None for a LayerNorm and an ``"activation"``).
        act: its activation (None for the input layer and a LayerNorm).
        prefix: the network's layers up to this unit (the referee's network).
        n_in: the width of the Dense layer's input (0 for the network's input).
        norm: the LayerNorm (None otherwise).
        dropout: a ``Dropout(mode="train")`` between the activation and the Dense layer
            (kind ``"layer_dropout"``, with ``"_standard"`` for that parameterization).
        branches: the ``(activation, Dense)`` of each branch of a block that is not the
            Identity (one for a ``"residual"`` block, one or more for ``"branches"``:
            ``FanOut(n)``, ``parallel(serial(phi, Dense), serial(psi, Dense), ...)``,
            ``FanInSum``); ``act`` and ``dense`` are the first such branch's. A
            *whole* branch (:class:`Chain`) has ``(None, Dense)``, ``(None,
            LayerNorm)`` when it ends in a LayerNorm, or ``(None, None)`` when it ends in
            a block: its kernels are those of its last layer, ``sources[b]``.
        skip: how often a ``"branches"`` or ``"concat"`` block has the Identity among its
            branches (at most once in a sum).
        widths: a block's branch widths, the Identity's first (its input's width, once
            per copy), then the other branches' in order (all equal in a sum).
        sources: a block's, for each Dense branch, the layer its last pair reads
            (``m - 1``, or the name of the branch's last inner layer).
        names: a unit inside a branch: the placeholder layers ``m - 1`` (when the unit
            reads an inner layer) and ``m`` and the names (:func:`branch_layer`) they
            stand for; its statements are written at ``m`` and renamed.
        branch: a unit inside a branch: the branch's index among the Dense branches.
        first: a block's: the index of its first Dense branch (0 on the main chain; a
            block inside a branch numbers its branches after its enclosing block's), so
            that every Dense branch's activation has a name of its own
            (:func:`~ntksym.notes.network_branches.branch_functions`).
    """

    kind: str
    m: int
    dense: Dense | None
    act: Nonlinearity | None
    prefix: tuple[Net, ...]
    n_in: int = 0
    norm: LayerNorm | None = None
    dropout: Dropout | None = None
    branches: tuple[tuple[Nonlinearity | None, Dense | LayerNorm | None], ...] = ()
    skip: int = 0
    widths: tuple[int, ...] = ()
    sources: tuple[Any, ...] = ()
    names: tuple[tuple[int, Any], ...] = ()
    branch: int = -1
    first: int = 0

    @property
    def affine(self) -> Dense:
        """Its Dense layer, for every kind but ``layer_norm`` (which has none)."""
        if self.dense is None:
            raise InputError(f"a {self.kind} unit has no Dense layer")
        return self.dense


def _flatten(net: Net) -> list[Net]:
    """The layers of ``net`` as they run, the identities left out, a Parallel one layer."""
    return list(leaves(net, skip="no-ops"))


@dataclass(frozen=True)
class Chain:
    """A branch that is not the Identity, read as units (see :func:`_chain`).

    Attributes:
        inner: the units of the branch before its last activation and Dense layer, each
            with the placeholder layer ``m`` of the block and the names it stands for.
        pair: the branch's last activation (:data:`NO_ACTIVATION` when its last Dense
            layer follows a Dense layer or a LayerNorm) and NTK-parameterized Dense
            layer; or, for a *whole* branch, ``(None, Dense)`` (its last Dense layer is
            standard or follows a Dropout, or the branch is on the network's input),
            ``(None, LayerNorm)`` (it ends in a LayerNorm) or ``(None, None)`` (it ends
            in a block): its last layer is then the last of ``inner``, and the block adds
            that layer's kernels as they are.
        source: the index of the layer that pair reads: ``m - 1`` for a branch
            ``serial(activation, Dense)``, the last inner unit's name otherwise (for a
            whole branch, the name of its last layer).
        width: the width of the branch's output.
    """

    inner: tuple[Unit, ...]
    pair: tuple[Nonlinearity | None, Dense | LayerNorm | None]
    source: Any
    width: int


def branch_layer(m: Any, position: int, j: int) -> sp.Symbol:
    """The name of layer ``j`` (1-based) inside branch ``position`` of the block at ``m``.

    ``m`` is the block's layer: an index, or for a block inside a branch that block's own
    name (``2.1.1`` gives ``2.1.1.1.1``, ...).
    """
    return sp.Symbol(f"{m}.{position}.{j}", integer=True, positive=True)


@dataclass
class _Scope:
    """Where a block's units are written: inside a branch or not.

    Attributes:
        base: the name of the block's layer (``m`` on the main chain, the block's own
            name inside a branch), the base of its branches' layer names.
        entry: the layer the block reads (``m - 1`` on the main chain).
        branch: inside a branch: the enclosing branch's Dense index (else -1).
        free: the next unused Dense-branch index; every Dense branch of a block inside
            a branch gets one of its own, so that its activation's name is its own.
    """

    base: Any
    entry: Any
    branch: int = -1
    free: int = 0


def _chain(
    before: list[Net], branch: Net, m: int, width: int, at: tuple[int, int], scope: _Scope
) -> Chain:
    """A branch as units: the layers it shares with a main chain, then its last pair.

    ``at`` is ``(b, position)``: the branch's Dense index (0-based; :class:`_Scope`) and
    its index among all branches (1-based). Each inner unit takes ``alpha~`` of the
    layer before to a layer of its own, named by :func:`branch_layer`, and a block inside
    the branch adds its own units (:func:`_block`); the referee network of each is
    ``before`` followed by the branch cut after it (a described network).
    """
    where, own = f"branch {at[1]} of the block at layer {scope.base}", _flatten(branch)
    on_input = scope.entry == 0  # a block on the network's input: no kernel before it
    if isinstance(own[0], Dense) and not on_input:  # on the block's input: no activation
        own = [NO_ACTIVATION, *own]
    linear = (Dense, LayerNorm, FanInSum, FanInConcat)
    if len(own) >= 2 and isinstance(own[-1], Dense) and isinstance(own[-2], linear):
        own = [*own[:-1], NO_ACTIVATION, own[-1]]  # linear in its input: no activation
    nested_last = isinstance(own[-1], (FanInSum, FanInConcat))  # a block, last
    norm_last = isinstance(own[-1], LayerNorm)
    if not (isinstance(own[-1], Dense) or nested_last or norm_last):
        raise InputError(
            f"{where}: a branch must end in a Dense layer of its own (after an activation, "
            f"a Dropout, a Dense layer, a LayerNorm or a block), in a block or in a "
            f"LayerNorm, or be the Identity; got {branch}; supported: {SUPPORTED}"
        )
    # a last Dense layer in the standard parameterization or after a Dropout, a block or a
    # LayerNorm last, or a branch on the network's input: the whole branch is inner units,
    # and the block adds the kernels of the last one (``whole``)
    whole = on_input or nested_last or norm_last
    whole = whole or own[-1].parameterization != "ntk" or isinstance(own[-2], Dropout)
    kind = "entry"  # the kind of the inner layer ``source`` names (none yet: the entry)
    leaves, n, inner, j = [*before, *own], len(before), [], 0
    source: Any = scope.entry
    while n < len(leaves) - 2 * (not whole):
        j += 1
        name = branch_layer(scope.base, at[1], j)
        names = ((m, name),) if source == m - 1 else ((m - 1, source), (m, name))
        if isinstance(leaves[n], FanOut):
            nested = _Scope(name, source, at[0], scope.free)
            units = _block(leaves, n, m, width, nested)
            scope.free, n, width = nested.free, n + 3, _width_after(units[-1], width)
            inner += [*units[:-1], replace(units[-1], names=names, branch=at[0])]
            if n == len(leaves):  # the branch's last layer: its field is the block's sum
                check_nested_last([d for _a, d in units[-1].branches], units[-1].skip, kind, where)
            source, kind = name, units[-1].kind
            continue
        if source == 0:  # the branch's first layer, on the network's input
            unit, n = _input_step(leaves, n, m, where)
        else:
            unit, n = _layer_step(leaves, n, m, width)
        width = width if unit.dense is None else unit.dense.width
        prefix = tuple(leaf for leaf in unit.prefix if leaf is not NO_ACTIVATION)
        inner.append(replace(unit, prefix=prefix, names=names, branch=at[0]))
        source, kind = name, unit.kind
    if whole:
        last = None if nested_last else own[-1]
        return Chain(tuple(inner), (None, last), source, width)
    # (a branch's own Dense layer is NTK-parameterized, so Sign may come before it: per_layer
    # through derivation sign, as at the top level)
    act, dense = activation_layer(leaves[-2], where), dense_layer(leaves[-1], where)
    return Chain(tuple(inner), (act, dense), source, dense.width)


def _chains(
    before: list[Net], par: Parallel, m: int, width: int, scope: _Scope, concat: bool
) -> list[Chain]:
    """The chain of each branch that is not the Identity.

    A sum has the Identity at most once and another branch (twice would be one field
    counted twice, which the kernels refuse); a concatenation may have it more often, even
    only (each copy is one more block of the same features in the mean).
    """
    branches = list(par.branches)
    skips = sum(not _flatten(b) for b in branches)
    if len(branches) < 2 or not concat and (skips > 1 or skips == len(branches)):
        raise InputError(
            f"the block at layer {scope.base}: a block needs two or more branches, and a "
            f"sum one at least not the Identity and the Identity at most once; got {par}; "
            f"supported: {SUPPORTED}"
        )
    first, out = scope.free, []
    scope.free += len(branches) - skips
    for pos, branch in enumerate(branches, start=1):
        if _flatten(branch):
            out.append(_chain(before, branch, m, width, (first + len(out), pos), scope))
    check_norm_sum(par, [c.pair[1] for c in out], skips, concat, scope.base)
    return out


def _suffix(dense: Dense) -> str:
    return "" if dense.parameterization == "ntk" else "_standard"


def _width_after(unit: Unit, width: int) -> int:
    """The width of a block's output (``width``: its input's)."""
    if unit.kind == "concat":
        return sum(unit.widths)
    return width if unit.kind == "residual" else unit.widths[-1]


def _block(leaves: list[Net], n: int, m: int, width: int, scope: _Scope) -> list[Unit]:
    """The units of a block's branches (their inner layers), then the block's own.

    Inside a branch (``scope.branch >= 0``) the block's own unit is a ``"branches"`` or
    ``"concat"`` unit (never ``"residual"``), written at ``m`` and renamed by its caller.
    """
    where, block, fan = f"layer {n + 1}", leaves[n : n + 3], leaves[n]
    if (
        len(block) < 3
        or not isinstance(fan, FanOut)
        or not isinstance(block[1], Parallel)
        or not isinstance(block[2], (FanInSum, FanInConcat))
        or fan.n != len(block[1].branches)
    ):
        raise InputError(
            f"{where}: a block is FanOut(n), parallel(...) of n branches, FanInSum() or "
            f"FanInConcat(); supported: {SUPPORTED}"
        )
    first = scope.free
    chains = _chains(leaves[:n], block[1], m, width, scope, isinstance(block[2], FanInConcat))
    pairs = tuple(c.pair for c in chains)
    inner = [u for c in chains for u in c.inner]
    skip = len(block[1].branches) - len(pairs)
    more = {
        "branches": pairs,
        "sources": tuple(c.source for c in chains),
        "skip": skip,
        "first": first,
        "widths": (width,) * skip + tuple(c.width for c in chains),
    }
    prefix = tuple(leaf for leaf in leaves[: n + 3] if leaf is not NO_ACTIVATION)
    act, dense = pairs[0] if pairs else (None, None)  # (a concatenation of the Identity)
    if isinstance(block[2], FanInConcat):
        return [*inner, Unit("concat", m, dense, act, prefix, width, **more)]
    if len(pairs) == 1 and not inner and scope.branch < 0:
        return [Unit("residual", m, dense, act, prefix, width, branches=pairs)]
    return [*inner, Unit("branches", m, dense, act, prefix, width, **more)]


def _input_step(leaves: list[Net], n: int, m: int, where: str) -> tuple[Unit, int]:
    """The Dense layer ``leaves[n]`` on the network's input: ``alpha~^(m)``, the index after."""
    first = dense_layer(leaves[n], f"{where}: the first layer on the network's input")
    return Unit("input" + _suffix(first), m, first, None, tuple(leaves[: n + 1])), n + 1


def _layer_step(leaves: list[Net], n: int, m: int, width: int) -> tuple[Unit, int]:
    """The unit at ``leaves[n]`` defining ``alpha~^(m)``, and the index after it.

    A LayerNorm; an activation, a Dropout or not, and a Dense layer; a Dropout or not and
    a Dense layer with no activation before them (:data:`NO_ACTIVATION`: the layer before
    is a Dense layer, a LayerNorm or a block); or the network's last layer, an activation
    (kind ``"activation"``).
    """
    where, layer = f"layer {n + 1}", leaves[n]
    if isinstance(layer, LayerNorm):
        return Unit("layer_norm", m, None, None, tuple(leaves[: n + 1]), norm=layer), n + 1
    if isinstance(layer, (Dense, Dropout)):
        act, first = NO_ACTIVATION, n
    else:
        act, first = activation_layer(layer, where), n + 1
    if first >= len(leaves):
        return Unit("activation", m, None, act, tuple(leaves[:first]), width), first
    after = leaves[first]
    drop = after if isinstance(after, Dropout) else None
    if drop is not None and first + 1 >= len(leaves):
        raise InputError(
            f"layer {first + 1}: a Dropout must be followed by a Dense layer; supported: "
            f"{SUPPORTED}"
        )
    k = first + (drop is not None)
    dense = dense_layer(leaves[k], f"layer {k + 1}")
    kind = ("layer_dropout" if drop is not None else "layer") + _suffix(dense)
    if act.zero_ntk and kind == "layer":
        kind = "layer_sign"  # (before a standard Dense layer or a Dropout: the kind stays)
    prefix = tuple(leaves[: k + 1])
    return Unit(kind, m, dense, act, prefix, width, dropout=drop), k + 1


def units(net: Any) -> list[Unit]:
    """The network as recursion units (see :class:`Unit`).

    Raises:
        InputError: not a description, or a layer this module does not cover (the
            message names what is supported).
    """
    found = as_description(net)
    if found is None:
        raise InputError(f"not a network description or a ntksym.stax layer: {net!r}")
    if check(found) != 1:
        raise InputError("the network must have one output, not several branches")
    leaves = _flatten(found)
    if not leaves:
        raise InputError("the network has no layers")
    out: list[Unit] = []
    n, width = 0, 0
    if not isinstance(leaves[0], FanOut):  # else a block on the input (whole branches)
        first, n = _input_step(leaves, 0, 1, "layer 1")
        out, width = [first], first.affine.width
    while n < len(leaves):
        where, m, layer = f"layer {n + 1}", out[-1].m + 1 if out else 1, leaves[n]
        if isinstance(layer, FanOut):
            out += _block(leaves, n, m, width, _Scope(m, m - 1))
            width, n = _width_after(out[-1], width), n + 3
            continue
        if out[-1].kind == "concat" and not isinstance(layer, (Dense, Dropout)):
            dense_layer(layer, f"{where} (after FanInConcat)")
        unit, n = _layer_step(leaves, n, m, width)
        out.append(unit)
        width = width if unit.dense is None else unit.dense.width
    return out
