"""The network description behind :mod:`ntksym.stax`: immutable, hashable layer records.

A network is a tree of frozen dataclasses: leaves are layers (:class:`Dense`,
:class:`Nonlinearity`, :class:`LayerNorm`, :class:`Dropout`, :class:`Identity`, :class:`FanOut`,
:class:`FanInSum`, :class:`FanInConcat`) and inner nodes are :class:`Serial` (one after another),
:class:`Parallel` (one branch per input of a list) and :class:`Repeat`. Equal
networks compare and hash equal, so a description can key a cache; ``str`` prints it
in neural-tangents' own call syntax.

The combinators of :mod:`ntksym.stax` build these records; the evaluators
(:mod:`ntksym.kernels.layer_maps`, :mod:`ntksym.reference.architecture`,
:mod:`ntksym.empirical.architecture`) walk them.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, TypeAlias

from ntksym.activations import Activation
from ntksym.errors import InputError

__all__ = [
    "PARAMETERIZATIONS",
    "DROPOUT_MODES",
    "Dense",
    "Dropout",
    "Nonlinearity",
    "LayerNorm",
    "Identity",
    "FanOut",
    "FanInSum",
    "FanInConcat",
    "Serial",
    "Parallel",
    "Repeat",
    "Net",
    "positive_int",
    "finite_real",
    "as_description",
]

#: Values of ``Dense(..., parameterization=...)``.
PARAMETERIZATIONS = ("ntk", "standard")

#: Values of ``Dropout(..., mode=...)``.
DROPOUT_MODES = ("train", "test")


def positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """An integer ``>= minimum`` (not a bool), or an InputError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def finite_real(name: str, value: Any, *, minimum: float | None = None) -> float:
    """A finite real number (``>= minimum`` when given) as a float, or an InputError."""
    allowed = "a finite real number" + ("" if minimum is None else f" >= {minimum:g}")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{name} must be {allowed}, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or (minimum is not None and v < minimum):
        raise InputError(f"{name} must be {allowed}, got {value!r}")
    return v


def _num(x: float) -> str:
    return repr(float(x))


@dataclass(frozen=True)
class Dense:
    """A fully connected layer ``z = W x + b`` (neural-tangents' ``stax.Dense``).

    Attributes:
        out_dim: Number of output features (the width of the next layer).
        w_std: Weight scale ``sigma_w``.
        b_std: Bias scale ``sigma_b``, or None for a layer without bias.
        parameterization: ``"ntk"`` (``z = sigma_w W x / sqrt(n_in) + sigma_b b``, all
            entries N(0, 1)) or ``"standard"`` (``z = W x + b`` with
            ``W ~ N(0, sigma_w^2 / n_in)``, ``b ~ N(0, sigma_b^2)``).
        s: neural-tangents' width multipliers ``(s_in, s_out)`` of the standard
            parameterization: the layer has ``out_dim * s_out`` outputs, computes
            ``z = W x / sqrt(s_in) + b`` with ``W ~ N(0, sigma_w^2 s_in / n_in)``, and its
            NTK counts the input width as ``n_in / s_in``. ``(1, 1)`` for the NTK
            parameterization (where neural-tangents ignores it, ntksym refuses other values).
    """

    out_dim: int
    w_std: float = 1.0
    b_std: float | None = None
    parameterization: str = "ntk"
    s: tuple[int, int] = (1, 1)

    def __post_init__(self) -> None:
        object.__setattr__(self, "out_dim", positive_int("Dense out_dim", self.out_dim))
        object.__setattr__(self, "w_std", finite_real("Dense W_std", self.w_std, minimum=0.0))
        if self.b_std is not None:
            object.__setattr__(self, "b_std", finite_real("Dense b_std", self.b_std, minimum=0.0))
        p = self.parameterization
        if not isinstance(p, str) or p.lower() not in PARAMETERIZATIONS:
            raise InputError(
                f"Dense parameterization must be one of {', '.join(PARAMETERIZATIONS)}, got {p!r}"
            )
        object.__setattr__(self, "parameterization", p.lower())
        if not isinstance(self.s, (tuple, list)) or len(self.s) != 2:
            raise InputError(f"Dense s must be a pair of integers (s_in, s_out), got {self.s!r}")
        s = (positive_int("Dense s[0]", self.s[0]), positive_int("Dense s[1]", self.s[1]))
        if s != (1, 1) and self.parameterization != "standard":
            raise InputError(
                f"Dense s={s} (width multipliers) applies to parameterization='standard' only; "
                "with 'ntk' leave s=(1, 1)"
            )
        object.__setattr__(self, "s", s)

    @property
    def width(self) -> int:
        """The number of outputs, ``out_dim * s_out``."""
        return self.out_dim * self.s[1]

    @property
    def b2(self) -> float:
        """``b_std ** 2`` (0 without a bias)."""
        return 0.0 if self.b_std is None else self.b_std**2

    def __str__(self) -> str:
        b = "None" if self.b_std is None else _num(self.b_std)
        return (
            f"Dense({self.out_dim}, W_std={_num(self.w_std)}, b_std={b}, "
            f"parameterization={self.parameterization!r}"
            + ("" if self.s == (1, 1) else f", s={self.s}")
            + ")"
        )


@dataclass(frozen=True)
class Nonlinearity:
    """An elementwise activation.

    Attributes:
        activation: The activation ``sigma``.
        label: Its neural-tangents spelling, e.g. ``"Erf(1.0, 2.0, 0.0)"``.
        zero_ntk: True for activations whose derivative is zero almost everywhere
            (``Sign``): as in neural-tangents and in a finite network trained by gradient
            descent, no gradient passes through them, so the NTK restarts from zero.
    """

    activation: Activation
    label: str
    zero_ntk: bool = False

    def __str__(self) -> str:
        return self.label


@dataclass(frozen=True)
class LayerNorm:
    """Normalisation over the features: ``(x - mean(x)) / sqrt(var(x) + eps)``.

    Its kernel map divides the covariance by the square roots of the (``eps``-shifted)
    variances, ``K(x, x') / sqrt((eps + K(x, x)) (eps + K(x', x')))``, and the NTK likewise.
    """

    eps: float = 1e-12

    def __post_init__(self) -> None:
        object.__setattr__(self, "eps", finite_real("LayerNorm eps", self.eps, minimum=0.0))

    def __str__(self) -> str:
        return f"LayerNorm(eps={_num(self.eps)})"


@dataclass(frozen=True)
class Dropout:
    """neural-tangents' ``Dropout(rate, mode)``: ``rate`` is the probability of *keeping* a unit.

    In ``"train"`` mode a finite network multiplies each unit by an independent mask,
    ``m / rate`` with ``m ~ Bernoulli(rate)``, drawn afresh for every input; in ``"test"``
    mode it is the identity. The infinite-width limit of ``"train"`` (neural-tangents'):
    an input paired with *itself* (the same example, the same mask) has its covariance and
    NTK multiplied by ``1 / rate``; two different examples (independent masks) keep theirs.
    The output is no longer Gaussian, so an activation or a LayerNorm needs a Dense layer
    after the dropout.
    """

    rate: float
    mode: str = "train"

    def __post_init__(self) -> None:
        r = finite_real("Dropout rate", self.rate)
        if not 0.0 < r <= 1.0:
            raise InputError(
                f"Dropout rate is the probability of keeping a unit: it must be in (0, 1], "
                f"got {self.rate!r}"
            )
        object.__setattr__(self, "rate", r)
        if self.mode not in DROPOUT_MODES:
            raise InputError(
                f"Dropout mode must be one of {', '.join(DROPOUT_MODES)}, got {self.mode!r}"
            )

    def __str__(self) -> str:
        return f"Dropout({_num(self.rate)}, mode={self.mode!r})"


@dataclass(frozen=True)
class Identity:
    """The identity layer."""

    def __str__(self) -> str:
        return "Identity()"


@dataclass(frozen=True)
class FanOut:
    """``n`` copies of the input, for branches (residual blocks)."""

    n: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", positive_int("FanOut num", self.n))

    def __str__(self) -> str:
        return f"FanOut({self.n})"


@dataclass(frozen=True)
class FanInSum:
    """The sum of the branches' outputs."""

    def __str__(self) -> str:
        return "FanInSum()"


@dataclass(frozen=True)
class FanInConcat:
    """The branches' outputs concatenated along the features (neural-tangents' ``FanInConcat``).

    For fully connected networks only the feature axis is meaningful: ``axis`` is -1 (or
    1, the same axis of ``(batch, features)`` inputs; stored as -1). Its infinite-width
    kernels are the branches' kernels averaged with their widths as weights (the next
    Dense layer sums over all features), ``sum_i n_i K_i / sum_i n_i``; the features are
    Gaussian with a different covariance per branch, so only a Dense layer (or a
    ``Dropout``, another ``FanInConcat``) may take them, as in neural-tangents.
    """

    axis: int = -1

    def __post_init__(self) -> None:
        a = self.axis
        if isinstance(a, bool) or not isinstance(a, numbers.Integral) or a not in (-1, 1):
            raise InputError(
                "FanInConcat concatenates the features of fully connected networks: axis "
                f"must be -1 (or 1, the same axis of (batch, features) inputs), got {a!r} "
                "(axis 0 would concatenate the batch, which has no infinite-width kernel here)"
            )
        object.__setattr__(self, "axis", -1)

    def __str__(self) -> str:
        return f"FanInConcat(axis={self.axis})"


@dataclass(frozen=True)
class Serial:
    """Layers applied one after another."""

    layers: tuple[Net, ...]

    def __str__(self) -> str:
        return "serial(" + ", ".join(map(str, self.layers)) + ")"


@dataclass(frozen=True)
class Parallel:
    """One branch per element of a list of inputs (after a :class:`FanOut`)."""

    branches: tuple[Net, ...]

    def __post_init__(self) -> None:
        if not self.branches:
            raise InputError("parallel needs at least one layer")

    def __str__(self) -> str:
        return "parallel(" + ", ".join(map(str, self.branches)) + ")"


@dataclass(frozen=True)
class Repeat:
    """``layer`` applied ``n`` times (neural-tangents' ``stax.repeat``)."""

    layer: Net
    n: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", positive_int("repeat n", self.n, minimum=0))

    def __str__(self) -> str:
        return f"repeat({self.layer}, {self.n})"


#: A network description: a layer or a combination of them.
Net: TypeAlias = (
    Dense
    | Nonlinearity
    | LayerNorm
    | Dropout
    | Identity
    | FanOut
    | FanInSum
    | FanInConcat
    | Serial
    | Parallel
    | Repeat
)


def as_description(obj: Any) -> Net | None:
    """The description held by ``obj``, or None if it holds none.

    Accepts a description itself, anything with a ``description`` attribute that is one (a
    ``ntksym.stax`` layer) and a ``(init_fn, apply_fn, kernel_fn)`` triple whose
    ``kernel_fn`` carries one (as ``net``), so that the evaluators below ``stax`` can take
    its layers without importing it.
    """
    if isinstance(obj, Net):
        return obj
    found = getattr(obj, "description", None)
    if isinstance(found, Net):
        return found
    if isinstance(obj, tuple) and len(obj) == 3:
        found = getattr(obj[2], "net", None)
        if isinstance(found, Net):
            return found
    return None
