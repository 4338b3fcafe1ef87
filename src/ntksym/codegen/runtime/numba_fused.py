"""Diagonal chain, first-layer determinant and parallel row loops of the Numba kernels.

Included by ``kernel_numba.py.jinja`` for every activation. Between the regions the
template adds what depends on the activation: the layer loop ``_layers`` and, when
the layer map reads the root gap ``U``, the lines of ``_row`` that carry it.

``_det_near`` forms the first-layer determinant ``S11 S22 - S12^2`` of a
near-parallel pair without cancellation (Lagrange's identity with a Dekker split);
``_row`` computes one row of the Gram matrices, ``_fused_sym`` and ``_fused`` run the
rows in parallel, and ``_compute`` is the entry point of a generated module.

On its own this module computes the kernels of the identity activation, for which
the stand-ins below are exact: ``E[u^2] = S``, and each layer maps ``S12`` to
``W2 S12 + B2`` and ``Theta`` to ``W2 Theta + S12'``.
"""

# The regions' functions carry no annotations (they are copied as they are), so mypy
# checks their bodies with the types it infers.
# mypy: check-untyped-defs

# The regions are copied into the generated modules byte for byte, so their docstrings and
# names stay as they are there: ruff checks everything else.
# ruff: noqa: D205, D209

import numba
import numpy


@numba.njit(cache=True, error_model="numpy")
def _diag(S):
    return S


@numba.njit(cache=True, error_model="numpy")
def _max(a, b):
    return a if a >= b else b


# region chain
@numba.njit(cache=True, error_model="numpy")
def _diag_chain(sq, c, depth, W2, B2):
    """Diagonal variances Sigma^(l)(x, x), l = 1..depth, once per row."""
    n = sq.shape[0]
    V = numpy.empty((depth, n))
    for i in range(n):
        s = c * sq[i] + B2
        V[0, i] = s
        for layer in range(1, depth):
            s = W2 * _diag(s) + B2
            V[layer, i] = s
    return V


@numba.njit(cache=True, error_model="numpy")
def _det_near(g, a, b, X1, i, X2, j, c, B2):
    """Determinant of Sigma^(1) for a pair (x_i, x'_j) with |rho| > 0.99, and |x| - |x'|,
    both without cancellation.

    S11 S22 - S12^2 = c^2 det_x + c b^2 ((|x| - |x'|)^2 + 2 |x||x'| (1 - rho)), with
    det_x = |x|^2 |x'|^2 - (x.x')^2 = |x|^2 |e|^2 - (x.e)^2 (Lagrange's identity, true
    for any t) with e = x' - t x, t = x.x'/|x|^2 rounded to 26 bits and t x formed
    exactly from Dekker's split of x: e is small and accurate, so nothing cancels,
    whatever the two norms; |x'|^2 - |x|^2 is formed from e too.
    """
    ab = a * b
    sq = a * a
    t = g / sq
    gam = 134217729.0 * t
    th = gam - (gam - t)
    ee = 0.0
    xe = 0.0
    for k in range(X1.shape[1]):
        xk = X1[i, k]
        gk = 134217729.0 * xk
        xh = gk - (gk - xk)
        e = (X2[j, k] - th * xh) - th * (xk - xh)
        ee += e * e
        xe += xk * e
    # e still holds ~2^-26 |x'| along x (t was rounded to 26 bits), and its rounding,
    # ~2^-79 |x'|, would swamp the perpendicular part of angles below ~1e-8 (x' a
    # rescaled copy of x): project that out once more, e2 = x' - (t + dl) x, in
    # error-free steps (Dekker's product, Knuth's sum) so that e2 is accurate relative
    # to itself; the identity holds for e2 as for e.
    dl = xe / sq
    dg = 134217729.0 * dl
    dh = dg - (dg - dl)
    dlo = dl - dh
    ee2 = 0.0
    xe2 = 0.0
    for k in range(X1.shape[1]):
        xk = X1[i, k]
        gk = 134217729.0 * xk
        xh = gk - (gk - xk)
        xl = xk - xh
        a1 = X2[j, k] - th * xh  # exact (Sterbenz)
        b1 = th * xl  # exact (26 x 26 bits)
        r = a1 - b1
        bb = r - a1
        r_lo = (a1 - (r - bb)) - (b1 + bb)  # r + r_lo = a1 - b1 exactly
        q = dl * xk
        q_lo = ((dh * xh - q) + dh * xl + dlo * xh) + dlo * xl  # q + q_lo = dl xk
        e2 = ((r - q) + r_lo) - q_lo
        ee2 += e2 * e2
        xe2 += xk * e2
    detx = max(sq * ee2 - xe2 * xe2, 0.0)
    if 0.5 * a <= b <= 2.0 * a:
        dn = -((th * th - 1.0) * sq + 2.0 * th * xe + ee) / (a + b)
    else:
        dn = a - b
    omr2 = 2.0 * detx / (ab + abs(g)) if g > 0 else 2.0 * (ab - g)
    return c * c * detx + c * B2 * (dn * dn + omr2), dn
    # endregion chain


@numba.njit(cache=True, error_model="numpy")
def _layers(V1, R1, i, V2, R2, j0, depth, W2, B2, S, D, T):
    for layer in range(1, depth):
        n11 = V1[layer, i]
        n22 = V2[layer, j0:]
        for q in range(S.shape[0]):
            s12 = W2 * S[q] + B2
            T[q] = T[q] * W2 + s12
            S[q] = s12
            D[q] = _max(n11 * n22[q] - s12 * s12, 0.0)


# region row_start
@numba.njit(cache=True, error_model="numpy")
def _row(i, j0, G, a1, a2, X1, X2, V1, R1, V2, R2, same, c, depth, W2, B2, K, T):
    """Row i of K(X1, X2) from column j0 on (K may be G itself: read, then written).

    Returns the number of non-finite entries written to K and to T.
    """
    n2 = G.shape[1]
    m = n2 - j0
    S = K[i, j0:]
    Tr = T[i, j0:]
    D = numpy.empty(m)
    ai = a1[i]
    cb = c * B2
    # layer 1 by the plain formulas (a loop that vectorises), counting the pairs with
    # |rho| > 0.99, whose determinant _det_near then forms again without cancellation
    near = 0
    for q in range(m):
        g = G[i, j0 + q]
        b = a2[j0 + q]
        ab = ai * b
        dn = ai - b
        D[q] = c * c * ((ab - g) * (ab + g)) + cb * (dn * dn + 2.0 * (ab - g))
        near += (ab > 0.0) & (abs(g) > 0.99 * ab)
    if same:  # the pair (x_i, x_i) counts but needs nothing: its determinant is 0
        ab = ai * ai
        near -= (ab > 0.0) & (abs(G[i, i]) > 0.99 * ab)
    # endregion row_start
    # region row_near
    if near:
        for q in range(1 if same else 0, m):
            j = j0 + q
            g = G[i, j]
            ab = ai * a2[j]
            if ab > 0.0 and abs(g) > 0.99 * ab:
                # endregion row_near
                D[q] = _det_near(g, ai, a2[j], X1, i, X2, j, c, B2)[0]
    # region row_first
    if same:
        D[0] = 0.0  # the pair (x_i, x_i)
    for q in range(m):
        s12 = c * G[i, j0 + q] + B2
        S[q] = s12
        Tr[q] = s12
    # endregion row_first
    _layers(V1, R1, i, V2, R2, j0, depth, W2, B2, S, D, Tr)
    # region row_end
    bad_k = 0
    bad_t = 0
    for q in range(m):  # x - x is 0 for finite x, NaN for inf and NaN
        bad_k += (S[q] - S[q]) != 0.0
        bad_t += (Tr[q] - Tr[q]) != 0.0
    return bad_k, bad_t
    # endregion row_end


# region fused
@numba.njit(parallel=True, cache=True, error_model="numpy")
def _fused_sym(G, a1, X, V1, R1, c, depth, W2, B2, K, T):
    """K(X, X): the upper triangle in blocks of 8 rows, each block then copied into the
    lower triangle while it is still in cache (8 entries, one cache line, per row written;
    a separate transposition pass would read the whole triangle back from memory)."""
    n = G.shape[0]
    nb = (n + 7) // 8
    bad_k = 0
    bad_t = 0
    for t in numba.prange(nb):
        # blocks 0, nb-1, 1, nb-2, ...: long and short rows alternate, so the static
        # chunks of prange get equal work
        b = t // 2 if t % 2 == 0 else nb - 1 - t // 2
        i0 = 8 * b
        i1 = min(i0 + 8, n)
        bk = 0
        bt = 0
        for i in range(i0, i1):
            # (`t >= 0` rather than the constant True, and `i - i` for 0 in _fused: Numba
            # types a constant argument as a literal and would compile _row once more)
            k1, t1 = _row(i, i, G, a1, a1, X, X, V1, R1, V1, R1, t >= 0, c, depth, W2, B2, K, T)
            bk += k1
            bt += t1
        # rows j > i of other blocks read only their own upper part, never these entries
        for j in range(i0 + 1, n):
            for i in range(i0, min(i1, j)):
                K[j, i] = K[i, j]
                T[j, i] = T[i, j]
        bad_k += bk
        bad_t += bt
    return bad_k, bad_t


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _fused(G, a1, a2, X1, X2, V1, R1, V2, R2, c, depth, W2, B2, K, T):
    """K(X1, X2): every entry, row by row."""
    bad_k = 0
    bad_t = 0
    for i in numba.prange(G.shape[0]):
        bk, bt = _row(i, i - i, G, a1, a2, X1, X2, V1, R1, V2, R2, i < 0, c, depth, W2, B2, K, T)
        bad_k += bk
        bad_t += bt
    return bad_k, bad_t


def _compute(X1, X2, depth, B2, W2):
    c = W2 / X1.shape[1]
    if X2 is None:
        G = X1 @ X1.T
        sq1 = numpy.diag(G).copy()
        a1 = numpy.sqrt(sq1)
        V1 = _diag_chain(sq1, c, depth, W2, B2)
        # The NNGP overwrites the Gram product in place (peak memory: two N x N arrays):
        # row i reads G[i, j >= i] before writing there, and the mirrored writes go to
        # the lower triangle, which is never read.
        K = G
        T = numpy.empty_like(G)
        bad = _fused_sym(G, a1, X1, V1, numpy.sqrt(V1), c, depth, W2, B2, K, T)
        return K, T, bad[0] > 0, bad[1] > 0
    G = X1 @ X2.T
    sq1 = numpy.einsum("ij,ij->i", X1, X1)
    sq2 = numpy.einsum("ij,ij->i", X2, X2)
    a1 = numpy.sqrt(sq1)
    a2 = numpy.sqrt(sq2)
    V1 = _diag_chain(sq1, c, depth, W2, B2)
    V2 = _diag_chain(sq2, c, depth, W2, B2)
    K = G  # in place: each row is read before it is written
    T = numpy.empty_like(G)
    bad = _fused(G, a1, a2, X1, X2, V1, numpy.sqrt(V1), V2, numpy.sqrt(V2), c, depth, W2, B2, K, T)
    return K, T, bad[0] > 0, bad[1] > 0
    # endregion fused
