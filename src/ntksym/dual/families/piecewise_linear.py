"""Piecewise-linear activations ``a*max(0,u) + b*min(0,u)``: relu, leaky_relu, abs, identity.

The degree-1 arc-cosine kernel of Cho & Saul (2009), derived here by whitened polar
integration, and its degree-0 derivative map; stable float64 and SymPy layer maps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp

from ntksym.activations import Activation, u
from ntksym.dual.families.jump import homogeneous_general
from ntksym.dual.family import DualMaps, Family, NumericFn, stable_numeric
from ntksym.dual.sources import CHO_SAUL
from ntksym.dual.stable import (
    S12,
    LayerMap,
    U,
    angle_parts,
    arccos_parts,
    det_from_gaps,
    gap_kink,
)


def _piecewise_linear(act: Activation, a: sp.Expr, b: sp.Expr) -> tuple[DualMaps, NumericFn]:
    """a*max(0,u) + b*min(0,u): degree-1 arc-cosine kernel, derivative map of degree 0."""
    nngp = sp.simplify(homogeneous_general(1)(a, b))
    ntk = sp.simplify(homogeneous_general(0)(a, b))
    maps = DualMaps(act, nngp, ntk, "derived: whitened polar integration", CHO_SAUL, True)
    base = str(act.registered_base)
    stable_maps = stable_numeric(FAMILY.stable[base](**dict(act.params)))
    # a zero variance pins u (or v) at 0, where SymPy's H(0) = 1/2 makes sigma'(0) = (a+b)/2
    pinned = ((float(a) + float(b)) / 2) ** 2

    def numeric(s11: Any, s12: Any, s22: Any, det: Any, gap: Any = None) -> tuple[Any, Any]:
        nngp, ntk = stable_maps(s11, s12, s22, det, gap)
        return nngp, np.where((s11 == 0) | (s22 == 0), pinned, ntk)

    return maps, numeric


def _derive(act: Activation) -> tuple[DualMaps, NumericFn]:
    """Dispatch a member to :func:`_piecewise_linear` with its slopes ``(a, b)``."""
    base = act.registered_base
    if base == "leaky_relu":
        return _piecewise_linear(act, sp.Integer(1), act.expr.coeff(sp.Min(0, u)))
    a, b = _SLOPES[str(base)]
    return _piecewise_linear(act, sp.Integer(a), sp.Integer(b))


#: Slopes ``(a, b)`` of ``a*max(0,u) + b*min(0,u)`` for the members without parameters.
_SLOPES: dict[str, tuple[int, int]] = {"relu": (1, 0), "abs": (1, -1), "identity": (1, 1)}


def relu() -> LayerMap:
    """ReLU: the arc-cosine kernel of degree 1 (Cho & Saul 2009).

    ``E[relu(u) relu(v)] = M (sin theta + (pi - theta) cos theta) / (2 pi)`` and
    ``E[H(u) H(v)] = (pi - theta) / (2 pi)`` with ``M = sqrt(S11 S22)``,
    ``theta = atan2(sqrt(D), S12)``; see :func:`arccos_parts` for the stable forms.
    """
    m, r, gap, _anti, theta, phi, kp, _kn = arccos_parts()
    e = kp / (2 * sp.pi)
    ed = phi / (2 * sp.pi)
    # M/2 - E = (pi (M - S12) - (sqrt(D) - theta S12)) / (2 pi); sqrt(D) - theta S12
    # = M (sin theta - theta cos theta) >= 0 is small next to pi (M - S12).
    gaps = [(sp.pi * gap - kink) / (2 * sp.pi) for kink in _kinks(m, r, theta, S12)]
    return _with_gaps(e, ed, sp.Rational(1, 2), gaps, m / 2 + e)


def _kinks(m: sp.Expr, r: sp.Expr, t: sp.Expr, s: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """``r - t s`` by subtraction (for ``det``) and by :func:`gap_kink` (for ``carried``)."""
    return r - t * s, gap_kink(m, r, t, s)


def _with_gaps(
    e: sp.Expr, ed: sp.Expr, c: sp.Expr, gaps: list[sp.Expr], anti_e: sp.Expr
) -> LayerMap:
    """The map with ``det`` from the first gap ``c M - E`` and ``carried`` from the second.

    The first, formed by subtraction, is ``eps / theta`` of itself near parallel: enough
    for the homogeneous kernels, whose next layer reads the angle only to ``theta`` times
    that. A network in which a ``Sign`` follows (its output angle is ``sqrt(theta)``)
    reads the carried one (5e-9 against 1e-16 at ``theta = 1e-8``).
    """
    plain = det_from_gaps(c, gaps[0], anti_e)
    # (its roots' gap U as the caller carries it, not by subtraction of the roots)
    careful = det_from_gaps(c, gaps[1], anti_e, U)
    return LayerMap(e, ed, plain, "closed form", carried=careful)


def _leaky(a: sp.Expr) -> LayerMap:
    """``max(0,u) + a min(0,u) = relu(u) - a relu(-u)``, for slopes ``a >= 0``.

    ``E = ((1+a^2) M k(theta) - 2 a M k(pi - theta)) / (2 pi)`` with the degree-1
    arc-cosine function ``k(t) = sin t + (pi - t) cos t``, and
    ``E[sigma' sigma'] = ((1+a^2)(pi - theta) + 2 a theta) / (2 pi)`` (Cho & Saul 2009).
    """
    m, r, gap, _anti, theta, phi, kp, kn = arccos_parts()
    c = (1 + a**2) / 2
    e = ((1 + a**2) * kp - 2 * a * kn) / (2 * sp.pi)
    ed = ((1 + a**2) * phi + 2 * a * theta) / (2 * sp.pi)
    gaps = [
        ((1 + a**2) * (sp.pi * gap - kink) + 2 * a * kn) / (2 * sp.pi)
        for kink in _kinks(m, r, theta, S12)
    ]
    return _with_gaps(e, ed, c, gaps, c * m + e)


def _even_odd(ca: sp.Expr, cc: sp.Expr) -> LayerMap:
    """``A u + C |u|`` (``|u|``, the identity, leaky ReLU with a negative slope).

    ``E[|u||v|] = (2 sqrt(D) + (pi - 2 t) |S12|) / pi`` with ``t = atan2(sqrt(D), |S12|)``
    (Cho & Saul 2009 applied to ``|u| = relu(u) + relu(-u)``), ``E[uv] = S12``,
    ``E[u|v|] = 0``; ``E[sign u sign v] = (2/pi) asin(rho) = (2/pi) atan2(S12, sqrt(D))``.
    """
    c = ca**2 + cc**2
    m, r, gap, anti, _theta = angle_parts()
    t = sp.atan2(r, sp.Abs(S12))
    e_abs = (2 * r + (sp.pi - 2 * t) * sp.Abs(S12)) / sp.pi
    small = sp.Min(gap, anti)  # M - |S12|
    e = ca**2 * S12 + cc**2 * e_abs
    ed = ca**2 + cc**2 * 2 * sp.atan2(S12, r) / sp.pi
    anti_e = ca**2 * anti + cc**2 * (m + e_abs)
    if cc == 0:  # the identity: E = S12, and the ntk is the constant A^2
        e, ed = ca**2 * S12, ca**2 + 0 * S12
        return LayerMap(e, ed, det_from_gaps(c, ca**2 * gap, anti_e), "closed form")
    # M - E|u||v| = (pi (M - |S12|) - 2 (sqrt(D) - t |S12|)) / pi >= 0
    gaps = [
        ca**2 * gap + cc**2 * (sp.pi * small - 2 * kink) / sp.pi
        for kink in _kinks(m, r, t, sp.Abs(S12))
    ]
    return _with_gaps(e, ed, c, gaps, anti_e)


def leaky_relu(slope: float = 0.01) -> LayerMap:
    """Leaky ReLU ``max(0,u) + slope*min(0,u)``; see :func:`_leaky` and :func:`_even_odd`."""
    a = sp.nsimplify(slope)
    if a < 0:
        return _even_odd((1 + a) / 2, (1 - a) / 2)
    return _leaky(a)


def absolute() -> LayerMap:
    """``|u|``: the even part of the arc-cosine kernel (Cho & Saul 2009)."""
    return _even_odd(sp.Integer(0), sp.Integer(1))


def identity() -> LayerMap:
    """The identity: ``E[uv] = S12``, ``E[1*1] = 1``."""
    return _even_odd(sp.Integer(1), sp.Integer(0))


FAMILY = Family(
    name="piecewise_linear",
    members=("relu", "leaky_relu", "abs", "identity"),
    derive=_derive,
    stable={"relu": relu, "leaky_relu": leaky_relu, "abs": absolute, "identity": identity},
)
