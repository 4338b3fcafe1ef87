"""Vectorised adaptive Gaussian quadrature of the generated NumPy kernels.

The rule of :mod:`ntksym.codegen.runtime.numba_quadrature`, with every integral
advancing one level at a time over a common index range (nodes outside an
integral's own range masked). Included by ``kernel_numpy.py.jinja`` when a layer
map has no closed form: ``core``, one variant of ``_outer`` (``_outer_reflect`` for
an activation with a reflection ``sigma(-w) = _RS sigma(w) + _RQ0 + _RQ1 w``,
``_outer_plain`` for any), and ``maps`` (``_pair`` and ``_diag``).

On its own this module integrates the stand-in activation ``erf(u) + 1``, whose
expectations have closed forms and whose reflection has a constant term
(``sigma(-w) = -sigma(w) + 2``); its ``_outer`` is ``_outer_reflect``.
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

import importlib.util
import math

import numpy

from ntksym.codegen.runtime.quadrature_rule import RULE

# Stand-ins for what the generated module defines: the rule's parameters, and a
# vectorised activation with its derivative and reflection.
_Z, _R, _H0, _TOL, _LEVELS, _TABLE, _FLOOR, _INV_SQRT_2PI = RULE
_RS, _RQ0, _RQ1 = (-1.0, 2.0, 0.0)
_erf = numpy.vectorize(math.erf, otypes=[float])


def _act(u):
    return _erf(u) + 1.0


def _dact(u):
    return 1.1283791670955126 * numpy.exp(-u * u)


# region core
# The rule of the Numba module (see there), vectorised: every integral advances one level
# at a time, over a common index range with the nodes outside its own range masked.
_CHUNK = 256  # pairs per batch of outer rules


def _offsets(t, l, kap):
    """Offsets z - z0 of the nodes at t and their weights dz/dt (the Gaussian not included)."""
    uni = kap == 0.0
    et = numpy.exp(numpy.where(uni, 0.0, t))
    ei = 1.0 / et
    q = kap * (0.5 * (et - ei))
    return (numpy.where(uni, l * t, _R * numpy.arcsinh(q)),
            numpy.where(uni, l, l * (0.5 * (et + ei)) / numpy.sqrt(1.0 + q * q)))


def _node(t, z0, l, kap):
    """Nodes z and weights dz/dt exp(-z^2/2) at t (kap = 0: z = z0 + l t; else the map)."""
    dz, jac = _offsets(t, l, kap)
    z = z0 + dz
    return z, jac * numpy.exp(-0.5 * z * z)


def _rule(l):
    """kap of the rule on the scale l: 0 (steps _R h) when l is the widest scale _R."""
    return numpy.where(l >= _R, 0.0, l / _R)


def _span(z0, l, kap):
    """Indices of the first and last node at step _H0, covering -_Z <= z <= _Z."""
    uni = kap == 0.0
    k = numpy.where(uni, 1.0, kap)
    lo = numpy.where(uni, (-_Z - z0) / (l * _H0),
                     numpy.arcsinh(numpy.sinh((-_Z - z0) / _R) / k) / _H0)
    hi = numpy.where(uni, (_Z - z0) / (l * _H0),
                     numpy.arcsinh(numpy.sinh((_Z - z0) / _R) / k) / _H0)
    return numpy.floor(lo).astype(numpy.int64), numpy.ceil(hi).astype(numpy.int64)


def _level(lo, hi, level):
    """Indices of the nodes new at a level, over all ranges [lo, hi], and which are in each."""
    k = 1 << level
    a = int(lo.min()) * k
    b = int(hi.max()) * k
    J = numpy.arange(a, b + 1) if level == 0 else numpy.arange(a + 1, b, 2)
    return J, (J >= lo[:, None] * k) & (J <= hi[:, None] * k)


def _expect(m, c, grp, ngrp):
    """E[sigma(m + c z)] and E[sigma'(m + c z)], z ~ N(0, 1), for arrays m, c > 0.

    grp numbers the pair of each integral (c is the same for all integrals of a pair);
    returns also, per pair, the largest level-0 integrals of |sigma| and |sigma'| (the
    rounding floors of the tests).
    """
    cg = numpy.zeros(ngrp)
    cg[grp] = c
    lg = numpy.minimum(_R, 1.0 / numpy.where(cg > 0.0, cg, 1.0))
    kg = _rule(lg)
    l = lg[grp]
    kap = kg[grp]
    z0 = numpy.where(kap == 0.0, 0.0, numpy.clip(-m / c, -_Z, _Z))
    lo, hi = _span(z0, l, kap)
    s = numpy.zeros((4, m.shape[0]))
    q = numpy.zeros((2, m.shape[0]))
    fl = numpy.zeros((2, ngrp))
    act = numpy.arange(m.shape[0])
    h = _H0
    for level in range(_LEVELS + 1):
        J, mask = _level(lo[act], hi[act], level)
        used, row = numpy.unique(grp[act], return_inverse=True)
        dz, jac = _offsets(J * h, lg[used, None], kg[used, None])  # once per pair
        z = z0[act, None] + dz[row]
        w = numpy.where(mask, jac[row] * numpy.exp(-0.5 * z * z), 0.0)
        v = m[act, None] + c[act, None] * z
        f = numpy.where(mask, _act(v), 0.0)
        g = numpy.where(mask, _dact(v), 0.0)
        s[:, act] += numpy.stack([(w * f).sum(1), (w * g).sum(1),
                                  (w * numpy.abs(f)).sum(1), (w * numpy.abs(g)).sum(1)])
        p = q[:, act]
        q[:, act] = h * s[:2, act]
        if level == 0:
            numpy.maximum.at(fl[0], grp, h * s[2])
            numpy.maximum.at(fl[1], grp, h * s[3])
        else:
            ok = ((numpy.abs(q[0, act] - p[0]) <= _TOL * h * s[2, act] + _FLOOR * fl[0, grp[act]])
                  & (numpy.abs(q[1, act] - p[1]) <= _TOL * h * s[3, act] + _FLOOR * fl[1, grp[act]]))
            act = act[~ok]
            if act.size == 0:
                break
        h *= 0.5
    return q[0] * _INV_SQRT_2PI, q[1] * _INV_SQRT_2PI, fl
# endregion core


# region outer_reflect rename _outer_reflect=_outer
def _outer_reflect(a, b, c):
    """E[sigma(u) sigma(v)] and E[sigma'(u) sigma'(v)] for u = a z1, v = b z1 + c z2 (a > 0)."""
    l = numpy.minimum(_R, 1.0 / numpy.maximum(a, numpy.abs(b)))
    kap = _rule(l)
    _, hi = _span(0.0, l, kap)
    n = a.shape[0]
    s = numpy.zeros((4, n))
    q = numpy.zeros((2, n))
    fu = numpy.zeros((2, n))
    fl = numpy.zeros((2, n))
    act = numpy.arange(n)
    h = _H0
    for level in range(_LEVELS + 1):
        J, mask = _level(0 * hi[act], hi[act], level)  # z1 = z and -z, z >= 0
        z, w = _node(J * h, 0.0, l[act, None], kap[act, None])
        w = numpy.where(mask, w, 0.0)
        cc = numpy.broadcast_to(c[act, None], z.shape)
        m = -numpy.abs(b[act, None]) * z
        i0 = _act(m)  # c = 0
        i1 = _dact(m)
        flc = numpy.stack([numpy.where(cc == 0.0, numpy.abs(i0), 0.0).max(1, initial=0.0),
                           numpy.where(cc == 0.0, numpy.abs(i1), 0.0).max(1, initial=0.0)])
        fl[:, act] = numpy.maximum(fl[:, act], flc / _INV_SQRT_2PI)
        sel = mask & (cc > 0.0)
        if sel.any():
            rows = numpy.nonzero(sel)[0]
            e0, e1, flg = _expect(m[sel], cc[sel], rows, act.size)
            i0[sel] = e0
            i1[sel] = e1
            fl[:, act] = numpy.maximum(fl[:, act], flg)
        u = a[act, None] * z
        f = numpy.where(mask, _act(u), 0.0)
        g = numpy.where(mask, _dact(u), 0.0)
        both = mask & (J != 0)
        fr = numpy.where(both, _act(-u), 0.0)
        gr = numpy.where(both, _dact(-u), 0.0)
        r0 = _RS * i0 + _RQ0 + _RQ1 * m  # at -m = |b| z
        r1 = -_RS * i1 - _RQ1
        neg = b[act, None] < 0.0  # z1 = z has m = b z < 0
        x0 = f * numpy.where(neg, i0, r0)
        x1 = g * numpy.where(neg, i1, r1)
        y0 = fr * numpy.where(neg, r0, i0)
        y1 = gr * numpy.where(neg, r1, i1)
        s[:, act] += numpy.stack([(w * (x0 + y0)).sum(1), (w * (x1 + y1)).sum(1),
                                  (w * (numpy.abs(x0) + numpy.abs(y0))).sum(1),
                                  (w * (numpy.abs(x1) + numpy.abs(y1))).sum(1)])
        fu[:, act] = numpy.maximum(fu[:, act], numpy.stack(
            [numpy.maximum(numpy.abs(f), numpy.abs(fr)).max(1),
             numpy.maximum(numpy.abs(g), numpy.abs(gr)).max(1)]))
        p = q[:, act]
        q[:, act] = h * s[:2, act]
        if level > 0:
            ok = ((numpy.abs(q[0, act] - p[0]) <= _TOL * h * s[2, act] + _FLOOR * fu[0, act] * fl[0, act])
                  & (numpy.abs(q[1, act] - p[1]) <= _TOL * h * s[3, act] + _FLOOR * fu[1, act] * fl[1, act]))
            act = act[~ok]
            if act.size == 0:
                break
        h *= 0.5
    return q[0] * _INV_SQRT_2PI, q[1] * _INV_SQRT_2PI
# endregion outer_reflect


# region outer_plain rename _outer_plain=_outer
def _outer_plain(a, b, c):
    """E[sigma(u) sigma(v)] and E[sigma'(u) sigma'(v)] for u = a z1, v = b z1 + c z2 (a > 0)."""
    l = numpy.minimum(_R, 1.0 / numpy.maximum(a, numpy.abs(b)))
    kap = _rule(l)
    _, hi = _span(0.0, l, kap)
    n = a.shape[0]
    s = numpy.zeros((4, n))
    q = numpy.zeros((2, n))
    fu = numpy.zeros((2, n))
    fl = numpy.zeros((2, n))
    act = numpy.arange(n)
    h = _H0
    for level in range(_LEVELS + 1):
        J, mask = _level(-hi[act], hi[act], level)
        z, w = _node(J * h, 0.0, l[act, None], kap[act, None])
        w = numpy.where(mask, w, 0.0)
        cc = numpy.broadcast_to(c[act, None], z.shape)
        m = b[act, None] * z
        i0 = _act(m)  # c = 0
        i1 = _dact(m)
        flc = numpy.stack([numpy.where(cc == 0.0, numpy.abs(i0), 0.0).max(1, initial=0.0),
                           numpy.where(cc == 0.0, numpy.abs(i1), 0.0).max(1, initial=0.0)])
        fl[:, act] = numpy.maximum(fl[:, act], flc / _INV_SQRT_2PI)
        sel = mask & (cc > 0.0)
        if sel.any():
            rows = numpy.nonzero(sel)[0]
            e0, e1, flg = _expect(m[sel], cc[sel], rows, act.size)
            i0[sel] = e0
            i1[sel] = e1
            fl[:, act] = numpy.maximum(fl[:, act], flg)
        u = a[act, None] * z
        f = numpy.where(mask, _act(u), 0.0)
        g = numpy.where(mask, _dact(u), 0.0)
        x0 = f * i0
        x1 = g * i1
        s[:, act] += numpy.stack([(w * x0).sum(1), (w * x1).sum(1),
                                  (w * numpy.abs(x0)).sum(1), (w * numpy.abs(x1)).sum(1)])
        fu[:, act] = numpy.maximum(fu[:, act], numpy.stack([numpy.abs(f).max(1),
                                                            numpy.abs(g).max(1)]))
        p = q[:, act]
        q[:, act] = h * s[:2, act]
        if level > 0:
            ok = ((numpy.abs(q[0, act] - p[0]) <= _TOL * h * s[2, act] + _FLOOR * fu[0, act] * fl[0, act])
                  & (numpy.abs(q[1, act] - p[1]) <= _TOL * h * s[3, act] + _FLOOR * fu[1, act] * fl[1, act]))
            act = act[~ok]
            if act.size == 0:
                break
        h *= 0.5
    return q[0] * _INV_SQRT_2PI, q[1] * _INV_SQRT_2PI
# endregion outer_plain


_outer = _outer_reflect  # (the generated module has one of the two, under this name)


# region maps
def _pair(S11, S22, S12, D, N11, N22, W2, B2, R11, R22, Q11, Q22):
    """One layer, vectorised: E[sigma sigma], E[sigma' sigma'] and the next determinant."""
    shape = numpy.broadcast(S11, S22, S12, D, R11, R22).shape
    S11, S12, D, R11, R22 = (numpy.broadcast_to(x, shape).ravel() for x in (S11, S12, D, R11, R22))
    e = numpy.empty(S11.shape)
    ed = numpy.empty(S11.shape)
    with numpy.errstate(all="ignore"):
        pos = numpy.nonzero(R11 > 0.0)[0]
        for start in range(0, pos.size, _CHUNK):
            i = pos[start:start + _CHUNK]
            e[i], ed[i] = _outer(R11[i], S12[i] / R11[i], numpy.sqrt(numpy.maximum(D[i], 0.0) / S11[i]))
        zero = numpy.nonzero(R11 <= 0.0)[0]  # u = 0
        if zero.size:
            c = R22[zero]
            i0 = _act(numpy.zeros(zero.size))
            i1 = _dact(numpy.zeros(zero.size))
            some = c > 0.0
            if some.any():
                e0, e1, _ = _expect(numpy.zeros(int(some.sum())), c[some], numpy.zeros(int(some.sum()), dtype=numpy.int64), 1)
                i0[some] = e0
                i1[some] = e1
            e[zero] = _act(0.0) * i0
            ed[zero] = _dact(0.0) * i1
    e = e.reshape(shape)
    ed = ed.reshape(shape)
    s12n = W2 * e + B2
    return e, ed, N11 * N22 - s12n * s12n


def _diag(S):
    """E[sigma(u)^2] for u ~ N(0, S), vectorised, by the rule of _expect centred at 0."""
    S = numpy.asarray(S, dtype=float)
    a = numpy.sqrt(S).ravel()
    out = numpy.full(a.shape, float(_act(0.0)) ** 2)
    with numpy.errstate(all="ignore"):
        act = numpy.nonzero(a > 0.0)[0]
        l = numpy.minimum(_R, 1.0 / numpy.where(a > 0.0, a, 1.0))
        kap = _rule(l)
        _, hi = _span(0.0, l, kap)
        s = numpy.zeros(a.shape)
        fm = numpy.zeros(a.shape)
        q = numpy.zeros(a.shape)
        h = _H0
        for level in range(_LEVELS + 1):
            if act.size == 0:
                break
            J, mask = _level(-hi[act], hi[act], level)
            z, w = _node(J * h, 0.0, l[act, None], kap[act, None])
            f = numpy.where(mask, _act(a[act, None] * z), 0.0) ** 2
            s[act] += (numpy.where(mask, w, 0.0) * f).sum(1)
            fm[act] = numpy.maximum(fm[act], f.max(1))
            p = q[act]
            q[act] = h * s[act]
            if level > 0:
                act = act[numpy.abs(q[act] - p) > _TOL * q[act] + _FLOOR * fm[act]]
            h *= 0.5
        out[a > 0.0] = q[a > 0.0] * _INV_SQRT_2PI
    return out.reshape(S.shape)
# endregion maps


def bound(act, dact):
    """A private copy of this module that integrates ``act`` (and ``dact``, its derivative).

    Both are vectorised NumPy functions of one array. The copy's ``_outer`` is the plain
    variant (no reflection is assumed). :mod:`ntksym.dual.quadrature` integrates the
    activations without a closed form by this rule, the one of the generated modules.
    """
    spec = importlib.util.find_spec(__name__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module._act, module._dact, module._outer = act, dact, module._outer_plain
    return module


def pair_maps(S11, S12, S22, D):
    """E[sigma(u) sigma(v)] and E[sigma'(u) sigma'(v)] for (u, v) ~ N(0, [[S11, S12], [S12, S22]]).

    D is S11 S22 - S12^2 (formed accurately by the caller); arrays broadcast.
    """
    S11, S12, S22, D = (numpy.asarray(x, dtype=float) for x in (S11, S12, S22, D))
    with numpy.errstate(all="ignore"):
        e, ed, _ = _pair(S11, S22, S12, D, 0.0, 0.0, 0.0, 0.0, numpy.sqrt(S11), numpy.sqrt(S22), 0.0, 0.0)
    return e, ed
