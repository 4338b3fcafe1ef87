"""Fully connected architectures in neural-tangents' ``stax`` vocabulary.

Change one import: ``from ntksym import stax`` instead of ``from neural_tangents import
stax``. Each function returns ``(init_fn, apply_fn, kernel_fn)``:

* ``kernel_fn(x1, x2=None, get=("nngp", "ntk"))``: the infinite-width kernels on NumPy
  arrays, in float64 from ntksym's stable dual maps (a homogeneous network runs its
  generated kernel, :mod:`ntksym.kernels.architecture`);
* ``init_fn(seed, input_shape)`` and ``apply_fn(params, x)``: the finite-width network in
  NumPy (:mod:`ntksym.empirical.architecture`).

The network behind them is an immutable, hashable description
(:mod:`ntksym.architecture.description`), available as ``layer.description``; the mpmath referee
:func:`reference_kernels` and the Monte-Carlo estimate :func:`monte_carlo` take the same
description. ``docs/architectures.md`` explains the two parameterizations.

Example:
    >>> import numpy as np
    >>> from ntksym import stax
    >>> init_fn, apply_fn, kernel_fn = stax.serial(
    ...     stax.Dense(512, W_std=1.5, b_std=0.1), stax.Relu(), stax.Dense(1, W_std=1.5)
    ... )
    >>> kernel_fn(np.eye(3), get="ntk").shape
    (3, 3)
"""

from ntksym.reference.architecture import reference_kernels
from ntksym.stax.activations import (
    ABRelu,
    Abs,
    Cos,
    Elementwise,
    Erf,
    Exp,
    Gaussian,
    Gelu,
    LeakyRelu,
    Monomial,
    Rbf,
    RectifiedMonomial,
    Relu,
    Sigmoid_like,
    Sign,
    Sin,
)
from ntksym.stax.layers import (
    Dense,
    Dropout,
    FanInConcat,
    FanInSum,
    FanOut,
    Identity,
    Layer,
    LayerNorm,
    parallel,
    repeat,
    serial,
)
from ntksym.stax.montecarlo import MonteCarlo, monte_carlo

__all__ = [
    "ABRelu",
    "Abs",
    "Cos",
    "Dense",
    "Dropout",
    "Elementwise",
    "Erf",
    "Exp",
    "FanInConcat",
    "FanInSum",
    "FanOut",
    "Gaussian",
    "Gelu",
    "Identity",
    "Layer",
    "LayerNorm",
    "LeakyRelu",
    "Monomial",
    "RectifiedMonomial",
    "MonteCarlo",
    "Rbf",
    "Relu",
    "Sigmoid_like",
    "Sign",
    "Sin",
    "monte_carlo",
    "parallel",
    "reference_kernels",
    "repeat",
    "serial",
]
