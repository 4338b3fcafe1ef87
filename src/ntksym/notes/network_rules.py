"""What the network notes cover, and the refusals that name it.

:mod:`ntksym.notes.network_units` reads a description as recursion units; the shapes it
does not cover are refused here, each with its reason and :data:`SUPPORTED`. Two kinds
of refusal: a layer where the recursion has no unit for it (an activation whose gradient
is zero but is not ``Sign``, a layer where a Dense layer must be), and a block whose
cross terms would vanish only by ``LayerNorm``'s oddness (``LN(-z) = -LN(z)``, so a
field ``LN(W h)`` with zero-mean weights ``W`` is uncorrelated with any field not using
``W``), which the engine does not derive: it derives the vanishing of a cross term from
``fan_in_sum``'s (2), a field linear in zero-mean weights of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ntksym.architecture.description import Dense, LayerNorm, Nonlinearity
from ntksym.errors import InputError

__all__ = [
    "SUPPORTED",
    "activation_layer",
    "check_nested_last",
    "check_norm_sum",
    "dense_layer",
]

SUPPORTED = (
    "Dense (either parameterization), an activation followed by a Dense layer (with a "
    "Dropout between them or not), a Dense layer, or a Dropout and a Dense layer, right "
    "after a Dense layer, a LayerNorm or a block (no activation between), LayerNorm, an "
    "activation last; of the activations with a zero gradient, Sign only; "
    "blocks FanOut(n), parallel(...), FanInSum() or FanInConcat() for any n >= 2, each "
    "branch the Identity (at most once in a sum) or a chain of those layers and blocks "
    "(a Dense layer or a LayerNorm first, on the block's input, or not) ending in a Dense "
    "layer of its own (either parameterization, a Dropout before it or not) after an "
    "activation, a Dense layer, a LayerNorm or a block, in a block, or in a LayerNorm "
    "(summed only with branches ending in a Dense layer of their own); after a "
    "FanInConcat a Dense layer, or a Dropout and a Dense layer (no activation between); "
    "a block on the network's input, each branch starting with a Dense layer; a block "
    "last in a branch (no LayerNorm's field among its branches or on its Identity); not "
    "two activations in a row"
)


def dense_layer(layer: Any, where: str) -> Dense:
    """``layer``, which must be a Dense layer (else the refusal says where)."""
    if not isinstance(layer, Dense):
        raise InputError(f"{where}: expected a Dense layer, got {layer}; supported: {SUPPORTED}")
    return layer


def activation_layer(layer: Any, where: str) -> Nonlinearity:
    """``layer``, which must be an activation: ``Sign`` if its gradient is zero."""
    if not isinstance(layer, Nonlinearity):
        raise InputError(f"{where}: expected an activation, got {layer}; supported: {SUPPORTED}")
    if layer.zero_ntk and layer.activation.name != "sign":
        raise InputError(
            f"{where}: {layer} has a zero gradient, which the derivation covers only for "
            f"Sign (derivation sign); supported: {SUPPORTED}"
        )
    return layer


def check_nested_last(ends: Sequence[Any], skip: int, entry_kind: str, where: str) -> None:
    """Refuse a block last in a branch that carries a LayerNorm's field.

    The enclosing block adds its branches' kernels because every cross term has a field
    with zero-mean weights of its own (``fan_in_sum``'s (2)); a block last in a branch
    passes that on for its branches ending in Dense layers and for an Identity carrying a
    Dense layer's field or the enclosing block's input, not for a LayerNorm's field.

    Args:
        ends: the inner block's branches' last layers (a Dense layer, a LayerNorm, None).
        skip: how often the inner block has the Identity.
        entry_kind: the kind of the unit the inner block reads.
        where: the branch, for the message.
    """
    if any(isinstance(d, LayerNorm) for d in ends):
        raise InputError(
            f"{where}: a block last in a branch, one of whose branches ends in a LayerNorm: "
            f"that field is not linear in its zero-mean weights, so its cross terms with "
            f"the enclosing block's branches vanish by LayerNorm's oddness, which the engine "
            f"does not derive; supported: {SUPPORTED}"
        )
    if skip and entry_kind == "layer_norm":
        raise InputError(
            f"{where}: a block last in a branch whose Identity carries a LayerNorm's "
            f"field: that field's cross terms vanish by LayerNorm's oddness, which the "
            f"engine does not derive; supported: {SUPPORTED}"
        )


def check_norm_sum(par: Any, ends: Sequence[Any], skips: int, concat: bool, base: Any) -> None:
    """Refuse a sum in which a branch ending in a LayerNorm meets a field without weights.

    Args:
        par: the block's ``parallel``, for the message.
        ends: the last layer of each branch that is not the Identity (None: a block).
        skips: how often the block has the Identity.
        concat: whether the block concatenates (no cross terms at all).
        base: the block's layer name, for the message.
    """
    norms = sum(isinstance(d, LayerNorm) for d in ends)
    dense = sum(isinstance(d, Dense) for d in ends)
    if concat or not norms or (not skips and dense >= len(ends) - 1):
        return
    raise InputError(
        f"the block at layer {base}: a branch ending in a LayerNorm is summed only with "
        f"branches ending in a Dense layer of their own (their zero-mean weights make the "
        f"cross terms vanish by fan_in_sum's (2); with the Identity, a block or another "
        f"LayerNorm they vanish by LayerNorm's oddness, which the engine does not derive); "
        f"got {par}; supported: {SUPPORTED}"
    )
