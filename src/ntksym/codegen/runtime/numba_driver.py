"""Parallel row blocks and the entry point of the Numba kernels.

Included by ``kernel_numba.py.jinja`` for every activation, after the regions of
``numba_fused`` (``_block``) and ``numba_mirror``. ``_fused_sym`` and ``_fused`` run the
blocks of rows in parallel, and ``_compute`` is the entry point of a generated module;
with ``ntk`` false it neither allocates the NTK nor evaluates the derivative map. Where
the layer map reads the root gaps (``_GAP``), ``_hl`` hands the blocks each input's
variances in double-double (``numpy_long``'s region ``chain``, which such a module
includes), from which they form the gaps after layer 1.

On its own this module computes the kernels of the identity activation (the stand-ins
of ``numba_fused``).
"""

# The regions' functions carry no annotations (they are copied as they are), so mypy
# checks their bodies with the types it infers.
# mypy: check-untyped-defs

# The regions are copied into the generated modules byte for byte, so their docstrings and
# names stay as they are there: ruff checks everything else.
# ruff: noqa: D205, D209

import numba
import numpy

from ntksym.codegen.runtime.numba_fused import GAP as _GAP
from ntksym.codegen.runtime.numba_fused import block as _block
from ntksym.codegen.runtime.numba_mirror import mirror_all as _mirror_all
from ntksym.codegen.runtime.numpy_long import gaps as _gaps


# region fused
@numba.njit(parallel=True, cache=True, nogil=True, error_model="numpy", fastmath=False)
def _fused_sym(G, a1, sq1, X, c, depth, W2, B2, K, T, ntk, HL):
    """K(X, X): the upper triangle in blocks of 16 rows (the diagonal chain of the columns is
    computed once per block); _compute then fills the lower one (_mirror_all)."""
    n = G.shape[0]
    nb = (n + 15) // 16
    bad_k = 0
    bad_t = 0
    for t in numba.prange(nb):
        # blocks 0, nb-1, 1, nb-2, ...: long and short rows alternate, so the static
        # chunks of prange get equal work
        b = t // 2 if t % 2 == 0 else nb - 1 - t // 2
        i0 = 16 * b
        i1 = min(i0 + 16, n)
        # (`t >= 0` rather than the constant True, and `t < 0` in _fused: Numba types a
        # constant argument as a literal and would compile _block once more)
        args = (G, a1, a1, sq1, sq1, X, X, c, depth, W2, B2, K, T, ntk, HL)
        bk, bt = _block(i0, i1, t >= 0, *args)
        bad_k += bk
        bad_t += bt
    return bad_k, bad_t


@numba.njit(parallel=True, cache=True, nogil=True, error_model="numpy", fastmath=False)
def _fused(G, a1, a2, sq1, sq2, X1, X2, c, depth, W2, B2, K, T, ntk, rows, HL):
    """K(X1, X2): every entry, in blocks of `rows` rows."""
    n = G.shape[0]
    nb = (n + rows - 1) // rows
    bad_k = 0
    bad_t = 0
    for t in numba.prange(nb):
        i0 = rows * t
        i1 = min(i0 + rows, n)
        args = (G, a1, a2, sq1, sq2, X1, X2, c, depth, W2, B2, K, T, ntk, HL)
        bk, bt = _block(i0, i1, t < 0, *args)
        bad_k += bk
        bad_t += bt
    return bad_k, bad_t


def _compute(X1, X2, depth, B2, W2, ntk=True, out=(None, None)):
    c = W2 / X1.shape[1]
    # out: arrays to write the NNGP and the NTK into (checked), or None to allocate them
    X2T = X1.T if X2 is None else X2.T
    # a fresh NTK is faulted in first, while memory just freed is backed (bench_fresh_outputs)
    if ntk and out[1] is None:
        out = (out[0], numpy.empty((X1.shape[0], (X1 if X2 is None else X2).shape[0])))
        out[1].fill(0.0)
    G = X1 @ X2T if out[0] is None else numpy.matmul(X1, X2T, out=out[0])
    T = out[1] if ntk else G
    if X2 is None:
        sq1 = numpy.diag(G).copy()
        a1 = numpy.sqrt(sq1)
        # The NNGP overwrites the Gram product in place (peak memory: two N x N arrays
        # with the NTK, one without): each row reads G[i, j >= i] before writing there,
        # and the lower triangle, never read, is filled after all the rows.
        K = G
        HL = _hl(X1, X2, sq1, sq1, c, B2, W2, depth)
        bad = _fused_sym(G, a1, sq1, X1, c, depth, W2, B2, K, T, ntk, HL)
        _mirror_all(K, T, ntk)
        return K, T if ntk else None, bad[0] > 0, bad[1] > 0
    sq1 = numpy.einsum("ij,ij->i", X1, X1)
    sq2 = numpy.einsum("ij,ij->i", X2, X2)
    a1 = numpy.sqrt(sq1)
    a2 = numpy.sqrt(sq2)
    K = G  # in place: each row is read before it is written
    # blocks of up to 16 rows (the diagonal chain of the columns is computed once per
    # block), but at least four blocks per thread when there are enough rows
    rows = max(1, min(16, X1.shape[0] // (4 * numba.get_num_threads())))
    HL = _hl(X1, X2, sq1, sq2, c, B2, W2, depth)
    bad = _fused(G, a1, a2, sq1, sq2, X1, X2, c, depth, W2, B2, K, T, ntk, rows, HL)
    return K, T if ntk else None, bad[0] > 0, bad[1] > 0


def _hl(X1, X2, sq1, sq2, c, B2, W2, depth):
    """What _block reads the root gaps after layer 1 from (_gaps; empty arrays for none)."""
    gaps = _gaps(X1, X2, sq1, sq2, X2 is None, c, B2, W2, depth) if _GAP else None
    if gaps is None:
        e = numpy.zeros((0, 0))
        return e, e, e, e
    (H1, L1), (H2, L2) = gaps
    return H1, L1, H2, L2
    # endregion fused
