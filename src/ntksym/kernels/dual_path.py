"""The ``"dual"`` backend: the recursion layer by layer on :func:`ntksym.dual.evaluate`.

The first layer's determinant is formed from the inputs without cancellation; deeper
layers form it by subtraction (the generated modules carry it stably instead). A kinked
activation reads the angle from that determinant, so ``backend="auto"`` sends such an
activation without a generated module (a typed sum such as ``relu(u) + 0.1 erf(u)``),
from depth 3 on, to :func:`layer_recursion` instead: the float64 layer maps of the
described networks, which carry the determinant.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ntksym import dual
from ntksym.activations import Activation
from ntksym.architecture.description import Dense, Nonlinearity, Serial
from ntksym.codegen.runtime.numpy_fused import first_layer as runtime_first_layer
from ntksym.kernels.layer_blocks import evaluate_layers

__all__ = ["dual_recursion", "first_layer", "layer_recursion"]


def first_layer(
    X1: np.ndarray, X2: np.ndarray, w2: float, b2: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sigma^(1) on the pairs and diagonals, its determinant, and which pairs coincide.

    The determinant ``S11 S22 - S12^2`` is the generated NumPy kernels' own
    (:func:`ntksym.codegen.runtime.numpy_fused.first_layer`: Lagrange's identity with an
    error-free projection for near-parallel pairs), so it keeps its relative accuracy for
    nearly parallel, anti-parallel and exactly rescaled inputs. A pair *coincides* when the
    two inputs give one Gaussian (same variance, covariance equal to it, determinant 0); its
    covariance stays singular at every layer. ``X2 is X1`` means K(X, X): each input's pair
    with itself coincides exactly.
    """
    n0 = X1.shape[1]
    c = w2 / n0
    G = X1 @ X2.T
    if X2 is X1:  # K(X, X): the squared norms are the Gram diagonal itself, so that every
        # input pairs with itself as one Gaussian (BLAS and einsum round x.x differently)
        sq1 = sq2 = np.diag(G).copy()
        diag = 0
    else:
        sq1 = np.einsum("ij,ij->i", X1, X1)
        sq2 = np.einsum("ij,ij->i", X2, X2)
        diag = -1
    s12, det = runtime_first_layer(X1, X2, G, sq1, sq2, diag, c, b2)
    s11, s22 = c * sq1 + b2, c * sq2 + b2
    coincide = (det == 0) & (s11[:, None] == s22[None, :]) & (s12 == s11[:, None])
    return s11, s22, s12, det, coincide


def dual_recursion(
    activation: Activation,
    X1: np.ndarray,
    X2: np.ndarray,
    depth: int,
    bias_std: float,
    weight_std: float,
    *,
    degree: int | None,
    need_ntk: bool,
) -> tuple[np.ndarray, np.ndarray | None]:
    """NNGP (and NTK when ``need_ntk``) of checked inputs, layer by layer in float64.

    Non-finite results are returned as they are; the caller says why they are infinite.
    """
    w2, b2 = weight_std**2, bias_std**2
    s11, s22, s12, det, coincide = first_layer(X1, X2, w2, b2)
    theta = s12.copy() if need_ntk else None

    # without a closed form, the quadrature computes only the maps asked for
    by_rule = degree is None and not dual.has_closed_form(activation)

    def _maps(s11: Any, s12: Any, s22: Any, det: Any, ntk: bool) -> tuple[Any, Any]:
        if by_rule:
            return dual.trapezoid(activation, s11, s12, s22, det=det, ntk=ntk)
        return dual.evaluate(activation, s11, s12, s22, det=det, degree=degree)

    # K(X, X) by quadrature: each pair once (the maps are symmetric in u and v)
    upper = np.triu_indices(s12.shape[0]) if by_rule and X2 is X1 else None

    def _pairs(s11: Any, s12: Any, s22: Any, det: Any) -> tuple[Any, Any]:
        if upper is None:
            return _maps(s11[:, None], s12, s22[None, :], det, need_ntk)
        i, j = upper
        half = _maps(s11[i], s12[upper], s22[j], det[upper], need_ntk)
        full: list[np.ndarray | None] = []
        for h in half:
            if h is None:
                full.append(None)
                continue
            m = np.empty_like(s12)
            m[upper] = h
            m[j, i] = h
            full.append(m)
        return full[0], full[1]

    for _ in range(depth - 1):
        k, kdot = _pairs(s11, s12, s22, det)
        k11, _ = _maps(s11, s11, s11, np.zeros_like(s11), False)
        k22 = k11 if upper is not None else _maps(s22, s22, s22, np.zeros_like(s22), False)[0]
        s12 = w2 * np.asarray(k) + b2
        s11 = w2 * np.asarray(k11) + b2
        s22 = w2 * np.asarray(k22) + b2
        if theta is not None:
            theta = theta * (w2 * np.asarray(kdot)) + s12
        # Identical inputs keep a singular covariance at every layer; elsewhere the
        # determinant is formed by subtraction (ntksym.codegen carries it stably).
        det = np.maximum(s11[:, None] * s22[None, :] - s12 * s12, 0.0)
        det[coincide] = 0.0
    return s12, theta


def layer_recursion(
    activation: Activation,
    X1: np.ndarray,
    X2: np.ndarray,
    depth: int,
    bias_std: float,
    weight_std: float,
    *,
    need_ntk: bool,
) -> tuple[np.ndarray, np.ndarray | None]:
    """NNGP (and NTK when ``need_ntk``) by the layer maps of the same network.

    ``depth - 1`` pairs of a Dense layer and the activation, then a Dense layer, in the NTK
    parameterization (:func:`ntksym.kernels.layer_blocks.evaluate_layers`): the
    determinants are carried, or taken by the residual's integral where a difference
    would cancel. ``X2 is X1`` means K(X, X) (exactly symmetric).

    Raises:
        InputError: A kernel is not finite somewhere (it names which).
    """
    dense = Dense(1, w_std=weight_std, b_std=bias_std)
    layer = Nonlinearity(activation, activation.name)
    net = Serial((dense, layer) * (depth - 1) + (dense,))
    wanted = ("nngp", "ntk") if need_ntk else ("nngp",)
    out = evaluate_layers(net, X1, None if X2 is X1 else X2, wanted)[0][0]
    return out["nngp"], out.get("ntk")
