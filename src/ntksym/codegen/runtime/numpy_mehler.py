"""The Mehler (Hermite) series of the generated NumPy quadrature kernels' layer maps.

For (u, v) ~ N(0, [[S1, S12], [S12, S2]]) and rho = S12 / sqrt(S1 S2), Mehler's formula
gives

    E[f(u) f(v)] = sum_k a_k(S1) a_k(S2) rho^k,  a_k(S) = E[f(sqrt(S) z) He_k(z)] / sqrt(k!),

with He_k the probabilists' Hermite polynomials, z ~ N(0, 1) (Mehler 1866; O'Donnell,
*Analysis of Boolean Functions*, 2014, ch. 11; for the dual activations of neural networks,
Daniely, Frostig & Singer, NeurIPS 2016). The coefficients are one-dimensional integrals per
variance, so a layer costs one set of coefficients per input and a polynomial in rho of
degree _KMAX per entry, instead of a two-dimensional integral per entry.

``_series`` evaluates the truncated sum where an error bound says it is accurate, and marks
the other entries, which the caller integrates by the adaptive rule of
:mod:`ntksym.codegen.runtime.numpy_quadrature`. The bound, per entry, is the sum of

* the truncation: |sum_{k > K} a_k b_k rho^k| <= sqrt(T1 T2) |rho|^(K+1) (Cauchy-Schwarz),
  T_i = E[f(u_i)^2] - sum_{k <= K} a_k^2, with E[f^2] integrated on its own;
* the coefficients' errors (estimated per variance, below), times sum |b_k| |rho|^k
  <= |b_0| + |b_1 rho| + rho^2 sqrt((K - 1) E[g^2]) (Cauchy-Schwarz for k >= 2);
* rounding: 4 eps (|a_0 b_0| + |rho| sqrt(M1 M2)) + eps |P|, M_i = sum_{k >= 1} (k + 1) a_k^2
  (Horner's error, first order, and the error of rho itself);

and must stay below _STOL max(|P|, 1e-3 sqrt(E[f(u)^2] E[g(v)^2])) (P the truncated sum),
the measure of the tests. Where rho is exactly 1 (D = 0) and S1 = S2, the map is E[f(u)^2]
itself.

The coefficients are integrated by the trapezoid rule in t after the map of the adaptive
rule, z = _R asinh((l/_R) sinh t), at the fixed step _H0 / 2^_MLEV over |z| <= _MZ
(where the Hermite polynomials up to _KMAX times the Gaussian are below 1e-21), with the
scale l = min(_R, 1/sqrt(S)) rounded down to a power of sqrt(2), so that the variances of a
group share their nodes and the coefficients are a matrix product. Their error is
estimated from the rule at twice the step (the even nodes): the rule converges
geometrically, so the error of the finer rule is about the square of the difference
relative to the scale; a variance whose two rules differ by more than _MCONV relative
has no series (all its entries go to the adaptive rule).

The activation is an argument (the region has no stand-ins): the NumPy quadrature
module, and the generated modules, pass sigma or sigma'.
"""

# The regions' functions carry no annotations (they are copied as they are), so mypy
# checks their bodies with the types it infers.
# mypy: check-untyped-defs

# The regions are copied into the generated modules byte for byte, so their docstrings and
# names stay as they are there: ruff checks everything else.
# ruff: noqa: D403, E501, E741
# ruff format would rewrap some statements of the regions (hanging indents, slices),
# which would change the generated modules; so it leaves this file alone.
# fmt: off

import numpy

from ntksym.codegen.runtime.quadrature_rule import RULE

# The rule's parameters (the generated module defines them before this region).
_Z, _R, _H0, _TOL, _LEVELS, _TABLE, _FLOOR, _INV_SQRT_2PI = RULE




# region series
_KMAX = 48  # degree of the series in rho
_MZ = 13.0  # coefficient nodes cover |z| <= _MZ
_MLEV = 3  # step of the coefficient rule: _H0 / 2^_MLEV
_MCONV = 1e-6  # the two rules of a variance's coefficients must agree to this (relative)
_STOL = 1e-14  # accuracy asked of the series, relative to the measure above
_EPS = 2.220446049250313e-16
_MEMO = []  # recent columns' coefficients: (key, variances, expansion) (see _expansion)
_MEMO_N = 4096  # largest array of variances kept
_MEMO_SIZE = 24  # arrays kept


def _hermite(z):
    """He_k(z) / sqrt(k!) for k = 0.._KMAX at the nodes z: an array (_KMAX + 1, z.size)."""
    H = numpy.empty((_KMAX + 1, z.size))
    H[0] = 1.0
    H[1] = z
    for k in range(1, _KMAX):
        H[k + 1] = (z * H[k] - numpy.sqrt(k) * H[k - 1]) / numpy.sqrt(k + 1.0)
    return H


def _mnodes(l):
    """Nodes z, weights (density and step included), even-node mask of the coefficient rule.

    The rule on the scale l (see the module's docstring).
    """
    kap = 0.0 if l >= _R else l / _R
    h = _H0 / (1 << _MLEV)
    if kap == 0.0:
        hi = int(numpy.ceil(_MZ / (l * h)))
    else:
        hi = int(numpy.ceil(numpy.arcsinh(numpy.sinh(_MZ / _R) / kap) / h))
    j = numpy.arange(-hi, hi + 1)
    t = j * h
    if kap == 0.0:
        z = l * t
        w = l * numpy.exp(-0.5 * z * z)
    else:
        et = numpy.exp(t)
        ei = 1.0 / et
        q = kap * (0.5 * (et - ei))
        z = _R * numpy.arcsinh(q)
        w = l * (0.5 * (et + ei)) / numpy.sqrt(1.0 + q * q) * numpy.exp(-0.5 * z * z)
    return z, w * (h * _INV_SQRT_2PI), j % 2 == 0


def _coefficients(S, f):
    """The Hermite coefficients of f(sqrt(S) z) (f vectorised) for the variances S > 0 (1-D).

    Returns (a, E, err, ok): a (S.size, _KMAX + 1), E = E[f^2], err the estimated error of
    each coefficient, ok where the coefficient rule converged.
    """
    n = S.size
    a = numpy.zeros((n, _KMAX + 1))
    E = numpy.zeros(n)
    err = numpy.zeros(n)
    ok = numpy.zeros(n, dtype=bool)
    r = numpy.sqrt(S)
    # the scale 1/sqrt(S), rounded down to _R 2^(-g/2): g >= 0 numbers a group of nodes
    g = numpy.maximum(numpy.ceil(2.0 * numpy.log2(_R * r)), 0.0)
    for gv in numpy.unique(g):
        i = numpy.nonzero(g == gv)[0]
        z, w, even = _mnodes(_R * 2.0 ** (-0.5 * gv))
        H = _hermite(z)
        F = f(r[i, None] * z)
        WF = F * w
        ai = WF @ H.T
        ac = 2.0 * (WF[:, even] @ H[:, even].T)
        E[i] = (WF * F).sum(1)
        sc = numpy.sqrt(E[i])
        diff = numpy.abs(ai - ac).max(1)
        # the finer rule's error: about diff^2 / scale; plus the rounding of its sums
        rnd = 2.0 * _EPS * (numpy.abs(WF) @ numpy.abs(H).T).max(1)
        err[i] = diff * diff / numpy.where(sc > 0.0, sc, 1.0) + rnd
        ok[i] = numpy.isfinite(ai).all(1) & (diff <= _MCONV * sc)
        a[i] = ai
    return a, E, err, ok


def _tails(a, E, err):
    """What the bound needs per variance: sqrt(T), sqrt(M), sqrt(E), and a consistency check.

    T is the mass of the omitted terms (made safe against rounding), M = sum_{k >= 1}
    (k + 1) a_k^2; the check is false where the coefficients hold more than E[f^2].
    """
    T = E - (a * a).sum(1)
    slack = 4.0 * (_KMAX + 2) * _EPS * E + 2.0 * numpy.sqrt((_KMAX + 1) * E) * err
    k1 = numpy.arange(2.0, _KMAX + 2.0)
    M = ((a[:, 1:] * a[:, 1:]) * k1).sum(1)
    # Bessel's inequality: coefficients with more mass than E[f^2] are wrong (no series)
    return numpy.sqrt(numpy.maximum(T, 0.0) + slack), numpy.sqrt(M), numpy.sqrt(E), T >= -slack


def _expansion(s, f, key):
    """What the series needs of the variances s (any shape), by _coefficients and _tails.

    Returns (a, err, ok, sqrt(T), sqrt(M), sqrt(E), E), a of shape (_KMAX + 1,) + s.shape.

    Kept in _MEMO (unless key is None) for arrays of up to _MEMO_N variances, under key
    (the function): the columns' variances of a layer are the same for every block of
    rows, or (K(X, X), whose blocks start at their first row) the end of the first
    block's, which a query then reads as a view.
    """
    s = numpy.ascontiguousarray(s, dtype=float)
    flat = s.ravel()
    n = flat.size
    if key is not None:
        for k, vals, hit in _MEMO:
            if k == key and vals.size >= n and numpy.array_equal(vals[vals.size - n:], flat):
                return tuple(x[..., x.shape[-1] - n:].reshape(x.shape[:-1] + s.shape)
                             for x in hit)
    v, inv = numpy.unique(flat, return_inverse=True)
    pos = numpy.isfinite(v) & (v > 0.0)
    a = numpy.zeros((v.size, _KMAX + 1))
    E = numpy.zeros(v.size)
    err = numpy.zeros(v.size)
    okv = numpy.zeros(v.size, dtype=bool)
    if pos.any():
        a[pos], E[pos], err[pos], okv[pos] = _coefficients(v[pos], f)
    sT, sM, sE, okt = _tails(a, E, err)
    okv &= okt
    inv = inv.ravel()
    hit = (numpy.ascontiguousarray(a[inv].T),) + tuple(x[inv] for x in (err, okv, sT, sM, sE, E))
    if key is not None and n <= _MEMO_N:
        del _MEMO[:max(len(_MEMO) - _MEMO_SIZE + 1, 0)]
        _MEMO.append((key, flat.copy(), hit))
    return tuple(x.reshape(x.shape[:-1] + s.shape) for x in hit)


def _series(S11, S22, S12, D, R11, R22, f, key):
    """E[f(u) f(v)] (f vectorised: sigma or sigma', named by key) by the Mehler series.

    For broadcast arrays S11 (rows, 1) and S22 (1, columns), or any shapes: (P, ok), P
    valid where ok (R11 > 0, R22 > 0 and the bound met).
    """
    s1 = numpy.asarray(S11, dtype=float)
    s2 = numpy.asarray(S22, dtype=float)
    shape = numpy.broadcast(s1, s2, S12, D).shape
    a2, e2, ok2, t2, m2, q2, E2 = _expansion(s2, f, key)
    nr = s1.size
    if s1.shape == (nr, 1) and s2.ndim == 2 and s2.shape[0] == 1 and nr <= s2.size and numpy.array_equal(
            s1.ravel(), s2.ravel()[:nr]):  # a block of K(X, X): its rows are its first columns
        a1, e1, ok1, t1, m1, q1, E1 = (x[..., 0, :nr, None] for x in (a2, e2, ok2, t2, m2, q2, E2))
    else:  # (the rows change with the block)
        a1, e1, ok1, t1, m1, q1, E1 = _expansion(s1, f, None)
    rho = numpy.clip(S12 / (R11 * R22), -1.0, 1.0)
    rho = numpy.where(numpy.isfinite(rho), rho, 0.0)
    P = a1[_KMAX] * a2[_KMAX]
    for k in range(_KMAX - 1, -1, -1):
        P = P * rho + a1[k] * a2[k]
    ar = numpy.abs(rho)
    bound = (t1 * t2) * ar ** (_KMAX + 1)
    r2 = ar * ar * numpy.sqrt(_KMAX - 1.0)
    bound = bound + e1 * (numpy.abs(a2[0]) + numpy.abs(a2[1]) * ar + q2 * r2)
    bound = bound + e2 * (numpy.abs(a1[0]) + numpy.abs(a1[1]) * ar + q1 * r2)
    bound = bound + e1 * e2 * (_KMAX + 1)
    bound = bound + 4.0 * _EPS * (numpy.abs(a1[0] * a2[0]) + ar * (m1 * m2)) + _EPS * numpy.abs(P)
    ok = ok1 & ok2 & (bound <= _STOL * numpy.maximum(numpy.abs(P), 1e-3 * (q1 * q2)))
    # rho = 1 exactly with equal variances (a pair (x, x)): E[f(u)^2] itself
    same = ok1 & (s1 == s2) & (D <= 0.0) & (S12 > 0.0)
    P = numpy.where(same, E1, P)
    ok = (ok | same) & (R11 > 0.0) & (R22 > 0.0)
    P, ok = (x.reshape(shape) if x.size == 1 else x for x in (numpy.asarray(P), numpy.asarray(ok)))
    return numpy.broadcast_to(P, shape), numpy.broadcast_to(ok, shape)
# endregion series


#: Public name of the series (the NumPy quadrature module calls it as ``_series``, the name
#: the generated modules use).
series = _series
