"""The record that makes an activation family the unit of change.

A :class:`Family` holds everything ntksym knows about one family of activations with
closed-form dual kernels: which activations belong to it, the SymPy derivation of both
dual maps (with a float64 evaluation of them), and the numerically stable layer maps the
code generator prints. :data:`ntksym.dual.families.FAMILIES` lists them in the order they
are tried. Adding a closed-form activation is one family file (or one entry in an existing
family) plus its line in the activation registry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from ntksym.activations import Activation
from ntksym.activations.expr import np_erf, np_erfc
from ntksym.dual import stable
from ntksym.dual.derive import DET, S11, S12, S22
from ntksym.dual.stable import LayerMap

__all__ = [
    "ERF",
    "DualMaps",
    "Family",
    "NumericFn",
    "lambdified",
    "numpy_function",
    "stable_numeric",
]

#: Float64 evaluation of both maps: ``(s11, s12, s22, det, gap=None) -> (nngp, ntk)``, with
#: ``gap`` the root gap ``sqrt(s11) - sqrt(s22)`` where the caller has it more accurately
#: than the difference of the rounded roots (the stable maps read it; others ignore it).
NumericFn = Callable[..., tuple[Any, Any]]


@dataclass(frozen=True)
class DualMaps:
    """The two dual maps of an activation, as SymPy expressions.

    Attributes:
        activation: The activation sigma.
        nngp: E[sigma(u) sigma(v)] in :data:`S11`, :data:`S12`, :data:`S22`.
        ntk: E[sigma'(u) sigma'(v)] in the same symbols; ``None`` if sigma'
            has no closed form.
        method: How the maps were obtained, e.g. ``"derived: Isserlis"``.
        source: Citation for the formula (also when derived).
        derived: True if ntksym's SymPy code derived the maps, False if the
            formulas were entered from a cited source.
    """

    activation: Activation
    nngp: sp.Expr
    ntk: sp.Expr | None
    method: str
    source: str
    derived: bool

    def replace(self, **changes: Any) -> DualMaps:
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Family:
    """One family of activations with closed-form dual kernels.

    Attributes:
        name: The family's name, e.g. ``"piecewise_linear"``.
        members: Registered activation names (``Activation.registered_base``) it covers.
        derive: ``act -> (DualMaps, NumericFn)`` for a member (or a matching expression),
            or None when the activation turns out not to fit.
        stable: Registered name -> factory of its stable :class:`LayerMap` (taking the
            activation's parameters), for the members that have one.
        matches: For families defined by the form of the expression (polynomials,
            Gaussian-MGF forms): whether an activation belongs; None when the family is
            its registered members only.
        layer_map: For such families: the stable :class:`LayerMap` of a member that is
            not registered (``act -> LayerMap``, None where it has none); the code
            generator prints it as it prints :attr:`stable`'s.
    """

    name: str
    members: tuple[str, ...]
    derive: Callable[[Activation], tuple[DualMaps, NumericFn] | None]
    stable: Mapping[str, Callable[..., LayerMap]] = dataclasses.field(default_factory=dict)
    matches: Callable[[Activation], bool] | None = None
    layer_map: Callable[[Activation], LayerMap | None] | None = None

    def covers(self, act: Activation) -> bool:
        """Whether ``act`` is a member of this family."""
        if act.registered_base in self.members:
            return True
        return self.matches is not None and self.matches(act)


class _Broadcasting:
    """``logical_or``/``logical_and`` whose ``reduce`` broadcasts its operands.

    SymPy prints ``Or(a, b)`` for NumPy as ``logical_or.reduce((a, b))``, which stacks the
    operands into one array and fails when they have different shapes (a column of
    variances against a row); folding the binary ufunc broadcasts them instead.
    """

    def __init__(self, ufunc: np.ufunc) -> None:
        self.ufunc = ufunc

    def reduce(self, operands: Sequence[Any]) -> Any:
        out = operands[0]
        for x in operands[1:]:
            out = self.ufunc(out, x)
        return out


_BROADCASTING = {
    "logical_or": _Broadcasting(np.logical_or),
    "logical_and": _Broadcasting(np.logical_and),
}


#: Extra translations for :func:`numpy_function`: ``erf`` and ``erfc`` on arrays.
ERF: Mapping[str, Callable[..., Any]] = {"erf": np_erf, "erfc": np_erfc}


def numpy_function(
    args: Sequence[sp.Symbol] | sp.Symbol,
    expr: sp.Expr,
    extra: Mapping[str, Callable[..., Any]] | None = None,
    *,
    cse: bool = False,
) -> Callable[..., Any]:
    """``sympy.lambdify`` for NumPy arrays that broadcast (also inside ``Or``/``And``).

    Args:
        args: The arguments (a symbol or a sequence of symbols), in order.
        expr: The expression to evaluate.
        extra: More translations, function name -> callable, taking precedence over
            NumPy's (e.g. :data:`ERF`).
        cse: Share common subexpressions (``sympy.lambdify``'s ``cse``).
    """
    modules: list[Any] = [{**_BROADCASTING, **(extra or {})}, "numpy"]
    arguments = args if isinstance(args, sp.Symbol) else tuple(args)
    return sp.lambdify(arguments, expr, modules=modules, cse=cse)


def lambdified(nngp: sp.Expr, ntk: sp.Expr) -> NumericFn:
    """Float64 evaluation of two SymPy maps in (S11, S12, S22, DET), complex-safe."""
    args = (S11, S12, S22, DET)
    f = numpy_function(args, nngp)
    g = numpy_function(args, ntk)
    complex_valued = nngp.has(sp.I) or ntk.has(sp.I)

    def numeric(s11: Any, s12: Any, s22: Any, det: Any, gap: Any = None) -> tuple[Any, Any]:
        if complex_valued:
            c = [np.asarray(x, dtype=complex) for x in (s11, s12, s22, det)]
            return np.real(f(*c)), np.real(g(*c))
        return f(s11, s12, s22, det), g(s11, s12, s22, det)

    return numeric


def stable_numeric(lm: LayerMap) -> Callable[..., tuple[Any, Any]]:
    """Float64 evaluation of a stable layer map's two dual maps, by ``lambdify``.

    The same SymPy expressions the code generator prints, so a stable form is written once.
    The map's ``D`` is the determinant passed in and its ``U`` the root gap
    ``sqrt(s11) - sqrt(s22)``, as passed in or else formed from the rounded roots; the ntk
    value is None when the map has none (a Dirac delta derivative). A Piecewise evaluates
    every branch, so NumPy's warnings about the branches not taken are silenced.
    """
    args = (stable.S11, stable.S22, stable.S12, stable.D, stable.U)
    f = numpy_function(args, lm.nngp)
    g = None if lm.ntk is None else numpy_function(args, lm.ntk)

    def numeric(s11: Any, s12: Any, s22: Any, det: Any, gap: Any = None) -> tuple[Any, Any]:
        with np.errstate(all="ignore"):
            if gap is None:
                gap = np.sqrt(s11) - np.sqrt(s22)
            nngp = f(s11, s22, s12, det, gap)
            ntk = None if g is None else g(s11, s22, s12, det, gap)
        return nngp, ntk

    return numeric
