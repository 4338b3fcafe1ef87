"""The Mehler (Hermite) series of the generated NumPy quadrature kernels' layer maps.

For (u, v) ~ N(0, [[S1, S12], [S12, S2]]) and rho = S12 / sqrt(S1 S2), Mehler's formula
gives

    E[f(u) f(v)] = sum_k a_k(S1) a_k(S2) rho^k,  a_k(S) = E[f(sqrt(S) z) He_k(z)] / sqrt(k!),

with He_k the probabilists' Hermite polynomials, z ~ N(0, 1) (Mehler 1866; O'Donnell,
*Analysis of Boolean Functions*, 2014, ch. 11; for the dual activations of neural networks,
Daniely, Frostig & Singer, NeurIPS 2016). The coefficients are one-dimensional integrals per
variance, so a layer costs one set of coefficients per input and a polynomial in rho
per entry, instead of a two-dimensional integral per entry.

The degree: _KLOW (24) for every entry, then, for the entries it declines, the least of
the ladder 32, 48 (same coefficients) whose truncation bound holds for all of them; then,
where the entries still declined are at least a quarter of the block (nearly parallel
inputs: near |rho| = 1 the terms fall only as fast as the coefficients, for tanh at
variance 1 like exp(-c sqrt(k))), coefficients up to _KMAX (256) and the least of the
ladder 64..256 that serves them. What no degree serves (large variances near |rho| = 1,
where sigma is kink-like at the Gaussian's scale: for tanh, variances above about 2 at
rho = 1 - 1e-12) goes to the adaptive rule.

``_series`` evaluates the truncated sum where an error bound says it is accurate, and marks
the other entries, which the caller integrates by the adaptive rule of
:mod:`ntksym.codegen.runtime.numpy_quadrature`. The bound, per entry, is the sum of

* the truncation: |sum_{k > K} a_k b_k rho^k| <= sqrt(T1 T2) |rho|^(K+1) (Cauchy-Schwarz),
  T_i = sum_{k > K} a_k^2 bounded by the sum of the computed a_k^2 (and their errors) up
  to the largest degree kmax of the coefficients plus the integral of the residual
  (f - sum_{k <= kmax} a_k He_k / sqrt(k!))^2 over the coefficients' nodes (with its
  rounding and the difference of the two rules). Nothing cancels there, whereas
  E[f^2] - sum_{k <= K} a_k^2 (the bound before) cannot certify a tail below about
  eps E[f^2], which near |rho| = 1 is 1e-2 of what the bound must allow;
* the coefficients' errors (estimated per variance, below), times sum |b_k| |rho|^k
  <= |b_0| + |b_1 rho| + rho^2 min(sqrt((K - 1) E[g^2]), sum_{k >= 2} |b_k|);
* rounding: 4 eps (|a_0 b_0| + |rho| sqrt(M1 M2)) + eps |P|, M_i = sum_{k >= 1} (k + 1) a_k^2
  (Horner's error, first order, and the error of rho itself);

and must stay below _STOL max(|P|, _SFLOOR sqrt(E[f(u)^2] E[g(v)^2])) (P the truncated
sum), the measure of the tests: 1e-14 of the entry, or, for an entry below a fifth of the
scale sqrt(E[f(u)^2] E[g(v)^2]), 2e-15 of that scale (about 9 eps). The rounding terms
alone come to several eps of the scale wherever the mean a_0 b_0 or the first terms are
of its order, and the adaptive rule sums the same products f(u) g(v) in float64, so no
evaluation does much better there; an entry near a zero of E[f(u) g(v)] (SiLU, GELU's
tanh form at negative correlations) is held to the scale's rounding level, not to a
fraction of itself. Where rho is exactly 1 (D = 0) and S1 = S2, the map is E[f(u)^2]
itself.

The coefficients are integrated by the trapezoid rule in t after the map of the adaptive
rule, z = _R asinh((l/_R) sinh t), at the fixed step _H0 / 2^_MLEV over |z| <= _MZ
(|He_k(z)| exp(-z^2/4) / sqrt(k!) is about 1 at most for every k, Cramer's inequality, so
the integrands there are below 1e-18 of f), with the
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
_KLOW = 24  # degree of the series in rho, for every entry
_KMAX = 256  # largest degree, for the entries the first declines (near |rho| = 1)
_LADDERS = ((32, 48), (64, 96, 128, 192, 256))  # the degrees tried there, by coefficient set
_BATCH = 8192  # entries per batch of the longer series, where gathered
_MZ = 13.0  # coefficient nodes cover |z| <= _MZ
_MLEV = 3  # step of the coefficient rule: _H0 / 2^_MLEV
_MCONV = 1e-6  # the two rules of a variance's coefficients must agree to this (relative)
_STOL = 1e-14  # accuracy asked of the series, relative to the measure above
_SFLOOR = 0.2  # the measure's floor, relative to sqrt(E[f(u)^2] E[g(v)^2]) (see above)
_EPS = 2.220446049250313e-16
_MEMO = []  # recent columns' coefficients: (key, variances, expansion) (see _expansion)
# largest array of variances kept: an entry holds about 2 (kmax + 1) numbers per variance,
# at most 257 / N of the two N x N outputs, a share that only falls as N grows; without it,
# every block of rows takes the columns' coefficients again (the layer path of a described
# network, N = 6000: 172 s of CPU instead of 34; docs/performance.md, session 15)
_MEMO_N = 1 << 17
_MEMO_SIZE = 24  # arrays kept


def _hermite(z, kmax):
    """He_k(z) / sqrt(k!) for k = 0..kmax at the nodes z: an array (kmax + 1, z.size)."""
    H = numpy.empty((kmax + 1, z.size))
    H[0] = 1.0
    H[1] = z
    for k in range(1, kmax):
        H[k + 1] = (z * H[k] - numpy.sqrt(k) * H[k - 1]) / numpy.sqrt(k + 1.0)
    return H


def _mnodes(l, h=_H0 / (1 << _MLEV), Z=_MZ):
    """Nodes z, weights (density and step included), even-node mask of the coefficient rule.

    The rule on the scale l (see the module's docstring), at the step h over |z| <= Z.
    """
    kap = 0.0 if l >= _R else l / _R
    if kap == 0.0:
        hi = int(numpy.ceil(Z / (l * h)))
    else:
        hi = int(numpy.ceil(numpy.arcsinh(numpy.sinh(Z / _R) / kap) / h))
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


def _coefficients(S, f, kmax):
    """The Hermite coefficients of f(sqrt(S) z) (f vectorised) for the variances S > 0 (1-D).

    Returns (a, E, err, ok, R): a (S.size, kmax + 1), E = E[f^2], err the estimated error of
    each coefficient, ok where the coefficient rule converged, R a bound on the mass of the
    terms above kmax: the integral of the residual (f - its truncated series)^2, which
    nothing cancels in, plus its rounding and the difference of the two rules.
    """
    n = S.size
    a = numpy.zeros((n, kmax + 1))
    E = numpy.zeros(n)
    err = numpy.zeros(n)
    R = numpy.zeros(n)
    ok = numpy.zeros(n, dtype=bool)
    r = numpy.sqrt(S)
    # the scale 1/sqrt(S), rounded down to _R 2^(-g/2): g >= 0 numbers a group of nodes
    g = numpy.maximum(numpy.ceil(2.0 * numpy.log2(_R * r)), 0.0)
    for gv in numpy.unique(g):
        i = numpy.nonzero(g == gv)[0]
        z, w, even = _mnodes(_R * 2.0 ** (-0.5 * gv))
        H = _hermite(z, kmax)
        F = f(r[i, None] * z)
        WF = F * w
        ai = WF @ H.T
        ac = 2.0 * (WF[:, even] @ H[:, even].T)
        E[i] = (WF * F).sum(1)
        sc = numpy.sqrt(E[i])
        diff = numpy.abs(ai - ac).max(1)
        # the finer rule's error: about diff^2 / scale; plus the rounding of its sums
        # (sum |w F H_k| <= sqrt(E sum w H_k^2), Cauchy-Schwarz)
        HH = H * H
        hw = numpy.sqrt(HH @ w)
        err[i] = diff * diff / numpy.where(sc > 0.0, sc, 1.0) + 2.0 * _EPS * sc * hw.max()
        ok[i] = numpy.isfinite(ai).all(1) & (diff <= _MCONV * sc)
        a[i] = ai
        # the residual at the nodes, its rounding (Higham's bound for the dot products, with
        # sum |a_k H_k| <= |a| |H|, Cauchy-Schwarz)
        res = F - ai @ H
        hn = numpy.sqrt(HH.sum(0))
        dl = (kmax + 2) * _EPS * (numpy.abs(F) + numpy.sqrt((ai * ai).sum(1))[:, None] * hn)
        wr = w * res * res
        rf = wr.sum(1)
        rc = 2.0 * wr[:, even].sum(1)
        dl = numpy.sqrt((w * dl * dl).sum(1))
        R[i] = rf + numpy.abs(rf - rc) + dl * (2.0 * numpy.sqrt(rf) + dl)
    return a, E, err, ok, R


def _tails(a, E, err, R):
    """What the bound needs per variance: sqrt(T_K) for every K, sqrt(M), sqrt(E), L, a check.

    T_K bounds the mass of the omitted terms of the series of degree K: R (the mass above
    kmax, from the residual) plus the sum of a_k^2 over K < k <= kmax (positive terms)
    and their errors; an array (a.shape[0], kmax + 1), kmax = a.shape[1] - 1. M = sum_{k >= 1} (k + 1) a_k^2,
    L = sum_{k >= 2} |a_k|; the check is false where the coefficients hold more than E[f^2] (Bessel's inequality).
    """
    sq = a * a + 2.0 * numpy.abs(a) * err[:, None] + (err * err)[:, None]
    up = numpy.cumsum(sq[:, ::-1], axis=1)[:, ::-1]  # up[:, k] = sum over j >= k
    T = numpy.zeros(a.shape)
    kmax = a.shape[1] - 1
    T[:, :-1] = up[:, 1:] * (1.0 + 4.0 * (kmax + 2) * _EPS)
    T = T + R[:, None]
    k1 = numpy.arange(2.0, kmax + 2.0)
    M = ((a[:, 1:] * a[:, 1:]) * k1).sum(1)
    slack = 4.0 * (kmax + 2) * _EPS * E + 2.0 * numpy.sqrt((kmax + 1) * E) * err
    L = numpy.abs(a[:, 2:]).sum(1)
    return numpy.sqrt(T), numpy.sqrt(M), numpy.sqrt(E), L, E - (a * a).sum(1) >= -slack


def _expansion(s, f, key, kmax):
    """What the series of degree up to kmax needs of the variances s (any shape).

    By _coefficients and _tails: (a, err, ok, sqrt(T), sqrt(M), sqrt(E), E, L), a and
    sqrt(T) of shape (kmax + 1,) + s.shape.

    Kept in _MEMO (unless key is None) for arrays of up to _MEMO_N variances, under key
    (the function) and kmax: the columns' variances of a layer are the same for every block of
    rows, or (K(X, X), whose blocks start at their first row) the end of the first
    block's, which a query then reads as a view.
    """
    s = numpy.ascontiguousarray(s, dtype=float)
    flat = s.ravel()
    n = flat.size
    if key is not None:
        for k, vals, hit in _MEMO:
            if k == (key, kmax) and vals.size >= n and numpy.array_equal(vals[vals.size - n:], flat):
                return tuple(x[..., x.shape[-1] - n:].reshape(x.shape[:-1] + s.shape)
                             for x in hit)
    v, inv = numpy.unique(flat, return_inverse=True)
    pos = numpy.isfinite(v) & (v > 0.0)
    a = numpy.zeros((v.size, kmax + 1))
    E = numpy.zeros(v.size)
    err = numpy.zeros(v.size)
    R = numpy.zeros(v.size)
    okv = numpy.zeros(v.size, dtype=bool)
    if pos.any():
        a[pos], E[pos], err[pos], okv[pos], R[pos] = _coefficients(v[pos], f, kmax)
    sT, sM, sE, L, okt = _tails(a, E, err, R)
    okv &= okt
    inv = inv.ravel()
    hit = (numpy.ascontiguousarray(a[inv].T), err[inv], okv[inv], numpy.ascontiguousarray(sT[inv].T)) + tuple(
        x[inv] for x in (sM, sE, E, L))
    if key is not None and n <= _MEMO_N:
        del _MEMO[:max(len(_MEMO) - _MEMO_SIZE + 1, 0)]
        _MEMO.append(((key, kmax), flat.copy(), hit))
    return tuple(x.reshape(x.shape[:-1] + s.shape) for x in hit)


def _horner(a1, a2, rho, K):
    """sum_{k <= K} a1_k a2_k rho^k."""
    P = numpy.array(numpy.broadcast_to(a1[K] * a2[K], rho.shape))
    t = numpy.empty_like(P)
    for k in range(K - 1, -1, -1):
        numpy.multiply(P, rho, out=P)
        numpy.multiply(a1[k], a2[k], out=t)
        P += t
    return P


def _bound(P, K, ar, x1, x2):
    """The error bound of the series of degree K at |rho| = ar (see the module's docstring).

    x1, x2: (a, err, ok, sqrt(T), sqrt(M), sqrt(E), E, L) of the two variances, as
    _expansion's.
    """
    a1, e1, _, t1, m1, q1, _, l1 = x1
    a2, e2, _, t2, m2, q2, _, l2 = x2
    bound = (t1[K] * t2[K]) * ar ** (K + 1)
    r2 = ar * ar
    c = numpy.sqrt(K - 1.0)
    bound = bound + e1 * (numpy.abs(a2[0]) + numpy.abs(a2[1]) * ar + numpy.minimum(q2 * c, l2) * r2)
    bound = bound + e2 * (numpy.abs(a1[0]) + numpy.abs(a1[1]) * ar + numpy.minimum(q1 * c, l1) * r2)
    bound = bound + e1 * e2 * (K + 1)
    return bound + 4.0 * _EPS * (numpy.abs(a1[0] * a2[0]) + ar * (m1 * m2)) + _EPS * numpy.abs(P)


def _take(x, idx, lead=False):
    """x at the entries idx (a tuple of index arrays), x broadcast to the entries' shape.

    With lead, x has a leading axis (a, sqrt(T)) that the result keeps.
    """
    xs = x.shape[1:] if lead else x.shape
    xs = (1,) * (len(idx) - len(xs)) + xs
    x = x.reshape(((x.shape[0],) if lead else ()) + xs)
    pick = tuple(i if n > 1 else numpy.zeros_like(i) for i, n in zip(idx, xs, strict=True))
    return x[(slice(None),) + pick] if lead else x[pick]


def _degree(excess, fit, ladder):
    """The least degree of ladder whose truncation fits at all entries ``fit`` (bisection).

    excess(K): log(truncation bound / its allowance) per entry; ladder[-1] fits them all.
    """
    lo, hi = 0, len(ladder) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if (excess(ladder[mid])[fit] <= 0.0).all():
            hi = mid
        else:
            lo = mid + 1
    return ladder[lo]


def _longer(P, ok, bound, rho, x1, x2, ladder):
    """The entries the series of degree _KLOW declines, by a longer one where its bound holds.

    Near |rho| = 1 the terms above _KLOW still matter (the coefficients of tanh at variance
    1 fall like exp(-c sqrt(k))); the degree, one of ladder, is the least whose truncation
    bound holds for all these entries, with |E| >= |P| - bound (those that no degree serves
    aside), on the whole block where they are many, else on them alone, in batches. P, ok,
    bound and rho have the entries' shape (P and bound: those of the series before); returns
    them updated (P and bound of the longer series where it ran, ok where it holds).
    """
    cand = ~ok & numpy.broadcast_to(x1[2] & x2[2], ok.shape)
    idx = numpy.nonzero(cand)
    if idx[0].size == 0:
        return P, ok, bound
    P, ok, bound = (numpy.array(x) for x in (P, ok, bound))
    whole = 4 * idx[0].size >= P.size  # most of the block: no gathering
    lad = numpy.array(ladder)
    if whole:
        h1, h2, rb, Pk, bk, fit = x1, x2, rho, P, bound, cand
        lt1, lt2 = (numpy.log(x[3][lad]) for x in (x1, x2))
    else:
        h1, h2 = ([None if i in (0, 3) else _take(x, idx) for i, x in enumerate(xs)] for xs in (x1, x2))
        rb, Pk, bk, fit = rho[idx], P[idx], bound[idx], numpy.ones(idx[0].size, dtype=bool)
        lt1, lt2 = (numpy.log(_take(x[3][lad], idx, True)) for x in (x1, x2))
    fl = _SFLOOR * (h1[5] * h2[5])
    allow = numpy.log(0.5 * _STOL * numpy.maximum(numpy.abs(Pk) - bk, fl))
    la = numpy.log(numpy.abs(rb))
    pos = {K: j for j, K in enumerate(ladder)}

    def excess(K):
        return lt1[pos[K]] + lt2[pos[K]] + (K + 1) * la - allow

    fit = fit & (excess(ladder[-1]) <= 0.0)
    if not fit.any():
        return P, ok, bound
    K = _degree(excess, fit, ladder)
    if whole:
        Pb = _horner(x1[0], x2[0], rho, K)
        bb = _bound(Pb, K, numpy.abs(rho), x1, x2)
        P = numpy.where(cand, Pb, P)
        bound = numpy.where(cand, bb, bound)
        ok |= cand & (bb <= _STOL * numpy.maximum(numpy.abs(Pb), fl))
        return P, ok, bound
    for start in range(0, rb.size, _BATCH):
        sel = tuple(i[start:start + _BATCH] for i in idx)
        g1, g2 = ([_take(x[:K + 1], sel, True) if i in (0, 3) else h[i][start:start + _BATCH]
                   for i, x in enumerate(xs)] for xs, h in ((x1, h1), (x2, h2)))
        Pb = _horner(g1[0], g2[0], rb[start:start + _BATCH], K)
        bb = _bound(Pb, K, numpy.abs(rb[start:start + _BATCH]), g1, g2)
        P[sel] = Pb
        bound[sel] = bb
        ok[sel] = fit[start:start + _BATCH] & (bb <= _STOL * numpy.maximum(numpy.abs(Pb), fl[start:start + _BATCH]))
    return P, ok, bound


def _pairs(s1, s2, f, key, kmax):
    """_expansion of the columns' variances s2 and the rows' s1 (a view where they are the same)."""
    x2 = _expansion(s2, f, key, kmax)
    nr = s1.size
    if s1.shape == (nr, 1) and s2.ndim == 2 and s2.shape[0] == 1 and nr <= s2.size and numpy.array_equal(
            s1.ravel(), s2.ravel()[:nr]):  # a block of K(X, X): its rows are its first columns
        return tuple(x[..., 0, :nr, None] for x in x2), x2
    if s1.shape == s2.shape and numpy.array_equal(s1, s2):  # (a diagonal: u and v alike)
        return x2, x2
    return _expansion(s1, f, None, kmax), x2  # (the rows change with the block)


def _series(S11, S22, S12, D, R11, R22, f, key):
    """E[f(u) f(v)] (f vectorised: sigma or sigma', named by key) by the Mehler series.

    For broadcast arrays S11 (rows, 1) and S22 (1, columns), or any shapes: (P, ok), P
    valid where ok (R11 > 0, R22 > 0 and the bound met). Degree _KLOW first, then the
    ladders of _LADDERS for the entries it declines: up to 48 from the same coefficients,
    then, where the entries still declined are at least a quarter of the block (nearly
    parallel inputs), up to _KMAX from coefficients of that degree (their cost, per
    variance, pays only for many entries).
    """
    s1 = numpy.asarray(S11, dtype=float)
    s2 = numpy.asarray(S22, dtype=float)
    x1, x2 = _pairs(s1, s2, f, key, _LADDERS[0][-1])
    # (the coefficients of a 0-d variance come back with one entry: (K + 1, 1))
    shape = numpy.broadcast_shapes(numpy.broadcast(s1, s2, S12, D).shape, x1[0].shape[1:], x2[0].shape[1:])
    rho = numpy.clip(S12 / (R11 * R22), -1.0, 1.0)
    rho = numpy.broadcast_to(numpy.where(numpy.isfinite(rho), rho, 0.0), shape)
    P = _horner(x1[0], x2[0], rho, _KLOW)
    bound = numpy.broadcast_to(_bound(P, _KLOW, numpy.abs(rho), x1, x2), shape)
    P = numpy.broadcast_to(P, shape)
    ok = numpy.broadcast_to(x1[2] & x2[2] & (bound <= _STOL * numpy.maximum(numpy.abs(P), _SFLOOR * (x1[5] * x2[5]))), shape)
    P, ok, bound = _longer(P, ok, bound, rho, x1, x2, _LADDERS[0])
    # rho = 1 exactly with equal variances (a pair (x, x)): E[f(u)^2] itself, so such
    # entries do not call for the longer series (the diagonal of a layer is all of them)
    same = x1[2] & (s1 == s2) & (D <= 0.0) & (S12 > 0.0)
    rest = ~ok & ~same & numpy.broadcast_to(x1[2] & x2[2], shape)
    if 4 * rest.sum() >= rest.size:  # (else the few entries left take the adaptive rule)
        y1, y2 = _pairs(s1, s2, f, key, _KMAX)
        for _ in range(2):  # (the second with |E| bounded below by the first)
            P, ok, bound = _longer(P, ok, bound, rho, y1, y2, _LADDERS[1])
    P = numpy.where(same, x1[6], P)
    ok = (ok | same) & (R11 > 0.0) & (R22 > 0.0)
    P, ok = (x.reshape(shape) if x.size == 1 else x for x in (numpy.asarray(P), numpy.asarray(ok)))
    return numpy.broadcast_to(P, shape), numpy.broadcast_to(ok, shape)
# endregion series


#: Public name of the rule's nodes (the residual of ``ntksym.dual.residual`` integrates on
#: them too).
nodes = _mnodes

#: Public name of the coefficients and bound terms of the variances (the fused modules'
#: activations without a closed form take them per input: ``ntksym.codegen.arch_quad``).
expansion = _expansion

#: Public name of the series (the NumPy quadrature module calls it as ``_series``, the name
#: the generated modules use).
series = _series
