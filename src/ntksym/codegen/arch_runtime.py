"""Static code of the fused kernel of a described network (Numba), copied into each module.

A fused architecture module (:mod:`ntksym.codegen.architecture`) is one generated file
per network. What depends on the network is written by the generator: ``_diag_rows``
(every state's diagonal variance for each input, computed once) and ``_row`` (every
layer for the pairs of one row, the state of each pair held in local variables). The
regions here do the rest:

* ``pair_helpers``: the small scalar pieces ``_row`` calls inline: an accurate
  determinant by subtraction (``_cdet``, Dekker's products) and the gap
  ``sqrt(S11 S22) - S12`` without cancellation (``_gap``);
* ``prep``: the inputs' own determinant ``|x|^2 |x'|^2 - (x.x')^2``, ``|x| - |x'|`` and
  ``2 (|x||x'| - x.x')`` for one row, without cancellation for near-parallel pairs (the
  homogeneous kernels' ``_det_near`` with ``c = 1``, ``B2 = 0``), and which pairs are
  one input twice;
* ``loops``: the parallel loops over blocks of rows and the entry point ``_compute``.

This module runs on its own with the stand-ins below (a network that is one Dense layer
of weight variance 1 without bias: ``K = x.x'/n0``; ``_det_near`` by subtraction), so
that it can be linted and tested.
"""

# The regions' functions carry no annotations (they are copied as they are), so mypy
# checks their bodies with the types it infers.
# mypy: check-untyped-defs

# The regions are copied into the generated modules byte for byte, so their docstrings and
# names stay as they are there: ruff checks everything else.
# ruff: noqa: D205, D209, D403

import math

import numba
import numpy

NSTATES = 1


@numba.njit(cache=True, error_model="numpy")
def _det_near(g, a, b, X1, i, X2, j, c, B2):
    # stand-in for the homogeneous kernels' (region chain of numba_fused.py), which the
    # generated module includes: the same values, formed by subtraction
    detx = (a * b - g) * (a * b + g)
    return c * c * detx + c * B2 * ((a - b) ** 2 + 2.0 * (a * b - g)), a - b


@numba.njit(cache=True, error_model="numpy")
def _diag_rows(sq, n0f, V, R):
    for i in range(sq.shape[0]):
        v = sq[i] / n0f
        V[i, 0] = v
        R[i, 0] = math.sqrt(v)


@numba.njit(cache=True, error_model="numpy")
def _row(i, j0, G, V1, R1, V2, R2, DX, DN, OM, CO, n0f, K, T, ntk):
    for q in range(G.shape[1] - j0):
        s = G[i, j0 + q] / n0f
        K[i, j0 + q] = s
        if ntk:
            T[i, j0 + q] = s


# region pair_helpers
@numba.njit(cache=True, error_model="numpy", inline="always")
def _two_prod(a, b):
    """a*b = p + e exactly (Dekker's product, Veltkamp's split; no FMA needed)."""
    p = a * b
    ca = 134217729.0 * a
    ah = ca - (ca - a)
    al = a - ah
    cb = 134217729.0 * b
    bh = cb - (cb - b)
    bl = b - bh
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, e


@numba.njit(cache=True, error_model="numpy", inline="always")
def _cdet(s11, s12, s22):
    """s11 s22 - s12^2 with both products carried in double-double, clipped at 0."""
    p1, e1 = _two_prod(s11, s22)
    p2, e2 = _two_prod(s12, s12)
    d = (p1 - p2) + (e1 - e2)
    return d if d > 0.0 else 0.0


@numba.njit(cache=True, error_model="numpy", inline="always")
def _gap(m, s, d):
    """The gap m - s (m = sqrt(s11 s22)), as d / (m + s) where s > 0: no cancellation."""
    pos = s > 0.0
    q = d / (m + s if pos else 1.0)
    g = q if pos else m - s
    return g if abs(g) < math.inf else m - s


@numba.njit(cache=True, error_model="numpy", inline="always")
def _fin(dn, fallback):
    """A carried determinant clipped at 0, or ``fallback`` where it is not finite."""
    if abs(dn) < math.inf:
        return dn if dn > 0.0 else 0.0
    return fallback
    # endregion pair_helpers


# region prep
@numba.njit(cache=True, error_model="numpy")
def _prep(i, j0, G, a1, a2, sq1, sq2, X1, X2, DX, DN, OM, CO):
    """Row i from column j0: the inputs' determinant DX, |x| - |x'| (DN),
    2 (|x||x'| - x.x') (OM), each without cancellation, and CO (the same input twice:
    equal squared norms and inner product, so the pair stays one Gaussian)."""
    m = G.shape[1] - j0
    ai = a1[i]
    si = sq1[i]
    near = 0
    for q in range(m):
        j = j0 + q
        g = G[i, j]
        b = a2[j]
        ab = ai * b
        DX[q] = (ab - g) * (ab + g)
        DN[q] = ai - b
        OM[q] = 2.0 * (ab - g)
        CO[q] = (si == sq2[j]) & (g == si)
        near += (ab > 0.0) & (abs(g) > 0.99 * ab) & (not CO[q])
    if near:
        for q in range(m):
            j = j0 + q
            g = G[i, j]
            ab = ai * a2[j]
            if ab > 0.0 and abs(g) > 0.99 * ab and not CO[q]:
                detx, dn = _det_near(g, ai, a2[j], X1, i, X2, j, 1.0, 0.0)
                DX[q] = detx
                DN[q] = dn
                OM[q] = 2.0 * detx / (ab + abs(g)) if g > 0 else 2.0 * (ab - g)
    for q in range(m):
        if CO[q]:
            DX[q] = 0.0
            DN[q] = 0.0
            OM[q] = 0.0
    # endregion prep


# region loops
@numba.njit(parallel=True, cache=True, error_model="numpy")
def _fused(G, a1, a2, sq1, sq2, X1, X2, V1, R1, V2, R2, n0f, K, T, ntk, sym, rows):
    """Every row of K(X1, X2) (with sym, X2 is X1: the upper triangle, then mirrored),
    in blocks of `rows` rows run in parallel. K may be G itself: each entry is read, then
    written; the mirrored writes go to the lower triangle, which is never read."""
    n = G.shape[0]
    n2 = G.shape[1]
    nb = (n + rows - 1) // rows
    for t in numba.prange(nb):
        # with sym, blocks 0, nb-1, 1, nb-2, ...: long and short rows alternate
        half = t // 2
        blk = (half if t % 2 == 0 else nb - 1 - half) if sym else t
        i0 = rows * blk
        i1 = min(i0 + rows, n)
        DX = numpy.empty(n2)
        DN = numpy.empty(n2)
        OM = numpy.empty(n2)
        CO = numpy.empty(n2, dtype=numpy.bool_)
        for r in range(i0, i1):
            j0 = r if sym else 0
            _prep(r, j0, G, a1, a2, sq1, sq2, X1, X2, DX, DN, OM, CO)
            _row(r, j0, G, V1, R1, V2, R2, DX, DN, OM, CO, n0f, K, T, ntk)
        if sym:
            for c in range(i0 + 1, n):
                for r in range(i0, min(i1, c)):
                    K[c, r] = K[r, c]
                    if ntk:
                        T[c, r] = T[r, c]


def _same_rows(X1, X2, G, sq1, sq2):
    """An input paired with itself gets its exact squared norm as inner product."""
    ii, jj = numpy.nonzero(sq1[:, None] == sq2[None, :])
    for i, j in zip(ii, jj, strict=True):
        if numpy.array_equal(X1[i], X2[j]):
            G[i, j] = sq1[i]


def _compute(X1, X2, ntk=True):
    """(NNGP, NTK or None) of the network between the rows of X1 and X2 (None: X1)."""
    sym = X2 is None
    n0f = float(X1.shape[1])
    sq1 = numpy.einsum("ij,ij->i", X1, X1)
    if sym:
        X2 = X1
        sq2 = sq1
        G = X1 @ X1.T
        numpy.fill_diagonal(G, sq1)
    else:
        sq2 = numpy.einsum("ij,ij->i", X2, X2)
        G = X1 @ X2.T
        _same_rows(X1, X2, G, sq1, sq2)
    a1 = numpy.sqrt(sq1)
    a2 = a1 if sym else numpy.sqrt(sq2)
    V1 = numpy.empty((X1.shape[0], NSTATES))
    R1 = numpy.empty_like(V1)
    _diag_rows(sq1, n0f, V1, R1)
    if sym:
        V2, R2 = V1, R1
    else:
        V2 = numpy.empty((X2.shape[0], NSTATES))
        R2 = numpy.empty_like(V2)
        _diag_rows(sq2, n0f, V2, R2)
    K = G
    T = numpy.empty_like(G) if ntk else G
    if sym:
        rows = 16
    else:
        rows = max(1, min(16, X1.shape[0] // (4 * numba.get_num_threads())))
    _fused(G, a1, a2, sq1, sq2, X1, X2, V1, R1, V2, R2, n0f, K, T, ntk, sym, rows)
    return K, (T if ntk else None)
    # endregion loops
