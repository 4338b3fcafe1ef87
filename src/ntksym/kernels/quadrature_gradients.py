"""Hyperparameter derivatives for activations without a closed form, by a differentiated quadrature.

For smooth activations (tanh, sigmoid, softplus, SiLU, smooth user expressions) the partial
derivatives of a dual map ``E[f(u) g(v)]`` in the covariance entries are themselves
expectations (Price's theorem and the heat equation of the Gaussian density):

    d/ds12 E[f(u) g(v)] = E[f'(u) g'(v)],
    d/ds11 E[f(u) g(v)] = E[f''(u) g(v)] / 2,      d/ds22 = E[f(u) g''(v)] / 2,

so with ``f = g = sigma`` (the nngp map) and ``f = g = sigma'`` (the ntk map) every partial the
forward-mode recursion needs is an expectation of derivatives of sigma up to the third, which
SymPy derives. All of them are integrated by one tensor trapezoid rule (``u = sqrt(s11) x``,
``v = (s12/sqrt(s11)) x + sqrt(det/s11) y``, the step set by the largest variance, see
:func:`_rule`), the values of every layer too, so the derivatives are those of one smooth
approximation of the kernel. Accuracy is that of the rule (``tests/test_gradients.py``
measures it against the mpmath reference).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import sympy as sp

from ntksym.activations import Activation, u
from ntksym.activations.overflow import exp_safe
from ntksym.dual.family import ERF, numpy_function
from ntksym.errors import InputError
from ntksym.kernels.api import Kernel

__all__ = ["MAX_HALF_NODES", "quadrature_gradients"]

#: The rule spans ``|x| <= _SPAN`` standard deviations (the Gaussian weight is 1e-18 there).
_SPAN = 9.0
#: Most nodes on each side of 0 (the rule then loses accuracy for variances above ~ 1e2).
MAX_HALF_NODES = 400
#: Pairs per block (the rule's temporaries are its number of nodes times this).
_BLOCK = 1 << 12


@cache
def _derivatives(act: Activation) -> tuple[Callable[[Any], Any], ...]:
    """sigma, sigma', sigma'', sigma''' as NumPy functions (overflow-safe where possible)."""
    if act.has_distributional_derivative:
        raise InputError(
            f"gradients of {act.name!r} need a pointwise derivative; its derivative has a "
            "Dirac delta"
        )
    out = []
    for n in range(4):
        expr = exp_safe(sp.diff(act.expr, u, n), u)
        fn = numpy_function(u, expr, ERF)
        out.append(lambda x, fn=fn: np.broadcast_to(fn(x), np.shape(x)))
    return tuple(out)


@cache
def _trapezoid(half: int) -> tuple[np.ndarray, np.ndarray]:
    h = _SPAN / half
    x = h * np.arange(-half, half + 1)
    return x, h * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)


def _rule(smax: float) -> tuple[np.ndarray, np.ndarray]:
    """A trapezoid rule for ``E[F(x)]``, ``x ~ N(0, 1)``, fine enough for variances <= smax.

    sigma(sqrt(S) x) has its complex singularities (tanh: poles at ``i pi/2``) at a distance
    ``d ~ pi / (2 sqrt(S))`` from the real axis, and the trapezoid rule's error falls like
    ``exp(-2 pi d / h)`` (Trefethen & Weideman, SIAM Review 56, 2014); the step
    ``h = pi / (16 sqrt(S))`` makes it ~ 1e-16 with room for the higher-order poles of the
    derivatives, with at most :data:`MAX_HALF_NODES` nodes on each side.
    """
    half = math.ceil(_SPAN * 16 * math.sqrt(max(smax, 1.0)) / math.pi)
    return _trapezoid(min(max(half, 24), MAX_HALF_NODES))


#: ``(f, g)`` derivative orders of the expectations one layer needs.
_PAIRS = ((0, 0), (1, 1), (2, 0), (0, 2), (2, 2), (3, 1), (1, 3))


def _expectations(
    fns: tuple[Callable[[Any], Any], ...], s11: np.ndarray, s12: np.ndarray, s22: np.ndarray
) -> dict[tuple[int, int], np.ndarray]:
    """``E[sigma^(i)(u) sigma^(j)(v)]`` for every ``(i, j)`` in :data:`_PAIRS` (1-D inputs)."""
    x, w = _rule(float(max(np.max(s11), np.max(s22))))
    pos = s11 > 0
    a = np.sqrt(s11)
    b = np.where(pos, s12 / np.where(pos, a, 1.0), 0.0)
    det = np.maximum(s11 * s22 - s12 * s12, 0.0)
    c = np.where(pos, np.sqrt(det / np.where(pos, s11, 1.0)), np.sqrt(s22))
    out = {p: np.zeros_like(s11) for p in _PAIRS}
    for xi, wi in zip(x, w, strict=True):
        v = (b * xi)[:, None] + c[:, None] * x[None, :]
        inner = [fns[j](v) @ w for j in range(4)]
        outer = [fns[i](a * xi) for i in range(4)]
        for i, j in _PAIRS:
            out[(i, j)] += wi * outer[i] * inner[j]
    return out


def _diag_chain(
    fns: tuple[Callable[[Any], Any], ...], sq: np.ndarray, n0: int, kern: Kernel
) -> tuple[np.ndarray, np.ndarray]:
    """Diagonal variances and their derivatives in (b2, w2): ``g(S) = E[sigma(u)^2]``."""
    w2, b2 = kern.weight_std**2, kern.bias_std**2
    V = np.empty((kern.depth, sq.size))
    dV = np.empty((kern.depth, sq.size, 2))
    V[0] = w2 / n0 * sq + b2
    dV[0] = np.stack([np.ones_like(sq), sq / n0], axis=-1)
    for layer in range(1, kern.depth):
        x, w = _rule(float(np.max(V[layer - 1])))
        z = np.sqrt(V[layer - 1])[:, None] * x[None, :]
        s0, s1, s2 = (fns[n](z) for n in range(3))
        g = (s0 * s0) @ w
        gp = (s1 * s1 + s0 * s2) @ w  # d/dS E[sigma(sqrt(S) x)^2]
        V[layer] = w2 * g + b2
        dV[layer] = w2 * gp[:, None] * dV[layer - 1]
        dV[layer, :, 0] += 1.0
        dV[layer, :, 1] += g
    return V, dV


def _pairs(
    fns: tuple[Callable[[Any], Any], ...],
    kern: Kernel,
    g: np.ndarray,
    n0: int,
    chains: tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """NNGP, NTK and their derivatives in (b2, w2) for flat pairs (row chain, column chain)."""
    (V1, dV1), (V2, dV2) = chains
    w2, b2 = kern.weight_std**2, kern.bias_std**2
    s12 = w2 / n0 * g + b2
    ds12 = np.stack([np.ones_like(g), g / n0], axis=-1)
    theta, dtheta = s12.copy(), ds12.copy()
    onehot = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    for layer in range(1, kern.depth):
        E = _expectations(fns, V1[layer - 1], s12, V2[layer - 1])
        ds11, ds22 = dV1[layer - 1], dV2[layer - 1]
        de = E[(1, 1)][:, None] * ds12 + (E[(2, 0)][:, None] * ds11 + E[(0, 2)][:, None] * ds22) / 2
        ded = (
            E[(2, 2)][:, None] * ds12 + (E[(3, 1)][:, None] * ds11 + E[(1, 3)][:, None] * ds22) / 2
        )
        new = w2 * E[(0, 0)] + b2
        dnew = w2 * de + onehot[0] + E[(0, 0)][:, None] * onehot[1]
        sd = w2 * E[(1, 1)]
        dsd = w2 * ded + E[(1, 1)][:, None] * onehot[1]
        dtheta = dtheta * sd[:, None] + theta[:, None] * dsd + dnew
        theta = theta * sd + new
        s12, ds12 = new, dnew
    return s12, theta, ds12, dtheta


def quadrature_gradients(
    kern: Kernel, A: np.ndarray, B: np.ndarray | None, need_ntk: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The kernel and its derivatives in (bias_std, weight_std) by the differentiated rule.

    Args:
        kern: The kernel (a smooth activation).
        A: Checked inputs, shape (N1, d).
        B: Checked inputs, shape (N2, d), or None for A against itself.
        need_ntk: The NTK (else the NNGP).

    Returns:
        ``(K, dK)`` as in :func:`ntksym.kernels.gradients.kernel_gradients`.

    Raises:
        InputError: The activation's derivative is not pointwise (step-like).
    """
    fns = _derivatives(kern.activation)
    same = B is None
    B = A if B is None else B
    n0 = A.shape[1]
    chain1 = _diag_chain(fns, np.einsum("ij,ij->i", A, A), n0, kern)
    chain2 = chain1 if same else _diag_chain(fns, np.einsum("ij,ij->i", B, B), n0, kern)
    if same:  # one triangle, mirrored below
        ii, jj = np.triu_indices(A.shape[0])
    else:
        ii, jj = (x.ravel() for x in np.indices((A.shape[0], B.shape[0])))
    value = np.empty(ii.size)
    grad = np.empty((ii.size, 2))
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        for s in range(0, ii.size, _BLOCK):
            i, j = ii[s : s + _BLOCK], jj[s : s + _BLOCK]
            g = np.einsum("ij,ij->i", A[i], B[j])
            rows = (chain1[0][:, i], chain1[1][:, i])
            cols = (chain2[0][:, j], chain2[1][:, j])
            s12, theta, ds12, dtheta = _pairs(fns, kern, g, n0, (rows, cols))
            value[s : s + _BLOCK] = theta if need_ntk else s12
            grad[s : s + _BLOCK] = dtheta if need_ntk else ds12
    K = np.empty((A.shape[0], B.shape[0]))
    dK = np.empty((A.shape[0], B.shape[0], 2))
    K[ii, jj], dK[ii, jj] = value, grad
    if same:
        K[jj, ii], dK[jj, ii] = value, grad
    dK *= 2 * np.array([kern.bias_std, kern.weight_std])
    return K, dK
