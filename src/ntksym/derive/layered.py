"""Layer-indexed symbols: a parameter or an activation that changes from layer to layer.

The seed's network has one weight scale, one bias scale and one activation ``sigma``.
A derivation of a network with a different ``sigma_w``, ``beta`` and activation at every
layer declares them here:

* :func:`layer_scalar` -- ``sw = layer_scalar("sigma_w")``; ``sw(l)`` is the weight scale
  of layer ``l`` (a positive real). ``sw(l + 1)``, ``sw(0)``, ``sw(L)`` are its values at
  other layers; moving a definition to another layer (the ``definition`` rule, the exact
  checks) moves the argument with it.
* :func:`layer_activation` -- ``phi, phidot = layer_activation("phi")``; ``phi(l, u)``
  is the activation of layer ``l`` applied to ``u``, and SymPy's chain rule gives
  ``d phi(l, u) / du = phidot(l, u)`` (so ``chain_rule`` needs nothing new).

Both kinds are ordinary SymPy functions of the layer, so the rules that substitute a
layer (``xreplace``) and compare expressions work on them unchanged. The numeric checks
(:mod:`ntksym.derive.layered_numeric`) read :data:`LAYER_ACTIVATIONS` to know which
function is an activation and which its derivative.
"""

from __future__ import annotations

from typing import Any

import sympy as sp
from sympy.core.function import ArgumentIndexError

from ntksym.errors import InputError

__all__ = [
    "LAYER_ACTIVATIONS",
    "LAYER_SCALARS",
    "LayerActivation",
    "LayerScalar",
    "activation_of",
    "layer_activation",
    "layer_scalar",
]


def _check_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        raise InputError(f"a {what} needs a name made of letters, digits and '_', got {name!r}")
    return name


def _layer_tex(printer: Any, layer: sp.Basic) -> str:
    return "^{(" + printer._print(layer) + ")}"


class LayerScalar(sp.Function):
    """A positive parameter with one value per layer: ``s(layer)``."""

    nargs = 1
    is_real = True
    is_positive = True
    #: LaTeX and plain text of the name (set per declared scalar).
    tex = "s"
    plain = "s"

    def _latex(self, printer: Any, exp: str | None = None) -> str:
        s = self.tex + _layer_tex(printer, self.args[0])
        return s if exp is None else r"\left(" + s + r"\right)^{" + exp + "}"

    def _ntksym_plain(self, printer: Any) -> str:
        return f"{self.plain}^({sp.sstr(self.args[0]).replace(' ', '')})"


class LayerActivation(sp.Function):
    """An activation with one function per layer: ``phi(layer, u)``."""

    nargs = 2
    is_real = True
    tex = r"\phi"
    #: The derivative's class (None for a derivative itself).
    derivative: type | None = None

    def fdiff(self, argindex: int = 2) -> sp.Expr:
        """``d phi(l, u) / du = phidot(l, u)``; the layer is not a variable."""
        if argindex == 2 and self.derivative is not None:
            return self.derivative(*self.args)
        raise ArgumentIndexError(self, argindex)

    def _latex(self, printer: Any, exp: str | None = None) -> str:
        layer, u = self.args
        s = self.tex + r"_{" + printer._print(layer) + r"}\left(" + printer._print(u) + r"\right)"
        return s if exp is None else s + "^{" + exp + "}"

    def _ntksym_plain(self, printer: Any) -> str:
        layer, u = self.args
        return f"{type(self).__name__}_{sp.sstr(layer).replace(' ', '')}({printer._print(u)})"


#: Every declared layer scalar, by name.
LAYER_SCALARS: dict[str, type] = {}
#: Every declared layer activation, by name: ``(activation, derivative)``.
LAYER_ACTIVATIONS: dict[str, tuple[type, type]] = {}


def layer_scalar(name: str, tex: str | None = None, plain: str | None = None) -> type:
    """Declare a positive parameter with one value per layer (cached by name).

    Args:
        name: its name (an identifier, e.g. ``"sigma_w"``); the same name gives the same
            function.
        tex: its LaTeX (default: the name, as SymPy prints a symbol of that name).
        plain: its plain-text form in the terminal (default: the name).

    Returns:
        A SymPy function of one argument, the layer: ``sw(l)``, ``sw(l + 1)``, ``sw(0)``.

    Raises:
        InputError: the name is not an identifier or is an activation's.
    """
    _check_name(name, "layer scalar")
    if name in LAYER_ACTIVATIONS:
        raise InputError(f"{name!r} is already a layer activation; choose another name")
    if name not in LAYER_SCALARS:
        latex_name = tex if tex is not None else sp.latex(sp.Symbol(name))
        attrs = {"tex": latex_name, "plain": plain or name}
        LAYER_SCALARS[name] = type(name, (LayerScalar,), attrs)
    return LAYER_SCALARS[name]


def layer_activation(name: str, tex: str | None = None) -> tuple[type, type]:
    """Declare an activation with one function per layer, and its derivative.

    Args:
        name: its name (an identifier, e.g. ``"phi"``); the same name gives the same pair.
        tex: its LaTeX (default: the name as SymPy prints a symbol of that name).

    Returns:
        ``(act, dot)``: ``act(l, u)`` is the activation of layer ``l`` at ``u`` and
        ``dot(l, u)`` its derivative; ``sympy.diff(act(l, u), u) == dot(l, u)``.

    Raises:
        InputError: the name is not an identifier or is a layer scalar's.
    """
    _check_name(name, "layer activation")
    if name in LAYER_SCALARS:
        raise InputError(f"{name!r} is already a layer scalar; choose another name")
    if name not in LAYER_ACTIVATIONS:
        latex_name = tex if tex is not None else sp.latex(sp.Symbol(name))
        dot = type(name + "dot", (LayerActivation,), {"tex": r"\dot{" + latex_name + "}"})
        act = type(name, (LayerActivation,), {"tex": latex_name, "derivative": dot})
        LAYER_ACTIVATIONS[name] = (act, dot)
    return LAYER_ACTIVATIONS[name]


def activation_of(f: sp.Basic) -> tuple[type, sp.Basic, bool] | None:
    """``(activation class, layer, is_derivative)`` of an applied layer activation, or None."""
    if not isinstance(f, LayerActivation):
        return None
    for act, dot in LAYER_ACTIVATIONS.values():
        if type(f) is act:
            return act, f.args[0], False
        if type(f) is dot:
            return act, f.args[0], True
    return None
