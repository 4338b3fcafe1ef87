"""The structural walks over a description's layers, written once for every reader.

A description (:mod:`ntksym.architecture.description`) is a tree: :class:`Serial` and
:class:`Repeat` apply their layers one after another, :class:`Parallel` gives one branch
per input of a list, and every other record is a *leaf* layer. Several readers want the
leaves of that tree under slightly different rules:

* the dispatch to the homogeneous kernels (:func:`ntksym.kernels.architecture.homogeneous`)
  reads a chain: the leaves as they run, ``Identity`` dropped, a ``Parallel`` a leaf;
* the notes (:func:`ntksym.notes.network_units.units`) read the layers of the recursion:
  the same, with ``Dropout(mode="test")`` dropped as well (both are the identity);
* the row blocks (:mod:`ntksym.kernels.layer_blocks`) ask which activations occur
  anywhere: every leaf written in the description, through the branches, a repeated
  layer once (even ``Repeat(layer, 0)``'s).

:func:`leaves` serves all three, its keywords naming those differences;
:func:`sequence` is the one rule for what a Serial or a Repeat applies, which the
evaluating walk (:class:`ntksym.architecture.walk.Walker`), the printing and the finite
networks (:mod:`ntksym.empirical.architecture`, its Jacobian) share; and
:func:`live_branches` counts the branches alive along the walk, for the memory bound of
the row blocks. None of them checks the structure: that is
:func:`ntksym.architecture.walk.check`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Literal

from ntksym.architecture.description import (
    Dropout,
    FanInConcat,
    FanInSum,
    FanOut,
    Identity,
    Net,
    Parallel,
    Repeat,
    Serial,
)
from ntksym.errors import InputError

__all__ = ["REPEATS", "SKIPS", "leaves", "live_branches", "no_op", "sequence"]

#: Values of ``leaves(..., repeat=...)``: ``"expand"`` yields a Repeat's layer ``n`` times
#: (as it runs), ``"once"`` once whatever ``n`` (as it is written, ``n = 0`` included).
REPEATS = ("expand", "once")
#: Values of ``leaves(..., skip=...)``: which leaves are left out: ``"nothing"``,
#: ``"identity"`` (:class:`Identity`), or ``"no-ops"`` (``Identity`` and
#: ``Dropout(mode="test")``, the layers that are the identity: :func:`no_op`).
SKIPS = ("nothing", "identity", "no-ops")

Repeats = Literal["expand", "once"]
Skips = Literal["nothing", "identity", "no-ops"]


def sequence(net: Net, once: bool = False) -> tuple[Net, ...] | None:
    """The layers ``net`` applies one after another, or None if it is not a Serial or Repeat.

    A :class:`Serial`'s layers, or a :class:`Repeat`'s layer ``n`` times (once, whatever
    ``n``, with ``once``).
    """
    if isinstance(net, Serial):
        return net.layers
    if isinstance(net, Repeat):
        return (net.layer,) if once else (net.layer,) * net.n
    return None


def no_op(layer: Net) -> bool:
    """Whether ``layer`` is the identity: :class:`Identity` or ``Dropout(mode="test")``."""
    return isinstance(layer, Identity) or (isinstance(layer, Dropout) and layer.mode == "test")


def _is_identity(layer: Net) -> bool:
    return isinstance(layer, Identity)


def _nothing(layer: Net) -> bool:
    return False


#: The test of each value of ``skip``.
_DROPS: dict[str, Callable[[Net], bool]] = {
    "nothing": _nothing,
    "identity": _is_identity,
    "no-ops": no_op,
}


def leaves(
    net: Net, *, repeat: Repeats = "expand", parallel: bool = False, skip: Skips = "nothing"
) -> Iterator[Net]:
    """The leaf layers of ``net`` in the order they are written (or run).

    Args:
        net: A description.
        repeat: One of :data:`REPEATS`: a Repeat's layer as it runs (``"expand"``, ``n``
            times) or as it is written (``"once"``).
        parallel: Descend into a :class:`Parallel`'s branches (one after another), or
            yield the Parallel itself as a leaf (False).
        skip: One of :data:`SKIPS`: the leaves left out.

    Yields:
        Every leaf layer (and, without ``parallel``, every Parallel) under those rules.

    Raises:
        InputError: An option outside the values above.
    """
    if repeat not in REPEATS:
        raise InputError(f"repeat must be one of {', '.join(REPEATS)}, got {repeat!r}")
    if skip not in _DROPS:
        raise InputError(f"skip must be one of {', '.join(SKIPS)}, got {skip!r}")
    return _leaves(net, repeat == "once", parallel, _DROPS[skip])


def _leaves(net: Net, once: bool, parallel: bool, drop: Callable[[Net], bool]) -> Iterator[Net]:
    inner = sequence(net, once)
    if inner is None and parallel and isinstance(net, Parallel):
        inner = net.branches
    if inner is not None:
        for layer in inner:
            yield from _leaves(layer, once, parallel, drop)
    elif not drop(net):
        yield net


def live_branches(net: Net, count: int = 1) -> tuple[int, int]:
    """``(most, after)``: the most branches alive at once in ``net``, and how many leave it.

    ``count`` branches enter ``net``; a :class:`FanOut` multiplies them, a
    :class:`FanInSum` or :class:`FanInConcat` joins them into one, and the branches of a
    :class:`Parallel` are counted from one each and added (all alive at once). Any
    structure is counted (the walk's checks come later): ``Repeat`` as it runs.
    """
    if isinstance(net, Parallel):
        ends = [live_branches(b) for b in net.branches]
        return sum(most for most, _ in ends), sum(after for _, after in ends)
    most = count
    for layer in leaves(net):
        if isinstance(layer, Parallel):
            peak, count = live_branches(layer)
        elif isinstance(layer, FanInSum | FanInConcat):
            peak, count = count, 1
        else:
            count *= layer.n if isinstance(layer, FanOut) else 1
            peak = count
        most = max(most, peak)
    return most, count
