"""The finite-width network of a description in NumPy: parameters, outputs, empirical kernels.

Parameters follow neural-tangents' layout: a Dense layer holds ``(W, b)`` with ``W`` of
shape ``(n_in, out_dim)`` and ``b`` of shape ``(1, out_dim)`` (None without a bias);
``serial`` and ``parallel`` hold a tuple with one entry per layer or branch,
``repeat(layer, n)`` a tuple of ``n`` entries, and every other layer ``()``. In the NTK
parameterization ``W`` and ``b`` are N(0, 1) and the layer computes
``W_std x W / sqrt(n_in) + b_std b``; in the standard one ``W ~ N(0, W_std^2 s_in / n_in)``,
``b ~ N(0, b_std^2)`` and it computes ``x W / sqrt(s_in) + b`` with ``out_dim * s_out``
outputs (neural-tangents' width multipliers ``s = (s_in, s_out)``, ``(1, 1)`` by default).
``Dropout(rate)`` in ``"train"`` mode multiplies every unit by ``m / rate`` with an
independent ``m ~ Bernoulli(rate)`` per input and unit, drawn from the ``rng`` given to
:func:`apply` (a new mask on every call, as in neural-tangents).

:func:`empirical_kernels` gives a drawn network's NNGP sample ``f(x).f(x')/n_out`` and its
exact empirical NTK (the gradient inner product over every W and b, averaged over the
output units), computed by reverse-mode differentiation through the same description.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ntksym._validate import real_matrix
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
from ntksym.architecture.walk import check
from ntksym.empirical.jacobian import flatten, jacobian
from ntksym.errors import InputError

__all__ = ["as_generator", "init", "apply", "empirical_kernels", "DescribedNetwork"]


def as_generator(rng: Any) -> np.random.Generator:
    """A NumPy generator from a seed, a Generator, or an integer array (e.g. a JAX key)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0:
        return np.random.default_rng(int(rng))
    arr = np.asarray(rng) if isinstance(rng, (list, tuple, np.ndarray)) else None
    if arr is not None and arr.dtype.kind in "iu" and arr.size and (arr >= 0).all():
        return np.random.default_rng([int(v) for v in arr.ravel()])
    raise InputError(
        "rng must be a non-negative integer seed, a numpy Generator or an array of "
        f"non-negative integers (such as a JAX PRNG key), got {rng!r}"
    )


def _width(shape: Any, what: str) -> int:
    if not isinstance(shape, tuple) or len(shape) != 2:
        raise InputError(
            f"{what} takes an input shape (batch, features) for fully connected layers, "
            f"got {shape!r}"
        )
    n = shape[1]
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"{what}: the number of input features must be >= 1, got {n!r}")
    return int(n)


def init(net: Net, rng: np.random.Generator, input_shape: Any) -> tuple[Any, Any]:
    """``(output_shape, params)`` of a drawn network (see the module docstring)."""
    inner = sequence(net)
    if inner is not None:
        params = []
        for layer in inner:
            input_shape, p = init(layer, rng, input_shape)
            params.append(p)
        return input_shape, tuple(params)
    if isinstance(net, Parallel):
        if not isinstance(input_shape, list) or len(input_shape) != len(net.branches):
            raise InputError(f"{net} needs a list of {len(net.branches)} input shapes")
        pairs = [init(b, rng, s) for b, s in zip(net.branches, input_shape, strict=True)]
        return [s for s, _ in pairs], tuple(p for _, p in pairs)
    if isinstance(net, FanOut):
        return [input_shape] * net.n, ()
    if isinstance(net, FanInSum):
        if not isinstance(input_shape, list) or len(set(input_shape)) != 1:
            raise InputError(f"FanInSum needs a list of equal input shapes, got {input_shape!r}")
        return input_shape[0], ()
    if isinstance(net, FanInConcat):
        return _concat_shape(input_shape), ()
    if isinstance(net, Dense):
        n_in = _width(input_shape, str(net))
        W = rng.standard_normal((n_in, net.width))
        b = None if net.b_std is None else rng.standard_normal((1, net.width))
        if net.parameterization == "standard":
            W = W * (net.w_std / np.sqrt(n_in / net.s[0]))
            b = None if b is None else b * (net.b_std or 0.0)
        return (input_shape[0], net.width), (W, b)
    return input_shape, ()


def _concat_shape(input_shape: Any) -> tuple[Any, int]:
    """The shape of the branches concatenated along the features (``FanInConcat``)."""
    if not isinstance(input_shape, list) or len({s[:-1] for s in input_shape}) != 1:
        raise InputError(
            f"FanInConcat needs a list of input shapes with one batch size, got {input_shape!r}"
        )
    return input_shape[0][0], sum(_width(s, "FanInConcat") for s in input_shape)


def _dropout(net: Dropout, x: np.ndarray, rng: np.random.Generator | None) -> tuple[Any, Any]:
    if net.mode == "test":
        return x, None
    if rng is None:
        raise InputError(
            f"{net} draws a random mask: give apply_fn an rng (apply_fn(params, x, rng=seed)), "
            "or use mode='test'"
        )
    scale = (rng.random(x.shape) < net.rate) / net.rate
    return x * scale, scale


def _forward(net: Net, params: Any, x: Any, rng: np.random.Generator | None) -> tuple[Any, Any]:
    """Output and the tape that :func:`_backward` needs."""
    layers = sequence(net)
    if layers is not None:
        tapes = []
        for layer, p in zip(layers, params, strict=True):
            x, tape = _forward(layer, p, x, rng)
            tapes.append(tape)
        return x, tapes
    if isinstance(net, Parallel):
        branches = zip(net.branches, params, x, strict=True)
        outs = [_forward(b, p, xi, rng) for b, p, xi in branches]
        return [y for y, _ in outs], [t for _, t in outs]
    if isinstance(net, FanOut):
        return [x] * net.n, None
    if isinstance(net, FanInSum):
        return sum(x[1:], x[0]), len(x)
    if isinstance(net, FanInConcat):
        return np.concatenate(x, axis=-1), [xi.shape[-1] for xi in x]
    if isinstance(net, Identity):
        return x, None
    if isinstance(net, Dense):
        W, b = params
        if net.parameterization == "ntk":
            y = (x @ W) * (net.w_std / np.sqrt(x.shape[1]))
            if b is not None:
                y = y + net.b_std * b
        else:
            y = x @ W if net.s[0] == 1 else (x @ W) / np.sqrt(net.s[0])
            y = y if b is None else y + b
        return y, x
    if isinstance(net, Dropout):
        return _dropout(net, x, rng)
    if isinstance(net, Nonlinearity):
        return net.activation.numpy(x), x
    if isinstance(net, LayerNorm):
        centred = x - x.mean(axis=-1, keepdims=True)
        scale = np.sqrt(net.eps + (centred * centred).mean(axis=-1, keepdims=True))
        y = centred / scale
        return y, (y, scale)
    raise InputError(f"not a layer of ntksym.stax: {net!r}")


def _backward(net: Net, params: Any, tape: Any, g: Any, acc: np.ndarray) -> Any:
    """Cotangent of the input from that of the output ``g`` (shape (K, N, width) or a list).

    Adds every parameter's gradient products to ``acc``: ``sum_k J_k J_k^T`` if it is (N,
    N), every ``J_k J_l^T`` (output units ``k``, ``l``) if it is (N, N, K, K).
    """
    layers = sequence(net)
    if layers is not None:
        for layer, p, t in reversed(list(zip(layers, params, tape, strict=True))):
            g = _backward(layer, p, t, g, acc)
        return g
    if isinstance(net, Parallel):
        return [
            _backward(b, p, t, gi, acc)
            for b, p, t, gi in zip(net.branches, params, tape, g, strict=True)
        ]
    if isinstance(net, FanOut):
        return sum(g[1:], g[0])
    if isinstance(net, FanInSum):
        return [g] * tape
    if isinstance(net, FanInConcat):  # each branch gets its own features' cotangent
        return np.split(g, np.cumsum(tape)[:-1], axis=-1)
    if isinstance(net, Identity):
        return g
    if isinstance(net, Dropout):
        return g if tape is None else g * tape[None]
    if isinstance(net, Dense):
        return _dense_backward(net, params, tape, g, acc)
    if isinstance(net, Nonlinearity):
        if net.zero_ntk:
            return np.zeros_like(g)
        return g * net.activation.numpy_derivative(tape)[None]
    if isinstance(net, LayerNorm):
        y, scale = tape
        mean_g = g.mean(axis=-1, keepdims=True)
        mean_gy = (g * y[None]).mean(axis=-1, keepdims=True)
        return (g - mean_g - y[None] * mean_gy) / scale[None]
    raise InputError(f"not a layer of ntksym.stax: {net!r}")


def _dense_backward(net: Dense, params: Any, x: np.ndarray, g: np.ndarray, acc: np.ndarray) -> Any:
    W, b = params
    if acc.ndim == 2:
        gg, xx = np.einsum("kia,kja->ij", g, g), x @ x.T
    else:
        gg, xx = np.einsum("kia,lja->ijkl", g, g), (x @ x.T)[:, :, None, None]
    if net.parameterization == "ntk":
        c = net.w_std / np.sqrt(x.shape[1])
        acc += (c * c) * xx * gg
        if b is not None:
            acc += net.b2 * gg
        return c * (g @ W.T)
    s_in = net.s[0]
    acc += xx * gg / s_in
    if b is not None:
        acc += gg
    return g @ W.T if s_in == 1 else (g @ W.T) / np.sqrt(s_in)


def apply(net: Net, params: Any, x: Any, rng: Any = None) -> Any:
    """The network's outputs on ``x`` (an (N, n0) array, or a list for parallel inputs).

    ``rng`` (a seed, Generator or integer array) draws the masks of Dropout layers in
    ``"train"`` mode; it is required when there are any.
    """
    return _forward(net, params, x, None if rng is None else as_generator(rng))[0]


def empirical_kernels(
    net: Net, params: Any, x: np.ndarray, rng: Any = None, *, per_unit: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """A drawn network's ``(f f^T / n_out, empirical NTK averaged over output units)`` on x.

    Args:
        net: The description; it must end in one output (not a list of branches).
        params: Its parameters from :func:`init`.
        x: Inputs, shape (N, n0), float64.
        rng: Draws the Dropout masks (one per input and unit, shared by the forward and
            the backward pass); required when the network has Dropout in ``"train"`` mode.
        per_unit: Give the NTK between every pair of output units, (N, N, K, K), instead
            of its average over the units, (N, N).

    Returns:
        ``f f^T / K`` (N, N) and the NTK.
    """
    y, tape = _forward(net, params, x, None if rng is None else as_generator(rng))
    if isinstance(y, list):
        raise InputError(
            "empirical kernels need a network with one output; end with FanInSum() or FanInConcat()"
        )
    n, k = y.shape
    seed = np.broadcast_to(np.eye(k)[:, None, :], (k, n, k))
    acc = np.zeros((n, n, k, k) if per_unit else (n, n))
    _backward(net, params, tape, seed, acc)
    return (y @ y.T) / k, acc if per_unit else acc / k


class DescribedNetwork:
    """A drawn finite network of a description: ``ntksym.Network(net, n_inputs, seed)``.

    The counterpart of :class:`ntksym.empirical.network.Network` for any described
    network (parameters laid out as in this module's docstring).

    Args:
        net: The description (a ``ntksym.stax`` layer, its triple or its description),
            with one output.
        n_inputs: The input dimension ``n0`` (the description holds every other width).
        seed: Seed of the parameters (an int, a Generator or an integer array).

    Attributes:
        description: The network.
        n_inputs: ``n0``.
        n_outputs: The number of output units ``K``.
        params: The parameters.
    """

    def __init__(self, net: Net, n_inputs: int | None = None, seed: Any = 0) -> None:
        if isinstance(n_inputs, bool) or not isinstance(n_inputs, (int, np.integer)):
            raise InputError(
                "Network(net, n_inputs, seed): with a network description the second "
                f"argument is the input dimension, a positive integer; got {n_inputs!r}"
            )
        n0 = _width((1, n_inputs), "Network")
        if check(net, n0) != 1:
            raise InputError(
                "Network needs a described network with one output; add FanInSum() or FanInConcat()"
            )
        self.description, self.n_inputs = net, n0
        (_, self.n_outputs), self.params = init(net, as_generator(seed), (1, n0))

    def __repr__(self) -> str:
        return f"Network({self.description}, n_inputs={self.n_inputs})"

    def _x(self, X: Any, name: str) -> np.ndarray:
        return real_matrix(X, name, n_features=self.n_inputs)

    def __call__(self, X: Any, *, rng: Any = None) -> np.ndarray:
        """The outputs ``f(X)``, shape (N, K); ``rng`` draws Dropout masks (required then)."""
        return apply(self.description, self.params, self._x(X, "X"), rng)

    def _both(self, X1: Any, X2: Any) -> tuple[np.ndarray, int]:
        A = self._x(X1, "X1")
        return (A, len(A)) if X2 is None else (np.vstack([A, self._x(X2, "X2")]), len(A))

    def ntk(self, X1: Any, X2: Any = None, *, rng: Any = None) -> np.ndarray:
        """The exact empirical NTK by reverse mode, shape (N1, N2, K, K) as ``Network.ntk``.

        Rows of ``X1`` and ``X2`` are separate examples (each its own Dropout mask, drawn
        from ``rng``).
        """
        Z, n1 = self._both(X1, X2)
        _, ntk = empirical_kernels(self.description, self.params, Z, rng, per_unit=True)
        return ntk if X2 is None else ntk[:n1, n1:]

    @property
    def n_params(self) -> int:
        """The number of parameters ``P`` (the length of :meth:`jacobian`'s last axis)."""
        return int(flatten(self.params).size)

    def jacobian(self, X: Any, *, rng: Any = None) -> np.ndarray:
        """The full Jacobian ``d f_k(x) / d theta_p`` by forward mode, shape (N, K, P).

        Parameters are flattened as :func:`ntksym.empirical.jacobian.flatten` documents
        (per Dense layer in the forward pass's order: ``W`` row-major, then ``b``). Dropout
        masks are drawn from ``rng`` as :meth:`__call__` and :meth:`ntk` draw them, so the
        same seed fixes the same masks. For small networks (memory ``N * width * P``).

        Raises:
            InputError: Bad inputs, Dropout without ``rng``, or a Jacobian too large.
        """
        rng = None if rng is None else as_generator(rng)
        return jacobian(self.description, self.params, self._x(X, "X"), rng)

    def ntk_jacobian(self, X1: Any, X2: Any = None, *, rng: Any = None) -> np.ndarray:
        """The empirical NTK as ``J J^T`` from :meth:`jacobian`, shape (N1, N2, K, K).

        The same quantity as :meth:`ntk` (the rows of ``X1`` and ``X2`` are separate
        examples, their Dropout masks drawn from ``rng`` in the same order), by another
        algorithm: a cross-check for small networks.
        """
        Z, n1 = self._both(X1, X2)
        J = jacobian(self.description, self.params, Z, None if rng is None else as_generator(rng))
        J2 = J if X2 is None else J[n1:]
        return np.einsum("akp,bmp->abkm", J[:n1], J2)

    def nngp_empirical(self, X1: Any, X2: Any = None, *, rng: Any = None) -> np.ndarray:
        """``f(x) . f(x') / K``, shape (N1, N2): an estimate of the NNGP from the K outputs.

        (``Network.nngp_empirical`` averages the last layer's weights out exactly; a
        described network's last layer may sit inside a branch, so this one does not.)
        """
        Z, n1 = self._both(X1, X2)
        y = apply(self.description, self.params, Z, rng)
        k = y @ y.T / y.shape[1]
        return k if X2 is None else k[:n1, n1:]
