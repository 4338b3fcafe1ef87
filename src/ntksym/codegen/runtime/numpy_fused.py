"""Diagonal chain, first layer and blocked row loop of the generated NumPy kernels.

Included by ``kernel_numpy.py.jinja`` for every activation. Between the regions the
template adds what depends on the activation: the signature, docstring and ending
of ``_first_layer`` (which also returns the root gaps ``U`` when the layer map
reads them), and in ``_compute`` the calls of ``_first_layer`` and of the layer map.

``_first_layer`` forms the determinant ``S11 S22 - S12^2`` of layer 1 without
cancellation for near-parallel pairs (Lagrange's identity with a Dekker split),
``_mirror`` fills the lower triangle of a symmetric result, and ``_compute`` is the
entry point of a generated module.

On its own this module computes the kernels of the identity activation, for which
the stand-ins below are exact: ``E[u^2] = S``, and the layer map gives
``E[sigma sigma] = S12`` and ``E[sigma' sigma'] = 1``.
"""

# The regions' functions carry no annotations (they are copied as they are), so mypy
# checks their bodies with the types it infers.
# mypy: check-untyped-defs

# ruff format would rewrap some statements of the regions (hanging indents, slices),
# which would change the generated modules; so it leaves this file alone.
# fmt: off
# The layer loop's index is read by the generated modules' layer maps (the root gaps of
# layer 1), not by the stand-in here.
# ruff: noqa: B007

import numpy


def _diag(S):
    return S


def _pair(S11, S22, S12, D, N11, N22, W2, B2, R11, R22, Q11, Q22):
    e = S12 + 0.0 * (S11 + S22 + D + R11 + R22 + Q11 + Q22)
    s12n = W2 * e + B2
    return e, numpy.ones_like(e), N11 * N22 - s12n * s12n


def _first_layer(X1, X2, G, sq1, sq2, diag, c, B2):
    """S12 and D = S11 S22 - S12^2 of layer 1, D formed without cancellation.

    Rows of X1 against X2; with diag >= 0, row i is the input X2[diag + i] itself (a
    block of rows of K(X, X)), and its pair with itself has D = 0.
    """
    # region first_layer
    a = numpy.sqrt(sq1)[:, None]
    b = numpy.sqrt(sq2)[None, :]
    ab = a * b
    detx = (ab - G) * (ab + G)
    dn = numpy.broadcast_to(a - b, G.shape).copy()
    omr2 = 2.0 * (ab - G)
    near = (ab > 0) & (numpy.abs(G) > 0.99 * ab)
    if diag >= 0:
        di = numpy.arange(G.shape[0])
        dj = di + diag
        near[di, dj] = False
    ii, jj = numpy.nonzero(near)
    for start in range(0, ii.size, 4096):
        i = ii[start:start + 4096]
        j = jj[start:start + 4096]
        g = G[i, j]
        ai = numpy.sqrt(sq1[i])
        bj = numpy.sqrt(sq2[j])
        sq = ai * ai
        t = g / sq
        gam = 134217729.0 * t
        th = (gam - (gam - t))[:, None]
        x = X1[i]
        gx = 134217729.0 * x
        xh = gx - (gx - x)
        z = (X2[j] - th * xh) - th * (x - xh)
        ee = numpy.einsum("ij,ij->i", z, z)
        xe = numpy.einsum("ij,ij->i", x, z)
        # z still holds ~2^-26 |x'| along x: project it out once more, in error-free
        # steps (see the Numba template's _det_near), before forming the determinant
        dl = (xe / sq)[:, None]
        dg = 134217729.0 * dl
        dh = dg - (dg - dl)
        dlo = dl - dh
        xl = x - xh
        a1 = X2[j] - th * xh
        b1 = th * xl
        r = a1 - b1
        bb = r - a1
        r_lo = (a1 - (r - bb)) - (b1 + bb)
        q = dl * x
        q_lo = ((dh * xh - q) + dh * xl + dlo * xh) + dlo * xl
        z2 = ((r - q) + r_lo) - q_lo
        ee2 = numpy.einsum("ij,ij->i", z2, z2)
        xe2 = numpy.einsum("ij,ij->i", x, z2)
        dx = numpy.maximum(sq * ee2 - xe2 * xe2, 0.0)
        detx[i, j] = dx
        th = th[:, 0]
        close = (0.5 * ai <= bj) & (bj <= 2.0 * ai)
        dn[i, j] = numpy.where(
            close, -((th * th - 1.0) * sq + 2.0 * th * xe + ee) / (ai + bj), ai - bj
        )
        omr2[i, j] = numpy.where(g > 0, 2.0 * dx / (ai * bj + numpy.abs(g)), 2.0 * (ai * bj - g))
    if diag >= 0:
        detx[di, dj] = 0.0
        dn[di, dj] = 0.0
        omr2[di, dj] = 0.0
    D = c * c * detx + c * B2 * (dn * dn + omr2)
    # endregion first_layer
    return c * G + B2, D


# region mirror
#: Entries per block of rows: every layer of a block runs before the next block, so the
#: temporaries of the layer map (tens of arrays) stay small instead of N x N each.
_BLOCK = 1 << 16


def _mirror(K):
    """Copy the upper triangle of the square K into its lower triangle, by blocks of rows."""
    n = K.shape[0]
    for i0 in range(0, n, 256):
        i1 = min(i0 + 256, n)
        K[i0:i1, :i0] = K[:i0, i0:i1].T
        blk = K[i0:i1, i0:i1]
        low = numpy.tril_indices(i1 - i0, -1)
        blk[low] = blk.T[low]
# endregion mirror


# region compute_start
def _compute(X1, X2, depth, B2, W2, ntk=True, out=(None, None)):
    c = W2 / X1.shape[1]
    same = X2 is None
    # out: arrays to write the NNGP and the NTK into (checked), or None to allocate them
    X2T = X1.T if same else X2.T
    G = X1 @ X2T if out[0] is None else numpy.matmul(X1, X2T, out=out[0])
    if same:
        X2 = X1
        sq1 = numpy.diag(G).copy()
        sq2 = sq1
    else:
        sq1 = numpy.einsum("ij,ij->i", X1, X1)
        sq2 = numpy.einsum("ij,ij->i", X2, X2)
    # The NNGP overwrites the Gram product in place, a block of rows at a time (each block
    # is read before it is written); the NTK, when asked for, is the only other N x N array.
    K = G
    T = (numpy.empty_like(G) if out[1] is None else out[1]) if ntk else None
    n1, n2 = G.shape
    with numpy.errstate(divide="ignore", invalid="ignore", over="ignore"):
        V2 = c * sq2 + B2  # Sigma^(1)(x', x') of the columns
        R2 = numpy.sqrt(V2)
        # endregion compute_start
        # region compute_rows
        r0 = 0
        while r0 < n1:
            # K(X, X): the block's columns start at its first row (the upper triangle,
            # which _mirror copies), so that its row i is its column i
            cs = slice(r0 if same else 0, n2)
            r = slice(r0, min(r0 + max(1, _BLOCK // max(n2 - cs.start, 1)), n1))
            rr = slice(0, r.stop - r0)
            r0 = r.stop
            # the diagonal variances of this layer (v, root w) and the next (nv, root nw),
            # for the block's rows and the columns: O(N) state, whatever the depth
            v1 = V2[r] if same else c * sq1[r] + B2
            w1 = R2[r] if same else numpy.sqrt(v1)
            v2 = V2[cs]
            w2 = R2[cs]
            # endregion compute_rows
            s12, d = _first_layer(X1[r], X2[cs], G[r, cs], sq1[r], sq2[cs], 0 if same else -1,
                                  c, B2)
            # region compute_mid
            t12 = s12
            for layer in range(1, depth):
                nv2 = numpy.broadcast_to(W2 * _diag(v2) + B2, v2.shape)  # (a constant _diag)
                nw2 = numpy.sqrt(nv2)
                nv1 = nv2[rr] if same else numpy.broadcast_to(W2 * _diag(v1) + B2, v1.shape)
                nw1 = nw2[rr] if same else numpy.sqrt(nv1)
                # endregion compute_mid
                e, ed, dn = _pair(v1[:, None], v2[None, :], s12, d, nv1[:, None], nv2[None, :],
                                  W2, B2, w1[:, None], w2[None, :], nw1[:, None], nw2[None, :])
                # region compute_end
                s12 = W2 * e + B2
                if ntk:
                    t12 = t12 * (W2 * ed) + s12
                d = numpy.maximum(dn, 0.0)
                v1, v2, w1, w2 = nv1, nv2, nw1, nw2
            K[r, cs] = s12
            if ntk:
                T[r, cs] = t12
    if same:
        _mirror(K)
        if ntk:
            _mirror(T)
    return K, T, not numpy.isfinite(K).all(), ntk and not numpy.isfinite(T).all()
    # endregion compute_end


#: The first layer as a library function (for the float64 dual path of ntksym.kernels), the
#: same code the generated NumPy modules copy.
first_layer = _first_layer
