"""The lower triangle of a symmetric Gram matrix, copied from its upper one after the blocks.

The Numba kernels of ``K(X, X)`` compute the upper triangle only (row ``i`` from column
``i`` on), then fill the lower one here, in 64 x 64 tiles: a tile is read row by row and
written column by column while both fit in the cache. Copying each 16 x 256 tile of the
homogeneous kernels into the lower triangle as soon as it was computed cost more (its 256
strided rows per tile): relu depth 2, N = 4000, one core, 0.93-0.97x the CPU time with the
copy here (docs/performance.md, session 14).

Included by ``kernel_numba.py.jinja`` (both regions) and by the fused modules of described
networks (``mirror``: they run the bands on their own thread pool).
"""

# The regions' functions carry no annotations (they are copied as they are), so mypy
# checks their bodies with the types it infers.
# mypy: check-untyped-defs

# The regions are copied into the generated modules byte for byte, so their docstrings and
# names stay as they are there: ruff checks everything else.
# ruff: noqa: D205, D209

import numba


# region mirror
@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=False)
def _mirror(A, t):
    """Rows 64 t .. 64 t + 63 of A's upper triangle into its lower one (A[j, i] = A[i, j],
    j > i), after every block, in 64 x 64 tiles (docs/performance.md, session 13)."""
    n = A.shape[0]
    r0, r1 = 64 * t, min(64 * t + 64, n)
    for c in range(r0, n, 64):
        for i in range(r0, r1):
            for j in range(max(c, i + 1), min(c + 64, n)):
                A[j, i] = A[i, j]
    # endregion mirror


# region mirror_all
@numba.njit(parallel=True, cache=True, nogil=True, error_model="numpy", fastmath=False)
def _mirror_all(K, T, ntk):
    """K's lower triangle (and T's, with ntk) from the upper one, in bands of 64 rows on
    Numba's threads: bands 0, nb-1, 1, nb-2, ..., so that long and short ones alternate."""
    nb = (K.shape[0] + 63) // 64
    for u in numba.prange(nb):
        t = u // 2 if u % 2 == 0 else nb - 1 - u // 2
        _mirror(K, t)
        if ntk:
            _mirror(T, t)
    # endregion mirror_all


#: Public names of the two copies (the loops of ``arch_runtime`` and ``numba_fused`` call
#: them when run on their own; the generated modules hold the regions themselves).
mirror = _mirror
mirror_all = _mirror_all
