"""The Jacobian of a described finite network by forward-mode differentiation.

The parameters of :mod:`ntksym.empirical.architecture` (a tree of tuples with one
``(W, b)`` pair per Dense layer) are flattened in the order in which the forward pass
meets the Dense layers (``serial`` left to right, the copies of ``repeat`` in turn, the
branches of ``parallel`` in order): for each layer ``W`` row-major (shape ``(n_in,
width)``, index ``i * width + o``), then ``b`` (``width`` entries; none without a bias).
:func:`flatten` and :func:`unflatten` convert between the tree and that vector.

:func:`jacobian` pushes the tangent ``d y / d theta`` forward through the layers, an
algorithm independent of the reverse mode of
:func:`ntksym.empirical.architecture.empirical_kernels`. Dropout masks in ``"train"``
mode are drawn from the given generator in the forward pass's order, one per input and
unit, exactly as :func:`ntksym.empirical.architecture.apply` draws them, so the same
seed gives the same masks (and ``J J^T`` is the NTK of that draw).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ntksym.architecture.description import (
    Dense,
    Dropout,
    FanInConcat,
    FanInSum,
    FanOut,
    Identity,
    LayerNorm,
    Net,
    Nonlinearity,
    Parallel,
)
from ntksym.architecture.leaves import sequence
from ntksym.errors import InputError

__all__ = ["MAX_JACOBIAN_ENTRIES", "flatten", "unflatten", "jacobian"]

#: Bound, in float64 entries, on one tangent array (2**27 entries = 1 GiB).
MAX_JACOBIAN_ENTRIES = 2**27


def _arrays(params: Any) -> list[np.ndarray]:
    """The parameter arrays in the flattening order (see the module docstring)."""
    if isinstance(params, np.ndarray):
        return [params]
    if isinstance(params, (tuple, list)):
        return [a for p in params if p is not None for a in _arrays(p)]
    return []


def flatten(params: Any) -> np.ndarray:
    """All parameters as one float64 vector, in the documented order."""
    arrays = _arrays(params)
    return np.concatenate([a.ravel() for a in arrays]) if arrays else np.zeros(0)


def unflatten(params: Any, theta: Any) -> Any:
    """A parameter tree shaped like ``params`` holding the vector ``theta``.

    Raises:
        InputError: ``theta`` is not a vector of the number of parameters.
    """
    theta = np.asarray(theta, dtype=np.float64)
    size = sum(a.size for a in _arrays(params))
    if theta.shape != (size,):
        raise InputError(f"theta must be a vector of the {size} parameters, got {theta.shape}")
    offset = 0

    def rebuild(p: Any) -> Any:
        nonlocal offset
        if isinstance(p, np.ndarray):
            out = theta[offset : offset + p.size].reshape(p.shape).copy()
            offset += p.size
            return out
        if isinstance(p, (tuple, list)):
            return tuple(rebuild(q) for q in p)
        return p

    return rebuild(params)


class _Forward:
    """Forward mode: ``run`` maps (output, tangent) of one layer to the next's.

    A tangent is ``d y / d theta`` of shape (N, width, P), or None where it is zero.
    """

    def __init__(self, n_params: int, rng: np.random.Generator | None) -> None:
        self.n_params, self.rng, self.offset = n_params, rng, 0

    def run(self, net: Net, params: Any, x: Any, t: Any) -> tuple[Any, Any]:
        layers = sequence(net)
        if layers is not None:
            for layer, p in zip(layers, params, strict=True):
                x, t = self.run(layer, p, x, t)
            return x, t
        if isinstance(net, Parallel):
            pairs = [
                self.run(b, p, *xt) for b, p, *xt in zip(net.branches, params, x, t, strict=True)
            ]
            return [y for y, _ in pairs], [dy for _, dy in pairs]
        if isinstance(net, FanOut):
            return [x] * net.n, [t] * net.n
        if isinstance(net, FanInSum):
            live = [dt for dt in t if dt is not None]
            return sum(x[1:], x[0]), (sum(live[1:], live[0]) if live else None)
        if isinstance(net, FanInConcat):
            return np.concatenate(x, axis=-1), self._concat_tangents(x, t)
        if isinstance(net, Identity):
            return x, t
        if isinstance(net, Dense):
            return self._dense(net, params, x, t)
        if isinstance(net, Dropout):
            return self._dropout(net, x, t)
        if isinstance(net, Nonlinearity):
            y = net.activation.numpy(x)
            if t is None or net.zero_ntk:  # (no gradient passes a zero-NTK activation)
                return y, None
            return y, net.activation.numpy_derivative(x)[:, :, None] * t
        if isinstance(net, LayerNorm):
            return _layer_norm(net, x, t)
        raise InputError(f"not a layer of ntksym.stax: {net!r}")

    def _dense(self, net: Dense, params: Any, x: np.ndarray, t: Any) -> tuple[Any, Any]:
        W, b = params
        n, (n_in, width) = x.shape[0], W.shape
        if n * width * self.n_params > MAX_JACOBIAN_ENTRIES:
            raise InputError(
                f"an explicit Jacobian of {n} inputs, {width} units and {self.n_params} "
                f"parameters needs {n * width * self.n_params} entries (limit "
                f"{MAX_JACOBIAN_ENTRIES}); use Network.ntk, which never forms it"
            )
        if net.parameterization == "ntk":
            c, cb = net.w_std / np.sqrt(n_in), net.b_std
        else:
            c, cb = 1.0 / np.sqrt(net.s[0]), 1.0
        y = c * (x @ W) + (0.0 if b is None else cb * b)
        dy = np.zeros((n, width, self.n_params))
        if t is not None:  # through the earlier parameters
            dy += c * np.einsum("nip,io->nop", t, W)
        units = np.arange(width)
        index = self.offset + np.arange(n_in)[:, None] * width + units[None, :]
        dy[:, units[None, :], index] = c * x[:, :, None]  # d y_o / d W_io = c x_i
        self.offset += W.size
        if b is not None:
            dy[:, units, self.offset + units] = cb
            self.offset += b.size
        return y, dy

    def _concat_tangents(self, x: list[np.ndarray], t: list[Any]) -> Any:
        """The branches' tangents side by side along the features (zero where None)."""
        if all(dt is None for dt in t):
            return None
        parts = [
            np.zeros((*xi.shape, self.n_params)) if dt is None else dt
            for xi, dt in zip(x, t, strict=True)
        ]
        return np.concatenate(parts, axis=1)

    def _dropout(self, net: Dropout, x: np.ndarray, t: Any) -> tuple[Any, Any]:
        if net.mode == "test":
            return x, t
        if self.rng is None:
            raise InputError(
                f"{net} draws a random mask: give the Jacobian an rng (jacobian(X, rng=seed)), "
                "or use mode='test'"
            )
        scale = (self.rng.random(x.shape) < net.rate) / net.rate  # (as architecture.apply)
        return x * scale, None if t is None else t * scale[:, :, None]


def _layer_norm(net: LayerNorm, x: np.ndarray, t: Any) -> tuple[Any, Any]:
    centred = x - x.mean(axis=-1, keepdims=True)
    scale = np.sqrt(net.eps + (centred * centred).mean(axis=-1, keepdims=True))
    y = centred / scale
    if t is None:
        return y, None
    dc = t - t.mean(axis=1, keepdims=True)
    yy = y[:, :, None]
    return y, (dc - yy * (yy * dc).mean(axis=1, keepdims=True)) / scale[:, :, None]


def jacobian(net: Net, params: Any, x: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    """``d f_k(x_n) / d theta_p`` of a drawn network, shape (N, K, P), by forward mode.

    Args:
        net: The description (one output).
        params: Its parameters (:func:`ntksym.empirical.architecture.init`).
        x: Checked inputs, float64 of shape (N, n0).
        rng: Draws the Dropout masks (required when there are any in ``"train"`` mode).

    Raises:
        InputError: A network ending in several branches, Dropout without ``rng``, or a
            Jacobian of more than :data:`MAX_JACOBIAN_ENTRIES` entries per layer.
    """
    n_params = sum(a.size for a in _arrays(params))
    forward = _Forward(n_params, rng)
    y, t = forward.run(net, params, x, None)
    if isinstance(y, list):
        raise InputError(
            "a Jacobian needs a network with one output; end with FanInSum() or FanInConcat()"
        )
    assert forward.offset == n_params  # every parameter met once, in the flattening order
    return np.zeros((*y.shape, n_params)) if t is None else t
