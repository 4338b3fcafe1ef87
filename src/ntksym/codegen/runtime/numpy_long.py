"""The low part of an input's variance after an activation, from its map in long double.

Included by the fused architecture template (``fused_numba.py.jinja``, region ``low``)
and imported by the float64 layer maps (:mod:`ntksym.kernels.layer_maps`), so that both
paths form the low part the same way. The map ``f`` is the activation's diagonal
``S -> E[sigma(u)^2]`` written in NumPy with long double constants
(:mod:`ntksym.codegen.long_diag`).

Why: the roots' gap ``sqrt(S11) - sqrt(S22)`` that a biased layer's determinant reads
needs each variance to more than float64's 16 digits when two inputs are nearly parallel
(:mod:`ntksym.kernels.variance_dd`). Where ``E[sigma(u)^2]`` is affine in ``S`` the
rounding error of each operation is known exactly; elsewhere (erf, GELU, sin, ...) the
float64 value ``hi`` of the map is compared here with the map evaluated in long double
(64 bits of mantissa on x86: 11 more than float64) at the input's double-double variance,
and the difference is the low part. Where long double is no wider than float64, or the
two disagree by more than :data:`LOW_BOUND` of ``hi`` (then neither is trusted to that
level), the low part is 0: the old behaviour.

Two more regions serve the homogeneous kernel modules of an activation that reads the
root gap (``sin(u) + u``, ``exp``, ...; ``kernel_numpy.py.jinja``, ``kernel_numba.py.jinja``):
``dd``, the error-free operations (Dekker's product, Knuth's sum, Dot2 of the inputs'
norms, an affine map's low part, the root gap from double-double variances), which
:mod:`ntksym.kernels.variance_dd` and :mod:`ntksym.dual.covariance` import too; and
``chain``, each input's variance at every layer in double-double (the module's diagonal
map ``_long`` in long double), from which the modules form the root gaps after layer 1.
"""

# The region is copied into the generated modules byte for byte, so its docstrings stay as
# they are there: ruff checks everything else.
# ruff: noqa: D205, D209
# fmt: off

import numpy

# region long_double
#: Whether NumPy's long double has more bits than float64 (not on Windows or macOS/arm64).
LONG_DOUBLE = numpy.finfo(numpy.longdouble).nmant > numpy.finfo(numpy.float64).nmant
# endregion long_double


# region low
#: The largest |low part| / |hi| taken as a rounding correction (float64's rounding of a
#: closed form is a few ulps; beyond this the two evaluations disagree for another reason).
LOW_BOUND = 1e-13


def _long_low(f, hi, lo, out):
    """The low part of out = f(hi + lo) rounded: f(hi + lo) - out, f in long double.

    hi, lo: the input variances and their low parts; out: the float64 map of hi (the
    variances the kernels carry). 0 where f is not finite or disagrees with out beyond
    LOW_BOUND."""
    if not LONG_DOUBLE:
        return numpy.zeros_like(out)
    with numpy.errstate(all="ignore"):
        s = hi.astype(numpy.longdouble) + lo
        d = (numpy.broadcast_to(f(s), s.shape) - out).astype(numpy.float64)
        keep = numpy.isfinite(d) & (numpy.abs(d) <= LOW_BOUND * numpy.abs(out))
    return numpy.where(keep, d, 0.0)
# endregion low


# region dd
def _two_product(a, b):
    """Dekker's error-free product: a*b = p + e exactly (barring overflow)."""
    p = a * b
    c = 134217729.0 * a  # (2^27 + 1: Veltkamp's split into two halves of 26 bits)
    ah = c - (c - a)
    c = 134217729.0 * b
    bh = c - (c - b)
    al, bl = a - ah, b - bh
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _two_sum(a, b):
    """Knuth's error-free sum: a + b = s + t exactly (barring overflow)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _norms_lo(X, hi):
    """|x_i|^2 - hi_i for each row, to about eps^2 |x_i|^2 (Dot2 of Ogita, Rump and Oishi
    2005: the error-free squares summed with TwoSum, one column at a time); hi: any float64
    near the squared norms. 0 where it is not finite (the split overflows beyond 1e150)."""
    s = numpy.zeros(X.shape[0])
    c = numpy.zeros(X.shape[0])
    Xt = numpy.ascontiguousarray(X.T)  # (its columns contiguous: 2.5x faster than strided)
    with numpy.errstate(all="ignore"):
        for x in Xt:
            p, e = _two_product(x, x)
            s, t = _two_sum(s, p)
            c += t + e
        out = (s - hi) + c
    return numpy.where(numpy.isfinite(out), out, 0.0)


def _affine_lo(hi, lo, a, d, out):
    """The low part of a (hi + lo) + d whose rounded value the caller holds as out.

    a hi = p + e and p + d = s + t exactly, so the value is s + (t + e + a lo) and its low
    part against out is (s - out) + t + e + a lo (s - out is exact when both round the
    same value). 0 where it is not finite (the split overflows beyond 1e300)."""
    with numpy.errstate(all="ignore"):
        p, e = _two_product(numpy.full_like(hi, a), hi)
        s, t = _two_sum(p, numpy.full_like(p, d))
        out = (s - out) + (t + (e + a * lo))
    return numpy.where(numpy.isfinite(out), out, 0.0)


def _root_gap(h1, l1, h2, l2, r1, r2):
    """sqrt(S11) - sqrt(S22) for rows S11 = h1 + l1 against columns S22 = h2 + l2
    (double-double; r1, r2 their roots): the variances' difference over the roots' sum,
    so that a pair 1e-8 apart keeps its digits; 0 where both are 0."""
    total = r1[:, None] + r2[None, :]
    diff = (h1[:, None] - h2[None, :]) + (l1[:, None] - l2[None, :])
    with numpy.errstate(divide="ignore", invalid="ignore"):
        u = diff / total
    return numpy.where(total > 0.0, u, 0.0)
# endregion dd


def _long(S):
    """Stand-in for a module's diagonal map in long double (the identity activation's)."""
    return S


# region chain
def _chain_dd(X, sq, c, B2, W2, depth):
    """The variances of X's rows at layers 1 .. depth - 1 in double-double (H + L), L from
    the inputs' norms by Dot2, the Dense layers' affine maps and the module's diagonal map
    _long in long double (checked against mpmath when the module was written)."""
    H = numpy.empty((depth - 1, X.shape[0]))
    L = numpy.empty_like(H)
    H[0] = c * sq + B2
    L[0] = _affine_lo(sq, _norms_lo(X, sq), c, B2, H[0])
    w2, b2 = numpy.longdouble(W2), numpy.longdouble(B2)
    with numpy.errstate(all="ignore"):
        for layer in range(1, depth - 1):
            v = w2 * _long(H[layer - 1].astype(numpy.longdouble) + L[layer - 1]) + b2
            H[layer] = v.astype(numpy.float64)
            lo = (v - H[layer]).astype(numpy.float64)
            L[layer] = numpy.where(numpy.isfinite(lo), lo, 0.0)
    return H, L


def _gaps(X1, X2, sq1, sq2, same, c, B2, W2, depth):
    """What the root gaps of layers 2 .. depth - 1 are formed from: the rows' and the
    columns' variances in double-double (_chain_dd), or None where long double is no
    wider than float64, or the module has no map in long double (_layer_gap)."""
    if not LONG_DOUBLE or _long is None or depth < 3:
        return None
    rows = _chain_dd(X1, sq1, c, B2, W2, depth)
    return rows, rows if same else _chain_dd(X2, sq2, c, B2, W2, depth)


def _layer_gap(gaps, layer, r, cs, w1, w2):
    """The root gaps sqrt(S11) - sqrt(S22) of layer `layer` (2 or more) for rows r against
    columns cs (roots w1, w2): the variances' difference over their roots' sum, from the
    double-double variances of _gaps; where there are none, the rounded roots' difference
    (eps sqrt(S) off: enough where the variances stay moderate, as after sin)."""
    if gaps is None:
        return w1[:, None] - w2[None, :]
    (H1, L1), (H2, L2) = gaps
    k = layer - 1
    return _root_gap(H1[k, r], L1[k, r], H2[k, cs], L2[k, cs], w1, w2)
# endregion chain


#: Public names, for the float64 layer maps and the dual maps.
long_low = _long_low
two_product = _two_product
two_sum = _two_sum
norms_lo = _norms_lo
affine_lo = _affine_lo
root_gap = _root_gap
gaps = _gaps
