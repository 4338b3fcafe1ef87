"""Descriptions of fully connected architectures, below every evaluator.

:mod:`ntksym.architecture.description` holds the immutable layer records a network is
built from (dense layers in either parameterization, nonlinearities, layer
normalisation, residual fan-out/fan-in, serial/parallel/repeat). They depend only on
:mod:`ntksym.activations`, so the kernels, the references, the finite-width networks and
the code generator can all take a description; :mod:`ntksym.stax` is the front end that
builds them with neural-tangents' names.

:mod:`ntksym.architecture.printing` prints a description as mathematics: :func:`latex`
(its layers as equations) and :func:`recursion` (the NNGP/NTK recursion it implies).
"""

from ntksym.architecture.printing import latex, recursion

__all__ = ["latex", "recursion"]
