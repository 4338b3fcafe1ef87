"""Exact derivatives of the NNGP and NTK with respect to ``bias_std`` and ``weight_std``.

Forward mode through the recursion of :mod:`ntksym.kernels.api`. With ``w2 = weight_std^2``,
``b2 = bias_std^2`` and ``p`` either of them, every layer carries the value and the derivative
in ``p`` of the pair's covariance ``S12``, its determinant ``D``, the diagonal variances and the
NTK ``Theta``:

    dS12' = [p = w2] E + w2 dE + [p = b2],          E  = E[sigma(u) sigma(v)],
    dSd'  = [p = w2] Ed + w2 dEd,                   Ed = E[sigma'(u) sigma'(v)],
    dTheta' = dTheta Sd' + Theta dSd' + dS12',

where ``dE`` is the chain rule through the layer map's partial derivatives with respect to
``S11, S22, S12, D`` (and the root gap or the clipped correlation some maps read), derived by
SymPy from the same forms the generated kernels print (:mod:`ntksym.kernels.partials`). ``D``
is a variable of its own: at layer 1, ``D = c^2 G + c b2 |x - x'|^2`` with ``c = w2/n0`` and
``G = |x|^2 |x'|^2 - (x.x')^2`` (Lagrange), so ``dD/dc = 2 c G + b2 |x - x'|^2`` and
``dD/db2 = c |x - x'|^2``, sums of non-negative terms; deeper layers differentiate the stable
determinant maps. Nothing subtracts nearly equal numbers for nearly parallel pairs.

Activations without a closed form (tanh, sigmoid, softplus, SiLU, smooth user expressions) get
their derivatives from a differentiated quadrature (:mod:`ntksym.kernels.quadrature_gradients`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ntksym.errors import InputError, NoClosedFormError
from ntksym.kernels.api import Kernel, parse_get, validate_inputs
from ntksym.kernels.finite import check_cost
from ntksym.kernels.gradients_compiled import compiled_layer, gradient_rows, mirror
from ntksym.kernels.partials import Partials, layer_partials
from ntksym.kernels.quadrature_gradients import quadrature_gradients

__all__ = ["PARAMETERS", "kernel_gradients"]

#: The hyperparameters, in the order of the last axis of the gradients.
PARAMETERS = ("bias_std", "weight_std")


def _diag_chain(
    pm: Partials, sq: np.ndarray, n0: int, depth: int, w2: float, b2: float
) -> tuple[np.ndarray, np.ndarray]:
    """Diagonal variances ``V[l]`` and their derivatives ``dV[l, :, p]`` in (b2, w2)."""
    V = np.empty((depth, sq.size))
    dV = np.empty((depth, sq.size, 2))
    V[0] = w2 / n0 * sq + b2
    dV[0, :, 0] = 1.0
    dV[0, :, 1] = sq / n0
    with np.errstate(all="ignore"):
        for layer in range(1, depth):
            g = np.broadcast_to(pm.diag(V[layer - 1]), sq.shape)
            gp = np.broadcast_to(pm.diag_prime(V[layer - 1]), sq.shape)
            V[layer] = w2 * g + b2
            chain = w2 * np.where(dV[layer - 1] == 0, 0.0, gp[:, None] * dV[layer - 1])
            dV[layer] = chain
            dV[layer, :, 0] += 1.0
            dV[layer, :, 1] += g
    return V, dV


def kernel_gradients(
    kern: Kernel, X1: Any, X2: Any = None, get: str = "ntk"
) -> tuple[np.ndarray, np.ndarray]:
    """A Gram matrix and its derivatives with respect to ``bias_std`` and ``weight_std``.

    Args:
        kern: The kernel (activation, depth, scales).
        X1: Inputs, shape (N1, d).
        X2: Inputs, shape (N2, d); None means X1 against itself.
        get: ``"nngp"`` or ``"ntk"``.

    Returns:
        ``(K, dK)``: ``K`` of shape (N1, N2) and ``dK`` of shape (N1, N2, 2) holding
        ``dK/d bias_std`` and ``dK/d weight_std`` (the order of :data:`PARAMETERS`).

    Raises:
        InputError: Bad inputs or ``get``, or an NTK that is infinite for this activation.
    """
    wanted = parse_get(get)
    if len(wanted) != 1:
        raise InputError(f"get must be 'nngp' or 'ntk' for gradients, got {get!r}")
    need_ntk = wanted[0] == "ntk"
    A, B = validate_inputs(X1, X2)
    check_cost(A.shape[0], None if B is None else B.shape[0], kern.depth)
    try:
        pm = layer_partials(kern.activation)
    except NoClosedFormError:
        return quadrature_gradients(kern, A, B, need_ntk)
    if need_ntk and not pm.has_ntk:
        raise InputError(
            f"the NTK of {kern.activation.name!r} is infinite for coincident inputs (its "
            "derivative is a Dirac delta); ask for get='nngp'"
        )
    value, grad = _recursion(pm, kern, A, B, need_ntk)
    # d/d beta = 2 beta d/d b2 and d/d sigma_w = 2 sigma_w d/d w2
    grad *= 2 * np.array([kern.bias_std, kern.weight_std])
    return value, grad


def _recursion(
    pm: Partials, kern: Kernel, A: np.ndarray, B: np.ndarray | None, need_ntk: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The recursion, compiled per entry (every layer); derivatives in (b2, w2)."""
    same = B is None
    B = A if B is None else B
    n0, w2, b2 = A.shape[1], kern.weight_std**2, kern.bias_std**2
    sq1, sq2 = np.einsum("ij,ij->i", A, A), np.einsum("ij,ij->i", B, B)
    chains = [_column_chain(pm, sq1, n0, kern.depth, w2, b2)]
    chains.append(chains[0] if same else _column_chain(pm, sq2, n0, kern.depth, w2, b2))
    value = A @ B.T  # the Gram product, read by each chunk of a row before it is overwritten
    inputs = (A, B, np.sqrt(sq1), np.sqrt(sq2), value)
    grad = np.empty((A.shape[0], B.shape[0], 2))
    columns = compiled_layer(kern.activation)
    flags = (need_ntk, 0 if same else -1)
    with np.errstate(all="ignore"):
        gradient_rows(
            columns, kern.depth, inputs, tuple(chains), (w2 / n0, w2, b2), flags, value, grad
        )
    if same:  # the loop filled the upper triangle
        mirror(value, grad)
    return value, grad


def _column_chain(
    pm: Partials, sq: np.ndarray, n0: int, depth: int, w2: float, b2: float
) -> tuple[np.ndarray, ...]:
    """``(V, R, H, dV)``: the chain, its roots, ``1/(2R)`` (0 at R = 0), dV as (depth, 2, n)."""
    V, dV = _diag_chain(pm, sq, n0, depth, w2, b2)
    R = np.sqrt(V)
    with np.errstate(divide="ignore"):
        H = np.where(R > 0, 0.5 / R, 0.0)
    return V, R, H, np.ascontiguousarray(dV.transpose(0, 2, 1))
