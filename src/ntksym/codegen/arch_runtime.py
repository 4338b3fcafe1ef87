"""Static code of the fused kernel of a described network (Numba), copied into each module.

A fused architecture module (:mod:`ntksym.codegen.architecture`) is one generated file
per network. The network enters it as two tables, one row per step of its program
(:mod:`ntksym.codegen.arch_program`; columns: :data:`ntksym.codegen.arch_tables.INT_COLUMNS`
and ``FLOAT_COLUMNS``), and as one ``_a{m}_step`` (``_a{m}_plain``, ``_a{m}_diag``) per
distinct activation, written by :mod:`ntksym.codegen.arch_emit`, which also writes the
stand-ins ``_act_step``, ``_act_plain``, ``_act_diag`` below as if-chains calling them
(``inline_dispatch``). The regions interpret the tables, *layer-major* (with ``arch_pairs``):

* ``steps``: each input's variance at every state (``_diag_rows``), and the program run on
  one chunk of at most 256 columns of one row (``_run_steps``), one short loop per step over
  the chunk arrays ``S`` (covariances), ``D`` (carried determinants) and ``T`` (NTKs), with
  fused multiply-adds (``fastmath={"contract"}`` only, as the homogeneous ``_layer``;
  Dekker's products stay exact);
  A step of kind 6 (an activation without a closed form) is ``_quad`` of
  :mod:`ntksym.codegen.arch_quad`;
* ``loops``: a block of rows (``_block``, which releases the GIL: the Python of
  :mod:`ntksym.codegen.arch_driver` runs the blocks on threads and fills the lower
  triangle of ``K(X, X)`` after them).

Compile time: helpers, maps and ``atan2`` are inlined by LLVM (``forceinline``), not in
Numba's IR; nothing compiles twice (docs/performance.md, branch ``compiletime``).

Chunks without carried determinants (in ``_block``): a chunk runs first with none
carried, each activation forming its input's determinant by subtraction, if every pair has
``1 - rho^2 > TAU`` at every activation's input (checked; twins, anti-parallel pairs, the
zero vector with a bias and non-finite values fail); else it runs again carrying them
(docs/performance.md, branch ``chunkdet``). The stand-ins below (one activation, the
identity) let this module run on its own, to be tested.
"""

# The regions' functions carry no annotations (copied as they are): mypy infers the types.
# mypy: check-untyped-defs

# The regions are copied into the generated modules byte for byte, so their docstrings and
# names stay as they are there: ruff checks everything else.
# ruff: noqa: D205, D209, D403

import math

import numba
import numpy

from ntksym.codegen.arch_quad import quad as _quad

NSTATES = 1
PROGRAM_I = numpy.array([[0, 0, -1, -1, -1, 0, 1, 0, -1]], dtype=numpy.int64)
PROGRAM_F = numpy.array([[1.0, 0.0, 1.0, 0.0, 0.0, math.nan, math.nan]])
OUTPUT = 0
QUAD = ()  # (sigma, sigma') of each activation without a closed form, NumPy
LONG = (None,)  # each activation's E[sigma(u)^2] in long double (NumPy), or None


@numba.njit(cache=True, error_model="numpy", forceinline=True, fastmath={"contract"})
def _sel(c, a, b):
    return a if c else b


@numba.njit(cache=True, error_model="numpy", forceinline=True, fastmath={"contract"})
def _max(a, b):
    return a if a >= b else b


@numba.njit(cache=True, error_model="numpy")
def _act_diag(act, v):
    # stand-in for the generated dispatcher: the identity, E[u^2] = S
    return v


@numba.njit(cache=True, error_model="numpy")
def _act_step(act, S, D, T, a, k, m, va, ra, vk, rk, VB, RB, VK, RK, la, off, CO, det, zero):
    # stand-in for the generated dispatcher: the identity (S, D, T pass unchanged)
    for q in range(m):
        S[k, q] = S[a, q]
        D[k, q] = D[a, q]
        T[k, q] = 0.0 if zero else T[a, q]


@numba.njit(cache=True, error_model="numpy")
def _act_plain(act, S, D, T, a, k, m, va, ra, vk, rk, VB, RB, VK, RK, la, off, CO, zero, tau):
    # stand-in for the generated dispatcher: the identity, where 1 - rho^2 > tau
    ok = True
    for q in range(m):
        d = 0.0 if CO[q] else _cdet(va, S[a, q], VB[q])
        ok &= d > tau * va * VB[q]
    if ok:
        for q in range(m):
            S[k, q] = S[a, q]
            T[k, q] = 0.0 if zero else T[a, q]
    return ok


@numba.njit(cache=True, error_model="numpy", forceinline=True, fastmath={"contract"})
def _cdet(s11, s12, s22):
    # stand-in for region pair_helpers of arch_pairs.py: by subtraction, clipped at 0
    d = s11 * s22 - s12 * s12
    return d if d > 0.0 else 0.0


@numba.njit(cache=True, error_model="numpy", forceinline=True, fastmath={"contract"})
def _gap(m, s, d):
    # stand-in for region pair_helpers of arch_pairs.py: by subtraction
    return m - s


@numba.njit(cache=True, error_model="numpy", forceinline=True, fastmath={"contract"})
def _rgap(v1, l1, v2, l2, r1, r2):
    # stand-in for region pair_helpers of arch_pairs.py: by subtraction
    return r1 - r2


@numba.njit(cache=True, error_model="numpy", forceinline=True, fastmath={"contract"})
def _affine_lo(h, lo, a, d, out):
    # stand-in for region pair_helpers of arch_pairs.py: no low parts
    return 0.0


@numba.njit(cache=True, error_model="numpy", forceinline=True, fastmath={"contract"})
def _sum_lo(va, la, vb, lb):
    # stand-in for region pair_helpers of arch_pairs.py: no low parts
    return 0.0


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _norms_lo(X, sq):
    # stand-in for region pair_helpers of arch_pairs.py: no low parts
    return numpy.zeros(X.shape[0])


@numba.njit(cache=True, error_model="numpy", forceinline=True, fastmath={"contract"})
def _xgap(a1, al1, b2, bl2, b1, bl1, a2, al2):
    # stand-in for region pair_helpers of arch_pairs.py: by subtraction
    return math.sqrt(a1 * b2) - math.sqrt(b1 * a2)


@numba.njit(cache=True, error_model="numpy")
def _co(i, c0, c1, G, sq1, sq2, CO):
    # stand-in for region prep of arch_pairs.py: no pair of one input twice
    CO[: c1 - c0] = False


@numba.njit(cache=True, error_model="numpy")
def _prep(i, c0, c1, G, a1, a2, sq1, sq2, X1, X2, DX, DN, OM, CO):
    # stand-in for region prep of arch_pairs.py: by subtraction, no pair of one input twice
    for q in range(c1 - c0):
        ab = a1[i] * a2[c0 + q]
        g = G[i, c0 + q]
        DX[q] = (ab - g) * (ab + g)
        DN[q] = a1[i] - a2[c0 + q]
        OM[q] = 2.0 * (ab - g)
        CO[q] = False


# region steps
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _diag_rows(PI, PF, sq, sql, n0f, V, R, s0, s1):
    """Each input's variance (V[k, i]), its low part (V[k, n + i], n inputs: the variance
    in double-double where the maps that led to it are affine, else 0) and its square
    root (R) at the states of steps s0..s1-1 (none of kind 6: those are _diags'). sql:
    the low parts of the squared norms sq."""
    n = sq.shape[0]
    for st in range(s0, s1):
        kind, k, a, b, act = PI[st, 0], PI[st, 1], PI[st, 2], PI[st, 3], PI[st, 4]
        w2, b2, eps, da, dd = PF[st, 0], PF[st, 1], PF[st, 4], PF[st, 5], PF[st, 6]
        for i in range(n):
            if kind == 0:
                c = w2 / n0f
                v = c * sq[i] + b2
                lo = _affine_lo(sq[i], sql[i], c, b2, v)
            elif kind == 1 or kind == 5:  # (a Dropout: w2 = 1 / rate, b2 = 0)
                v = w2 * V[a, i] + b2
                lo = _affine_lo(V[a, i], V[a, n + i], w2, b2, v)
            elif kind == 2:
                v = _act_diag(act, V[a, i])
                # (da, dd: E[sigma(u)^2] = da S + dd, NaN where it is not affine)
                lo = _affine_lo(V[a, i], V[a, n + i], da, dd, v) if da == da else 0.0
            elif kind == 3:
                v = V[a, i] / (eps + V[a, i])
                lo = 0.0
            else:
                v = V[a, i] + V[b, i]
                lo = _sum_lo(V[a, i], V[a, n + i], V[b, i], V[b, n + i])
            V[k, i] = v
            V[k, n + i] = lo
            R[k, i] = math.sqrt(v)


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"})
def _input(S, D, T, k, m, g, c, B2, nw, bias, standard, n0f, DX, DN, OM, det, ntk):
    """A Dense layer on the inputs (c = W2 / n0): S12 = c x.x' + B2, and (with det) its
    determinant c^2 det_x + c B2 ((|x| - |x'|)^2 + 2 (|x||x'| - x.x')) from the prepared
    parts."""
    for q in range(m):
        S[k, q] = c * g[q] + B2
    if not det:
        pass
    elif B2 == 0.0:
        for q in range(m):
            D[k, q] = c * c * DX[q]
    else:
        for q in range(m):
            D[k, q] = c * c * DX[q] + c * B2 * (DN[q] * DN[q] + OM[q])
    if ntk and standard:
        for q in range(m):
            T[k, q] = nw * (g[q] / n0f) + bias
    elif ntk:
        for q in range(m):
            T[k, q] = S[k, q]


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"})
def _dense(S, D, T, a, k, m, W2, B2, nw, bias, standard, va, ra, VB, RB, la, off, CO, det, ntk):
    """A Dense layer: S12 -> W2 S12 + B2, D -> W2^2 D + W2 B2 ((R11 - R22)^2 + 2 gap),
    Theta -> W2 Theta + S12' (NTK) or W2 Theta + n_in S12 + [bias] (standard); the roots'
    gap R11 - R22 from the variances' difference in double-double (_rgap; la: the row's
    low part, VB[off + q]: the columns')."""
    for q in range(m):
        S[k, q] = W2 * S[a, q] + B2
    if det and B2 == 0.0:
        for q in range(m):
            D[k, q] = (W2 * W2) * D[a, q]
    elif det:
        w4 = W2 * W2
        wb = W2 * B2
        for q in range(m):
            gap = _gap(ra * RB[q], S[a, q], D[a, q])
            d = w4 * D[a, q] + wb * (_rgap(va, la, VB[q], VB[off + q], ra, RB[q]) ** 2 + 2.0 * gap)
            D[k, q] = _sel(CO[q], 0.0, d)
    if ntk and standard:
        for q in range(m):
            T[k, q] = W2 * T[a, q] + nw * S[a, q] + bias
    elif ntk:
        for q in range(m):
            T[k, q] = W2 * T[a, q] + S[k, q]


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"})
def _norm(S, D, T, a, k, m, eps, va, VB, det, ntk):
    """LayerNorm: every entry divided by sqrt((eps + S11)(eps + S22)) (D by its square)."""
    for q in range(m):
        S[k, q] = S[a, q] / math.sqrt((eps + va) * (eps + VB[q]))
    if det:
        for q in range(m):
            D[k, q] = D[a, q] / ((eps + va) * (eps + VB[q]))
    if ntk:
        for q in range(m):
            T[k, q] = T[a, q] / math.sqrt((eps + va) * (eps + VB[q]))


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"})
def _sum(S, D, T, a, b, k, m, va, vb, ra, rb, VA, VB, RA, RB, la, lb, off, CO, det, ntk):
    """The sum of two independent branches a and b (va, ra, la: the row's variances, roots
    and variances' low parts at a and b; VA, RA, VB, RB the columns', VA[off + q] and
    VB[off + q] their low parts): everything summed, the determinant as D_a + D_b + a
    cross term formed from the two gaps where both covariances are > 0."""
    for q in range(m):
        S[k, q] = S[a, q] + S[b, q]
    if det:
        for q in range(m):
            ma = ra * RA[q]
            mb = rb * RB[q]
            ga = _gap(ma, S[a, q], D[a, q])
            gb = _gap(mb, S[b, q], D[b, q])
            xa = _xgap(va, la, VB[q], VB[off + q], vb, lb, VA[q], VA[off + q])
            near = (S[a, q] > 0.0) & (S[b, q] > 0.0)
            gaps = xa * xa + 2.0 * ma * gb + 2.0 * mb * ga - 2.0 * ga * gb
            direct = va * VB[q] + vb * VA[q] - 2.0 * S[a, q] * S[b, q]
            cr = _sel(near, gaps, direct)
            D[k, q] = _sel(CO[q], 0.0, _max(D[a, q] + D[b, q] + cr, 0.0))
    if ntk:
        for q in range(m):
            T[k, q] = T[a, q] + T[b, q]


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"})
def _drop(S, D, T, a, k, m, f, own, CO, det, ntk, plain):
    """Dropout in train mode (f = 1 / rate; the variances are scaled by _diag_rows): the
    pair of one example with itself (own: the chunk of K(X, X)'s diagonal entry) scales
    its covariance, NTK and determinant (f^2 D, zero); any other pair keeps its covariance
    and NTK (independent masks), its determinant f^2 D + (f^2 - 1) S12^2 (no cancellation)
    and is no longer one Gaussian twice (CO cleared; not by a plain run, whose CO a
    carried rerun of the chunk reads again: CO then fails the plain run)."""
    g = f if own else 1.0
    for q in range(m):
        S[k, q] = g * S[a, q]
    if det:
        ff = f * f
        for q in range(m):
            cross = (ff - 1.0) * S[a, q] * S[a, q]
            D[k, q] = ff * D[a, q] + _sel(own, 0.0, cross)
    if not (own or plain):
        for q in range(m):
            CO[q] = False
    if ntk:
        for q in range(m):
            T[k, q] = g * T[a, q]


# fmt: off
@numba.njit(cache=True, error_model="numpy")
def _run_steps(PI, PF, i, c0, c1, G, V1, R1, V2, R2, QC1, QF1, QC2, QF2, n0f, S, D, T, DX, DN, OM,
               CO, ntk, tau, own):
    # fmt: on
    """Every step of the program for row i, columns c0..c1-1 (row k of S, D, T: state k).

    tau < 0: the determinant is carried wherever the program carries it (the table's det
    column). tau >= 0: carried nowhere; each activation forms its input's determinant by
    subtraction and runs its map without a next determinant (``_act_plain``), but only if
    every pair of the chunk has 1 - rho^2 > tau at its input; the first activation where
    some pair does not returns False (the chunk is then to be run again with tau < 0).
    own: the chunk is the pair of row i with itself in K(X, X) (for a Dropout).

    Table columns: kind (0 Dense on the inputs, 1 Dense, 2 activation, 3 LayerNorm,
    4 sum, 5 Dropout, 6 activation without a closed form), out, src a, src b, activation,
    standard, det (1 carried, 0 not, 2 not and guarded: an activation marks its nearly
    parallel pairs NaN), zero NTK, slot (kind 6: its Mehler tables in QC1, QF1, QC2, QF2,
    arch_quad.py); and W2 (1 / rate for a Dropout), B2, width (s_in on the inputs), bias,
    eps.
    """
    m = c1 - c0
    plain = tau >= 0.0
    # each row of V1, V2 holds the variances, then their low parts (_diag_rows): the
    # columns' from c0 on are one slice (V2[a, c0:]; its low parts from off = n2 on), so
    # that no chunk takes more slices than before (each costs a reference count)
    n1, off = V1.shape[1] // 2, V2.shape[1] // 2
    for st in range(PI.shape[0]):
        kind, k, a, b = PI[st, 0], PI[st, 1], PI[st, 2], PI[st, 3]
        std = PI[st, 5] != 0
        det = PI[st, 6] == 1 and not plain
        w2, b2, nw, bias = PF[st, 0], PF[st, 1], PF[st, 2], PF[st, 3]
        if kind == 0:
            g = G[i, c0:c1]
            c = w2 / n0f
            _input(S, D, T, k, m, g, c, b2, n0f / nw, bias, std, n0f, DX, DN, OM, det, ntk)
        elif kind == 1:
            row, cols = (V1[a, i], R1[a, i]), (V2[a, c0:], R2[a, c0:c1])
            lows = (V1[a, n1 + i], off)
            _dense(S, D, T, a, k, m, w2, b2, nw, bias, std, *row, *cols, *lows, CO, det, ntk)
        elif kind == 2:
            row = (V1[a, i], R1[a, i], V1[k, i], R1[k, i])
            # the columns' variances and roots at a and k, then the row's low part at a
            cols = (V2[a, c0:], R2[a, c0:c1], V2[k, c0:c1], R2[k, c0:c1], V1[a, n1 + i], off)
            zero = PI[st, 7] != 0
            how = PI[st, 6]  # (the activation's own reading: 2 is guarded)
            if not plain:
                _act_step(PI[st, 4], S, D, T, a, k, m, *row, *cols, CO, how, zero)
            elif not _act_plain(PI[st, 4], S, D, T, a, k, m, *row, *cols, CO, zero, tau):
                return False
        elif kind == 3:
            _norm(S, D, T, a, k, m, PF[st, 4], V1[a, i], V2[a, c0:c1], det, ntk)
        elif kind == 5:
            _drop(S, D, T, a, k, m, w2, own, CO, det, ntk, plain)
        elif kind == 6:
            t = PI[st, 8]
            row = (i, c0, R1[a, i], V1[a, i], R2[a, c0:c1], V2[a, c0:c1], CO, ntk, PI[st, 7] != 0)
            if not _quad(S, D, T, a, k, m, QC1[t], QF1[t], QC2[t], QF2[t], *row, plain):
                return False
        else:
            row = (V1[a, i], V1[b, i], R1[a, i], R1[b, i])
            cols = (V2[a, c0:], V2[b, c0:], R2[a, c0:c1], R2[b, c0:c1])
            lows = (V1[a, n1 + i], V1[b, n1 + i], off)
            _sum(S, D, T, a, b, k, m, *row, *cols, *lows, CO, det, ntk)
    return True
    # endregion steps


# region loops
#: A chunk runs without carried determinants when every pair has 1 - rho^2 > TAU at each
#: activation's input (``_run_steps``): a determinant formed by subtraction then loses at
#: most ~2 delta / TAU relative (delta: the covariance's relative error); 2^-5: |rho| <
#: 0.984 (docs/performance.md, branch chunkdet).
TAU = 2.0**-5


# fmt: off
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _block(PI, PF, out, i0, i1, G, a1, a2, sq1, sq2, X1, X2, V1, R1, V2, R2, QC1, QF1, QC2, QF2,
           n0f, K, T, ntk, sym, tau, counts):
    # fmt: on
    """Rows i0..i1-1 (with sym, row i from column i on: ``_mirror`` fills the rest), each
    row in chunks of 256 columns (with sym, the pair of row i with itself is a chunk of its
    own, which carries the determinants, and the rest of the row follows). A chunk runs
    without carried determinants where it allows it (tau >= 0), else (or after the first
    try fails) carrying them; the inputs' determinants are prepared (``_prep``) only for a
    chunk that carries them. K may be G itself: a chunk is read, then written. counts:
    chunks run, chunks that carried the determinants. The chunk is not a function of its
    own: each compiled level links and re-optimises all the steps' code again
    (docs/performance.md, compile2)."""
    n2 = G.shape[1]
    ns = PI.shape[0]
    S = numpy.empty((ns, 256))
    D = numpy.empty((ns, 256))
    # (activations write every row of TT, read or not: zeros when no NTK is asked)
    TT = numpy.empty((ns, 256)) if ntk else numpy.zeros((ns, 256))
    DX = numpy.empty(256)
    DN = numpy.empty(256)
    OM = numpy.empty(256)
    CO = numpy.empty(256, dtype=numpy.bool_)
    cols = (G, V1, R1, V2, R2, QC1, QF1, QC2, QF2, n0f, S, D, TT, DX, DN, OM, CO, ntk)
    for r in range(i0, i1):
        c0 = r if sym else 0
        while c0 < n2:
            own = sym and c0 == r
            c1 = c0 + 1 if own else min(c0 + 256, n2)
            tr = -1.0 if own else tau
            if tr >= 0.0:  # (a plain run reads CO alone of the inputs' pairs)
                _co(r, c0, c1, G, sq1, sq2, CO)
            if tr < 0.0 or not _run_steps(PI, PF, r, c0, c1, *cols, tr, own):
                _prep(r, c0, c1, G, a1, a2, sq1, sq2, X1, X2, DX, DN, OM, CO)
                _run_steps(PI, PF, r, c0, c1, *cols, -1.0, own)
                counts[1] += 1
            counts[0] += 1
            for q in range(c1 - c0):
                K[r, c0 + q] = S[out, q]
            if ntk:
                for q in range(c1 - c0):
                    T[r, c0 + q] = TT[out, q]
            c0 = c1
    # endregion loops


#: Public names of the entry points that ``arch_driver`` calls (it runs on its own too).
block = _block
diag_rows = _diag_rows
norms_lo = _norms_lo
