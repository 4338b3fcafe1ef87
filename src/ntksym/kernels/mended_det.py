"""The layer maps' next determinant after a typed Gaussian-MGF expression, mended.

After an activation without a carried next determinant (``sin(u) + u``, ``cos(u) + u``,
``u + exp(u)/10``) the layer maps form ``k11 k22 - k12^2`` by subtraction, or by the
residual's integral where its rules agree (:func:`ntksym.dual.residual.next_det`). The
subtraction keeps the rounding of the outputs, about ``eps N^2``: for a pair 1e-8 apart
at variances near 1e8 an error of the size of the determinant itself, which a following
map that reads ``D`` turns into 1e-8 of the kernel. Where
:func:`ntksym.dual.families.mgf_expr_check.certified_det` gives a certified form, this
module computes it at the entries whose difference cancels (``< GATE k11 k22``) and whose
variances are at least the certified floor, as the homogeneous modules do
(:mod:`ntksym.codegen.mend`).
"""

from __future__ import annotations

import numpy as np

from ntksym.activations import Activation
from ntksym.codegen.runtime.numpy_mend import mend_gathered
from ntksym.dual.families.mgf_expr_check import GATE, certified_det

__all__ = ["mend_det"]


def mend_det(
    act: Activation,
    det: np.ndarray,
    s11: np.ndarray,
    s22: np.ndarray,
    s12: np.ndarray,
    d: np.ndarray,
    u: np.ndarray,
    k11: np.ndarray,
    k22: np.ndarray,
) -> None:
    """Overwrite ``det`` (after ``act``, ``W2 = 1``, ``B2 = 0``) where it cancels, in place.

    Args:
        act: The activation.
        det: Its output covariances' determinants as formed, shape (N1, N2).
        s11: Input variances of the rows, shape (N1,).
        s22: Input variances of the columns, shape (N2,).
        s12: Input covariances, shape (N1, N2).
        d: The input covariances' determinants, carried accurately, shape (N1, N2).
        u: ``sqrt(s11) - sqrt(s22)`` per pair, accurately, shape (N1, N2).
        k11: ``E[f(u)^2]`` of the rows, shape (N1,).
        k22: ``E[f(v)^2]`` of the columns, shape (N2,).
    """
    with np.errstate(invalid="ignore"):
        pick = det < GATE * (k11[:, None] * k22[None, :])
    if not pick.any():
        return
    found = certified_det(act.expr)
    if found is None:
        return
    rows, cols = np.nonzero(pick & (d >= 0.0))
    keep = np.minimum(s11[rows], s22[cols]) >= found.min_variance  # (the certified range)
    rows, cols = rows[keep], cols[keep]
    if rows.size == 0:
        return
    args = (s11[rows], s22[cols], s12[rows, cols], d[rows, cols], u[rows, cols])
    out = mend_gathered(*args, found.numeric, 1.0, 0.0)
    ok = np.isfinite(out)
    det[rows[ok], cols[ok]] = np.maximum(out[ok], 0.0)
