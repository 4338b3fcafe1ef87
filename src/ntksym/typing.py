"""Type aliases shared by ntksym's public functions.

Import them for annotations of code that calls ntksym::

    from ntksym.typing import ActivationLike, ArrayLike
"""

from __future__ import annotations

from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt
import sympy as sp

from ntksym.activations import Activation

__all__ = ["ActivationLike", "ArrayLike", "Backend", "KernelName", "Verdict"]

#: An activation: a registered name (``"relu"``), an expression string in ``u``
#: (``"tanh(2*u)"``), a SymPy expression in :data:`ntksym.activations.u`, or an
#: :class:`~ntksym.activations.Activation`.
ActivationLike: TypeAlias = str | Activation | sp.Expr

#: Real input data: anything NumPy turns into a float64 array (rows are inputs).
ArrayLike: TypeAlias = npt.ArrayLike | np.ndarray

#: How a Gram matrix is computed (see :func:`ntksym.kernel`).
Backend: TypeAlias = Literal["auto", "numba", "numpy", "dual"]

#: Which infinite-width kernel: the NNGP (the covariance of the Gaussian process) or the NTK.
KernelName: TypeAlias = Literal["nngp", "ntk"]

#: A derivation step's verdict.
Verdict: TypeAlias = Literal["assumed", "verified", "misprint", "failed", "error", "unchecked"]
