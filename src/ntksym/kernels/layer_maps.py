"""Float64 kernels of a described network: the layer maps on Gram blocks.

Each branch carries the Gram block of its covariance ``Sigma(x_i, x'_j)``, the two
diagonals ``Sigma(x_i, x_i)`` and ``Sigma(x'_j, x'_j)``, the block's determinant
``Sigma_ii Sigma'_jj - Sigma_ij^2`` when it is known accurately, and the NTK block. The
maps are neural-tangents' (``stax``), layer by layer:

* inputs: ``Sigma = x.x'/n0``, ``Theta = 0``;
* ``Dense`` (NTK parameterization): ``Sigma -> w^2 Sigma + b^2``,
  ``Theta -> w^2 Theta + Sigma_new``; (standard): the same ``Sigma``, and
  ``Theta -> w^2 Theta + n_in Sigma + [1 if the layer has a bias]``;
* activation: ``Sigma -> E[sigma(u) sigma(v)]``, ``Theta -> Theta E[sigma'(u) sigma'(v)]``
  with ``(u, v) ~ N(0, Sigma)`` (:func:`ntksym.dual.evaluate`: the stable closed forms);
* ``LayerNorm``: ``Sigma_ij / sqrt((eps + Sigma_ii)(eps + Sigma'_jj))``, ``Theta`` likewise;
* ``FanInSum``: the sum of the branches' blocks;
* ``FanInConcat``: the branches' blocks averaged with their widths ``n_i`` as weights,
  ``sum_i c_i K_i`` with ``c_i = n_i / sum_j n_j`` (``1 / #branches`` for equal widths,
  as neural-tangents): each block scaled (its determinant by ``c_i^2``), then summed as
  by ``FanInSum``;
* ``Dropout(rate)`` in ``"train"`` mode: both variances divided by ``rate``, and the
  covariance and NTK of an input paired with itself (``K(X, X)``'s diagonal: one example,
  one mask) too; other pairs keep theirs (independent masks).

The determinant of the first Dense layer comes from the inputs without cancellation
(as in :func:`ntksym.kernels.dual_path.first_layer`) and a Dense layer maps it as
``w^4 D + w^2 b^2 ((sqrt S11 - sqrt S22)^2 + 2 (sqrt(S11 S22) - S12))``, the last gap
written as ``D / (sqrt(S11 S22) + S12)`` where that would cancel. An activation whose
family has a checked stable layer map with a determinant (ReLU and the piecewise-linear
family, sign, erf, GELU, exp, sin, cos, the Gaussian bump, polynomials and their scaled
forms) maps it without cancellation too (:func:`stable_det`); after the others (no closed
form: ``tanh``, the tanh GELU; sums of families, as ``sin(u) + u``) the pairs whose
determinant by subtraction is small get it from the integral of a residual that is small
with it (:func:`ntksym.dual.residual.next_det`), so a kinked layer after such an activation
still sees accurate angles. A sum of branches maps the determinants by :func:`_sum`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import sympy as sp

from ntksym import dual
from ntksym.activations import Activation
from ntksym.architecture.description import Dense, Dropout, LayerNorm, Nonlinearity
from ntksym.architecture.walk import Meta, concat_weights
from ntksym.codegen.runtime.numpy_fused import first_layer
from ntksym.codegen.spec import stable_layer_map
from ntksym.dual import residual, stable
from ntksym.dual.covariance import careful_det
from ntksym.dual.families import base_family_name
from ntksym.dual.family import numpy_function
from ntksym.kernels import variance_dd
from ntksym.kernels.mended_det import mend_det

__all__ = ["Block", "Float64Ops", "input_block"]


@dataclass(frozen=True)
class Block:
    """The Gram blocks of one branch.

    Attributes:
        s11: ``Sigma(x_i, x_i)``, shape (N1,).
        s22: ``Sigma(x'_j, x'_j)``, shape (N2,).
        s12: ``Sigma(x_i, x'_j)``, shape (N1, N2).
        det: ``s11 s22 - s12^2`` carried accurately, or None (then formed by subtraction).
        ntk: The NTK block, or None when it is not asked for.
        coincide: Pairs that are one Gaussian (equal variance, covariance and zero
            determinant); their covariance stays singular.
        inputs: ``(X1, X2, X1 @ X2.T, |X1|^2, |X2|^2)`` while the block is still the
            inputs' (the first Dense layer forms its determinant from them).
        same_examples: Whether the block is rows of ``K(X, X)`` (``X1`` rows of ``X2``),
            so that the pair of an example with itself is one example (Dropout draws one
            mask for it).
        row_offset: With ``same_examples``, the index in ``X2`` of the block's first row:
            row ``i``'s own pair is column ``i + row_offset`` (a block of rows of
            :func:`ntksym.kernels.layer_blocks.evaluate_layers`).
        lo11: What the rounding of ``s11`` lost (``s11 + lo11`` is the variance in
            double-double: :mod:`ntksym.kernels.variance_dd`), or None where no layer
            says (0).
        lo22: The same for ``s22``.
    """

    s11: np.ndarray
    s22: np.ndarray
    s12: np.ndarray
    det: np.ndarray | None
    ntk: np.ndarray | None
    coincide: np.ndarray
    inputs: tuple[np.ndarray, ...] | None = None
    same_examples: bool = False
    row_offset: int = 0
    lo11: np.ndarray | None = None
    lo22: np.ndarray | None = None

    def lows(self) -> tuple[np.ndarray, np.ndarray]:
        """``(lo11, lo22)``, zeros where not known."""
        lo11 = np.zeros_like(self.s11) if self.lo11 is None else self.lo11
        lo22 = np.zeros_like(self.s22) if self.lo22 is None else self.lo22
        return lo11, lo22

    def affine(self, a: float, d: float, s11: np.ndarray, s22: np.ndarray) -> dict[str, Any]:
        """The low parts of ``a s + d`` of both variances, rounded to ``s11`` and ``s22``."""
        lo11, lo22 = self.lows()
        return {
            "lo11": variance_dd.affine_lo(self.s11, lo11, a, d, s11),
            "lo22": variance_dd.affine_lo(self.s22, lo22, a, d, s22),
        }

    def self_pairs(self) -> np.ndarray:
        """Which entries pair an example with itself (all False unless ``same_examples``)."""
        mask = np.zeros(self.s12.shape, dtype=bool)
        if self.same_examples:
            rows = np.arange(self.s12.shape[0])
            cols = rows + self.row_offset
            keep = cols < self.s12.shape[1]
            mask[rows[keep], cols[keep]] = True
        return mask


#: Rows of ``X1`` per product ``X1 @ X2.T`` (:func:`gram_rows`): each entry of the Gram
#: product comes from the same BLAS call, at the same global rows, whatever the block of
#: rows asked for (BLAS may round an entry differently in a product of another shape, or
#: by ``syrk`` for ``X @ X.T``).
GRAM_ROWS = 16


def gram_rows(
    X1: np.ndarray, X2: np.ndarray, start: int = 0, stop: int | None = None
) -> np.ndarray:
    """Rows ``start:stop`` of ``X1 @ X2.T``, from products of :data:`GRAM_ROWS` aligned rows.

    Any block of rows gets the bits of the whole product computed the same way.
    """
    stop = X1.shape[0] if stop is None else stop
    G = np.empty((stop - start, X2.shape[0]))
    for c in range(start // GRAM_ROWS * GRAM_ROWS, stop, GRAM_ROWS):
        part = X1[c : c + GRAM_ROWS] @ X2.T
        lo, hi = max(c, start), min(c + GRAM_ROWS, stop)
        G[lo - start : hi - start] = part[lo - c : hi - c]
    return G


def input_block(
    X1: np.ndarray,
    X2: np.ndarray,
    need_ntk: bool,
    same_examples: bool = False,
    row_offset: int = 0,
    G: np.ndarray | None = None,
    lows: tuple[np.ndarray, np.ndarray] | None = None,
) -> Block:
    """The inputs' kernel ``x.x'/n0`` (NTK zero); no determinant until the first Dense.

    ``same_examples`` says that the rows of ``X1`` are those of ``X2`` from ``row_offset``
    on (``K(X, X)`` or a block of its rows; see :class:`Block`). ``G`` is ``X1 @ X2.T``
    if known (a block's rows of :func:`gram_rows`), computed by :func:`gram_rows` if not.
    ``lows`` are the low parts of the rows' squared norms (``|x|^2 - sq``: computed once
    for the whole inputs by the caller, or here).
    """
    n0 = X1.shape[1]
    G = gram_rows(X1, X2) if G is None else G
    sq1, sq2 = np.einsum("ij,ij->i", X1, X1), np.einsum("ij,ij->i", X2, X2)
    # An input paired with itself: its inner product is its squared norm, exactly (BLAS and
    # einsum round differently), so that the pair is seen to coincide at every layer.
    ii, jj = np.nonzero(sq1[:, None] == sq2[None, :])
    same = [(i, j) for i, j in zip(ii, jj, strict=True) if np.array_equal(X1[i], X2[j])]
    if same:
        si, sj = np.array(same).T
        G[si, sj] = sq1[si]
    ntk = np.zeros_like(G) if need_ntk else None
    coincide = np.zeros(G.shape, dtype=bool)
    inputs = (X1, X2, G, sq1, sq2)
    if lows is None:
        lows = variance_dd.squared_norms_lo(X1, sq1), variance_dd.squared_norms_lo(X2, sq2)
    s11, s22 = sq1 / n0, sq2 / n0
    lo11 = variance_dd.affine_lo(sq1, lows[0], 1.0 / n0, 0.0, s11)
    lo22 = variance_dd.affine_lo(sq2, lows[1], 1.0 / n0, 0.0, s22)
    return Block(
        s11, s22, G / n0, None, ntk, coincide, inputs, same_examples, row_offset, lo11, lo22
    )


def _first_dense(inputs: tuple[np.ndarray, ...], w2: float, b2: float) -> tuple[np.ndarray, ...]:
    """Sigma of a Dense layer on the inputs and its determinant, as ``kernels.dual_path``.

    The determinant is the generated kernels' (Lagrange's identity with an error-free
    projection for near-parallel pairs); a pair *coincides* when its two inputs give one
    Gaussian.
    """
    X1, X2, G, sq1, sq2 = inputs
    c = w2 / X1.shape[1]
    s12, det = first_layer(X1, X2, G, sq1, sq2, -1, c, b2)
    s11, s22 = c * sq1 + b2, c * sq2 + b2
    coincide = (det == 0) & (s11[:, None] == s22[None, :]) & (s12 == s11[:, None])
    return s11, s22, s12, det, coincide


def _affine_det(b: Block, w2: float, b2: float) -> np.ndarray | None:
    """The determinant after ``Sigma -> w2 Sigma + b2``, without cancellation."""
    if b.det is None:
        return None
    if b2 == 0.0:
        return (w2 * w2) * b.det
    gap = _gap(b, b.det)
    out = (w2 * w2) * b.det + (w2 * b2) * (_root_gap(b) ** 2 + 2.0 * gap)
    out[b.coincide] = 0.0
    return out


#: Families whose next determinant is carried without cancellation (one list, in ``dual``).
STABLE_DET_FAMILIES = stable.CARRIED_DET_FAMILIES


@functools.lru_cache(maxsize=64)
def stable_det(act: Activation) -> Callable[..., Any] | None:
    """The determinant after ``act`` without cancellation, from its family's stable layer map.

    The map's ``det`` is the next layer's ``N11 N22 - (W2 E[sigma sigma] + B2)^2`` written
    as a product of gaps (``ntksym.dual.stable``); with ``W2 = 1`` and ``B2 = 0`` it is the
    activation's own output covariance's determinant. Used for the families of
    :data:`STABLE_DET_FAMILIES` and their scaled members ``a f(b u)``; None for the others,
    after which the determinant is formed by subtraction.
    """
    if base_family_name(act) not in STABLE_DET_FAMILIES:
        return None
    found = stable_layer_map(act)
    if found is None:
        return None
    lm = found[0]
    det = stable.next_det(lm)
    if det is None:
        return None
    args = (stable.S11, stable.S22, stable.S12, stable.D, stable.N11, stable.N22, stable.U)
    expr = det.xreplace({stable.W2: sp.Integer(1), stable.B2: sp.Integer(0)})
    return numpy_function(args, expr, cse=True)


def _activation_det(
    p: Block, act: Activation, k11: np.ndarray, k22: np.ndarray, k12: np.ndarray, u: np.ndarray
) -> Any:
    """The determinant after ``act``: its family's stable map, else the residual's integral.

    ``u`` is ``p``'s root gaps (:func:`_root_gap`).
    """
    fn = stable_det(act)
    if fn is None:
        det = residual.next_det(act, p.s11, p.s22, p.s12, p.det, k11, k22, k12)
        mend_det(act, det, p.s11, p.s22, p.s12, p.det, u, k11, k22)
        det[p.coincide] = 0.0
        return det
    with np.errstate(all="ignore"):  # a Piecewise evaluates the branches it does not take
        det = np.broadcast_to(
            fn(p.s11[:, None], p.s22[None, :], p.s12, p.det, k11[:, None], k22[None, :], u),
            p.s12.shape,
        ).copy()
    det = np.where(np.isfinite(det), np.maximum(det, 0.0), np.nan)
    det[p.coincide] = 0.0
    return None if np.isnan(det).any() else det


class Float64Ops:
    """The layer maps of :mod:`ntksym.kernels.layer_maps` in float64 (an :class:`~.walk.Ops`)."""

    def dense(self, p: Block, meta: Meta, layer: Dense) -> Block:
        """Sigma and Theta after a Dense layer (see the module docstring)."""
        w2, b2 = layer.w_std**2, layer.b2
        det: np.ndarray | None
        if p.inputs is not None:
            s11, s22, s12, det, coincide = _first_dense(p.inputs, w2, b2)
        else:
            s11, s22, s12 = w2 * p.s11 + b2, w2 * p.s22 + b2, w2 * p.s12 + b2
            det, coincide = _affine_det(p, w2, b2), p.coincide
        ntk = p.ntk
        if ntk is not None:
            if layer.parameterization == "ntk":
                ntk = w2 * ntk + s12
            else:
                n_in = meta.width / layer.s[0]
                ntk = w2 * ntk + n_in * p.s12 + (0.0 if layer.b_std is None else 1.0)
        lows = p.affine(w2, b2, s11, s22)
        return replace(
            p, s11=s11, s22=s22, s12=s12, det=det, ntk=ntk, coincide=coincide, inputs=None, **lows
        )

    def nonlinearity(self, p: Block, layer: Nonlinearity) -> Block:
        """Sigma and Theta after an activation, by its stable dual maps."""
        act = layer.activation
        det = p.det
        if det is None:
            det = np.maximum(careful_det(p.s11[:, None], p.s12, p.s22[None, :]), 0.0)
            det[p.coincide] = 0.0
        p, u = replace(p, det=det), _root_gap(p)
        k12, kdot = dual.evaluate(
            act, p.s11[:, None], p.s12, p.s22[None, :], det=det, degree=None, root_gap=u
        )
        zeros1, zeros2 = np.zeros_like(p.s11), np.zeros_like(p.s22)
        k11 = dual.evaluate(act, p.s11, p.s11, p.s11, det=zeros1, degree=None)[0]
        k22 = dual.evaluate(act, p.s22, p.s22, p.s22, det=zeros2, degree=None)[0]
        ntk = p.ntk
        if ntk is not None:
            ntk = np.zeros_like(ntk) if layer.zero_ntk else ntk * kdot
        det = _activation_det(p, act, k11, k22, k12, u)
        lo11, lo22 = p.lows()
        lows = {
            "lo11": variance_dd.activation_lo(act, p.s11, lo11, k11),
            "lo22": variance_dd.activation_lo(act, p.s22, lo22, k22),
        }
        return replace(p, s11=k11, s22=k22, s12=k12, det=det, ntk=ntk, inputs=None, **lows)

    def layer_norm(self, p: Block, layer: LayerNorm) -> Block:
        """Every entry divided by the square roots of its two (eps-shifted) variances."""
        p1, p2 = layer.eps + p.s11, layer.eps + p.s22
        scale = np.sqrt(p1[:, None] * p2[None, :])
        with np.errstate(divide="ignore", invalid="ignore"):
            s12 = p.s12 / scale
            det = None if p.det is None else p.det / (p1[:, None] * p2[None, :])
            ntk = None if p.ntk is None else p.ntk / scale
            s11, s22 = p.s11 / p1, p.s22 / p2
        return replace(
            p, s11=s11, s22=s22, s12=s12, det=det, ntk=ntk, inputs=None, lo11=None, lo22=None
        )

    def dropout(self, p: Block, layer: Dropout) -> Block:
        """Variances over ``rate``; the diagonal of ``K(X, X)`` too (see the module docstring).

        The determinant of a pair whose covariance stays is ``det / rate^2 + s12^2 (1 /
        rate^2 - 1)``, a sum of two non-negative terms; a diagonal pair stays singular.
        """
        f = 1.0 / layer.rate
        diag = p.self_pairs()
        s12 = np.where(diag, f * p.s12, p.s12)
        ntk = None if p.ntk is None else np.where(diag, f * p.ntk, p.ntk)
        det = None
        if p.det is not None:
            det = (f * f) * p.det + (f * f - 1.0) * p.s12 * p.s12
            det[diag] = (f * f) * p.det[diag]
        s11, s22 = f * p.s11, f * p.s22
        lows = p.affine(f, 0.0, s11, s22)
        return replace(
            p, s11=s11, s22=s22, s12=s12, det=det, ntk=ntk, coincide=p.coincide & diag, **lows
        )

    def fan_in_sum(self, ps: Sequence[Block]) -> Block:
        """The sum of independent branches: every block summed, the determinant by :func:`_sum`."""
        total = ps[0]
        for p in ps[1:]:
            total = _sum(total, p)
        return replace(total, inputs=None)

    def fan_in_concat(self, ps: Sequence[Block], widths: Sequence[int]) -> Block:
        """The width-weighted mean of the branches: each scaled by ``c_i``, then summed."""
        weights = concat_weights(widths)
        return self.fan_in_sum([_scaled(p, c) for p, c in zip(ps, weights, strict=True)])


def _scaled(b: Block, c: float) -> Block:
    """A branch's block times ``c > 0``: covariances and NTK times ``c``, ``det`` times ``c^2``."""
    det = None if b.det is None else (c * c) * b.det
    ntk = None if b.ntk is None else c * b.ntk
    s11, s22 = c * b.s11, c * b.s22
    lows = b.affine(c, 0.0, s11, s22)
    return replace(b, s11=s11, s22=s22, s12=c * b.s12, det=det, ntk=ntk, inputs=None, **lows)


def _root_gap(b: Block) -> np.ndarray:
    """``sqrt(s11) - sqrt(s22)`` per pair from the variances' difference in double-double.

    The difference of the rounded roots is 2.8e-8 off for a pair 1e-8 apart after a
    biased ReLU layer; that of the rounded variances 1.1e-9 (their rounding); that of the
    double-double variances is exact to rounding.
    """
    lo11, lo22 = b.lows()
    return variance_dd.root_gap(b.s11, lo11, b.s22, lo22)


def _gap(b: Block, det: np.ndarray) -> np.ndarray:
    """``sqrt(s11 s22) - s12`` without cancellation where ``s12 > 0`` (``D / (M + s12)``).

    ``det`` is the block's carried determinant ``D`` (the callers hold it checked not None).
    """
    m = np.sqrt(b.s11)[:, None] * np.sqrt(b.s22)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.where(b.s12 > 0, det / (m + b.s12), m - b.s12)
    return np.where(np.isfinite(gap), gap, m - b.s12)


def _cross_gap(a: Block, b: Block) -> np.ndarray:
    """``sqrt(a11 b22) - sqrt(a22 b11)`` per pair from the products' difference (double-double)."""
    (al11, al22), (bl11, bl22) = a.lows(), b.lows()
    return variance_dd.cross_gap((a.s11, al11, a.s22, al22), (b.s11, bl11, b.s22, bl22))


def _sum(a: Block, b: Block) -> Block:
    """Two independent branches summed; the determinant without cancellation when known.

    With ``M = sqrt(s11 s22)`` and ``g = M - s12`` for each branch,
    ``det(A + B) = det A + det B + (sqrt(a11 b22) - sqrt(a22 b11))^2 + 2 M_a g_b + 2 M_b g_a
    - 2 g_a g_b`` (the roots' difference by :func:`_cross_gap`), whose terms are all small
    together for a near-parallel pair (the last is a product of two gaps), so nothing
    cancels where ``a12, b12 > 0``; elsewhere the direct form ``a11 b22 + a22 b11 - 2 a12
    b12`` is used.
    """
    ntk = None if a.ntk is None or b.ntk is None else a.ntk + b.ntk
    s11, s22, s12 = a.s11 + b.s11, a.s22 + b.s22, a.s12 + b.s12
    coincide = a.coincide & b.coincide
    det = None
    if a.det is not None and b.det is not None:
        ga, gb = _gap(a, a.det), _gap(b, b.det)
        ma = np.sqrt(a.s11)[:, None] * np.sqrt(a.s22)[None, :]
        mb = np.sqrt(b.s11)[:, None] * np.sqrt(b.s22)[None, :]
        near = (a.s12 > 0) & (b.s12 > 0)
        cross = np.where(
            near,
            _cross_gap(a, b) ** 2 + 2 * ma * gb + 2 * mb * ga - 2 * ga * gb,
            np.outer(a.s11, b.s22) + np.outer(b.s11, a.s22) - 2 * a.s12 * b.s12,
        )
        det = np.maximum(a.det + b.det + cross, 0.0)
        det[coincide] = 0.0
    (al11, al22), (bl11, bl22) = a.lows(), b.lows()
    lows = {
        "lo11": variance_dd.sum_lo(a.s11, al11, b.s11, bl11),
        "lo22": variance_dd.sum_lo(a.s22, al22, b.s22, bl22),
    }
    return replace(
        a, s11=s11, s22=s22, s12=s12, det=det, ntk=ntk, coincide=coincide, inputs=None, **lows
    )
