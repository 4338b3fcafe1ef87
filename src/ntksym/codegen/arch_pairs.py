"""Static code of the fused kernel of a described network: the pair helpers and ``_prep``.

Two regions copied into each fused module (:mod:`ntksym.codegen.architecture`) beside
those of :mod:`ntksym.codegen.arch_runtime`:

* ``pair_helpers``: an accurate determinant by subtraction (``_cdet``, exact products by FMA),
  each input's variance in double-double (``_norms_lo``, ``_affine_lo``, ``_sum_lo``) and the
  roots' gaps it gives (``_rgap``, ``_xgap``),
  the gap ``sqrt(S11 S22) - S12`` without cancellation (``_gap``), a carried determinant
  or its fallback (``_fin``) and ``log1p`` of small arguments without a call
  (``_log1p_near``);
* ``prep``: the inputs' own determinant ``|x|^2 |x'|^2 - (x.x')^2``, ``|x| - |x'|`` and
  ``2 (|x||x'| - x.x')`` for one chunk of a row, without cancellation for near-parallel
  pairs (the homogeneous kernels' ``_det_near``), and which pairs are one input twice.

This module runs on its own with the stand-in below, so that it can be linted and tested.
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


@numba.njit(cache=True, error_model="numpy")
def _det_near(g, a, b, X1, i, X2, j, c, B2):
    # stand-in for the homogeneous kernels' (region chain of numba_fused.py), which the
    # generated module includes: the same values, formed by subtraction
    detx = (a * b - g) * (a * b + g)
    return c * c * detx + c * B2 * ((a - b) ** 2 + 2.0 * (a * b - g)), a - b


# region pair_helpers
@numba.extending.intrinsic
def _fma(typingctx, a, b, c):
    """a b + c with one rounding: LLVM's fma, one instruction on a CPU with FMA (every
    x86-64 with AVX2), a correctly rounded libm call elsewhere; it vectorises."""
    sig = numba.float64(numba.float64, numba.float64, numba.float64)

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return sig, codegen


@numba.njit(cache=True, error_model="numpy", forceinline=True, fastmath={"contract"})
def _two_prod(a, b):
    """a*b = p + e exactly: e = fma(a, b, -p) is the rounding error of p, the same value as
    Dekker's product in 2 operations instead of 17 (0.93x the CPU time of the mixed
    network, same bits: docs/performance.md, session 14), and exact also beyond 2^996,
    where Veltkamp's split overflows."""
    p = a * b
    return p, _fma(a, b, -p)


@numba.njit(cache=True, error_model="numpy", forceinline=True, fastmath={"contract"})
def _pdiff(a, b, c, d):
    """a b - c d with both products carried in double-double (few ulps relative)."""
    p1, e1 = _two_prod(a, b)
    p2, e2 = _two_prod(c, d)
    return (p1 - p2) + (e1 - e2)


@numba.njit(cache=True, error_model="numpy", forceinline=True, fastmath={"contract"})
def _cdet(s11, s12, s22):
    """s11 s22 - s12^2 with both products carried in double-double, clipped at 0."""
    d = _pdiff(s11, s22, s12, s12)
    return d if d > 0.0 else 0.0


@numba.njit(cache=True, error_model="numpy", forceinline=True, fastmath={"contract"})
def _gap(m, s, d):
    """The gap m - s (m = sqrt(s11 s22)), as d / (m + s) where s > 0: no cancellation."""
    pos = s > 0.0
    q = d / (m + s if pos else 1.0)
    g = q if pos else m - s
    return g if abs(g) < math.inf else m - s


@numba.njit(cache=True, error_model="numpy", forceinline=True, fastmath={"contract"})
def _rgap(v1, l1, v2, l2, r1, r2):
    """sqrt(v1) - sqrt(v2) (r = sqrt(v); l: the variance's low part, v + l in
    double-double) as the variances' difference over r1 + r2: the rounded roots'
    difference, or the rounded variances', would lose the digits of a pair 1e-8 apart;
    0 when both are 0."""
    t = r1 + r2
    return ((v1 - v2) + (l1 - l2)) / t if t > 0.0 else 0.0


@numba.njit(cache=True, error_model="numpy", forceinline=True, fastmath={"contract"})
def _xgap(a1, al1, b2, bl2, b1, bl1, a2, al2):
    """sqrt(a1 b2) - sqrt(b1 a2) (the sum of branches' cross term; al1 ...: the variances'
    low parts) as the products' difference in double-double over the sum of their
    roots; 0 when both are 0."""
    t = math.sqrt(a1 * b2) + math.sqrt(b1 * a2)
    lo = (a1 * bl2 + al1 * b2) - (b1 * al2 + bl1 * a2)
    return (_pdiff(a1, b2, b1, a2) + lo) / t if t > 0.0 else 0.0


@numba.njit(cache=True, error_model="numpy", forceinline=True, fastmath={"contract"})
def _two_sum(a, b):
    """a + b = s + t exactly (Knuth's TwoSum)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@numba.njit(cache=True, error_model="numpy", forceinline=True, fastmath={"contract"})
def _affine_lo(h, lo, a, d, out):
    """The low part of a (h + lo) + d (a variance in double-double through an affine map)
    against its rounded value out; 0 where it is not finite."""
    p, e = _two_prod(a, h)
    s, t = _two_sum(p, d)
    r = (s - out) + (t + (e + a * lo))
    return r if abs(r) < math.inf else 0.0


@numba.njit(cache=True, error_model="numpy", forceinline=True, fastmath={"contract"})
def _sum_lo(va, la, vb, lb):
    """The low part of (va + la) + (vb + lb) against va + vb rounded."""
    return _two_sum(va, vb)[1] + (la + lb)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _norms_lo(X, sq):
    """|x_i|^2 - sq_i for each row (Dot2 of Ogita, Rump and Oishi: the error-free squares
    summed with TwoSum), to about eps^2 |x_i|^2; 0 where it is not finite."""
    out = numpy.empty(X.shape[0])
    for i in range(X.shape[0]):
        s = 0.0
        c = 0.0
        for k in range(X.shape[1]):
            p, e = _two_prod(X[i, k], X[i, k])
            s, t = _two_sum(s, p)
            c += t + e
        r = (s - sq[i]) + c
        out[i] = r if abs(r) < math.inf else 0.0
    return out


@numba.njit(cache=True, error_model="numpy", forceinline=True, fastmath={"contract"})
def _fin(dn, fallback):
    """A carried determinant clipped at 0, or ``fallback`` where it is not finite."""
    if abs(dn) < math.inf:
        return dn if dn > 0.0 else 0.0
    return fallback


@numba.njit(cache=True, error_model="numpy", forceinline=True, fastmath={"contract"})
def _log1p_near(x):
    """log1p(x) for |x| <= 0.3 without a libm call (NaN elsewhere): 2 atanh(u),
    u = x/(2 + x), |u| < 0.18, as its series to u^21 (the rest < 2e-18 relative);
    within 2 ulp (the rounding of u), and the loop that calls it vectorises."""
    u = x / (2.0 + x)
    z = u * u
    p = 1.0 / 21.0
    p = p * z + 1.0 / 19.0
    p = p * z + 1.0 / 17.0
    p = p * z + 1.0 / 15.0
    p = p * z + 1.0 / 13.0
    p = p * z + 1.0 / 11.0
    p = p * z + 1.0 / 9.0
    p = p * z + 1.0 / 7.0
    p = p * z + 1.0 / 5.0
    p = p * z + 1.0 / 3.0
    r = 2.0 * (u + u * (z * p))
    return r if abs(x) <= 0.3 else math.nan
    # endregion pair_helpers


# region prep
@numba.njit(cache=True, error_model="numpy")
def _co(i, c0, c1, G, sq1, sq2, CO):
    """Row i, columns c0..c1-1: CO, the same input twice (equal squared norms and inner
    product, so the pair stays one Gaussian). All a chunk without carried determinants
    reads of the inputs' pairs; ``_prep`` adds what a chunk that carries them reads."""
    si = sq1[i]
    for q in range(c1 - c0):
        CO[q] = (si == sq2[c0 + q]) & (G[i, c0 + q] == si)


@numba.njit(cache=True, error_model="numpy")
def _prep(i, c0, c1, G, a1, a2, sq1, sq2, X1, X2, DX, DN, OM, CO):
    """Row i, columns c0..c1-1: the inputs' determinant DX, |x| - |x'| (DN),
    2 (|x||x'| - x.x') (OM), each without cancellation, and CO (``_co``)."""
    m = c1 - c0
    ai = a1[i]
    _co(i, c0, c1, G, sq1, sq2, CO)
    near = 0
    for q in range(m):
        j = c0 + q
        g = G[i, j]
        b = a2[j]
        ab = ai * b
        DX[q] = (ab - g) * (ab + g)
        DN[q] = ai - b
        OM[q] = 2.0 * (ab - g)
        near += (ab > 0.0) & (abs(g) > 0.99 * ab) & (not CO[q])
    if near:
        for q in range(m):
            j = c0 + q
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
