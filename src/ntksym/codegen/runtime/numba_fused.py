"""Diagonal chain, first layer, layer loop and parallel row blocks of the Numba kernels.

Included by ``kernel_numba.py.jinja`` for every activation. The template defines what
depends on the activation before these regions: the layer maps wrapped to one signature,
``_any_u`` and ``_pos_u`` (both take the root gap ``U`` last, and ignore it when the map
does not read it), ``_any_k`` (``_any_u`` for the NNGP alone: the quadrature's map without
its derivative integrals; the closed forms' ``_any_u`` itself), ``_diag``, and two
constants: ``_GAP`` (the map reads ``U``, so the loops carry it) and ``_POS`` (the map
has a cheaper variant ``_pos_u`` for ``S12 > 0``), and ``_MEND`` with ``_mend_row`` (the
next determinants that cancel formed again: ``ntksym.codegen.mend``). Numba prunes the
branches on those constants when it compiles.

``_det_near`` forms the first-layer determinant ``S11 S22 - S12^2`` of a near-parallel
pair without cancellation (Lagrange's identity with a Dekker split). ``_block`` computes
a block of rows of the Gram matrices, layer by layer, carrying only the diagonal variances
of the current and the next layer (``O(N)`` state, whatever the depth); ``_layer`` is one
layer of one row (``numba_driver`` runs the blocks in parallel).

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

import math

import numba
import numpy

_GAP = False
_POS = False
_MEND = False


@numba.njit(cache=True, error_model="numpy", inline="always")
def _mend_row(s11, n11, s22, n22, S0, D0, U, D, W2, B2):
    pass


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def _diag(S):
    return S


@numba.njit(cache=True, error_model="numpy", inline="always")
def _max(a, b):
    return a if a >= b else b


@numba.njit(cache=True, error_model="numpy", inline="always")
def _sel(c, a, b):
    return a if c else b


@numba.njit(cache=True, error_model="numpy", inline="always")
def _any_u(S11, S22, S12, D, N11, N22, W2, B2, R11, R22, Q11, Q22, U):
    s12n = W2 * S12 + B2
    return S12, 1.0, N11 * N22 - s12n * s12n


_pos_u = _any_u
_neg_u = _any_u
_any_k = _any_u


# region chain
@numba.njit(cache=True, error_model="numpy", fastmath=False)
def _chain_first(sq, c, B2, V, R):
    """Diagonal variances Sigma^(1)(x, x) = c |x|^2 + B2 into V, their square roots into R."""
    for j in range(sq.shape[0]):
        s = c * sq[j] + B2
        V[j] = s
        R[j] = math.sqrt(s)


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def _chain_next(V, W2, B2, N, Q):
    """The next layer's diagonal variances W2 E[sigma(u)^2] + B2 into N, roots into Q."""
    for j in range(V.shape[0]):
        s = W2 * _diag(V[j]) + B2
        N[j] = s
        Q[j] = math.sqrt(s)


@numba.njit(cache=True, error_model="numpy", fastmath=False)
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


# region layer
@numba.njit(cache=True, error_model="numpy", fastmath=False)
def _layer(s11, n11, r11, q11, s22, n22, r22, q22, W2, B2, S, D, T, U, ntk, last):
    """_layer_maps, then (where the module has a mend) the next determinants that cancel
    formed again by it, from this layer's S and D kept aside (a second pass: a call in the
    maps' loop would stop it vectorising)."""
    if _MEND and not last:
        S0, D0 = S.copy(), D.copy()
        _layer_maps(s11, n11, r11, q11, s22, n22, r22, q22, W2, B2, S, D, T, U, ntk, last)
        _mend_row(s11, n11, s22, n22, S0, D0, U, D, W2, B2)
        return
    _layer_maps(s11, n11, r11, q11, s22, n22, r22, q22, W2, B2, S, D, T, U, ntk, last)


# fused multiply-adds (contraction only, no other fast-math): the inlined layer maps
# are mostly products and sums, and the single rounding of an FMA is never worse
@numba.njit(cache=True, error_model="numpy", fastmath={"contract"})
def _layer_maps(s11, n11, r11, q11, s22, n22, r22, q22, W2, B2, S, D, T, U, ntk, last):
    """One layer for the pairs (x_i, x'_j) of one row, held in the row buffers.

    s11, n11, r11, q11 are the row's diagonal variance at this layer and the next one, and
    their square roots; s22, n22, r22, q22 the same for the columns. S, D, T hold Sigma, its
    determinant and Theta of this layer and are overwritten with the next layer's (T only
    when ntk; D only when not last: the last layer's determinant is never read, so its
    arithmetic is dropped by the compiler). U holds the root gaps sqrt(S11) - sqrt(S22)
    (when the map reads them: _first and _chunk write them).

    The columns are the inner loop, which has no branches and vectorises (the tests of
    ntk and last do not depend on q: the compiler hoists them out of the loop).
    """
    m = S.shape[0]
    if _POS:
        pos = True
        for q in range(m):
            pos &= S[q] > 0.0
        if pos:  # the usual case past layer 1: the cheaper map alone
            for q in range(m):
                e, ed, dn = _pos_u(
                    s11, s22[q], S[q], D[q], n11, n22[q], W2, B2, r11, r22[q], q11, q22[q], U[q]
                )
                s12 = W2 * e + B2
                if ntk:
                    T[q] = T[q] * (W2 * ed) + s12
                S[q] = s12
                if not last:
                    D[q] = _max(dn, 0.0)
            return
        # Some S12 <= 0 in this row: _pos_u where S12 > 0 and _neg_u elsewhere, both
        # computed and one kept (so an entry does not depend on the other entries of its
        # row: tiles and Dask blocks equal one call bit for bit).
        for q in range(m):
            e, ed, dn = _pos_u(
                s11, s22[q], S[q], D[q], n11, n22[q], W2, B2, r11, r22[q], q11, q22[q], U[q]
            )
            en, edn, dnn = _neg_u(
                s11, s22[q], S[q], D[q], n11, n22[q], W2, B2, r11, r22[q], q11, q22[q], U[q]
            )
            keep = S[q] > 0.0
            s12 = W2 * _sel(keep, e, en) + B2
            if ntk:
                T[q] = T[q] * (W2 * _sel(keep, ed, edn)) + s12
            S[q] = s12
            if not last:
                D[q] = _max(_sel(keep, dn, dnn), 0.0)
        return
    if ntk:
        for q in range(m):
            e, ed, dn = _any_u(
                s11, s22[q], S[q], D[q], n11, n22[q], W2, B2, r11, r22[q], q11, q22[q], U[q]
            )
            s12 = W2 * e + B2
            T[q] = T[q] * (W2 * ed) + s12
            S[q] = s12
            if not last:
                D[q] = _max(dn, 0.0)
    else:  # (_any_k: the map without its derivative part, where that is not free)
        for q in range(m):
            e, ed, dn = _any_k(
                s11, s22[q], S[q], D[q], n11, n22[q], W2, B2, r11, r22[q], q11, q22[q], U[q]
            )
            S[q] = W2 * e + B2
            if not last:
                D[q] = _max(dn, 0.0)
    # endregion layer


# region block
@numba.njit(cache=True, error_model="numpy", fastmath=False)
def _first(i, j0, G, a1, a2, X1, X2, r1, R2, same, c, B2, S, D, T, U, ntk):
    """Layer 1 of row i of K(X1, X2) from column j0 on (S is K[i, j0:], which may be G[i, j0:]
    itself: each entry is read, then written); r1 and R2 are the roots of the row's and the
    columns' first variances (R2 from column j0 on)."""
    m = S.shape[0]
    ai = a1[i]
    cb = c * B2
    # the plain formulas (a loop that vectorises), counting the pairs with |rho| > 0.99,
    # whose determinant _det_near then forms again without cancellation
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
    if _GAP:
        for q in range(m):
            U[q] = r1 - R2[q]
    if near:
        for q in range(1 if same else 0, m):
            j = j0 + q
            g = G[i, j]
            ab = ai * a2[j]
            if ab > 0.0 and abs(g) > 0.99 * ab:
                D[q], dn = _det_near(g, ai, a2[j], X1, i, X2, j, c, B2)
                if _GAP:
                    # sqrt(S11) - sqrt(S22) = c (|x| - |x'|)(|x| + |x'|) / (sqrt(S11) + sqrt(S22))
                    rs = r1 + R2[q]
                    U[q] = c * dn * (ai + a2[j]) / rs if rs > 0.0 else 0.0
    if same:
        D[0] = 0.0  # the pair (x_i, x_i)
    for q in range(m):
        s12 = c * G[i, j0 + q] + B2
        S[q] = s12
        if ntk:
            T[q] = s12


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def _gap_row(h1, l1, r1, h2, l2, r2, U):
    """The root gaps sqrt(S11) - sqrt(S22) of one row against columns: the variances'
    difference (double-double, h + l) over their roots' sum; 0 where both are 0."""
    for q in range(U.shape[0]):
        t = r1 + r2[q]
        U[q] = ((h1 - h2[q]) + (l1 - l2[q])) / t if t > 0.0 else 0.0


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def _finish(i0, nb, j1, w, sym, K, T, ntk):
    """The tile K[i0:i0+nb, j1:j1+w] (and T's) just computed, while it is in cache: counts
    its non-finite entries (with sym, from the diagonal on). Returns the two counts."""
    bad_k = 0
    bad_t = 0
    for b in range(nb):
        i = i0 + b
        for j in range(max(j1, i) if sym else j1, j1 + w):  # x - x: 0 if finite, else NaN
            bad_k += (K[i, j] - K[i, j]) != 0.0
            if ntk:
                bad_t += (T[i, j] - T[i, j]) != 0.0
    return bad_k, bad_t


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def _chunk(i0, i1, j0, c0, c1, sym, G, a1, a2, sq1, sq2, X1, X2, c, depth, W2, B2, K, T, ntk, HL):
    """Columns j0 + c0 .. j0 + c1 - 1 of rows i0..i1-1, every layer (see _block)."""
    nb = i1 - i0
    w = c1 - c0
    D = numpy.empty((nb, w))
    U = numpy.zeros((nb, w))  # (read only when _GAP)
    Z = numpy.empty(w if not ntk else 1)  # T without the NTK (S would fail the SIMD check)
    Vc = numpy.empty(w)
    Rc = numpy.empty(w)
    Nc = numpy.empty(w)
    Qc = numpy.empty(w)
    Vr = numpy.empty(nb)
    Rr = numpy.empty(nb)
    Nr = numpy.empty(nb)
    Qr = numpy.empty(nb)
    _chain_first(sq2[j0 + c0 : j0 + c1], c, B2, Vc, Rc)
    _chain_first(sq1[i0:i1], c, B2, Vr, Rr)
    for b in range(nb):
        i = i0 + b
        o = max(b, c0) - c0 if sym else 0  # (row i of K(X, X) starts at column i)
        if o < w:
            S = K[i, j0 + c0 + o : j0 + c1]
            Tr = T[i, j0 + c0 + o : j0 + c1] if ntk else Z[o:]
            same = sym and c0 + o == b
            args = (Rc[o:], same, c, B2, S, D[b, o:], Tr, U[b, o:], ntk)
            _first(i, j0 + c0 + o, G, a1, a2, X1, X2, Rr[b], *args)
    for layer in range(1, depth):
        _chain_next(Vc, W2, B2, Nc, Qc)
        _chain_next(Vr, W2, B2, Nr, Qr)
        for b in range(nb):
            i = i0 + b
            o = max(b, c0) - c0 if sym else 0
            if o < w:
                S = K[i, j0 + c0 + o : j0 + c1]
                Tr = T[i, j0 + c0 + o : j0 + c1] if ntk else Z[o:]
                last = layer == depth - 1
                if _GAP and layer > 1:  # (layer 1's are _first's)
                    if HL[0].shape[0]:  # (rows' and columns' variances in double-double)
                        k, cc = layer - 1, slice(j0 + c0 + o, j0 + c1)
                        hl = (HL[0][k, i], HL[1][k, i], Rr[b], HL[2][k, cc], HL[3][k, cc])
                        _gap_row(*hl, Rc[o:], U[b, o:])
                    else:  # (the rounded roots' difference, eps R off)
                        for q in range(o, w):
                            U[b, q] = Rr[b] - Rc[q]
                args = (W2, B2, S, D[b, o:], Tr, U[b, o:], ntk, last)
                _layer(Vr[b], Nr[b], Rr[b], Qr[b], Vc[o:], Nc[o:], Rc[o:], Qc[o:], *args)
        Vc, Nc = Nc, Vc
        Rc, Qc = Qc, Rc
        Vr, Nr = Nr, Vr
        Rr, Qr = Qr, Rr
    return _finish(i0, nb, j0 + c0, w, sym, K, T, ntk)


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def _block(i0, i1, sym, G, a1, a2, sq1, sq2, X1, X2, c, depth, W2, B2, K, T, ntk, HL):
    """Rows i0..i1-1 of K(X1, X2) (K may be G itself: each entry is read, then written);
    with sym (X2 is X1), row i from column i on only.

    In chunks of 256 columns, the layers are the outer loop: each carries the diagonal
    variances of this layer and the next one for the chunk's columns and the block's rows
    (O(N) state, whatever the depth, computed once per block), and every row keeps its
    determinants D and root gaps U (a working set that stays in cache). T is written only
    when ntk. HL: the rows' and the columns' variances in double-double (H1, L1, H2, L2,
    layer by layer: _gaps) for the root gaps after layer 1, or four empty arrays. Returns
    the number of non-finite entries written to K and to T.
    """
    n2 = G.shape[1]
    j0 = i0 if sym else 0
    m = n2 - j0
    bad_k = 0
    bad_t = 0
    for c0 in range(0, m, 256):
        args = (sym, G, a1, a2, sq1, sq2, X1, X2, c, depth, W2, B2, K, T, ntk, HL)
        bk, bt = _chunk(i0, i1, j0, c0, min(c0 + 256, m), *args)
        bad_k += bk
        bad_t += bt
    return bad_k, bad_t
    # endregion block


#: Public name of the cancellation-free first-layer determinant (used by the gradients).
det_near = _det_near
#: Public names of the row block and the gap flag (for numba_driver's stand-ins).
block = _block
GAP = _GAP
