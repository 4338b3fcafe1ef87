r"""A finite-width fully connected network, its exact empirical NTK, and Monte Carlo.

This is the finite-width side of the seed's derivation: the network of
equations (1)-(4) in the NTK parameterization,

.. math::

    a^{(0)} = x,\qquad
    z^{(l+1)} = \frac{w}{\sqrt{n_l}} W^{(l)} a^{(l)} + b\, b^{(l)},\qquad
    a^{(l)} = \sigma(z^{(l)}),\qquad f = z^{(L)},

with every entry of ``W^(l)`` (``n_{l+1} x n_l``) and ``b^(l)`` drawn i.i.d.
from N(0, 1), ``w = weight_std`` and ``b = bias_std``. Its empirical neural
tangent kernel (seed eq. (5)-(6)) is

.. math::

    \Theta_{kk'}(x, x') = \sum_p \partial_{\theta_p} f_k(x)\, \partial_{\theta_p} f_{k'}(x').

:meth:`Network.ntk` computes it layer by layer by reverse-mode differentiation,
without forming the Jacobian; :meth:`Network.jacobian` forms the Jacobian
explicitly by *forward*-mode differentiation (a different algorithm), and
:meth:`Network.ntk_jacobian` contracts it, as a cross-check for small nets.

Jacot, Gabriel & Hongler (2018), "Neural Tangent Kernel: Convergence and
Generalization in Neural Networks", prove that as the hidden widths grow the
empirical NTK converges to a deterministic limit; :func:`monte_carlo_ntk` and
:func:`convergence_study` give the Monte-Carlo evidence for that, with error
bars: the mean over initialisations and the ``n^{-1/2}`` rate of the
fluctuations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from ntksym._validate import nonnegative_std, real_matrix
from ntksym.activations import Activation, get_activation
from ntksym.architecture.description import as_description
from ntksym.empirical.architecture import DescribedNetwork
from ntksym.empirical.jacobian import MAX_JACOBIAN_ENTRIES
from ntksym.errors import ActivationError, InputError

__all__ = [
    "check_widths",
    "check_positive_int",
    "check_inputs",
    "resolve_activation",
    "LayerPass",
    "Network",
]


#: Default bound, in float64 entries, on the per-block working arrays of
#: :meth:`Network.ntk` (2**25 entries = 256 MiB).
DEFAULT_BLOCK_ENTRIES = 2**25


# --------------------------------------------------------------------------- validation
def check_widths(widths: Any) -> tuple[int, ...]:
    """The widths ``[n0, ..., nL]``, checked to be at least two positive integers."""
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence | np.ndarray):
        raise InputError(
            f"widths must be a sequence of positive integers [n0, n1, ..., nL], got {widths!r}"
        )
    out = []
    for i, n in enumerate(widths):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise InputError(f"widths[{i}] must be a positive integer, got {n!r}")
        if n < 1:
            raise InputError(f"widths[{i}] must be a positive integer, got {n}")
        out.append(int(n))
    if len(out) < 2:
        raise InputError(
            f"widths needs at least 2 entries (input width n0 and output width nL), got {out}"
        )
    return tuple(out)


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """An integer ``>= minimum``, or an InputError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_inputs(X: Any, n0: int, name: str = "X") -> np.ndarray:
    """Return ``X`` as a C-contiguous float64 array of shape (N, n0), or raise InputError."""
    return real_matrix(X, name, n_features=n0)


def _check_seed(seed: Any) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(
            f"seed must be a non-negative integer, a numpy Generator or None, got {seed!r}"
        )
    return np.random.default_rng(int(seed))


def resolve_activation(activation: Any) -> Activation:
    """The Activation given by a name, expression string, SymPy expression or Activation."""
    try:
        return get_activation(activation)
    except ActivationError:
        raise
    except Exception as exc:  # defensive: anything else is still a bad activation
        raise ActivationError(f"cannot use activation {activation!r}: {exc}") from None


# --------------------------------------------------------------------------- the network
class LayerPass(NamedTuple):
    """What one affine layer ``l`` (0-based) sees and produces in a forward pass.

    Attributes:
        inputs: ``a^(l)``, shape (N, n_l): the layer's input (``x`` itself for l = 0).
        preactivations: ``z^(l+1)``, shape (N, n_{l+1}): the layer's output before
            the activation; for the last layer it is the network output ``f``.
    """

    inputs: np.ndarray
    preactivations: np.ndarray


class Network:
    """A fully connected network in the NTK parameterization (seed eqs. (1)-(4)).

    Args:
        widths: ``[n0, n1, ..., nL]``; ``L = len(widths) - 1`` affine layers and
            ``L - 1`` nonlinearities.
        activation: A registered name, expression string, SymPy expression or
            :class:`~ntksym.activations.Activation` (see
            :func:`~ntksym.activations.get_activation`).
        bias_std: ``beta``, the scale of the biases (>= 0).
        weight_std: ``w``, the scale of the weights (>= 0).
        seed: An integer seed, a ``numpy.random.Generator`` (consumed), or None
            for fresh entropy. Parameters are drawn in the order
            ``W^(0), b^(0), W^(1), b^(1), ...`` with ``standard_normal``.

    Attributes:
        widths: The widths, a tuple of ints.
        activation: The :class:`~ntksym.activations.Activation`.
        bias_std: ``beta``.
        weight_std: ``w``.
        weights: ``[W^(0), ..., W^(L-1)]``, ``W^(l)`` of shape (n_{l+1}, n_l), N(0, 1).
        biases: ``[b^(0), ..., b^(L-1)]``, ``b^(l)`` of shape (n_{l+1},), N(0, 1).

    Every parameter counts in :attr:`n_params` and in the NTK, including the
    biases when ``bias_std = 0`` (their derivative is then zero).

    Example:
        >>> net = Network([3, 2])  # one affine layer: Theta = (x.x'/3) I exactly
        >>> x = np.array([[1.0, 2.0, 2.0]])
        >>> np.round(net.ntk(x)[0, 0], 12)
        array([[3., 0.],
               [0., 3.]])
    """

    def __new__(cls, widths: Any = None, *args: Any, **kwargs: Any) -> Any:
        """``Network(net, n_inputs, seed=0)`` with a description is a :class:`DescribedNetwork`."""
        net = as_description(widths)
        return super().__new__(cls) if net is None else DescribedNetwork(net, *args, **kwargs)

    def __init__(
        self,
        widths: Sequence[int],
        activation: str | Activation | Any = "relu",
        bias_std: float = 0.0,
        weight_std: float = 1.0,
        seed: int | np.random.Generator | None = 0,
    ) -> None:
        self.widths = check_widths(widths)
        self.activation = resolve_activation(activation)
        self.bias_std = nonnegative_std("bias_std", bias_std)
        self.weight_std = nonnegative_std("weight_std", weight_std)
        rng = _check_seed(seed)
        self.weights: list[np.ndarray] = []
        self.biases: list[np.ndarray] = []
        for n_in, n_out in zip(self.widths[:-1], self.widths[1:], strict=True):
            self.weights.append(rng.standard_normal((n_out, n_in)))
            self.biases.append(rng.standard_normal(n_out))

    # ----------------------------------------------------------------- basics
    @property
    def depth(self) -> int:
        """``L``, the number of affine layers."""
        return len(self.widths) - 1

    @property
    def n_params(self) -> int:
        """Total number of parameters, ``sum_l (n_l + 1) n_{l+1}``."""
        return sum((a + 1) * b for a, b in zip(self.widths[:-1], self.widths[1:], strict=True))

    def _scale(self, layer: int) -> float:
        return self.weight_std / math.sqrt(self.widths[layer])

    def __repr__(self) -> str:
        return (
            f"Network(widths={list(self.widths)}, activation={self.activation.name!r}, "
            f"bias_std={self.bias_std}, weight_std={self.weight_std})"
        )

    def _forward(self, X: np.ndarray) -> list[LayerPass]:
        passes = []
        a = X
        for layer, (W, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            z = (a @ W.T) * self._scale(layer)
            if self.bias_std:
                z += self.bias_std * b
            passes.append(LayerPass(a, z))
            if layer < self.depth - 1:
                a = self.activation.numpy(z)
        return passes

    def forward(self, X: Any) -> list[LayerPass]:
        """Run the network and keep every layer's input and pre-activation.

        Args:
            X: Inputs, shape (N, n0).

        Returns:
            A list of ``L`` :class:`LayerPass` tuples; entry ``l`` holds
            ``inputs = a^(l)`` (shape (N, n_l); ``a^(0) = X``) and
            ``preactivations = z^(l+1)`` (shape (N, n_{l+1})). The network output
            ``f(X)`` is ``forward(X)[-1].preactivations``.
        """
        return self._forward(check_inputs(X, self.widths[0]))

    def __call__(self, X: Any) -> np.ndarray:
        """The network output ``f(X)``, shape (N, nL)."""
        return self.forward(X)[-1].preactivations

    # ----------------------------------------------------------------- NTK, reverse mode
    def _require_pointwise_derivative(self) -> None:
        if self.activation.has_distributional_derivative:
            raise ActivationError(
                f"activation {self.activation.name!r} has derivative "
                f"{self.activation.derivative}, a Dirac delta: the network's gradient is zero "
                "almost everywhere, so its empirical NTK is not the infinite-width limit's. "
                "Use a closed-form dual kernel (e.g. ntksym.reference.kernel) instead"
            )

    def _backward(self, passes: list[LayerPass]) -> list[np.ndarray]:
        """Per-example output derivatives ``G^(l+1) = d f / d z^(l+1)``, l = 0..L-1.

        Entry ``l`` has shape (N, nL, n_{l+1}). ``G^(L)`` is the identity.
        """
        N = passes[0].inputs.shape[0]
        nL = self.widths[-1]
        grads = [np.broadcast_to(np.eye(nL), (N, nL, nL))]
        for layer in range(self.depth - 1, 0, -1):
            # z^(l+1) = c W^(l) sigma(z^(l)) + ...  =>  G^(l) = c (G^(l+1) W^(l)) * sigma'(z^(l))
            dsigma = self.activation.numpy_derivative(passes[layer - 1].preactivations)
            W, c, n = self.weights[layer], self._scale(layer), self.widths[layer]
            if layer == self.depth - 1:  # G^(L) = I: no product needed
                G = (c * W)[None, :, :] * dsigma[:, None, :]
            else:  # one 2-D BLAS product over all (example, output) rows
                G = (grads[-1].reshape(N * nL, -1) @ W).reshape(N, nL, n)
                G *= c * dsigma[:, None, :]
            grads.append(G)
        grads.reverse()
        return grads

    def _ntk_block(
        self,
        p1: list[LayerPass],
        g1: list[np.ndarray],
        p2: list[LayerPass],
        g2: list[np.ndarray],
    ) -> np.ndarray:
        N1, N2, nL = p1[0].inputs.shape[0], p2[0].inputs.shape[0], self.widths[-1]
        out = np.zeros((N1, N2, nL, nL))
        for layer in range(self.depth):
            # dF_k/dW_ij = G_ki c a_j and dF_k/db_i = G_ki beta, summed over (i, j):
            # (c^2 a.a' + beta^2) * sum_i G_ki G'_k'i
            scalar = (p1[layer].inputs @ p2[layer].inputs.T) * self._scale(layer) ** 2
            scalar += self.bias_std**2
            n = self.widths[layer + 1]
            gg = g1[layer].reshape(N1 * nL, n) @ g2[layer].reshape(N2 * nL, n).T
            out += scalar[:, :, None, None] * gg.reshape(N1, nL, N2, nL).transpose(0, 2, 1, 3)
        return out

    def ntk(self, X1: Any, X2: Any = None, *, block_entries: int | None = None) -> np.ndarray:
        r"""The exact empirical NTK (seed eq. (6)) by layer-wise reverse mode.

        For each affine layer ``l`` the parameters ``W^(l), b^(l)`` contribute

        .. math::

            \Big(\tfrac{w^2}{n_l} a^{(l)}(x)\cdot a^{(l)}(x') + \beta^2\Big)
            \; G^{(l+1)}(x)\, G^{(l+1)}(x')^{\mathsf T},
            \qquad G^{(l+1)}_{ki} = \partial f_k / \partial z^{(l+1)}_i,

        where ``G`` is back-propagated from ``G^(L) = I``. The Jacobian
        (``nL x n_params`` per example) is never formed.

        Memory: the result takes ``N1 N2 nL^2`` float64 entries. The working
        arrays of one block of ``c`` examples take about
        ``c (nL + 1) (n_1 + ... + n_L) + c n0`` entries (activations and the
        ``G`` arrays of every layer), for the X1 block and the X2 block each,
        plus ``(c nL)^2`` for one layer's product. Examples are processed in
        blocks sized so that these stay below ``block_entries`` (default
        ``2**25``, 256 MiB); with one block the X2 side is computed once, with
        several it is recomputed for each X1 block.

        Args:
            X1: Inputs, shape (N1, n0).
            X2: Inputs, shape (N2, n0); None means ``X1`` (and the result is
                then symmetric: ``out[a, b] = out[b, a].T``).
            block_entries: Working-memory bound in float64 entries.

        Returns:
            Array of shape (N1, N2, nL, nL) with ``out[a, b, k, k'] =
            sum_p df_k(X1[a])/dtheta_p df_k'(X2[b])/dtheta_p``.

        Raises:
            InputError: Bad inputs.
            ActivationError: The activation's derivative is a Dirac delta.
        """
        self._require_pointwise_derivative()
        A = check_inputs(X1, self.widths[0], "X1")
        B = A if X2 is None else check_inputs(X2, self.widths[0], "X2")
        limit = DEFAULT_BLOCK_ENTRIES if block_entries is None else block_entries
        limit = check_positive_int("block_entries", limit)
        nL = self.widths[-1]
        per_example = (nL + 1) * sum(self.widths[1:]) + self.widths[0]
        chunk = max(1, min(limit // (2 * per_example), int(math.isqrt(limit)) // nL))

        def passes_and_grads(Xc: np.ndarray) -> tuple[list[LayerPass], list[np.ndarray]]:
            p = self._forward(Xc)
            return p, self._backward(p)

        N1, N2 = A.shape[0], B.shape[0]
        out = np.empty((N1, N2, nL, nL))
        if N1 <= chunk and N2 <= chunk:
            p1, g1 = passes_and_grads(A)
            p2, g2 = (p1, g1) if X2 is None else passes_and_grads(B)
            out[...] = self._ntk_block(p1, g1, p2, g2)
            return out
        for i in range(0, N1, chunk):
            p1, g1 = passes_and_grads(A[i : i + chunk])
            for j in range(0, N2, chunk):
                p2, g2 = passes_and_grads(B[j : j + chunk])
                out[i : i + chunk, j : j + chunk] = self._ntk_block(p1, g1, p2, g2)
        return out

    # ----------------------------------------------------------------- Jacobian, forward mode
    def jacobian(self, X: Any) -> np.ndarray:
        """The full Jacobian ``d f_k(x) / d theta_p``, by forward-mode differentiation.

        Parameters are ordered ``W^(0)`` (row-major), ``b^(0)``, ``W^(1)``,
        ``b^(1)``, ... The tangent ``d z^(l) / d theta`` is pushed forward
        through the layers, an algorithm independent of :meth:`ntk`'s reverse
        mode. Memory: ``N * max_l n_l * n_params`` float64 entries, so this is
        for small networks (refused above ``2**27`` entries).

        Args:
            X: Inputs, shape (N, n0).

        Returns:
            Array of shape (N, nL, n_params).

        Raises:
            InputError: Bad inputs or a network too large for an explicit Jacobian.
            ActivationError: The activation's derivative is a Dirac delta.
        """
        self._require_pointwise_derivative()
        X = check_inputs(X, self.widths[0])
        N, P = X.shape[0], self.n_params
        if N * max(self.widths) * P > MAX_JACOBIAN_ENTRIES:
            raise InputError(
                f"an explicit Jacobian for N={N} examples and {P} parameters needs "
                f"{N * max(self.widths) * P} working entries (limit {MAX_JACOBIAN_ENTRIES}); "
                "use Network.ntk, which never forms it"
            )
        a = X
        tangent: np.ndarray | None = None  # d a^(l) / d theta, shape (N, n_l, P)
        offset = 0
        for layer, (W, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            n_in, n_out = self.widths[layer], self.widths[layer + 1]
            c = self._scale(layer)
            dz = np.zeros((N, n_out, P))
            if tangent is not None:  # through the earlier parameters
                dz += c * np.einsum("ij,njp->nip", W, tangent)
            # dz_i / dW_{i j} = c a_j  (row-major: column offset + i * n_in + j)
            rows, cols = np.arange(n_out)[:, None], np.arange(n_in)[None, :]
            dz[:, rows, offset + rows * n_in + cols] = c * a[:, None, :]
            rows = rows[:, 0]
            offset += n_out * n_in
            dz[:, rows, offset + rows] = self.bias_std
            offset += n_out
            z = (a @ W.T) * c + self.bias_std * b
            if layer < self.depth - 1:
                a = self.activation.numpy(z)
                tangent = self.activation.numpy_derivative(z)[:, :, None] * dz
            else:
                tangent = dz
        assert tangent is not None and offset == P
        return tangent

    def ntk_jacobian(self, X1: Any, X2: Any = None) -> np.ndarray:
        """The empirical NTK as ``J(X1) J(X2)^T`` from :meth:`jacobian`; for small nets.

        Args:
            X1: Inputs, shape (N1, n0).
            X2: Inputs, shape (N2, n0); None means ``X1``.

        Returns:
            Array of shape (N1, N2, nL, nL), the same quantity as :meth:`ntk`.
        """
        J1 = self.jacobian(X1)
        J2 = J1 if X2 is None else self.jacobian(X2)
        return np.einsum("akp,bmp->abkm", J1, J2)

    def nngp_empirical(self, X1: Any, X2: Any = None) -> np.ndarray:
        """Empirical NNGP of the last layer, ``w^2 a^(L-1)(x).a^(L-1)(x') / n_{L-1} + beta^2``.

        This is the covariance of each output ``f_k`` over the last layer's
        ``W^(L-1), b^(L-1)`` given the earlier layers (seed eq. (11)); as the
        hidden widths grow it tends to ``Sigma^(L)``. For depth 1 it is exactly
        ``Sigma^(1)``.

        Args:
            X1: Inputs, shape (N1, n0).
            X2: Inputs, shape (N2, n0); None means ``X1``.

        Returns:
            Array of shape (N1, N2).
        """
        A = check_inputs(X1, self.widths[0], "X1")
        a1 = self._forward(A)[-1].inputs
        a2 = a1 if X2 is None else self._forward(check_inputs(X2, self.widths[0], "X2"))[-1].inputs
        return (a1 @ a2.T) * self._scale(self.depth - 1) ** 2 + self.bias_std**2
