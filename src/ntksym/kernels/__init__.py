"""Infinite-width NNGP and NTK Gram matrices: ``ntksym.kernel("relu", depth=3)``.

:mod:`~ntksym.kernels.api` holds :class:`Kernel` and the homogeneous :func:`kernel`;
:mod:`~ntksym.kernels.described` the public :func:`kernel`, which also takes a network
description (:mod:`~ntksym.kernels.architecture` evaluates it);
:mod:`~ntksym.kernels.dispatch` picks the generated module;
:mod:`~ntksym.kernels.dual_path` runs the recursion on the dual maps; :mod:`~ntksym.kernels.tiles`
writes Gram matrices too large for memory to ``.npy`` files block by block.
"""

from ntksym.kernels.api import BACKENDS, GET_OPTIONS, Kernel, Kernels, validate_inputs
from ntksym.kernels.described import DescribedKernel, kernel

__all__ = [
    "Kernel",
    "Kernels",
    "DescribedKernel",
    "kernel",
    "validate_inputs",
    "GET_OPTIONS",
    "BACKENDS",
]
