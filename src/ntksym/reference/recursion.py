"""The NNGP/NTK recursion of a fully connected network in mpmath (one pair or a Gram matrix)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np

from ntksym.activations import Activation
from ntksym.architecture.description import as_description
from ntksym.errors import InputError
from ntksym.reference.architecture import described_kernel
from ntksym.reference.convert import (
    GUARD_DIGITS,
    LAYER_GUARD_DIGITS,
    ActivationLike,
    as_activation,
    check_depth,
    check_dps,
    check_method,
    check_std,
    matrix,
    to_float,
    vector,
)
from ntksym.reference.duals import dual

__all__ = ["Recursion", "recursion", "kernel"]


mp = mpmath.mp


# --------------------------------------------------------------------------- recursion
@dataclass(frozen=True)
class Recursion:
    """The NNGP/NTK recursion for one pair of inputs, in mpmath.

    Attributes:
        sigma: ``Sigma^(l)(x, x')`` for ``l = 1..L`` (``sigma[-1]`` is the NNGP).
        sigma_dot: ``Sigmadot^(l)(x, x')`` for ``l = 2..L`` (empty when ``L = 1``).
        theta: ``Theta^(l)(x, x')`` for ``l = 1..L`` (``theta[-1]`` is the NTK).
        var1: ``Sigma^(l)(x, x)`` for ``l = 1..L``.
        var2: ``Sigma^(l)(x', x')`` for ``l = 1..L``.
        dps: Decimal digits of every entry.
    """

    sigma: list
    sigma_dot: list
    theta: list
    var1: list
    var2: list
    dps: int


def _inner(x: list[Any], y: list[Any]) -> Any:
    with mpmath.workprec(2 * mp.prec + 64):
        return mpmath.fsum(a * b for a, b in zip(x, y, strict=True))


class _Layer:
    """Dual maps with the layer scales applied, at ``dps`` (the caller's plus 5) digits."""

    def __init__(self, act: Activation, w2: Any, b2: Any, dps: int, method: str) -> None:
        self.act, self.w2, self.b2, self.dps, self.method = act, w2, b2, dps, method

    def _dual(self, s11: Any, s12: Any, s22: Any, derivative: bool) -> Any:
        return dual(
            self.act, s11, s12, s22, dps=self.dps, derivative=derivative, method=self.method
        )

    def nngp(self, s11: Any, s12: Any, s22: Any) -> Any:
        return self.w2 * self._dual(s11, s12, s22, False) + self.b2

    def dot(self, s11: Any, s12: Any, s22: Any) -> Any:
        return self.w2 * self._dual(s11, s12, s22, True)


def _first_layer(x: list[Any], y: list[Any], w2: Any, b2: Any) -> Any:
    return w2 * _inner(x, y) / len(x) + b2


def _diagonal_chain(layer: _Layer, x: list[Any], depth: int) -> list[Any]:
    var = [_first_layer(x, x, layer.w2, layer.b2)]
    for _ in range(depth - 1):
        var.append(layer.nngp(var[-1], var[-1], var[-1]))
    return var


def _pair_chain(
    layer: _Layer,
    x1: list[Any],
    x2: list[Any],
    var1: list[Any],
    var2: list[Any],
    ntk: bool = True,
) -> tuple[list[Any], list[Any], list[Any]]:
    sigma = [_first_layer(x1, x2, layer.w2, layer.b2)]
    theta = [sigma[0]]
    sigma_dot = []
    for level in range(len(var1) - 1):
        s11, s12, s22 = var1[level], sigma[-1], var2[level]
        sigma.append(layer.nngp(s11, s12, s22))
        if ntk:
            sigma_dot.append(layer.dot(s11, s12, s22))
            theta.append(theta[-1] * sigma_dot[-1] + sigma[-1])
    return sigma, sigma_dot, theta


def _setup(
    activation: ActivationLike, depth: Any, dps: Any, method: Any
) -> tuple[Activation, int, int, str]:
    return as_activation(activation), check_depth(depth), check_dps(dps), check_method(method)


def recursion(
    activation: ActivationLike,
    x1: Any,
    x2: Any,
    depth: int,
    bias_std: Any = 0.0,
    weight_std: Any = 1.0,
    *,
    dps: int = 30,
    method: str = "auto",
) -> Recursion:
    """The NNGP/NTK recursion (NTK parameterization) for one pair of inputs, in mpmath.

    ``Sigma^(1) = weight_std^2 x.x'/n0 + bias_std^2`` (from the exact inputs),
    ``Theta^(1) = Sigma^(1)``, and for each further layer
    ``Sigma^(l+1) = weight_std^2 E[sigma(u) sigma(v)] + bias_std^2``,
    ``Sigmadot^(l+1) = weight_std^2 E[sigma'(u) sigma'(v)]``,
    ``Theta^(l+1) = Theta^(l) Sigmadot^(l+1) + Sigma^(l+1)`` with
    ``(u, v) ~ N(0, Sigma^(l))`` on the pair (Jacot et al. 2018, Thm. 1).

    Args:
        activation: A registered name, a user expression or an Activation.
        x1: First input, a 1-D vector of finite reals.
        x2: Second input, same length.
        depth: Number of affine layers ``L >= 1``.
        bias_std: Bias scale ``beta >= 0``.
        weight_std: Weight scale ``>= 0``.
        dps: Decimal digits (15..1000).
        method: How each dual kernel is computed (see :func:`dual`).

    Returns:
        A :class:`Recursion` with every level rounded to ``dps`` digits.

    Raises:
        InputError: Bad vectors, depth, scales, dps or method.
    """
    act, depth, dps, method = _setup(activation, depth, dps, method)
    with mp.workdps(dps + GUARD_DIGITS):
        v1 = vector(x1, "x1")
        v2 = vector(x2, "x2")
        if len(v1) != len(v2):
            raise InputError(f"x1 and x2 must have the same length, got {len(v1)} and {len(v2)}")
        w = check_std(weight_std, "weight_std")
        b = check_std(bias_std, "bias_std")
        layer = _Layer(act, w * w, b * b, dps + LAYER_GUARD_DIGITS, method)
        var1 = _diagonal_chain(layer, v1, depth)
        var2 = _diagonal_chain(layer, v2, depth)
        sigma, sigma_dot, theta = _pair_chain(layer, v1, v2, var1, var2)
    with mp.workdps(dps):
        s, sd, th, v1r, v2r = ([+x for x in seq] for seq in (sigma, sigma_dot, theta, var1, var2))
    return Recursion(s, sd, th, v1r, v2r, dps=dps)


def kernel(
    activation: ActivationLike | Any,
    X1: Any,
    X2: Any = None,
    *,
    depth: int | None = None,
    bias_std: Any = None,
    weight_std: Any = None,
    dps: int = 30,
    method: str = "auto",
    ntk: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """NNGP and NTK Gram matrices computed in mpmath and rounded to float64.

    Meant as a referee for small ``N``: every entry runs the full recursion
    (the diagonal chains ``Sigma^(l)(x, x)`` are computed once per row).

    Args:
        activation: A registered name, a user expression or an Activation; or a
            network description (a ``ntksym.stax`` layer, its triple or
            ``layer.description``) with one output, whose kernels
            :func:`ntksym.reference.architecture.reference_kernels` computes (then
            ``depth``, ``bias_std`` and ``weight_std`` must not be given).
        X1: Inputs, shape ``(N1, n0)``, finite reals.
        X2: Inputs, shape ``(N2, n0)``; None means ``X1`` against itself (the
            result is then exactly symmetric).
        depth: Number of affine layers ``L >= 1`` (required with an activation).
        bias_std: Bias scale ``>= 0`` (0 if None).
        weight_std: Weight scale ``>= 0`` (1 if None).
        dps: Decimal digits of the mpmath computation (15..1000).
        method: How each dual kernel is computed (see :func:`dual`).
        ntk: False to skip the NTK (for step and sign, whose NTK is infinite on
            the diagonal); it is then returned as NaN.

    Returns:
        ``(nngp, ntk)``, two float64 arrays of shape ``(N1, N2)``, each entry the
        correctly rounded ``Sigma^(L)`` and ``Theta^(L)``.

    Raises:
        InputError: Bad arrays, depth, scales, dps or method.
    """
    net = as_description(activation)
    if net is not None:
        scales = {"depth": depth, "bias_std": bias_std, "weight_std": weight_std}
        return described_kernel(
            net, X1, X2, dps=check_dps(dps), method=check_method(method), ntk=ntk, **scales
        )
    act, depth, dps, method = _setup(activation, depth, dps, method)
    bias_std = 0.0 if bias_std is None else bias_std
    weight_std = 1.0 if weight_std is None else weight_std
    A = matrix(X1, "X1")
    B = A if X2 is None else matrix(X2, "X2")
    if len(A[0]) != len(B[0]):
        raise InputError(
            f"X1 and X2 must have the same number of columns, got {len(A[0])} and {len(B[0])}"
        )
    nngp = np.empty((len(A), len(B)))
    theta_l = np.full((len(A), len(B)), np.nan)
    with mp.workdps(dps + GUARD_DIGITS):
        w = check_std(weight_std, "weight_std")
        b = check_std(bias_std, "bias_std")
        layer = _Layer(act, w * w, b * b, dps + LAYER_GUARD_DIGITS, method)
        var_a = [_diagonal_chain(layer, x, depth) for x in A]
        var_b = var_a if X2 is None else [_diagonal_chain(layer, x, depth) for x in B]
        for i, x in enumerate(A):
            for j, y in enumerate(B):
                if X2 is None and j < i:
                    nngp[i, j], theta_l[i, j] = nngp[j, i], theta_l[j, i]
                    continue
                sigma, _, theta = _pair_chain(layer, x, y, var_a[i], var_b[j], ntk=ntk)
                nngp[i, j] = to_float(sigma[-1])
                if ntk:
                    theta_l[i, j] = to_float(theta[-1])
    return nngp, theta_l
