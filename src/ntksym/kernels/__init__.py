"""Infinite-width NNGP and NTK Gram matrices: ``ntksym.kernel("relu", depth=3)``.

:mod:`~ntksym.kernels.api` holds :class:`Kernel` and :func:`kernel`;
:mod:`~ntksym.kernels.dispatch` picks the generated module;
:mod:`~ntksym.kernels.dual_path` runs the recursion on the dual maps; :mod:`~ntksym.kernels.tiles`
writes Gram matrices too large for memory to ``.npy`` files block by block.
"""

from ntksym.kernels.api import BACKENDS, GET_OPTIONS, Kernel, Kernels, kernel, validate_inputs

__all__ = ["Kernel", "Kernels", "kernel", "validate_inputs", "GET_OPTIONS", "BACKENDS"]
