"""Step-like activations ``a*H(u) + b*H(-u)``: step and sign.

The degree-0 arc-cosine kernel (Cho & Saul 2009); the derivative map is the jump squared
times the Gaussian density at the origin (Price's theorem), infinite on the diagonal.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import sympy as sp

from ntksym.activations import Activation
from ntksym.dual import derive as _d
from ntksym.dual.family import DualMaps, Family, NumericFn, stable_numeric
from ntksym.dual.sources import CHO_SAUL, PRICE
from ntksym.dual.stable import (
    B2,
    S11,
    S12,
    S22,
    W2,
    LayerMap,
    arccos_parts,
)


@functools.lru_cache(maxsize=4)
def homogeneous_general(degree: int) -> sp.Expr:
    """The arc-cosine kernel of ``degree`` for ``a*(u)_+^n + b*(u)_-^n`` as a Lambda in (a, b)."""
    a, b = sp.symbols("a b", real=True)
    return sp.Lambda((a, b), _d.homogeneous(degree, a, b))


def _jump(act: Activation, a: sp.Expr, b: sp.Expr) -> tuple[DualMaps, NumericFn]:
    """a*H(u) + b*H(-u): degree-0 arc-cosine kernel; derivative map by Price's theorem."""
    nngp = sp.simplify(homogeneous_general(0)(a, b))
    ntk = sp.simplify(sp.diff(nngp, _d.S12))
    maps = DualMaps(
        act,
        nngp,
        ntk,
        "derived: whitened polar integration (nngp), Price's theorem (ntk)",
        f"{CHO_SAUL}; {PRICE}",
        True,
    )
    stable_maps = stable_numeric(FAMILY.stable[str(act.registered_base)]())
    jump2 = float((a - b) ** 2)
    # a zero variance pins u (or v) at 0, where SymPy's H(0) = 1/2 makes sigma(0) = (a+b)/2
    pinned = float(((a + b) / 2) ** 2)

    def numeric(s11: Any, s12: Any, s22: Any, det: Any, gap: Any = None) -> tuple[Any, Any]:
        nngp, _ = stable_maps(s11, s12, s22, det, gap)
        with np.errstate(divide="ignore"):
            ntk_val = jump2 / (2 * np.pi * np.sqrt(det))  # E[delta delta]: infinite at det = 0
        return np.where((s11 == 0) | (s22 == 0), pinned, nngp), ntk_val

    return maps, numeric


def _derive(act: Activation) -> tuple[DualMaps, NumericFn]:
    """Dispatch a member to :func:`_jump` with its levels ``(a, b)``."""
    a, b = _LEVELS[str(act.registered_base)]
    return _jump(act, sp.Integer(a), sp.Integer(b))


#: Levels ``(a, b)`` of ``a*H(u) + b*H(-u)``.
_LEVELS: dict[str, tuple[int, int]] = {"step": (1, 0), "sign": (1, -1)}


def _pinned(e: sp.Expr, det: sp.Expr, a: int, b: int) -> LayerMap:
    """The map of ``a*H(u) + b*H(-u)`` given for positive variances, completed at zero ones.

    A zero variance is a point mass at 0, where ``sigma(0) = (a + b)/2`` (``H(0) = 1/2``, as
    in :mod:`ntksym.activations`): then ``E[sigma(u) sigma(v)] = sigma(0) E[sigma(v)] =
    p = ((a + b)/2)^2`` whatever the other variance, the next variances are ``W2 p + B2``
    (zero) and ``W2 (a^2 + b^2)/2 + B2`` (positive), and the next determinant is their
    difference times ``W2 p + B2``: ``(W2 p + B2) W2 ((a - b)/2)^2`` (0 if both are zero).
    """
    p = sp.Rational(a + b, 2) ** 2
    q = sp.Rational(a - b, 2) ** 2
    zero = sp.Eq(S11, 0) | sp.Eq(S22, 0)
    both = sp.Eq(S11, 0) & sp.Eq(S22, 0)
    e = sp.Piecewise((p, zero), (e, True))
    det = sp.Piecewise((0, both), ((W2 * p + B2) * W2 * q, zero), (det, True))
    # E[sigma(u)^2] in the variance S (named like ntksym.codegen.spec.S, which is positive:
    # this one may be 0)
    s = sp.Symbol("S", nonnegative=True)
    diag = sp.Piecewise((p, sp.Eq(s, 0)), (sp.Rational(a * a + b * b, 2), True))
    return LayerMap(e, None, det, "closed form", diag)


def step() -> LayerMap:
    """Heaviside step: ``E[H(u) H(v)] = (pi - theta) / (2 pi)`` (Cho & Saul 2009, degree 0).

    ``E[H'(u) H'(v)] = E[delta(u) delta(v)] = 1 / (2 pi sqrt(D))`` is infinite on the
    diagonal (D = 0), so no NTK is generated for the step: its NTK diverges for every
    input paired with itself, and a Gram matrix of it is not defined.
    """
    _m, _r, _gap, _anti, theta, phi, _kp, _kn = arccos_parts()
    e = phi / (2 * sp.pi)
    # E[H^2] = 1/2 for every variance, so N11 = N22 = W2/2 + B2 and
    # N11 - S12' = W2 theta / (2 pi), N11 + S12' = W2 (1 - theta/(2 pi)) + 2 B2.
    det = (W2 * theta / (2 * sp.pi)) * (W2 * (sp.pi + phi) / (2 * sp.pi) + 2 * B2)
    return _pinned(e, det, *_LEVELS["step"])


def sign() -> LayerMap:
    """Sign: ``E[sign u sign v] = (2/pi) asin(rho) = 1 - 2 theta / pi``.

    Like the step, its derivative is ``2 delta(u)`` and the NTK diverges on the
    diagonal, so only the NNGP is generated.
    """
    _m, r, _gap, _anti, theta, phi, _kp, _kn = arccos_parts()
    e = 2 * sp.atan2(S12, r) / sp.pi
    # E[sign^2] = 1: N11 = N22 = W2 + B2; N11 - S12' = 2 W2 theta/pi,
    # N11 + S12' = 2 W2 (pi - theta)/pi + 2 B2.
    det = (2 * W2 * theta / sp.pi) * (2 * W2 * phi / sp.pi + 2 * B2)
    return _pinned(e, det, *_LEVELS["sign"])


FAMILY = Family(
    name="jump",
    members=("step", "sign"),
    derive=_derive,
    stable={"step": step, "sign": sign},
)
