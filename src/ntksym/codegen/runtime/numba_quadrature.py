"""Adaptive Gaussian quadrature of the generated Numba kernels (no closed form).

Included by ``kernel_numba.py.jinja`` when an activation's layer map has no closed
form: ``core`` (the one-dimensional rule ``_expect`` and its tables), one variant of
the two-dimensional rule ``_outer``, and ``maps`` (the layer map ``_pair`` and the
diagonal map ``_diag``). The rule itself is described with its parameters in
:mod:`ntksym.codegen.runtime.quadrature_rule`.

The integrals of sigma and sigma' share their nodes but each has its own convergence
test, and those of sigma' run only when asked for (``ntk``; ``_pair(..., False)`` for the
NNGP alone never evaluates sigma' in the inner rules): E[sigma sigma] is the same, bit
for bit, with or without the NTK.

Every function says ``fastmath=False``, Numba's default: a function that sets no flag
inherits those of whichever caller compiles it first (``_layer`` contracts multiply-adds),
and the disk cache keeps that; ``get="nngp"`` then differed from the NNGP of both by 7.5e-15.

``_outer_reflect`` uses the reflection ``sigma(-w) = _RS sigma(w) + _RQ0 + _RQ1 w``
of the activation, when it has one, to take the nodes ``z`` and ``-z`` from one
inner rule; ``_outer_plain`` works for any activation. A generated module holds one
of them, named ``_outer``.

On its own (imported, as the tests do), this module integrates the stand-in
activation ``erf``, whose expectations have closed forms, and its ``_outer`` is
``_outer_reflect``.
"""

# The regions' functions carry no annotations (they are copied as they are), so mypy
# checks their bodies with the types it infers.
# mypy: check-untyped-defs

# The regions are copied into the generated modules byte for byte, so their docstrings and
# names stay as they are there: ruff checks everything else.
# ruff: noqa: D403, E741
# ruff format would rewrap some statements of the regions (hanging indents, slices),
# which would change the generated modules; so it leaves this file alone.
# fmt: off

import math

import numba
import numpy

from ntksym.codegen.runtime.quadrature_rule import RULE

# Stand-ins for what the generated module defines: the rule's parameters, and an
# activation with its derivative and reflection (erf(-w) = -erf(w)).
_Z, _R, _H0, _TOL, _LEVELS, _TABLE, _FLOOR, _INV_SQRT_2PI = RULE
_RS, _RQ0, _RQ1 = (-1.0, 0.0, 0.0)


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def _act(u):
    return math.erf(u)


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def _dact(u):
    return 1.1283791670955126 * math.exp(-u * u)


# region core
# (fastmath=False explicit: else a function inherits its first caller's, e.g. _layer's)
@numba.njit(cache=True, error_model="numpy", fastmath=False)
def _max(a, b):
    return a if a >= b else b


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def _add(s, c, x):
    """s + x as (sum, accumulated rounding error c): Knuth's two-sum."""
    t = s + x
    b = t - s
    return t, c + ((s - (t - b)) + (x - b))


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def _acc(s, c, n, w, f):
    """The sums of one rule after the node of weight w and value f: (sum, its error, |sum|)."""
    s, c = _add(s, c, w * f)
    return s, c, n + w * abs(f)


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def _node(t, z0, l, kap):
    """Node z and its weight dz/dt exp(-z^2/2) at t (kap = 0: z = z0 + l t; else the map)."""
    if kap == 0.0:
        z = z0 + l * t
        return z, l * math.exp(-0.5 * z * z)
    et = math.exp(t)
    ei = 1.0 / et
    q = kap * (0.5 * (et - ei))
    z = z0 + _R * math.asinh(q)
    return z, l * (0.5 * (et + ei)) / math.sqrt(1.0 + q * q) * math.exp(-0.5 * z * z)


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def _rule(l):
    """kap of the rule on the scale l: 0 (steps _R h) when l is the widest scale _R."""
    return 0.0 if l >= _R else l / _R


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def _span(z0, l, kap):
    """Indices of the first and last node at step _H0, covering -_Z <= z <= _Z."""
    if kap == 0.0:
        return math.floor((-_Z - z0) / (l * _H0)), math.ceil((_Z - z0) / (l * _H0))
    lo = math.asinh(math.sinh((-_Z - z0) / _R) / kap)
    hi = math.asinh(math.sinh((_Z - z0) / _R) / kap)
    return math.floor(lo / _H0), math.ceil(hi / _H0)


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def _fill(level, l, kap, lo, hi, ZT, WT):
    """Table the nodes of one level (those new at it) relative to the centre.

    The table holds the nodes of levels 0.._TABLE of one pair's inner rules, at position
    (j - lo 2^level) 2^(_TABLE - level) for node j of a level: ZT the offset z - z0 and
    WT the weight without the Gaussian, or with it when kap = 0 (then z0 = 0).
    """
    k = 1 << level
    step = 1 << (_TABLE - level)
    h = _H0 / k
    first = lo * k if level == 0 else lo * k + 1
    for j in range(first, hi * k + 1, 1 if level == 0 else 2):
        p = (j - lo * k) * step
        if kap == 0.0:
            z = l * (j * h)
            ZT[p] = z
            WT[p] = l * math.exp(-0.5 * z * z)
        else:
            et = math.exp(j * h)
            ei = 1.0 / et
            q = kap * (0.5 * (et - ei))
            ZT[p] = _R * math.asinh(q)
            WT[p] = l * (0.5 * (et + ei)) / math.sqrt(1.0 + q * q)


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def _expect(m, c, z0, l, kap, lo, hi, ZT, WT, st, on0, on1):
    """E[sigma(m + c z)] (if on0, else 0) and E[sigma'(m + c z)] (if on1) for z ~ N(0, 1), c > 0.

    The rule is centred at z0 (where m + c z = 0, clipped to the pair's range of centres)
    on the scale l = min(_R, 1/c), with the nodes of levels up to _TABLE from the pair's
    table (lo, hi: its index range at level 0). st holds the table's last level and the
    largest integrals of |sigma| and |sigma'| so far (the rounding floors of the tests).
    Each integral stops at its own test.
    """
    ilo, ihi = _span(z0, l, kap)
    ilo = max(ilo, lo)  # (inside the table already, unless rounding differs)
    ihi = min(ihi, hi)
    s0 = 0.0
    s1 = 0.0
    c0 = 0.0  # rounding errors of the sums s0, s1 (compensated summation)
    c1 = 0.0
    n0 = 0.0
    n1 = 0.0
    q0 = 0.0
    q1 = 0.0
    a0 = 0.0
    a1 = 0.0
    want0 = on0
    want1 = on1
    h = _H0
    for level in range(_LEVELS + 1):
        k = 1 << level
        first, last, stride = (ilo, ihi, 1) if level == 0 else (ilo * k + 1, ihi * k - 1, 2)
        if level <= _TABLE:
            if st[0] < level:
                _fill(level, l, kap, lo, hi, ZT, WT)
                st[0] = level
            step = 1 << (_TABLE - level)
            off = lo * k
            for j in range(first, last + 1, stride):
                p = (j - off) * step
                if kap == 0.0:
                    w = WT[p]
                    v = m + c * ZT[p]
                else:
                    z = z0 + ZT[p]
                    w = WT[p] * math.exp(-0.5 * z * z)
                    v = m + c * z
                f = _act(v)  # (outside the test: sigma' shares its terms, e.g. tanh)
                if on0:
                    s0, c0, n0 = _acc(s0, c0, n0, w, f)
                if on1:
                    s1, c1, n1 = _acc(s1, c1, n1, w, _dact(v))
        else:
            for j in range(first, last + 1, stride):
                z, w = _node(j * h, z0, l, kap)
                v = m + c * z
                f = _act(v)  # (outside the test: sigma' shares its terms, e.g. tanh)
                if on0:
                    s0, c0, n0 = _acc(s0, c0, n0, w, f)
                if on1:
                    s1, c1, n1 = _acc(s1, c1, n1, w, _dact(v))
        if on0:
            p0 = q0
            q0 = h * (s0 + c0)
            a0 = h * n0
            on0 = not (level > 0 and abs(q0 - p0) <= _TOL * a0 + _FLOOR * st[1])
        if on1:
            p1 = q1
            q1 = h * (s1 + c1)
            a1 = h * n1
            on1 = not (level > 0 and abs(q1 - p1) <= _TOL * a1 + _FLOOR * st[2])
        if not (on0 or on1):
            break
        h *= 0.5
    if want0:
        st[1] = _max(st[1], a0)
    if want1:
        st[2] = _max(st[2], a1)
    return q0 * _INV_SQRT_2PI, q1 * _INV_SQRT_2PI


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def _inner(c, zlo, zhi):
    """The inner rules of a pair, centred in [zlo, zhi]: (l, kap, lo, hi, ZT, WT, st)."""
    l = min(_R, 1.0 / c)
    kap = _rule(l)
    if kap == 0.0:
        zlo = 0.0
        zhi = 0.0
    lo, _ = _span(zhi, l, kap)
    _, hi = _span(zlo, l, kap)
    n = ((hi - lo) << _TABLE) + 1
    st = numpy.zeros(3)
    st[0] = -1.0
    return l, kap, lo, hi, numpy.empty(n), numpy.empty(n), st


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def _direct(m, st):
    """sigma(m) and sigma'(m): the inner expectations for c = 0 (st as in _expect)."""
    f = _act(m)
    g = _dact(m)
    st[1] = _max(st[1], abs(f) / _INV_SQRT_2PI)
    st[2] = _max(st[2], abs(g) / _INV_SQRT_2PI)
    return f, g
# endregion core


# region outer_reflect rename _outer_reflect=_outer
@numba.njit(cache=True, error_model="numpy", fastmath=False)
def _outer_reflect(a, b, c, ntk):
    """E[sigma(u) sigma(v)], E[sigma'(u) sigma'(v)] (0 unless ntk); u = a z1, v = b z1 + c z2.

    The rule in z1 is centred at 0, where sigma(u) changes, on the finer of the scales
    of u and v; for each node, _expect integrates over z2 (or sigma(b z1) when c = 0).
    The first nodes are taken from the centre out, so the rounding floors of the inner
    rules start from their largest values. Each integral stops at its own test.
    """
    l = min(_R, 1.0 / max(a, abs(b)))
    kap = _rule(l)
    _, hi = _span(0.0, l, kap)
    zc = 0.0
    if c > 0.0:
        zmax, _ = _node(hi * _H0, 0.0, l, kap)
        zc = min(_Z, abs(b) * zmax / c)
    il, ikap, ilo, ihi, ZT, WT, st = _inner(c if c > 0.0 else 1.0, 0.0, zc)
    fu = 0.0
    gu = 0.0
    s0 = 0.0
    s1 = 0.0
    c0 = 0.0  # rounding errors of the sums s0, s1 (compensated summation)
    c1 = 0.0
    n0 = 0.0
    n1 = 0.0
    q0 = 0.0
    q1 = 0.0
    on0 = True
    on1 = ntk
    h = _H0
    for level in range(_LEVELS + 1):
        k = 1 << level
        for i in range(hi + 1 if level == 0 else (hi * k) // 2):
            j = i if level == 0 else 2 * i + 1  # z1 = z and -z, z >= 0
            z, w = _node(j * h, 0.0, l, kap)
            m = -abs(b) * z
            if c > 0.0:
                z0 = 0.0 if ikap == 0.0 else min(zc, -m / c)
                i0, i1 = _expect(m, c, z0, il, ikap, ilo, ihi, ZT, WT, st, on0, on1)
            else:
                i0, i1 = _direct(m, st)
            u = a * z
            f = _act(u)
            g = _dact(u)
            fu = _max(fu, abs(f))
            gu = _max(gu, abs(g))
            if j == 0:
                x0 = f * i0
                x1 = g * i1
                s0, c0 = _add(s0, c0, w * x0)
                s1, c1 = _add(s1, c1, w * x1)
                n0 += w * abs(x0)
                n1 += w * abs(x1)
                continue
            fr = _act(-u)
            gr = _dact(-u)
            fu = _max(fu, abs(fr))
            gu = _max(gu, abs(gr))
            r0 = _RS * i0 + _RQ0 + _RQ1 * m  # at -m = |b| z
            r1 = -_RS * i1 - _RQ1
            if b < 0.0:  # z1 = z has m = b z < 0
                x0, x1, y0, y1 = f * i0, g * i1, fr * r0, gr * r1
            else:
                x0, x1, y0, y1 = f * r0, g * r1, fr * i0, gr * i1
            s0, c0 = _add(s0, c0, w * (x0 + y0))
            s1, c1 = _add(s1, c1, w * (x1 + y1))
            n0 += w * (abs(x0) + abs(y0))
            n1 += w * (abs(x1) + abs(y1))
        if on0:
            p0 = q0
            q0 = h * (s0 + c0)
            on0 = not (level > 0 and abs(q0 - p0) <= _TOL * h * n0 + _FLOOR * fu * st[1])
        if on1:
            p1 = q1
            q1 = h * (s1 + c1)
            on1 = not (level > 0 and abs(q1 - p1) <= _TOL * h * n1 + _FLOOR * gu * st[2])
        if not (on0 or on1):
            break
        h *= 0.5
    return q0 * _INV_SQRT_2PI, q1 * _INV_SQRT_2PI
# endregion outer_reflect


# region outer_plain rename _outer_plain=_outer
@numba.njit(cache=True, error_model="numpy", fastmath=False)
def _outer_plain(a, b, c, ntk):
    """E[sigma(u) sigma(v)], E[sigma'(u) sigma'(v)] (0 unless ntk); u = a z1, v = b z1 + c z2.

    The rule in z1 is centred at 0, where sigma(u) changes, on the finer of the scales
    of u and v; for each node, _expect integrates over z2 (or sigma(b z1) when c = 0).
    The first nodes are taken from the centre out, so the rounding floors of the inner
    rules start from their largest values. Each integral stops at its own test.
    """
    l = min(_R, 1.0 / max(a, abs(b)))
    kap = _rule(l)
    _, hi = _span(0.0, l, kap)
    zc = 0.0
    if c > 0.0:
        zmax, _ = _node(hi * _H0, 0.0, l, kap)
        zc = min(_Z, abs(b) * zmax / c)
    il, ikap, ilo, ihi, ZT, WT, st = _inner(c if c > 0.0 else 1.0, -zc, zc)
    fu = 0.0
    gu = 0.0
    s0 = 0.0
    s1 = 0.0
    c0 = 0.0  # rounding errors of the sums s0, s1 (compensated summation)
    c1 = 0.0
    n0 = 0.0
    n1 = 0.0
    q0 = 0.0
    q1 = 0.0
    on0 = True
    on1 = ntk
    h = _H0
    for level in range(_LEVELS + 1):
        k = 1 << level
        for i in range(2 * hi + 1 if level == 0 else hi * k):
            if level == 0:  # 0, 1, -1, 2, -2, ...
                j = (i + 1) // 2 if i % 2 else -(i // 2)
            else:  # the new (odd) nodes
                j = 2 * i + 1 - hi * k
            z, w = _node(j * h, 0.0, l, kap)
            m = b * z
            if c > 0.0:
                z0 = 0.0 if ikap == 0.0 else min(zc, max(-zc, -m / c))
                i0, i1 = _expect(m, c, z0, il, ikap, ilo, ihi, ZT, WT, st, on0, on1)
            else:
                i0, i1 = _direct(m, st)
            u = a * z
            f = _act(u)
            g = _dact(u)
            fu = _max(fu, abs(f))
            gu = _max(gu, abs(g))
            x0 = f * i0
            x1 = g * i1
            s0, c0 = _add(s0, c0, w * x0)
            s1, c1 = _add(s1, c1, w * x1)
            n0 += w * abs(x0)
            n1 += w * abs(x1)
        if on0:
            p0 = q0
            q0 = h * (s0 + c0)
            on0 = not (level > 0 and abs(q0 - p0) <= _TOL * h * n0 + _FLOOR * fu * st[1])
        if on1:
            p1 = q1
            q1 = h * (s1 + c1)
            on1 = not (level > 0 and abs(q1 - p1) <= _TOL * h * n1 + _FLOOR * gu * st[2])
        if not (on0 or on1):
            break
        h *= 0.5
    return q0 * _INV_SQRT_2PI, q1 * _INV_SQRT_2PI
# endregion outer_plain


_outer = _outer_reflect  # (the generated module has one of the two, under this name)


# region maps
@numba.njit(cache=True, error_model="numpy", fastmath=False)
def _pair(S11, S22, S12, D, N11, N22, W2, B2, R11, R22, Q11, Q22, ntk=True):
    """One layer for a pair: E[sigma sigma], E[sigma' sigma'] (0 unless ntk), next determinant."""
    if R11 > 0.0:
        e, ed = _outer(R11, S12 / R11, math.sqrt(_max(D, 0.0) / S11), ntk)
    elif R22 > 0.0:  # u = 0
        l, kap, lo, hi, ZT, WT, st = _inner(R22, 0.0, 0.0)
        i0, i1 = _expect(0.0, R22, 0.0, l, kap, lo, hi, ZT, WT, st, True, ntk)
        e = _act(0.0) * i0
        ed = _dact(0.0) * i1
    else:
        e = _act(0.0) * _act(0.0)
        ed = _dact(0.0) * _dact(0.0) if ntk else 0.0
    s12n = W2 * e + B2
    return e, ed, N11 * N22 - s12n * s12n


@numba.njit(cache=True, error_model="numpy", fastmath=False)
def _diag(S):
    """E[sigma(u)^2] for u ~ N(0, S), by the rule of _expect centred at 0."""
    a = math.sqrt(S)
    if a == 0.0:
        f = _act(0.0)
        return f * f
    l = min(_R, 1.0 / a)
    kap = _rule(l)
    _, hi = _span(0.0, l, kap)
    s = 0.0
    fm = 0.0
    q = 0.0
    h = _H0
    for level in range(_LEVELS + 1):
        k = 1 << level
        first, stride = (-hi, 1) if level == 0 else (1 - hi * k, 2)
        for j in range(first, hi * k + 1, stride):
            z, w = _node(j * h, 0.0, l, kap)
            f = _act(a * z)
            s += w * (f * f)
            fm = _max(fm, f * f)
        p = q
        q = h * s
        if level > 0 and abs(q - p) <= _TOL * q + _FLOOR * fm:
            break
        h *= 0.5
    return q * _INV_SQRT_2PI
# endregion maps
