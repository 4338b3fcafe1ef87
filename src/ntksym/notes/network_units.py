"""A described network read as the layers of its kernel recursion.

:func:`units` walks a description (``ntksym.stax`` layer or ``ntksym.architecture``
record) and returns one :class:`Unit` per step ``alpha~^(m-1) -> alpha~^(m)`` of the
recursion that :mod:`ntksym.notes.network` derives: the first Dense layer, an activation
followed by a Dense layer (a ``Dropout`` between them or not), a residual block
``x + Dense(phi(x))``, a sum of n branches ``Dense(phi(x)) + Dense(psi(x)) + ...`` (with
``x`` itself among them or not), or a
``LayerNorm``.
``Identity`` and ``Dropout(mode="test")`` are the identity and are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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

__all__ = ["AFTER_CONCAT", "SUPPORTED", "Unit", "units"]

SUPPORTED = (
    "Dense (either parameterization), an activation followed by a Dense layer (with a "
    "Dropout between them or not; Sign only before an NTK-parameterized Dense layer), "
    "LayerNorm, "
    "and blocks FanOut(n), parallel(...), FanInSum for any n >= 2, each branch "
    "serial(activation, NTK-parameterized Dense) or, for at most one of them, Identity "
    "(with two branches: a residual block), the same with FanInConcat (then a Dense layer, "
    "no activation between); not a block inside a branch"
)
#: The (absent) activation of a Dense layer right after a ``FanInConcat``: the identity.
AFTER_CONCAT = Nonlinearity(get_activation("identity"), "no activation (the identity)")


@dataclass(frozen=True)
class Unit:
    """One layer of the recursion: what takes ``alpha~^(m-1)`` to ``alpha~^(m)``.

    Attributes:
        kind: ``"input"`` (the first Dense layer), ``"layer"`` (an activation, then a
            Dense layer), ``"residual"`` (a residual block around such a pair), the same
            with ``"_standard"`` appended for a standard-parameterization Dense,
            ``"layer_sign"`` (``Sign`` then an NTK-parameterization Dense layer),
            ``"branches"`` (a sum of two or more such branches, the
            Identity among them or not), ``"concat"`` (the same branches concatenated
            by ``FanInConcat``), or ``"layer_norm"``. A Dense layer right after a
            ``"concat"`` is a ``"layer"`` whose activation is :data:`AFTER_CONCAT`.
        m: the index of the value it defines, ``alpha~^(m)``.
        dense: its Dense layer (None for a LayerNorm).
        act: its activation (None for the input layer and a LayerNorm).
        prefix: the network's layers up to this unit (the referee's network).
        n_in: the width of the Dense layer's input (0 for the network's input).
        norm: the LayerNorm (None otherwise).
        dropout: a ``Dropout(mode="train")`` between the activation and the Dense layer
            (kind ``"layer_dropout"``, with ``"_standard"`` for that parameterization).
        branches: the ``(activation, Dense)`` of each branch of a block that is not the
            Identity (one for a ``"residual"`` block, one or more for ``"branches"``:
            ``FanOut(n)``, ``parallel(serial(phi, Dense), serial(psi, Dense), ...)``,
            ``FanInSum``); ``act`` and ``dense`` are the first such branch's.
        skip: a ``"branches"`` or ``"concat"`` block has the Identity among its branches.
        widths: a ``"concat"`` block's branch widths, the Identity's first (its input's
            width), then the Dense branches' in order.
    """

    kind: str
    m: int
    dense: Dense | None
    act: Nonlinearity | None
    prefix: tuple[Net, ...]
    n_in: int = 0
    norm: LayerNorm | None = None
    dropout: Dropout | None = None
    branches: tuple[tuple[Nonlinearity, Dense], ...] = ()
    skip: bool = False
    widths: tuple[int, ...] = ()

    @property
    def affine(self) -> Dense:
        """Its Dense layer, for every kind but ``layer_norm`` (which has none)."""
        if self.dense is None:
            raise InputError(f"a {self.kind} unit has no Dense layer")
        return self.dense


def _flatten(net: Net) -> list[Net]:
    """The layers of ``net`` as they run, the identities left out, a Parallel one layer."""
    return list(leaves(net, skip="no-ops"))


def _dense(layer: Any, where: str, ntk_only: bool = False) -> Dense:
    if not isinstance(layer, Dense):
        raise InputError(f"{where}: expected a Dense layer, got {layer}; supported: {SUPPORTED}")
    if ntk_only and layer.parameterization != "ntk":
        raise InputError(
            f"{where}: {layer} in a branch uses the standard parameterization, which the "
            f"residual and fan_in_sum derivations do not cover; supported: {SUPPORTED}"
        )
    return layer


def _act(layer: Any, where: str, sign_ok: bool = False) -> Nonlinearity:
    if not isinstance(layer, Nonlinearity):
        raise InputError(f"{where}: expected an activation, got {layer}; supported: {SUPPORTED}")
    if layer.zero_ntk and not (sign_ok and layer.activation.name == "sign"):
        raise InputError(
            f"{where}: {layer} has a zero gradient, which the derivation covers only for "
            f"Sign before an NTK-parameterized Dense layer (no Dropout, not in a branch); "
            f"supported: {SUPPORTED}"
        )
    return layer


def _pair(branch: Net, where: str) -> tuple[Nonlinearity, Dense]:
    """A branch ``serial(activation, Dense)`` as its (activation, NTK-parameterized Dense)."""
    leaves = _flatten(branch)
    if any(isinstance(leaf, (FanOut, Parallel, FanInSum, FanInConcat)) for leaf in leaves):
        raise InputError(
            f"{where}: a block inside a branch (FanOut, parallel, FanInSum or FanInConcat in "
            f"{branch}) is not covered by the notes; supported: {SUPPORTED}"
        )
    if len(leaves) != 2:
        raise InputError(
            f"{where}: a branch must be serial(activation, Dense) or the Identity (longer "
            f"branches are not covered by the notes); got {branch}; supported: {SUPPORTED}"
        )
    return _act(leaves[0], where), _dense(leaves[1], where, ntk_only=True)


def _branches(par: Parallel, where: str) -> tuple[tuple[Nonlinearity, Dense], ...]:
    """The (activation, Dense) of each branch that is not the Identity."""
    branches = list(par.branches)
    skips = sum(not _flatten(b) for b in branches)
    if len(branches) < 2 or skips > 1:
        raise InputError(
            f"{where}: a block needs two or more branches, at most one of them the "
            f"Identity; got {par}"
        )
    return tuple(_pair(b, where) for b in branches if _flatten(b))


def _suffix(dense: Dense) -> str:
    return "" if dense.parameterization == "ntk" else "_standard"


def _block(leaves: list[Net], n: int, m: int, width: int) -> Unit:
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
    pairs = _branches(block[1], where)
    prefix = tuple(leaves[: n + 3])
    skip = len(pairs) < len(block[1].branches)
    if isinstance(block[2], FanInConcat):
        widths = (width,) * skip + tuple(d.width for _a, d in pairs)
        act, dense = pairs[0]
        return Unit(
            "concat", m, dense, act, prefix, width, branches=pairs, skip=skip, widths=widths
        )
    (act, dense), kind = pairs[0], "residual" if len(pairs) == 1 else "branches"
    return Unit(kind, m, dense, act, prefix, width, branches=pairs, skip=skip and len(pairs) > 1)


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
    first = _dense(leaves[0], "layer 1")
    out = [Unit("input" + _suffix(first), 1, first, None, tuple(leaves[:1]))]
    n, width = 1, first.width
    while n < len(leaves):
        where, m, layer = f"layer {n + 1}", out[-1].m + 1, leaves[n]
        if isinstance(layer, FanOut):
            out.append(_block(leaves, n, m, width))
            width = width if out[-1].kind == "residual" else out[-1].affine.width
            width = sum(out[-1].widths) if out[-1].kind == "concat" else width
            n += 3
            continue
        if out[-1].kind == "concat":
            dense = _dense(layer, f"{where} (after FanInConcat)")
            prefix = tuple(leaves[: n + 1])
            kind = "layer" + _suffix(dense)
            out.append(Unit(kind, m, dense, AFTER_CONCAT, prefix, width))
            width, n = dense.width, n + 1
            continue
        if isinstance(layer, LayerNorm):
            out.append(Unit("layer_norm", m, None, None, tuple(leaves[: n + 1]), norm=layer))
            n += 1
            continue
        act = _act(layer, where, sign_ok=True)
        if n + 1 >= len(leaves):
            raise InputError(
                f"{where}: the network must end in a Dense layer, a residual block or a "
                f"LayerNorm; got {layer} last"
            )
        after = leaves[n + 1]
        drop = after if isinstance(after, Dropout) else None
        if drop is not None and n + 2 >= len(leaves):
            raise InputError(f"{where}: a Dropout must be followed by a Dense layer")
        k = n + 1 + (drop is not None)
        dense = _dense(leaves[k], f"layer {k + 1}")
        kind = ("layer_dropout" if drop is not None else "layer") + _suffix(dense)
        if act.zero_ntk:
            _act(act, where, sign_ok=kind == "layer")
            kind = "layer_sign"
        prefix = tuple(leaves[: k + 1])
        out.append(Unit(kind, m, dense, act, prefix, width, dropout=drop))
        width = dense.width
        n = k + 1
    return out
