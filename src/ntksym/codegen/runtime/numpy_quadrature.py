"""Vectorised adaptive Gaussian quadrature of the generated NumPy kernels.

The rule of :mod:`ntksym.codegen.runtime.numba_quadrature`, with every integral
advancing one level at a time over a common index range (nodes outside an
integral's own range masked). Included by ``kernel_numpy.py.jinja`` when a layer
map has no closed form: ``core``, one variant of ``_outer`` (``_outer_reflect`` for
an activation with a reflection ``sigma(-w) = _RS sigma(w) + _RQ0 + _RQ1 w``,
``_outer_plain`` for any), and ``maps`` (``_pair`` and ``_diag``).

Each rule integrates one function, sigma or sigma' (argument ``d`` = 0 or 1), in a pass of
its own with its own convergence test: ``_pair(..., ntk=False)`` (the NNGP alone) never
evaluates sigma', and E[sigma sigma] is the same, bit for bit, with or without the NTK.

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

import numpy

from ntksym.codegen.runtime.numpy_erf import erf as _erf
from ntksym.codegen.runtime.numpy_mehler import series as _series
from ntksym.codegen.runtime.quadrature_rule import RULE

# Stand-ins for what the generated module defines: the rule's parameters, and a
# vectorised activation with its derivative and reflection.
_Z, _R, _H0, _TOL, _LEVELS, _TABLE, _FLOOR, _INV_SQRT_2PI = RULE
_RS, _RQ0, _RQ1 = (-1.0, 2.0, 0.0)


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


def _fn(d, v):
    """sigma(v) for d = 0, sigma'(v) for d = 1."""
    return _act(v) if d == 0 else _dact(v)


def _expect(m, c, grp, ngrp, d):
    """E[f(m + c z)], z ~ N(0, 1), for arrays m, c > 0, f = sigma (d = 0) or sigma' (d = 1).

    grp numbers the pair of each integral (c is the same for all integrals of a pair);
    returns also, per pair, the largest level-0 integral of |f| (the rounding floor of
    the tests).
    """
    cg = numpy.zeros(ngrp)
    cg[grp] = c
    lg = numpy.minimum(_R, 1.0 / numpy.where(cg > 0.0, cg, 1.0))
    kg = _rule(lg)
    l = lg[grp]
    kap = kg[grp]
    z0 = numpy.where(kap == 0.0, 0.0, numpy.clip(-m / c, -_Z, _Z))
    lo, hi = _span(z0, l, kap)
    s = numpy.zeros((2, m.shape[0]))
    q = numpy.zeros(m.shape[0])
    fl = numpy.zeros(ngrp)
    act = numpy.arange(m.shape[0])
    h = _H0
    for level in range(_LEVELS + 1):
        J, mask = _level(lo[act], hi[act], level)
        used, row = numpy.unique(grp[act], return_inverse=True)
        dz, jac = _offsets(J * h, lg[used, None], kg[used, None])  # once per pair
        z = z0[act, None] + dz[row]
        w = numpy.where(mask, jac[row] * numpy.exp(-0.5 * z * z), 0.0)
        f = numpy.where(mask, _fn(d, m[act, None] + c[act, None] * z), 0.0)
        s[:, act] += numpy.stack([(w * f).sum(1), (w * numpy.abs(f)).sum(1)])
        p = q[act]
        q[act] = h * s[0, act]
        if level == 0:
            numpy.maximum.at(fl, grp, h * s[1])
        else:
            act = act[numpy.abs(q[act] - p) > _TOL * h * s[1, act] + _FLOOR * fl[grp[act]]]
            if act.size == 0:
                break
        h *= 0.5
    return q * _INV_SQRT_2PI, fl
# endregion core


# region outer_reflect rename _outer_reflect=_outer
def _outer_reflect(a, b, c, d):
    """E[f(u) f(v)] for u = a z1, v = b z1 + c z2 (a > 0), f = sigma (d = 0) or sigma' (d = 1)."""
    l = numpy.minimum(_R, 1.0 / numpy.maximum(a, numpy.abs(b)))
    kap = _rule(l)
    _, hi = _span(0.0, l, kap)
    # the reflection of f: f(-w) = rs f(w) + r0 + r1 w
    rs, r0, r1 = (_RS, _RQ0, _RQ1) if d == 0 else (-_RS, -_RQ1, 0.0)
    n = a.shape[0]
    s = numpy.zeros((2, n))
    q = numpy.zeros(n)
    fu = numpy.zeros(n)
    fl = numpy.zeros(n)
    act = numpy.arange(n)
    h = _H0
    for level in range(_LEVELS + 1):
        J, mask = _level(0 * hi[act], hi[act], level)  # z1 = z and -z, z >= 0
        z, w = _node(J * h, 0.0, l[act, None], kap[act, None])
        w = numpy.where(mask, w, 0.0)
        cc = numpy.broadcast_to(c[act, None], z.shape)
        m = -numpy.abs(b[act, None]) * z
        i0 = _fn(d, m)  # c = 0
        flc = numpy.where(cc == 0.0, numpy.abs(i0), 0.0).max(1, initial=0.0)
        fl[act] = numpy.maximum(fl[act], flc / _INV_SQRT_2PI)
        sel = mask & (cc > 0.0)
        if sel.any():
            rows = numpy.nonzero(sel)[0]
            i0[sel], flg = _expect(m[sel], cc[sel], rows, act.size, d)
            fl[act] = numpy.maximum(fl[act], flg)
        u = a[act, None] * z
        f = numpy.where(mask, _fn(d, u), 0.0)
        fr = numpy.where(mask & (J != 0), _fn(d, -u), 0.0)
        ir = rs * i0 + r0 + r1 * m  # at -m = |b| z
        neg = b[act, None] < 0.0  # z1 = z has m = b z < 0
        x = f * numpy.where(neg, i0, ir)
        y = fr * numpy.where(neg, ir, i0)
        s[:, act] += numpy.stack([(w * (x + y)).sum(1),
                                  (w * (numpy.abs(x) + numpy.abs(y))).sum(1)])
        fu[act] = numpy.maximum(fu[act], numpy.maximum(numpy.abs(f), numpy.abs(fr)).max(1))
        p = q[act]
        q[act] = h * s[0, act]
        if level > 0:
            act = act[numpy.abs(q[act] - p) > _TOL * h * s[1, act] + _FLOOR * fu[act] * fl[act]]
            if act.size == 0:
                break
        h *= 0.5
    return q * _INV_SQRT_2PI
# endregion outer_reflect


# region outer_plain rename _outer_plain=_outer
def _outer_plain(a, b, c, d):
    """E[f(u) f(v)] for u = a z1, v = b z1 + c z2 (a > 0), f = sigma (d = 0) or sigma' (d = 1)."""
    l = numpy.minimum(_R, 1.0 / numpy.maximum(a, numpy.abs(b)))
    kap = _rule(l)
    _, hi = _span(0.0, l, kap)
    n = a.shape[0]
    s = numpy.zeros((2, n))
    q = numpy.zeros(n)
    fu = numpy.zeros(n)
    fl = numpy.zeros(n)
    act = numpy.arange(n)
    h = _H0
    for level in range(_LEVELS + 1):
        J, mask = _level(-hi[act], hi[act], level)
        z, w = _node(J * h, 0.0, l[act, None], kap[act, None])
        w = numpy.where(mask, w, 0.0)
        cc = numpy.broadcast_to(c[act, None], z.shape)
        m = b[act, None] * z
        i0 = _fn(d, m)  # c = 0
        flc = numpy.where(cc == 0.0, numpy.abs(i0), 0.0).max(1, initial=0.0)
        fl[act] = numpy.maximum(fl[act], flc / _INV_SQRT_2PI)
        sel = mask & (cc > 0.0)
        if sel.any():
            rows = numpy.nonzero(sel)[0]
            i0[sel], flg = _expect(m[sel], cc[sel], rows, act.size, d)
            fl[act] = numpy.maximum(fl[act], flg)
        f = numpy.where(mask, _fn(d, a[act, None] * z), 0.0)
        x = f * i0
        s[:, act] += numpy.stack([(w * x).sum(1), (w * numpy.abs(x)).sum(1)])
        fu[act] = numpy.maximum(fu[act], numpy.abs(f).max(1))
        p = q[act]
        q[act] = h * s[0, act]
        if level > 0:
            act = act[numpy.abs(q[act] - p) > _TOL * h * s[1, act] + _FLOOR * fu[act] * fl[act]]
            if act.size == 0:
                break
        h *= 0.5
    return q * _INV_SQRT_2PI
# endregion outer_plain


_outer = _outer_reflect  # (the generated module has one of the two, under this name)


# region maps
def _pair(S11, S22, S12, D, N11, N22, W2, B2, R11, R22, Q11, Q22, ntk=True):
    """One layer, vectorised: E[sigma sigma], E[sigma' sigma'] (None unless ntk), next determinant.

    Each function has passes of its own, so E[sigma sigma] is the same with or without ntk.
    """
    shape = numpy.broadcast(S11, S22, S12, D, R11, R22).shape
    out = numpy.empty((2 if ntk else 1, int(numpy.prod(shape))))
    done = []
    with numpy.errstate(all="ignore"):
        for d in range(out.shape[0]):  # the Mehler series where its bound holds
            P, ok = _series(S11, S22, S12, D, R11, R22, lambda v, d=d: _fn(d, v), (d, _act, _dact))
            out[d] = P.ravel()
            done.append(ok.ravel())
    S11, S12, D, R11, R22 = (numpy.broadcast_to(x, shape).ravel() for x in (S11, S12, D, R11, R22))
    with numpy.errstate(all="ignore"):
        pos = numpy.nonzero(R11 > 0.0)[0]
        zero = numpy.nonzero(R11 <= 0.0)[0]  # u = 0
        c = R22[zero]
        some = c > 0.0
        grp = numpy.zeros(int(some.sum()), dtype=numpy.int64)
        for d in range(out.shape[0]):
            rest = pos[~done[d][pos]]  # the adaptive rule elsewhere
            for start in range(0, rest.size, _CHUNK):
                i = rest[start:start + _CHUNK]
                out[d, i] = _outer(R11[i], S12[i] / R11[i], numpy.sqrt(numpy.maximum(D[i], 0.0) / S11[i]), d)
            if zero.size:
                i0 = _fn(d, numpy.zeros(zero.size))
                if some.any():
                    i0[some] = _expect(numpy.zeros(grp.size), c[some], grp, 1, d)[0]
                out[d, zero] = _fn(d, 0.0) * i0
    e = out[0].reshape(shape)
    s12n = W2 * e + B2
    return e, out[1].reshape(shape) if ntk else None, N11 * N22 - s12n * s12n


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
