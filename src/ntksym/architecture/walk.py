"""One walk over a network description, shared by the float64 and the mpmath evaluators.

The walk carries, for every live branch, a *payload* (the numbers: covariances, NTK)
and a :class:`Meta` record (what neural-tangents keeps beside them: the width, whether
the values are a centred Gaussian field, and which Dense layers that field is linear
in). The structural rules are checked here, once, with messages that say what is
wrong and what is allowed; the arithmetic of each layer is an :class:`Ops` method.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, Protocol, TypeVar

from ntksym.architecture.description import (
    Dense,
    Dropout,
    FanInConcat,
    FanInSum,
    FanOut,
    Identity,
    LayerNorm,
    Net,
    Nonlinearity,
    Parallel,
)
from ntksym.architecture.leaves import sequence
from ntksym.errors import InputError

__all__ = ["Meta", "Ops", "Walker", "check", "concat_weights"]

P = TypeVar("P")


@dataclass(frozen=True)
class Meta:
    """What the walk knows about a branch besides its numbers.

    Attributes:
        width: Number of features of the branch's values.
        gaussian: Whether they are a centred Gaussian field (true after a Dense layer,
            false for the inputs and after an activation).
        sources: The Dense layers (numbered in walk order) the field is linear in. Two
            branches with a common source are correlated, and a sum of correlated
            branches is not the sum of their kernels.
        is_input: Whether the values are still the network inputs.
        concat: Whether the values are a concatenation of branches (``FanInConcat``)
            that no Dense layer has taken yet: Gaussian features of different covariances.
    """

    width: int
    gaussian: bool = False
    sources: frozenset[int] = frozenset()
    is_input: bool = True
    concat: bool = False


def concat_weights(widths: Sequence[int]) -> list[float]:
    """``c_i = n_i / sum_j n_j``: the float64 weight of branch ``i`` in a ``FanInConcat``."""
    total = float(sum(widths))
    return [w / total for w in widths]


class Ops(Protocol, Generic[P]):
    """The arithmetic of each layer type on a payload."""

    def dense(self, p: P, meta: Meta, layer: Dense) -> P:
        """The payload after a Dense layer whose input is described by ``meta``."""
        ...

    def nonlinearity(self, p: P, layer: Nonlinearity) -> P:
        """The payload after an activation."""
        ...

    def layer_norm(self, p: P, layer: LayerNorm) -> P:
        """The payload after a LayerNorm."""
        ...

    def fan_in_sum(self, ps: Sequence[P]) -> P:
        """The payload of the sum of independent branches."""
        ...

    def dropout(self, p: P, layer: Dropout) -> P:
        """The payload after a Dropout in ``"train"`` mode (``"test"`` never calls it)."""
        ...

    def fan_in_concat(self, ps: Sequence[P], widths: Sequence[int]) -> P:
        """The payload of the branches concatenated: their mean weighted by ``widths``.

        ``widths`` are the branches' widths, or all 1 when they are equal (neural-tangents'
        plain mean); the walk passes a single payload on without calling this when every
        branch carries the same one.
        """
        ...


_AFTER_CONCAT = (
    "{layer} cannot follow FanInConcat directly: the concatenated features are Gaussian "
    "with a different covariance per branch, so the infinite-width map of their mean is "
    "not the mean of the branches' maps (neural-tangents refuses it too); put a Dense layer "
    "after FanInConcat, or apply {layer} inside each branch before it"
)


def _single(node: Any, what: str) -> tuple[Any, Meta]:
    if isinstance(node, list):
        raise InputError(
            f"{what} takes one input, but the network carries {len(node)} branches here; "
            "join them first with FanInSum() or FanInConcat()"
        )
    return node


class Walker(Generic[P]):
    """Evaluates a description with one :class:`Ops`; a node is ``(payload, meta)`` or a list."""

    def __init__(self, ops: Ops[P]) -> None:
        self.ops = ops
        self._dense_count = 0

    def run(self, net: Net, node: Any) -> Any:
        """The node after ``net``."""
        inner = sequence(net)
        if inner is not None:
            for layer in inner:
                node = self.run(layer, node)
            return node
        if isinstance(net, Identity):
            return node
        if isinstance(net, Parallel):
            return self._parallel(net, node)
        if isinstance(net, FanOut):
            one = _single(node, str(net))
            return [one] * net.n
        if isinstance(net, FanInSum):
            return self._fan_in_sum(node)
        if isinstance(net, FanInConcat):
            return self._fan_in_concat(node)
        p, meta = _single(node, str(net))
        if meta.concat and isinstance(net, Nonlinearity | LayerNorm):
            raise InputError(_AFTER_CONCAT.format(layer=net))
        if isinstance(net, Dense):
            self._dense_count += 1
            out = self.ops.dense(p, meta, net)
            return out, Meta(net.width, True, frozenset({self._dense_count}), False)
        if isinstance(net, Dropout):
            return self._dropout(net, p, meta)
        if isinstance(net, Nonlinearity):
            if not meta.gaussian:
                raise InputError(
                    f"{net} must follow a Dense layer (its input must be a centred Gaussian "
                    "field, as in neural-tangents); put a Dense layer before it"
                )
            return self.ops.nonlinearity(p, net), replace(meta, gaussian=False)
        if isinstance(net, LayerNorm):
            if not meta.gaussian:
                raise InputError(
                    f"{net} is defined here for Gaussian inputs only (as in neural-tangents); "
                    "put a Dense layer before it"
                )
            return self.ops.layer_norm(p, net), meta
        raise InputError(f"not a layer of ntksym.stax: {net!r}")

    def _dropout(self, net: Dropout, p: Any, meta: Meta) -> tuple[Any, Meta]:
        if net.mode == "test":
            return p, meta
        if meta.is_input:
            raise InputError(
                f"{net} cannot act on the network inputs (as in neural-tangents): their "
                "kernel is not a random feature map; put it after a layer"
            )
        return self.ops.dropout(p, net), replace(meta, gaussian=False)

    def _parallel(self, net: Parallel, node: Any) -> list[Any]:
        n = len(net.branches)
        if not isinstance(node, list) or len(node) != n:
            got = len(node) if isinstance(node, list) else 1
            raise InputError(
                f"parallel with {n} branches needs {n} inputs (e.g. after FanOut({n})), got {got}"
            )
        return [self.run(b, x) for b, x in zip(net.branches, node, strict=True)]

    def _fan_in_concat(self, node: Any) -> Any:
        if not isinstance(node, list):
            raise InputError(
                "FanInConcat needs several branches (after FanOut(n) and parallel), got one input"
            )
        metas = [m for _, m in node]
        widths = [m.width for m in metas]
        payloads = [p for p, _ in node]
        if all(p is payloads[0] for p in payloads):  # copies of one branch: its own kernel
            payload = payloads[0]
        else:
            weights = [1] * len(widths) if len(set(widths)) == 1 else widths
            payload = self.ops.fan_in_concat(payloads, weights)
        sources = frozenset().union(*(m.sources for m in metas))
        is_input = all(m.is_input for m in metas)
        return payload, Meta(sum(widths), False, sources, is_input, concat=True)

    def _fan_in_sum(self, node: Any) -> Any:
        if not isinstance(node, list):
            raise InputError("FanInSum needs several branches (after FanOut(n)), got one input")
        metas = [m for _, m in node]
        if any(m.concat for m in metas):
            raise InputError(_AFTER_CONCAT.format(layer="FanInSum()"))
        widths = {m.width for m in metas}
        if len(widths) != 1:
            raise InputError(
                f"FanInSum needs branches of one width, got widths {[m.width for m in metas]}"
            )
        if len(node) > 1 and not all(m.gaussian for m in metas):
            raise InputError(
                "FanInSum sums centred Gaussian branches only (as in neural-tangents): end "
                "every branch with a Dense layer or Identity after one; got "
                f"gaussian = {[m.gaussian for m in metas]}"
            )
        seen: set[int] = set()
        for i, m in enumerate(metas):
            if seen & m.sources:
                raise InputError(
                    f"FanInSum: branch {i} carries the same Gaussian field as an earlier "
                    "branch (no Dense layer on either since the FanOut), so their sum's "
                    "kernel is not the sum of their kernels; give all but one of the branches "
                    "a Dense layer"
                )
            seen |= m.sources
        payload = self.ops.fan_in_sum([p for p, _ in node])
        return payload, Meta(metas[0].width, True, frozenset(seen), False)


class _Shapes:
    """An :class:`Ops` that computes nothing: walking with it checks the structure only."""

    def dense(self, p: None, meta: Meta, layer: Dense) -> None:
        return None

    def nonlinearity(self, p: None, layer: Nonlinearity) -> None:
        return None

    def layer_norm(self, p: None, layer: LayerNorm) -> None:
        return None

    def fan_in_sum(self, ps: Sequence[None]) -> None:
        return None

    def dropout(self, p: None, layer: Dropout) -> None:
        return None

    def fan_in_concat(self, ps: Sequence[None], widths: Sequence[int]) -> None:
        return None


def check(net: Net, n_features: int = 1) -> int:
    """Check a description's structure for inputs of ``n_features``; its number of outputs.

    Raises:
        InputError: The rule the network breaks, naming the layer (as every evaluator would).
    """
    node = Walker(_Shapes()).run(net, (None, Meta(n_features)))
    return len(node) if isinstance(node, list) else 1
