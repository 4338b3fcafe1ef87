"""Static Python of the fused kernel of a described network, copied into each module.

The region ``driver`` is the module's entry point ``_compute`` and what it calls before
and after the compiled blocks of :mod:`ntksym.codegen.arch_runtime`:

* ``_diags``: each input's variance and its root at every state of the program (the
  compiled ``_diag_rows``, and the Mehler tables of the activations without a closed
  form, ``_quad_tables`` of :mod:`ntksym.codegen.arch_quad`, where the walk reaches
  them; the low parts after activations whose map ``LONG`` holds in long double,
  ``_long_low`` of :mod:`ntksym.codegen.runtime.numpy_long`);
* ``_same_rows``: an input paired with itself gets its exact squared norm;
* ``_fused``: the blocks of rows on Python threads (``_block`` releases the GIL), then
  the lower triangle of ``K(X, X)`` (``_mirror``).

This module runs on its own with the tables of ``arch_runtime`` (its stand-ins).
"""

# The regions' functions carry no annotations (copied as they are): mypy infers the types.
# mypy: check-untyped-defs

# The regions are copied into the generated modules byte for byte, so their docstrings and
# names stay as they are there: ruff checks everything else.
# ruff: noqa: D205, D209, D403

import concurrent.futures

import numba
import numpy

from ntksym.codegen.arch_quad import quad_tables as _quad_tables
from ntksym.codegen.arch_runtime import LONG, NSTATES, OUTPUT, PROGRAM_F, PROGRAM_I, QUAD, TAU
from ntksym.codegen.arch_runtime import block as _block
from ntksym.codegen.arch_runtime import diag_rows as _diag_rows
from ntksym.codegen.arch_runtime import norms_lo as _norms_lo
from ntksym.codegen.runtime.numba_mirror import mirror as _mirror
from ntksym.codegen.runtime.numpy_long import long_low as _long_low

__all__ = ["compute"]


# region driver
# fmt: off
def _fused(PI, PF, out, G, a1, a2, sq1, sq2, X1, X2, V1, R1, V2, R2, QC1, QF1, QC2, QF2, n0f, K,
           T, ntk, sym, rows, tau, counts):
    """Every row of K(X1, X2) (with sym: the upper triangle, then ``_mirror``), in blocks of
    `rows` rows, on Numba's number of threads (``_block`` releases the GIL); counts[t]: block
    t's chunk counts. Python threads, not a ``prange`` loop: its gufunc and its caller each
    re-optimised all of ``_block`` (a third of a cold compile; docs/performance.md, compile2)."""
    n = G.shape[0]
    nb = (n + rows - 1) // rows
    args = (G, a1, a2, sq1, sq2, X1, X2, V1, R1, V2, R2, QC1, QF1, QC2, QF2, n0f, K, T, ntk, sym,
            tau)

    def run(t):
        # with sym, blocks 0, nb-1, 1, nb-2, ...: long and short rows alternate
        half = t // 2
        blk = (half if t % 2 == 0 else nb - 1 - half) if sym else t
        i0 = rows * blk
        _block(PI, PF, out, i0, min(i0 + rows, n), *args, counts[t])

    threads = min(numba.get_num_threads(), nb)
    # the lower triangles, after every block: (array, band of 64 rows) for each
    arrays = ((K, T) if ntk else (K,)) if sym else ()
    bands = [(A, t) for A in arrays for t in range((n + 63) // 64)]
    if threads <= 1:
        for t in range(nb):
            run(t)
        for A, t in bands:
            _mirror(A, t)
    else:
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            for _ in pool.map(run, range(nb)):
                pass
            for _ in pool.map(lambda band: _mirror(*band), bands):
                pass


def _diags(sq, sql, n0f, ntk):
    """(V, R, QC, QF): each input's variance (V[k, :n]), its low part (V[k, n:]; 0 after a
    step of kind 6) and its root (R) at every state, and the Mehler tables of the steps of
    kind 6 (``_quad_tables``), taken where the walk reaches them. sql: the low parts of
    the squared norms sq (``_norms_lo``). After an activation with a map in LONG, the low
    part is that map's in long double (``_long_low``)."""
    n = sq.shape[0]
    V = numpy.zeros((NSTATES, 2 * n))
    R = numpy.empty((NSTATES, n))
    tables = []
    s0 = 0
    for st in range(PROGRAM_I.shape[0]):
        kind, k, a, act = PROGRAM_I[st, 0], PROGRAM_I[st, 1], PROGRAM_I[st, 2], PROGRAM_I[st, 4]
        if kind == 2 and LONG[act] is not None:
            _diag_rows(PROGRAM_I, PROGRAM_F, sq, sql, n0f, V, R, s0, st + 1)
            V[k, n:] = _long_low(LONG[act], V[a, :n], V[a, n:], V[k, :n])
            s0 = st + 1
        if kind != 6:
            continue
        _diag_rows(PROGRAM_I, PROGRAM_F, sq, sql, n0f, V, R, s0, st)
        V[k, :n], C, F = _quad_tables(V[a, :n], QUAD[act], ntk and PROGRAM_I[st, 7] == 0)
        R[k] = numpy.sqrt(V[k, :n])
        tables.append((C, F))
        s0 = st + 1
    _diag_rows(PROGRAM_I, PROGRAM_F, sq, sql, n0f, V, R, s0, PROGRAM_I.shape[0])
    if not tables:
        return V, R, numpy.zeros((0, 2, 1, 1)), numpy.zeros((0, 2, 1, 1))
    return V, R, numpy.stack([t[0] for t in tables]), numpy.stack([t[1] for t in tables])


def _same_rows(X1, X2, G, sq1, sq2):
    """An input paired with itself gets its exact squared norm as inner product."""
    ii, jj = numpy.nonzero(sq1[:, None] == sq2[None, :])
    for i, j in zip(ii, jj, strict=True):
        if numpy.array_equal(X1[i], X2[j]):
            G[i, j] = sq1[i]


def _compute(X1, X2, ntk=True, tau=TAU, counts=None, out=(None, None)):
    """(NNGP, NTK or None) of the network between the rows of X1 and X2 (None: X1).

    tau: the bound on 1 - rho^2 above which a chunk needs no carried determinant (< 0:
    every chunk carries them). counts: if given, an int64 array of 2, set to the number
    of chunks run and of those that carried the determinants. out: the (checked) arrays
    (or None) that receive the NNGP (the Gram product is formed there) and the NTK."""
    sym = X2 is None
    n0f = float(X1.shape[1])
    sq1 = numpy.einsum("ij,ij->i", X1, X1)
    if sym:
        X2 = X1
        sq2 = sq1
        G = numpy.matmul(X1, X1.T, out=out[0])
        numpy.fill_diagonal(G, sq1)
    else:
        sq2 = numpy.einsum("ij,ij->i", X2, X2)
        G = numpy.matmul(X1, X2.T, out=out[0])
        _same_rows(X1, X2, G, sq1, sq2)
    a1 = numpy.sqrt(sq1)
    a2 = a1 if sym else numpy.sqrt(sq2)
    diag1 = _diags(sq1, _norms_lo(X1, sq1), n0f, ntk)
    diag2 = diag1 if sym else _diags(sq2, _norms_lo(X2, sq2), n0f, ntk)
    K = G
    T = (numpy.empty_like(G) if out[1] is None else out[1]) if ntk else G
    if sym:
        rows = 16
    else:
        rows = max(1, min(16, X1.shape[0] // (4 * numba.get_num_threads())))
    args = (G, a1, a2, sq1, sq2, X1, X2, *diag1[:2], *diag2[:2], *diag1[2:], *diag2[2:], n0f, K,
            T, ntk, sym, rows)
    per_block = numpy.zeros(((X1.shape[0] + rows - 1) // rows, 2), dtype=numpy.int64)
    _fused(PROGRAM_I, PROGRAM_F, OUTPUT, *args, float(tau), per_block)
    if counts is not None:
        counts[:] = per_block.sum(axis=0)
    return K, (T if ntk else None)
    # fmt: on
    # endregion driver


#: Public name of the entry point.
compute = _compute
