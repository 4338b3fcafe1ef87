"""The determinant after an activation without a closed form, as the integral of a residual.

After a dual map computed by quadrature, the output covariance ``E = [[E11, E12], [E12,
E22]]`` (``E11 = E[f(u)^2]``, ``E12 = E[f(u) f(v)]``, ``E22 = E[f(v)^2]``) is known to a
few ulps of its entries, so ``E11 E22 - E12^2`` formed by subtraction carries an absolute
error of a few ``eps E11 E22``. For a nearly parallel pair that is all of it: a kinked
layer after it (ReLU) sees an angle ``theta'`` with an absolute error of about
``eps / theta'`` (``sqrt(eps)`` at ``theta'`` near 1e-8), which its derivative map
``(pi - theta') / (2 pi)`` passes on to the NTK.

Here the determinant of such pairs is the integral of a quantity that is small where the
determinant is: with ``c = E12 / E11`` (the least-squares coefficient of ``f(v)`` on
``f(u)``),

    E11 E22 - E12^2 = E11 Q,   Q = E[(f(v) - c f(u))^2] = E22 - E12^2 / E11,

the variance of the residual of that regression. The integrand is small at every node for
a nearly parallel pair, so the quadrature's error is relative to ``Q`` itself, and ``Q``
is least at this ``c``: an error ``dc`` in ``c`` (from ``E12``'s) changes ``Q`` by
``dc^2 E11`` only. Rounding in ``f(v) - c f(u)`` costs a relative ``~4 eps / theta'`` of
``Q``, an absolute ``~2 eps`` in ``theta'``.

The rule: ``u = a z1``, ``v = b z1 + e z2`` with ``a = sqrt(S11)``, ``b = S12 / a``,
``e = sqrt(D / S11)`` (``D`` the input covariance's carried determinant) and ``z1, z2``
independent standard normals. In ``z1``, the trapezoid rule after the sinh-type map of the
quadrature modules (``z = R asinh((l/R) sinh t)``, Trefethen & Weideman, SIAM Review 56,
2014) on the activation's scale ``l = 1 / max(a, |b|)``, at step ``h`` and ``2 h`` (its even
nodes); in ``z2``, Gauss-Hermite rules of 16 and 8 points (``f(b z1 + e z2)`` varies on the
scale ``e``, small next to ``a`` for these pairs, so it is nearly a polynomial in ``z2``).
An entry is accepted where both pairs of rules agree to :data:`AGREE` relative to ``Q``
(the rules converge geometrically, so the finer one's error is then about ``AGREE^2``) or
to within the rounding of the residual itself (the floor of any rule here; an activation
whose own values are rounded more coarsely, ``log(1 + u^2)`` for small ``u``, is not);
the step is halved up to :data:`LEVELS` times for the others, and what still disagrees
keeps the determinant by subtraction.
"""

from __future__ import annotations

import math

import numpy as np

from ntksym.activations import Activation
from ntksym.codegen.runtime.numpy_mehler import nodes
from ntksym.codegen.runtime.quadrature_rule import RULE
from ntksym.dual.covariance import careful_det

__all__ = ["AGREE", "LEVELS", "NEAR", "next_det"]

#: Pairs whose determinant by subtraction is below this fraction of ``E11 E22`` (an output
#: angle below about 1e-2) get it by the residual's integral: above it, the subtraction's
#: error in the angle, ``~eps / theta'``, is below ~2e-14.
NEAR = 1e-4
#: The two rules (steps ``h``, ``2 h``; 16 and 8 Gauss-Hermite points) must agree to this,
#: relative to ``Q``.
AGREE = 1e-7
#: Steps tried: ``H0 / 2^k`` for ``k = 1 .. LEVELS``.
LEVELS = 4
_EPS = 2.220446049250313e-16
_Z = 9.0  # the nodes in z1 cover |z1| <= _Z (the Gaussian is below 3e-18 there)
_POINTS = 1 << 13  # entries x nodes in z1 per batch (its arrays hold 16 times as many numbers)
_GH_FINE, _GH_COARSE = (
    tuple(np.asarray(x) for x in np.polynomial.hermite_e.hermegauss(m)) for m in (16, 8)
)


def next_det(
    act: Activation,
    s11: np.ndarray,
    s22: np.ndarray,
    s12: np.ndarray,
    det: np.ndarray,
    k11: np.ndarray,
    k22: np.ndarray,
    k12: np.ndarray,
) -> np.ndarray:
    """``k11 k22 - k12^2`` of the covariance after ``act``: the residual's integral where needed.

    Args:
        act: The activation (its ``numpy`` function is integrated).
        s11: Input variances of the rows, shape (N1,).
        s22: Input variances of the columns, shape (N2,).
        s12: Input covariances, shape (N1, N2).
        det: The input covariances' determinants, carried accurately, shape (N1, N2).
        k11: ``E[f(u)^2]`` of the rows, shape (N1,).
        k22: ``E[f(v)^2]`` of the columns, shape (N2,).
        k12: ``E[f(u) f(v)]``, shape (N1, N2).

    Returns:
        The output determinants, shape (N1, N2): by subtraction (double-double products)
        where it is at least :data:`NEAR` ``k11 k22`` or the residual's rules do not agree,
        else ``k11 Q`` (see the module's docstring).
    """
    p11, p22 = k11[:, None], k22[None, :]
    with np.errstate(all="ignore"):  # (an infinite map is refused by the caller)
        out = np.maximum(careful_det(p11, k12, p22), 0.0)
        # (det = 0 too: exactly rescaled inputs, x and x (1 + 2^-30), whose outputs differ
        # only through the variances; det >= 0 leaves NaN out)
        near = (out < NEAR * (p11 * p22)) & (p11 > 0.0) & (s11[:, None] > 0.0) & (det >= 0.0)
    rows, cols = np.nonzero(near)
    if rows.size == 0:
        return out
    a = np.sqrt(s11[rows])
    b = s12[rows, cols] / a
    e = np.sqrt(det[rows, cols] / s11[rows])
    c = k12[rows, cols] / k11[rows]
    q, ok = _residual(act, a, b, e, c)
    out[rows[ok], cols[ok]] = k11[rows[ok]] * q[ok]
    return out


def _residual(
    act: Activation, a: np.ndarray, b: np.ndarray, e: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``Q = E[(f(b z1 + e z2) - c f(a z1))^2]`` per entry, and where its rules agreed."""
    q = np.zeros(a.size)
    done = np.zeros(a.size, dtype=bool)
    # the scale 1 / max(a, |b|) rounded down to R 2^(-g/2), so that a group shares its nodes
    r = np.maximum(a, np.abs(b))
    g = np.maximum(np.ceil(2.0 * np.log2(RULE.R * r)), 0.0)
    for level in range(1, LEVELS + 1):
        for gv in np.unique(g[~done]):
            todo = np.nonzero((g == gv) & ~done)[0]
            z1, w1, even = nodes(RULE.R * 2.0 ** (-0.5 * gv), RULE.H0 / 2**level, _Z)
            step = max(1, _POINTS // z1.size)
            for start in range(0, todo.size, step):
                i = todo[start : start + step]
                qi, oki = _integrate(act, a[i], b[i], e[i], c[i], z1, w1, even)
                q[i] = qi
                done[i] = oki
        if done.all():
            break
    return q, done


def _integrate(
    act: Activation,
    a: np.ndarray,
    b: np.ndarray,
    e: np.ndarray,
    c: np.ndarray,
    z1: np.ndarray,
    w1: np.ndarray,
    even: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The residual's four rules for a batch of entries sharing the nodes ``z1``.

    Returns ``Q`` by the finer rules and where the rules agree to :data:`AGREE` relative
    to it, or to the rounding of the residual itself (first order: ``2 eps sum w |r|
    (|f(v)| + |c f(u)|)``; the pointwise subtraction's floor, ~``4 eps / theta'`` of ``Q``).
    """
    sums = []
    noise = np.zeros(a.size)
    with np.errstate(all="ignore"):
        fu = c[:, None] * act.numpy(a[:, None] * z1[None, :])
        for fine, (x2, w2) in ((True, _GH_FINE), (False, _GH_COARSE)):
            w2 = w2 / math.sqrt(2.0 * math.pi)
            v = (b[:, None] * z1[None, :])[:, :, None] + (e[:, None] * x2[None, :])[:, None, :]
            fv = np.asarray(act.numpy(v))
            res = fv - fu[:, :, None]
            inner = (res * res * w2).sum(-1)  # (per entry: no BLAS, whose sums may
            # depend on how many entries a batch holds; a block of rows keeps its bits)
            sums.append((inner * w1, inner[:, even] * w1[even]))
            if fine:  # (the rounding floor, from the finer rule's residuals)
                mag = (np.abs(res) * (np.abs(fv) + np.abs(fu)[:, :, None]) * w2).sum(-1)
                noise = 2.0 * _EPS * (mag * w1).sum(-1)
    (full, full2), (coarse, _) = sums
    q = full.sum(1)
    with np.errstate(all="ignore"):
        agree = np.maximum(np.abs(q - 2.0 * full2.sum(1)), np.abs(q - coarse.sum(1)))
        ok = np.isfinite(q) & (q > 0.0) & (agree <= AGREE * q + 2.0 * noise)
    return q, ok
