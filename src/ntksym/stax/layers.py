"""The ``(init_fn, apply_fn, kernel_fn)`` triples and the structural combinators.

Every combinator returns a :class:`Layer`, a named tuple that unpacks as
neural-tangents' triple and keeps the immutable description in
:attr:`Layer.description`. The three functions are small frozen callables holding that
description, so a Layer is hashable and equal layers compare equal.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, NamedTuple

from ntksym.architecture import description as d
from ntksym.architecture import printing
from ntksym.empirical import architecture as finite
from ntksym.errors import InputError
from ntksym.kernels.architecture import evaluate

__all__ = [
    "Layer",
    "InitFn",
    "ApplyFn",
    "KernelFn",
    "layer_of",
    "serial",
    "parallel",
    "repeat",
    "Dense",
    "Dropout",
    "FanOut",
    "FanInSum",
    "FanInConcat",
    "Identity",
    "LayerNorm",
]


@dataclass(frozen=True)
class InitFn:
    """``init_fn(rng, input_shape) -> (output_shape, params)`` of a description.

    ``rng`` is an integer seed, a ``numpy.random.Generator`` or an integer array such as
    a JAX PRNG key; ``input_shape`` is ``(batch, features)`` (``batch`` may be -1).
    """

    net: d.Net

    def __call__(self, rng: Any, input_shape: Any) -> tuple[Any, Any]:
        """Draw the parameters (see :mod:`ntksym.empirical.architecture` for their layout)."""
        if isinstance(input_shape, list):
            shape: Any = [tuple(s) for s in input_shape]
        else:
            shape = tuple(input_shape)
        return finite.init(self.net, finite.as_generator(rng), shape)


@dataclass(frozen=True)
class ApplyFn:
    """``apply_fn(params, inputs) -> outputs`` of a description, in NumPy float64."""

    net: d.Net

    def __call__(self, params: Any, inputs: Any, *, rng: Any = None, **kwargs: Any) -> Any:
        """The finite network's outputs; ``rng`` draws the masks of ``Dropout`` layers."""
        if kwargs:
            raise InputError(
                "apply_fn takes (params, inputs) and rng= only; got keyword arguments "
                f"{sorted(kwargs)}"
            )
        return finite.apply(self.net, params, inputs, rng)


@dataclass(frozen=True)
class KernelFn:
    """``kernel_fn(x1, x2=None, get=("nngp", "ntk"))``: the infinite-width kernels.

    Keyword-only extensions of neural-tangents' signature: ``backend=`` and ``out=``.
    """

    net: d.Net

    def __call__(
        self,
        x1: Any,
        x2: Any = None,
        get: Any = ("nngp", "ntk"),
        *,
        backend: str = "auto",
        out: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Gram matrices between the rows of ``x1`` and ``x2`` (``x1`` with itself if None).

        Args:
            x1: Inputs, shape (N1, n0).
            x2: Inputs, shape (N2, n0), or None.
            get: ``"nngp"``, ``"ntk"`` (one array), a tuple of them or None (a
                ``Kernels`` named tuple).
            backend: ``"auto"`` (a homogeneous network runs its generated kernel, any
                other its generated fused kernel where that covers it, else the layer
                maps), ``"fused"`` (always the fused kernel) or ``"layers"`` (always the
                float64 layer maps).
            out: An ntksym extension (neural-tangents' ``kernel_fn`` has no ``out``):
                None, or float64 arrays to write the kernels into and return, for repeated
                calls of one shape (writing into memory already mapped saves the first
                touch of fresh pages, about 1 s/GB on the machines measured): one array
                for a single ``get`` name, a tuple in the order of ``get`` (``("nngp",
                "ntk")`` for None) otherwise; each C-contiguous, writeable, of shape (N1,
                N2), sharing no memory with the inputs or each other; a network with one
                output. The same values bit for bit as without ``out``; on an error the
                contents are undefined.
            **kwargs: Refused: neural-tangents' ``kernel_fn`` keywords (``diagonal_batch``,
                ``mask_constant``, ...) have no meaning for these networks.

        Returns:
            The kernels; a list of them, one per branch, if the network ends in branches.

        Raises:
            InputError: Bad inputs, ``get`` or keywords, a network that is not well formed (the
                message says which layer and what is allowed), or kernels that are not
                finite at these inputs.
        """
        if kwargs:
            raise InputError(
                "kernel_fn takes (x1, x2=None, get=('nngp', 'ntk'), backend='auto', "
                f"out=None) only; got keyword arguments {sorted(kwargs)}"
            )
        return evaluate(self.net, x1, x2, get, backend, out)


class Layer(NamedTuple):
    """``(init_fn, apply_fn, kernel_fn)`` of a network, with its description."""

    init_fn: InitFn
    apply_fn: ApplyFn
    kernel_fn: KernelFn

    @property
    def description(self) -> d.Net:
        """The immutable network description."""
        return self.kernel_fn.net

    def __str__(self) -> str:
        return str(self.description)

    def equations(self, n_inputs: int | None = None) -> printing.Printout:
        """The layers as equations (``.latex()``, ``.text()``): :func:`~.printing.latex`."""
        return printing.latex(self.description, n_inputs)

    def latex(self, n_inputs: int | None = None) -> str:
        """The layers as a LaTeX ``align*`` block (``n_inputs``: print ``n_0`` as a number)."""
        return self.equations(n_inputs).latex()

    def recursion(self, n_inputs: int | None = None) -> printing.Printout:
        """The NNGP/NTK recursion the network implies (``.latex()``, ``.text()``)."""
        return printing.recursion(self.description, n_inputs)


def layer_of(net: d.Net) -> Layer:
    """The triple of a description."""
    return Layer(InitFn(net), ApplyFn(net), KernelFn(net))


def _net(layer: Any, where: str) -> d.Net:
    if isinstance(layer, Layer):
        return layer.description
    if isinstance(layer, tuple) and len(layer) == 3 and isinstance(layer[2], KernelFn):
        return layer[2].net
    if isinstance(layer, d.Net):
        return layer
    raise InputError(
        f"{where} takes layers of ntksym.stax (the triples its functions return) or their "
        f"descriptions, got "
        f"{type(layer).__name__}"
    )


def serial(*layers: Any) -> Layer:
    """Layers one after another (neural-tangents' ``stax.serial``)."""
    return layer_of(d.Serial(tuple(_net(x, "serial") for x in layers)))


def parallel(*layers: Any) -> Layer:
    """One layer per branch of a list input (neural-tangents' ``stax.parallel``)."""
    return layer_of(d.Parallel(tuple(_net(x, "parallel") for x in layers)))


def repeat(layer: Any, n: int) -> Layer:
    """``layer`` applied ``n`` times, like ``serial(*[layer] * n)`` (``stax.repeat``)."""
    return layer_of(d.Repeat(_net(layer, "repeat"), n))


def _axes(where: str, batch_axis: Any, channel_axis: Any) -> None:
    """Refuse ``batch_axis``/``channel_axis`` other than those of ``(batch, features)`` inputs."""
    for name, value, allowed in (
        ("batch_axis", batch_axis, (0, -2)),
        ("channel_axis", channel_axis, (-1, 1)),
    ):
        integral = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        if not integral or value not in allowed:
            raise InputError(
                f"{where} {name} must be {allowed[0]} (or {allowed[1]}): ntksym.stax takes "
                f"fully connected inputs of shape (batch, features); got {value!r}"
            )


def Dense(  # noqa: N802 - neural-tangents' name
    out_dim: int,
    W_std: float = 1.0,  # noqa: N803
    b_std: float | None = None,
    batch_axis: int = 0,
    channel_axis: int = -1,
    parameterization: str = "ntk",
    s: tuple[int, int] = (1, 1),
) -> Layer:
    """A fully connected layer (``stax.Dense``): see :class:`ntksym.architecture.description.Dense`.

    The arguments are neural-tangents 0.6.5's, in its order.

    Args:
        out_dim: Output width. The NTK parameterization's kernels do not depend on it;
            the standard parameterization's NTK depends on the width of each Dense
            layer's *input* (the previous ``out_dim``, or the input dimension).
        W_std: Weight scale.
        b_std: Bias scale, or None for no bias.
        batch_axis: 0 (or -2): the inputs are ``(batch, features)``.
        channel_axis: -1 (or 1): the features.
        parameterization: ``"ntk"`` or ``"standard"``.
        s: Width multipliers ``(s_in, s_out)`` of the standard parameterization, as in
            neural-tangents: ``out_dim * s_out`` outputs, and the NTK counts the input
            width as ``n_in / s_in``. Only ``(1, 1)`` with ``"ntk"``.

    Raises:
        InputError: A bad value; a string in ``batch_axis``'s place (pass
            ``parameterization=`` by keyword, as neural-tangents' order requires).
    """
    if isinstance(batch_axis, str):
        raise InputError(
            f"Dense's fourth argument is batch_axis (neural-tangents' order: out_dim, W_std, "
            f"b_std, batch_axis, channel_axis, parameterization, s); got {batch_axis!r}: pass "
            f"parameterization={batch_axis!r} by keyword"
        )
    _axes("Dense", batch_axis, channel_axis)
    return layer_of(d.Dense(out_dim, W_std, b_std, parameterization, s))


def Dropout(rate: float, mode: str = "train") -> Layer:  # noqa: N802
    """Dropout (``stax.Dropout``): ``rate`` is the probability of *keeping* a unit.

    See :class:`ntksym.architecture.description.Dropout` for its kernel; ``apply_fn`` needs
    ``rng=`` in ``"train"`` mode.
    """
    return layer_of(d.Dropout(rate, mode))


def FanOut(num: int) -> Layer:  # noqa: N802
    """``num`` copies of the input (``stax.FanOut``)."""
    return layer_of(d.FanOut(num))


def FanInSum() -> Layer:  # noqa: N802
    """The sum of the branches (``stax.FanInSum``); the branches must be independent."""
    return layer_of(d.FanInSum())


def FanInConcat(axis: int = -1) -> Layer:  # noqa: N802
    """The branches concatenated along the features (``stax.FanInConcat``).

    Args:
        axis: The features: -1 (or 1); the batch axis (0, -2) is refused.

    See :class:`ntksym.architecture.description.FanInConcat` for its kernel: the branches'
    kernels averaged with their widths as weights; only a Dense layer (or Dropout, another
    FanInConcat) may follow it, as in neural-tangents.
    """
    return layer_of(d.FanInConcat(axis))


def Identity() -> Layer:  # noqa: N802
    """The identity (``stax.Identity``)."""
    return layer_of(d.Identity())


def LayerNorm(  # noqa: N802
    axis: Any = -1, eps: float = 1e-12, batch_axis: int = 0, channel_axis: int = -1
) -> Layer:
    """Normalisation over the features (``stax.LayerNorm`` for fully connected inputs).

    Args:
        axis: Must be the features: -1 (or 1), or a one-element sequence of it; other axes
            need spatial dimensions.
        eps: Added to the variance before the square root.
        batch_axis: 0 (or -2): the inputs are ``(batch, features)``.
        channel_axis: -1 (or 1): the features.
    """
    _axes("LayerNorm", batch_axis, channel_axis)
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    if len(axes) != 1 or axes[0] not in (-1, 1) or isinstance(axes[0], bool):
        raise InputError(
            f"LayerNorm normalises over the features of fully connected inputs: axis must be "
            f"-1 (or 1), got {axis!r}"
        )
    return layer_of(d.LayerNorm(eps))
