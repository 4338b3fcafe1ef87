"""Scaled and shifted members of the other families: ``sigma(u) = a f(b u) + c``.

For ``(u, v) ~ N(0, Sigma)`` the pair ``(b u, b v)`` is ``N(0, b^2 Sigma)`` (for either sign
of ``b``), so with ``E_f`` the dual maps of ``f``

``E[sigma(u) sigma(v)] = a^2 E_f(b^2 Sigma) + c^2`` (``c = 0`` unless ``f`` is odd, when
``E[f(b u)] = 0`` removes the cross terms) and
``E[sigma'(u) sigma'(v)] = a^2 b^2 E_f'(b^2 Sigma)``.

A stable layer map of ``f`` (:class:`~ntksym.dual.stable.LayerMap`) becomes one of sigma by
the same substitution: ``S -> b^2 S``, ``D -> b^4 D`` (the determinant scales as the
covariance squared), ``U -> |b| U`` (the root gap scales as a standard deviation). Its next
determinant was written for ``N11 = W2 E_f(S11) + B2``; since
``W2 (a^2 E_f + c^2) + B2 = (a^2 W2) E_f + (B2 + W2 c^2)``, sigma's network is f's network
with ``W2 -> a^2 W2`` and ``B2 -> B2 + W2 c^2`` and the same ``N11, N22``, so the determinant
takes that substitution too. The diagonal map becomes ``a^2 g_f(b^2 S) + c^2``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sympy as sp

from ntksym.activations import REGISTRY, Activation
from ntksym.activations.registry import affine_parts
from ntksym.dual import derive as _d
from ntksym.dual import stable as st
from ntksym.dual.family import DualMaps, Family, NumericFn
from ntksym.dual.stable import LayerMap
from ntksym.errors import NoClosedFormError

__all__ = ["affine_family", "scaled_layer_map"]

#: The variance symbol of a diagonal map (``ntksym.codegen.spec.S``: equal by name and
#: assumptions; the codegen layer sits above this one).
_S = sp.Symbol("S", positive=True)


def _dual_maps(maps: DualMaps, act: Activation, a: sp.Expr, b: sp.Expr, c: sp.Expr) -> DualMaps:
    """The SymPy dual maps of ``a f(b u) + c`` from those of ``f`` (see the module docstring)."""
    sub = {_d.S11: b**2 * _d.S11, _d.S12: b**2 * _d.S12, _d.S22: b**2 * _d.S22}
    nngp = a**2 * maps.nngp.xreplace(sub) + c**2
    ntk = None if maps.ntk is None else a**2 * b**2 * maps.ntk.xreplace(sub)
    # the method is f's: the substitution is a change of variable of the same derivation
    return DualMaps(act, nngp, ntk, maps.method, maps.source, maps.derived)


def _numeric(inner: NumericFn, a: sp.Expr, b: sp.Expr, c: sp.Expr) -> NumericFn:
    """Float64 maps of ``a f(b u) + c``: ``f``'s own maps at ``b^2 Sigma``, scaled."""
    b2, b4 = float(b**2), float(b**4)
    a2, a2b2, c2 = float(a**2), float(a**2 * b**2), float(c**2)
    b1 = float(abs(b))  # (the root gap of b^2 Sigma)

    def numeric(s11: Any, s12: Any, s22: Any, det: Any, gap: Any = None) -> tuple[Any, Any]:
        inner_gap = None if gap is None else b1 * gap
        nngp, ntk = inner(b2 * s11, b2 * s12, b2 * s22, b4 * det, inner_gap)
        return a2 * nngp + c2, None if ntk is None else a2b2 * ntk

    return numeric


def scaled_layer_map(lm: LayerMap, a: sp.Expr, b: sp.Expr, c: sp.Expr) -> LayerMap:
    """The stable layer map of ``a f(b u) + c`` from the stable layer map ``lm`` of ``f``.

    ``S -> b^2 S``, ``D -> b^4 D``, ``U -> |b| U`` in every output, and in the next
    determinants (``det`` and ``carried``) also ``W2 -> a^2 W2``, ``B2 -> B2 + W2 c^2``
    (simultaneously; the module docstring says why). The diagonal map is ``f``'s (given,
    or its nngp map at ``S11 = S22 = S12 = S``, ``D = U = 0``) at ``b^2 S``, times
    ``a^2``, plus ``c^2``.
    """
    sub: dict[sp.Expr, sp.Expr] = {
        st.S11: b**2 * st.S11,
        st.S22: b**2 * st.S22,
        st.S12: b**2 * st.S12,
        st.D: b**4 * st.D,
        st.U: sp.Abs(b) * st.U,
    }
    nngp = a**2 * lm.nngp.xreplace(sub) + c**2
    ntk = None if lm.ntk is None else a**2 * b**2 * lm.ntk.xreplace(sub)
    net = {**sub, st.W2: a**2 * st.W2, st.B2: st.B2 + st.W2 * c**2}
    det = None if lm.det is None else lm.det.xreplace(net)
    carried = None if lm.carried is None else lm.carried.xreplace(net)
    diag = lm.diag
    if diag is None:
        on_diag = {st.S11: _S, st.S22: _S, st.S12: _S, st.D: 0, st.U: 0}
        diag = sp.simplify(lm.nngp.subs(on_diag))
    diag = a**2 * diag.xreplace({_S: b**2 * _S}) + c**2
    return LayerMap(nngp, ntk, det, f"{lm.method}, scaled: a*f(b*u) + c", diag, carried)


def affine_family(family_of: Callable[[Activation], Family | None]) -> Family:
    """The family of ``affine`` activations, given the lookup of the other families.

    ``family_of`` finds the family of the base activation ``f`` (passed in by
    :mod:`ntksym.dual.families`, which lists this family with the others).
    """

    def derive(act: Activation) -> tuple[DualMaps, NumericFn] | None:
        f, a, b, c = affine_parts(act)
        family = family_of(f)
        derived = None if family is None else family.derive(f)
        if derived is None:
            return None
        maps, numeric = derived
        return _dual_maps(maps, act, a, b, c), _numeric(numeric, a, b, c)

    def scaled(**params: Any) -> LayerMap:
        """a*f(b*u) + c: the stable form of f at b^2 Sigma (ntksym.dual.families.affine).

        Raises:
            NoClosedFormError: ``f`` has no stable layer map.
        """
        f, a, b, c = affine_parts(REGISTRY["affine"](**params))
        family = family_of(f)
        base = f.registered_base
        factory = None if family is None or base is None else family.stable.get(base)
        if factory is None:
            raise NoClosedFormError(f"{f.name} has no stable layer map to scale")
        return scaled_layer_map(factory(**dict(f.params)), a, b, c)

    return Family(name="affine", members=("affine",), derive=derive, stable={"affine": scaled})
