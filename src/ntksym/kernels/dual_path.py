"""The ``"dual"`` backend: the recursion layer by layer on :func:`ntksym.dual.evaluate`.

The first layer's determinant is formed from the inputs without cancellation; deeper
layers form it by subtraction (the generated modules carry it stably instead).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ntksym import dual
from ntksym.activations import Activation

__all__ = ["first_layer"]


def first_layer(
    X1: np.ndarray, X2: np.ndarray, w2: float, b2: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sigma^(1) on the pairs and diagonals, its determinant, and which pairs coincide.

    ``det = S11 S22 - S12^2`` equals ``a^2 (|x|^2|x'|^2 - (x.x')^2) + a b^2 |x - x'|^2``
    with ``a = w^2/n0``. The first term is ``|x|^2 |x'|^2 sin^2(angle)``, and
    ``sin^2 = (1 - cos)(1 + cos)`` with ``1 - cos = |x/|x| - x'/|x'||^2 / 2``
    computed from the unit vectors, so no term cancels for nearly parallel
    or anti-parallel pairs.
    """
    n0 = X1.shape[1]
    a = w2 / n0
    n1 = np.einsum("ij,ij->i", X1, X1)
    n2 = np.einsum("ij,ij->i", X2, X2)
    gram = X1 @ X2.T
    s11 = a * n1 + b2
    s22 = a * n2 + b2
    s12 = a * gram + b2
    with np.errstate(invalid="ignore", divide="ignore"):
        norm1, norm2 = np.sqrt(n1), np.sqrt(n2)
        U1 = X1 / np.where(norm1 > 0, norm1, 1.0)[:, None]
        U2 = X2 / np.where(norm2 > 0, norm2, 1.0)[:, None]
        cos = np.clip(U1 @ U2.T, -1.0, 1.0)
    # Pairs within 1e-3 of (anti-)parallel: recompute 1 -+ cos from differences.
    near = np.argwhere(np.abs(cos) > 1 - 1e-3)
    one_minus = 1.0 - cos
    one_plus = 1.0 + cos
    if len(near):
        i, j = near[:, 0], near[:, 1]
        diff = np.einsum("kj,kj->k", U1[i] - U2[j], U1[i] - U2[j]) / 2
        summ = np.einsum("kj,kj->k", U1[i] + U2[j], U1[i] + U2[j]) / 2
        one_minus[i, j] = diff
        one_plus[i, j] = summ
    sin2 = np.clip(one_minus * one_plus, 0.0, 1.0)
    det = a * a * np.outer(n1, n2) * sin2
    if b2 > 0:
        dist2 = np.maximum(n1[:, None] + n2[None, :] - 2 * gram, 0.0)
        if len(near):
            i, j = near[:, 0], near[:, 1]
            dist2[i, j] = np.einsum("kj,kj->k", X1[i] - X2[j], X1[i] - X2[j])
        det = det + a * b2 * dist2
    coincide = np.zeros(s12.shape, dtype=bool)
    if len(near):
        i, j = near[:, 0], near[:, 1]
        same = np.all(X1[i] == X2[j], axis=1)
        coincide[i[same], j[same]] = True
        s12[i[same], j[same]] = s11[i[same]]
        det[i[same], j[same]] = 0.0
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

    def _maps(s11: Any, s12: Any, s22: Any, det: Any) -> tuple[np.ndarray, np.ndarray]:
        return dual.evaluate(activation, s11, s12, s22, det=det, degree=degree)

    for _ in range(depth - 1):
        k, kdot = _maps(s11[:, None], s12, s22[None, :], det)
        k11, _ = _maps(s11, s11, s11, np.zeros_like(s11))
        k22, _ = _maps(s22, s22, s22, np.zeros_like(s22))
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
