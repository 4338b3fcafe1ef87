"""Each input's variance as a double-double ``hi + lo`` along the float64 layer maps.

A determinant with a bias reads the roots' gap ``sqrt(S11) - sqrt(S22)`` of a pair, and a
sum of branches ``sqrt(a11 b22) - sqrt(a22 b11)``. For a pair 1e-8 apart these are 1e-8 of
the variances, so the variances' own rounding (``eps`` each, independent) costs them 1e-8
of their digits: ``(S11 - S22)`` of the rounded variances is exact, but it is the wrong
difference. Each variance therefore keeps the part ``lo`` that its rounding lost, where a
layer can say what it is:

* the inputs' ``|x|^2`` by a compensated sum of error-free squares (Ogita, Rump & Oishi
  2005, "Accurate sum and dot product", Dot2);
* ``Sigma -> w2 Sigma + b2`` (Dense, Dropout, a branch's weight in a concatenation) and an
  activation whose diagonal map is affine in ``Sigma`` (the piecewise-linear family,
  ``sign``, any ``a f(b u) + c`` of them) by error-free products and sums (Dekker 1971,
  Knuth's TwoSum);
* a sum of branches, by TwoSum;
* an activation whose diagonal map is a closed form but not affine (erf, GELU, sin, a
  polynomial, ...), by that map in long double (:mod:`ntksym.codegen.long_diag`; 11 more
  bits than float64 on x86, none where long double is float64).

Anywhere else (no closed form, ``LayerNorm`` with ``eps > 0``) ``lo`` is 0: the variance
is as accurate as its float64 rounding, as before. ``hi`` is always the
float64 value the layer maps computed, so every other result keeps its bits.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ntksym.activations import Activation
from ntksym.codegen.long_diag import long_diag
from ntksym.codegen.runtime import numpy_long
from ntksym.codegen.spec import affine_diag
from ntksym.dual.covariance import product_difference

__all__ = [
    "activation_lo",
    "affine_lo",
    "cross_gap",
    "root_gap",
    "squared_norms_lo",
    "sum_lo",
    "two_sum",
]


#: Knuth's error-free sum: ``a + b = s + t`` exactly (barring overflow).
two_sum: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] = numpy_long.two_sum
#: ``squared_norms_lo(X, hi)``: ``|x_i|^2 - hi_i`` for each row, to about ``eps^2 |x_i|^2``
#: (Dot2, one column at a time); ``hi`` is any float64 near the squared norms.
squared_norms_lo: Callable[[np.ndarray, np.ndarray], np.ndarray] = numpy_long.norms_lo
#: ``affine_lo(hi, lo, a, d, out_hi)``: the low part of ``a (hi + lo) + d`` whose rounded
#: value the caller holds as ``out_hi`` (0 where not finite: the split overflows).
affine_lo: Callable[..., np.ndarray] = numpy_long.affine_lo


def activation_lo(
    act: Activation, hi: np.ndarray, lo: np.ndarray, out_hi: np.ndarray
) -> np.ndarray | None:
    """The low part of ``E[sigma(u)^2]`` at ``u ~ N(0, hi + lo)``, rounded to ``out_hi``.

    Exact to rounding where the map is affine (:func:`affine_lo`); from the map in long
    double where it is another closed form (:func:`ntksym.codegen.long_diag.long_diag`);
    None where neither is known (the low part is 0).
    """
    aff = affine_diag(act)
    if aff is not None:
        return affine_lo(hi, lo, aff[0], aff[1], out_hi)
    f = long_diag(act)
    return None if f is None else numpy_long.long_low(f, hi, lo, out_hi)


def sum_lo(a_hi: np.ndarray, a_lo: np.ndarray, b_hi: np.ndarray, b_lo: np.ndarray) -> np.ndarray:
    """The low part of ``(a_hi + a_lo) + (b_hi + b_lo)`` against ``a_hi + b_hi`` rounded."""
    return two_sum(a_hi, b_hi)[1] + (a_lo + b_lo)


def root_gap(s11: np.ndarray, lo11: np.ndarray, s22: np.ndarray, lo22: np.ndarray) -> np.ndarray:
    """``sqrt(S11) - sqrt(S22)`` per pair (rows ``S11``, columns ``S22``, double-double).

    The variances' difference over the sum of their roots; 0 where both are 0.
    """
    return numpy_long.root_gap(s11, lo11, s22, lo22, np.sqrt(s11), np.sqrt(s22))


def cross_gap(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> np.ndarray:
    """``sqrt(a11 b22) - sqrt(a22 b11)`` per pair for two branches ``(s11, lo11, s22, lo22)``.

    The products' difference (double-double, with the low parts' first-order terms) over
    the sum of their roots; 0 where both products are 0.
    """
    a11, al11, a22, al22 = a
    b11, bl11, b22, bl22 = b
    p, q = np.outer(a11, b22), np.outer(b11, a22)
    total = np.sqrt(p) + np.sqrt(q)
    diff = product_difference(a11[:, None], b22[None, :], b11[:, None], a22[None, :])
    diff += (np.outer(a11, bl22) + np.outer(al11, b22)) - (
        np.outer(b11, al22) + np.outer(bl11, a22)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        u = diff / total
    return np.where(total > 0.0, u, 0.0)
