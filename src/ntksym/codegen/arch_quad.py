"""Activations without a closed form in a fused kernel: the Mehler series per pair.

A smooth activation whose dual maps have no closed form (``tanh``, the sigmoid, softplus,
SiLU, GELU's tanh approximation, ...: :class:`~ntksym.codegen.spec.KernelSpec` of kind
``"quadrature"``) is a step of kind ``"quad"`` in a fused module. Its maps come from
Mehler's series (:mod:`ntksym.codegen.runtime.numpy_mehler`, whose bound and coefficient
rule these regions use unchanged):

    E[f(u) f(v)] = sum_{k <= K} a_k(S11) a_k(S22) rho^k,   rho = S12 / sqrt(S11 S22),

with ``f = sigma`` (the covariance) and ``f = sigma'`` (the NTK's factor). The
coefficients are one-dimensional integrals per input and state: ``_quad_tables``
(region ``quad_tables``, NumPy) takes them once per call, for the rows' inputs and the
columns', up to degree :data:`_QKMAX` together with what the bound needs; the variances
of the next state are ``E[sigma(u)^2]`` from the same rule. Per pair, ``_quad`` (region
``quad_step``, Numba) evaluates the polynomial of degree :data:`_QK` in ``rho`` over a
chunk (one vectorised loop per degree) and the series' error bound (truncation, the
coefficients' errors, rounding: ``numpy_mehler``'s ``_bound``); an entry it does not
certify to ``_STOL`` of the measure of the tests takes the least degree of
:data:`_QLAD` whose truncation bound fits (``numpy_mehler``'s ``_longer``, per entry).
Where no degree certifies it, or a coefficient rule did not converge, the entry is not a
number; the caller computes those entries again by the layer maps (the module is
``GUARDED``), whose adaptive rule serves them (pairs nearly parallel at large variances,
where ``sigma`` is kink-like at the Gaussian's scale; small ``E[sigma sigma]`` against
its terms).

The determinant after such a step is not carried (the series reads ``rho`` alone, and is
smooth at ``rho = 1``); a kinked activation after it is guarded as after any activation
whose map carries none (:mod:`ntksym.codegen.arch_program`). The pair of one input with
itself (``CO``, equal variances) takes ``E[f(u)^2]`` itself. A chunk run without carried
determinants (``plain``) that holds such a pair is run again carrying them, where a
Dropout has cleared the pairs that are no longer one Gaussian twice.

Sources: Mehler (1866); O'Donnell, *Analysis of Boolean Functions* (2014), ch. 11; for
dual activations, Daniely, Frostig & Singer, NeurIPS 2016.
"""

# The regions' functions carry no annotations (copied as they are): mypy infers the types.
# mypy: check-untyped-defs

# The regions are copied into the generated modules byte for byte, so their docstrings and
# names stay as they are there: ruff checks everything else.
# ruff: noqa: D205, D209, D403

import math

import numba
import numpy

from ntksym.codegen.runtime.numpy_mehler import expansion as _expansion

__all__ = ["quad", "quad_tables"]


# region quad_step
_QK = 48  # degree of the series for every entry
_QLAD = (64, 96, 128, 192, 256)  # the degrees tried where it does not certify an entry
_QKMAX = 256  # degree of the coefficients (numpy_mehler's _KMAX)
_QNF = 12  # per variance: sqrt(T_K) at _QK and _QLAD, error, sqrt(M), sqrt(E), E, L, ok
_QSTOL = 1e-14  # accuracy asked of the series, relative to the measure (numpy_mehler's _STOL)
_QFLOOR = 0.2  # the measure's floor, relative to sqrt(E[f(u)^2] E[g(v)^2]) (_SFLOOR)
_QEPS = 2.220446049250313e-16


@numba.njit(cache=True, error_model="numpy", forceinline=True, fastmath={"contract"})
def _qterms(F, C, j, p):
    """What the bound reads of one variance p: (err, sqrt(M), sqrt(E), L, |a_0|, |a_1|)."""
    return F[j, 6, p], F[j, 7, p], F[j, 8, p], F[j, 10, p], abs(C[j, 0, p]), abs(C[j, 1, p])


@numba.njit(cache=True, error_model="numpy", forceinline=True, fastmath={"contract"})
def _qbound(P, K, ar, tt, x1, x2):
    """The error bound of the series of degree K at |rho| = ar (numpy_mehler's _bound; tt:
    sqrt(T1 T2) |rho|^(K + 1); x1, x2: _qterms of the two variances)."""
    e1, m1, q1, l1, a0, a1 = x1
    e2, m2, q2, l2, b0, b1 = x2
    r2 = ar * ar
    cs = math.sqrt(K - 1.0)
    bound = tt + e1 * (b0 + b1 * ar + min(q2 * cs, l2) * r2)
    bound += e2 * (a0 + a1 * ar + min(q1 * cs, l1) * r2) + e1 * e2 * (K + 1.0)
    return bound + 4.0 * _QEPS * (a0 * b0 + ar * (m1 * m2)) + _QEPS * abs(P)


@numba.njit(cache=True, error_model="numpy", forceinline=True, fastmath={"contract"})
def _qhorner(j, C1, i, C2, p, r, K):
    """sum_{k <= K} a_k b_k r^k for row i and column p (one entry; Horner's rule)."""
    P = C1[j, K, i] * C2[j, K, p]
    for kk in range(K - 1, -1, -1):
        P = P * r + C1[j, kk, i] * C2[j, kk, p]
    return P


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"})
def _qlonger(j, C1, F1, i, C2, F2, p, r):
    """An entry the series of degree _QK declines, by the least degree of _QLAD whose
    truncation bound fits, given |E| >= |P| - bound of degree _QK (numpy_mehler's
    _longer); NaN if none."""
    ar = abs(r)
    x1, x2 = _qterms(F1, C1, j, i), _qterms(F2, C2, j, p)
    P = _qhorner(j, C1, i, C2, p, r, _QK)
    bound = _qbound(P, _QK, ar, F1[j, 0, i] * F2[j, 0, p] * ar ** (_QK + 1), x1, x2)
    fl = _QFLOOR * (x1[2] * x2[2])
    allow = 0.5 * _QSTOL * max(abs(P) - bound, fl)
    for n in range(len(_QLAD)):
        K = _QLAD[n]
        tt = F1[j, 1 + n, i] * F2[j, 1 + n, p] * ar ** (K + 1)
        if tt <= allow:
            Q = _qhorner(j, C1, i, C2, p, r, K)
            if _qbound(Q, K, ar, tt, x1, x2) <= _QSTOL * max(abs(Q), fl):
                return Q
            return math.nan
    return math.nan


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"})
def _qseries(P, R, C1, F1, C2, F2, j, i, c0, m, CO, va, VB):
    """P[q] = the series of sigma (j = 0) or sigma' (j = 1) at rho = R[q] for row i and
    column c0 + q, NaN where no degree certifies it; the pair of one input with itself
    (CO, equal variances) E[f(u)^2]. Each loop reads rows of one chunk (1-D views), so
    that LLVM vectorises it."""
    c1 = c0 + m
    c = C1[j, _QK, i]
    B = C2[j, _QK, c0:c1]
    for q in range(m):
        P[q] = c * B[q]
    for kk in range(_QK - 1, -1, -1):
        c = C1[j, kk, i]
        B = C2[j, kk, c0:c1]
        for q in range(m):
            P[q] = P[q] * R[q] + c * B[q]
    x1 = _qterms(F1, C1, j, i)
    t1, E1, ok1 = F1[j, 0, i], F1[j, 9, i], F1[j, 11, i] > 0.0
    t2, e2, m2, q2 = F2[j, 0, c0:c1], F2[j, 6, c0:c1], F2[j, 7, c0:c1], F2[j, 8, c0:c1]
    l2, ok2, b0, b1 = F2[j, 10, c0:c1], F2[j, 11, c0:c1], C2[j, 0, c0:c1], C2[j, 1, c0:c1]
    for q in range(m):
        ar = abs(R[q])
        r16 = ar * ar
        r16 = r16 * r16
        r16 = r16 * r16
        r16 = r16 * r16
        tt = t1 * t2[q] * (r16 * r16 * r16 * ar)  # |rho|^(_QK + 1)
        x2 = (e2[q], m2[q], q2[q], l2[q], abs(b0[q]), abs(b1[q]))
        bound = _qbound(P[q], _QK, ar, tt, x1, x2)
        good = ok1 and ok2[q] > 0.0 and bound <= _QSTOL * max(abs(P[q]), _QFLOOR * (x1[2] * q2[q]))
        same = CO[q] and VB[q] == va and ok1 and R[q] == R[q]
        P[q] = E1 if same else (P[q] if good else math.nan)
    for q in range(m):  # the declined entries (NaN also where rho or a rule is not)
        if math.isnan(P[q]) and ok1 and ok2[q] > 0.0 and not math.isnan(R[q]):
            P[q] = _qlonger(j, C1, F1, i, C2, F2, c0 + q, R[q])


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"})
def _quad(S, D, T, a, k, m, C1, F1, C2, F2, i, c0, ra, va, RB, VB, CO, ntk, zero, plain):
    """An activation by the Mehler series: state a -> k for row i, columns c0..c0+m-1.

    C1, F1 (C2, F2): the rows' (columns') coefficients (2, _QKMAX + 1, n) and bound terms
    (2, _QNF, n), index 0 for sigma and 1 for sigma'. The row k of D (no determinant is
    carried after this step) holds rho meanwhile. Every entry takes the series of degree
    _QK (one vectorised loop per degree), those it does not certify a longer one
    (_qlonger), and what none certifies is NaN. Returns False (nothing computed) for a
    plain chunk holding a pair of one input twice (see the module)."""
    if plain:
        for q in range(m):
            if CO[q]:
                return False
    Sa, R, Sk, Tk, Ta = S[a], D[k], S[k], T[k], T[a]
    for q in range(m):
        d = ra * RB[q]
        r = Sa[q] / d if d > 0.0 else 0.0 * Sa[q]  # (a NaN stays one)
        R[q] = math.copysign(1.0, r) if abs(r) > 1.0 else r
    _qseries(Sk, R, C1, F1, C2, F2, 0, i, c0, m, CO, va, VB)
    if ntk and not zero:
        _qseries(Tk, R, C1, F1, C2, F2, 1, i, c0, m, CO, va, VB)
        for q in range(m):
            Tk[q] = Ta[q] * Tk[q]
    else:
        for q in range(m):
            Tk[q] = 0.0
    return True
    # endregion quad_step


# region quad_tables
def _quad_tables(s, fns, ntk):
    """The Mehler tables of sigma and (with ntk) sigma' (fns, vectorised) at the variances s
    of one state: (E[sigma^2], the variances of the next state; C (2, _QKMAX + 1, n); F
    (2, _QNF, n)), as _quad reads them. A zero variance (the zero input without a bias) has the
    exact series f(0)."""
    C = numpy.zeros((2, _QKMAX + 1, s.size))
    F = numpy.zeros((2, _QNF, s.size))
    zero = s == 0.0
    for j in range(2 if ntk else 1):
        f = fns[j]
        a, err, ok, sT, sM, sE, E, L = _expansion(s, f, None, _QKMAX)
        C[j] = a
        F[j, :6] = sT[(_QK,) + _QLAD, :]
        F[j, 6:] = (err, sM, sE, E, L, ok)
        if zero.any():
            f0 = float(numpy.asarray(f(numpy.zeros(1)), dtype=float).ravel()[0])
            C[j][:, zero] = 0.0
            C[j, 0, zero] = f0
            F[j][:, zero] = 0.0
            F[j, 8, zero] = abs(f0)
            F[j, 9, zero] = f0 * f0
            F[j, 11, zero] = 1.0
    return F[0, 9].copy(), C, F
    # endregion quad_tables


#: Public names of the regions' functions (``arch_runtime`` runs them on its own).
quad = _quad
quad_tables = _quad_tables
