"""The symbols of the seed's network, an unevaluated expectation and a limit relation.

Every object of the network (1)–(4) is an :class:`sympy.IndexedBase` named after the
seed's notation and registered in :data:`OBJECTS` with its *kind* (``"W"``, ``"b"``,
``"x"``, ``"a"`` for alpha, ``"z"`` for alpha-tilde), its *layer* (an integer or an
expression in the layer symbols ``l`` and ``L``) and whether it is evaluated at ``x``
or at ``x'``. The rules and the checkers read that registry; they never parse names.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
from sympy.printing.latex import LatexPrinter

from ntksym.derive.layered import LayerActivation, LayerScalar

__all__ = [
    "E",
    "Tends",
    "ObjInfo",
    "OBJECTS",
    "beta",
    "sigma",
    "sigmadot",
    "weight_std",
    "l",
    "L",
    "width",
    "W",
    "b",
    "x",
    "alpha",
    "alpha_t",
    "ZF",
    "theta",
    "index",
    "latex",
    "Dim",
    "PSum",
    "Sigma",
    "Sigma_t",
    "Sigma_dot",
    "Theta",
    "Theta_inf",
    "NAMES",
    "KIND_TEX",
    "BASE_TEX",
    "NAME_TEX",
    "SYMBOL_TEX",
    "SeedLatexPrinter",
    "make_object",
    "SCALARS",
    "scalar",
]

#: The bias scale of the seed (``beta``) and the weight scale of a variant derivation.
beta = sp.Symbol("beta", positive=True)
weight_std = sp.Symbol("sigma_w", positive=True)
#: The declared scalar parameters a statement may use besides indices and widths.
SCALARS: dict[str, sp.Symbol] = {"beta": beta, "sigma_w": weight_std}


def scalar(name: str, positive: bool = True) -> sp.Symbol:
    """Declare a scalar parameter of a derivation (a multiplier, a scale) and return it.

    A statement may use only indices, widths and declared scalars; any other symbol makes
    it ill-formed ("undefined symbol"). The symbol is real (positive unless
    ``positive=False``) and cached: the same name gives the same symbol. Declaring a
    scalar as an integer instead would make the engine treat it as a free index.

    Raises:
        InputError: ``name`` is not a non-empty string, is already an index name, or was
            declared before with another sign assumption.
    """
    from ntksym.errors import InputError

    if not isinstance(name, str) or not name.strip():
        raise InputError(f"a scalar needs a non-empty name, got {name!r}")
    if name in _INDICES:
        raise InputError(f"{name!r} is already an index; choose another name for the scalar")
    sym = sp.Symbol(name, positive=True) if positive else sp.Symbol(name, real=True)
    old = SCALARS.setdefault(name, sym)
    if old != sym:
        raise InputError(f"scalar {name!r} was declared before with other assumptions ({old!r})")
    return sym


#: The activation and its derivative, kept abstract.
sigma = sp.Function("sigma", real=True)
sigmadot = sp.Function("sigmadot", real=True)
#: Layer symbols.
l = sp.Symbol("l", integer=True, nonnegative=True)  # noqa: E741 (the seed's name)
L = sp.Symbol("L", integer=True, positive=True)
#: A generic parameter of the first layers (seed's theta-tilde_p).
theta = sp.Symbol("theta_p", real=True)


@dataclass(frozen=True)
class ObjInfo:
    """What a registered IndexedBase stands for.

    Attributes:
        kind: ``"W"``, ``"b"``, ``"x"``, ``"a"`` (alpha) or ``"z"`` (alpha-tilde).
        layer: the layer superscript (int or SymPy expression in ``l``, ``L``).
        prime: True when the object is evaluated at the second input ``x'``.
    """

    kind: str
    layer: sp.Expr
    prime: bool


#: Every indexed object of the network (weights, biases, activations) with its kind,
#: layer and input; not to be confused with ``ntksym.activations.REGISTRY`` (names users type).
OBJECTS: dict[sp.IndexedBase, ObjInfo] = {}
_CACHE: dict[tuple[str, sp.Expr, bool], sp.IndexedBase] = {}
#: LaTeX of each kind of network object (weights, biases, inputs, activations).
KIND_TEX = {"W": "w", "b": "b", "x": "x", "a": r"\alpha", "z": r"\tilde{\alpha}"}
#: LaTeX of each kind as a whole (the weight matrix ``W``, the vector ``alpha``).
BASE_TEX = {**KIND_TEX, "W": "W"}


def as_expr(value: sp.Basic | int | float) -> sp.Basic:
    """A layer, index, bound or term as a SymPy object, from SymPy or a Python number only.

    Unlike ``sympify`` it never parses text, so no string can reach an evaluator.
    """
    if isinstance(value, sp.Basic):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return sp.Integer(value)
    if isinstance(value, float):
        return sp.Float(value)
    raise TypeError(f"expected an int, a float or a SymPy object, got {type(value).__name__}")


def _layer_tex(layer: sp.Expr) -> str:
    return sp.latex(as_expr(layer))


def make_object(kind: str, layer: sp.Expr | int, prime: bool = False) -> sp.IndexedBase:
    """The registered ``IndexedBase`` of a network object (``kind``, ``layer``, ``prime``)."""
    layer = as_expr(layer)
    key = (kind, layer, prime)
    if key not in _CACHE:
        name = f"{kind}{'p' if prime else ''}[{layer}]"
        base = sp.IndexedBase(name, real=True)
        _CACHE[key] = base
        OBJECTS[base] = ObjInfo(kind, layer, prime)
    return _CACHE[key]


def W(layer: sp.Expr | int) -> sp.IndexedBase:
    """Weight matrix ``W^(layer)`` (entries ``w_{ki}``)."""
    return make_object("W", layer)


def b(layer: sp.Expr | int) -> sp.IndexedBase:
    """Bias vector ``b^(layer)``."""
    return make_object("b", layer)


def x(prime: bool = False) -> sp.IndexedBase:
    """Input ``x`` (or ``x'``)."""
    return make_object("x", 0, prime)


def alpha(layer: sp.Expr | int, prime: bool = False) -> sp.IndexedBase:
    """Post-activation ``alpha^(layer)`` at ``x`` (or ``x'``)."""
    return make_object("a", layer, prime)


def alpha_t(layer: sp.Expr | int, prime: bool = False) -> sp.IndexedBase:
    """Pre-activation ``alpha-tilde^(layer)`` at ``x`` (or ``x'``)."""
    return make_object("z", layer, prime)


_WIDTHS: dict[sp.Expr, sp.Symbol] = {}


def width(layer: sp.Expr | int) -> sp.Symbol:
    """The width symbol ``n_layer`` (a positive integer)."""
    layer = as_expr(layer)
    if layer not in _WIDTHS:
        _WIDTHS[layer] = sp.Symbol(f"n_{{{sp.latex(layer)}}}", integer=True, positive=True)
    return _WIDTHS[layer]


def width_layer(sym: sp.Symbol) -> sp.Expr | None:
    """The layer of a width symbol, or None if ``sym`` is not a width."""
    for layer, s in _WIDTHS.items():
        if s == sym:
            return layer
    return None


#: ``alpha-tilde^(layer)_i(x; theta)`` as a function of a generic parameter of the first
#: layers, so that SymPy's chain rule applies: ``ZF(layer, prime)(i, theta_p)``.
_ZF: dict[tuple[sp.Expr, bool], type] = {}
ZF_INFO: dict[str, tuple[sp.Expr, bool]] = {}


def ZF(layer: sp.Expr | int, prime: bool = False) -> type:
    """Pre-activation as an undefined function of ``(index, theta_p)``."""
    layer = as_expr(layer)
    key = (layer, prime)
    if key not in _ZF:
        name = f"zf{'p' if prime else ''}[{layer}]"
        _ZF[key] = sp.Function(name, real=True)
        ZF_INFO[name] = key
    return _ZF[key]


_INDICES: dict[str, sp.Symbol] = {}


def index(name: str) -> sp.Symbol:
    """Return the integer index symbol of this name (cached, so equal names are equal)."""
    if name not in _INDICES:
        _INDICES[name] = sp.Symbol(name, integer=True, positive=True)
    return _INDICES[name]


class E(sp.Function):
    """Unevaluated expectation ``E[expr]`` (over every random quantity in ``expr``).

    ``E(expr, m)`` is the conditional expectation over the parameters ``w^(m), b^(m)`` of
    layer ``m`` only, given the earlier layers.

    The rules in :mod:`ntksym.derive.rules` evaluate it; SymPy never does.
    """

    nargs = (1, 2)

    def _latex(self, printer: LatexPrinter) -> str:
        sub = ""
        if len(self.args) > 1:
            m = printer._print(self.args[1])
            sub = "_{w^{(" + m + ")}, b^{(" + m + ")}}"
        return r"\mathbb{E}" + sub + r"\left[" + printer._print(self.args[0]) + r"\right]"


class Dim(sp.Function):
    """The number of entries ``dim(v)`` of a registered vector (``v in R^{dim}``)."""

    nargs = 1

    def _latex(self, printer: LatexPrinter) -> str:
        info = OBJECTS.get(self.args[0])
        name = (
            printer._print(self.args[0])
            if info is None
            else (KIND_TEX[info.kind] + "^{(" + _layer_tex(info.layer) + ")}")
        )
        return r"\dim " + name


#: Named kernel quantities; ``Sigma(layer)`` is ``Sigma^(layer)(x, x')`` and so on.
Sigma = sp.Function("Sigma", real=True)
Sigma_t = sp.Function("Sigmatilde", real=True)
Sigma_dot = sp.Function("Sigmadot", real=True)
Theta = sp.Function("Theta", real=True)
Theta_inf = sp.Function("Thetainf", real=True)
NAMES = {"Sigma", "Sigmatilde", "Sigmadot", "Theta", "Thetainf"}
#: LaTeX of the named kernels.
NAME_TEX = {
    "Sigma": r"\Sigma",
    "Sigmatilde": r"\tilde{\Sigma}",
    "Sigmadot": r"\dot{\Sigma}",
    "Theta": r"\Theta",
    "Thetainf": r"\Theta_{\infty}",
}


class PSum(sp.Function):
    """``sum_p expr``: the sum over every parameter ``theta~_p`` of the first layers.

    ``expr`` depends on the parameter through ``Derivative(..., theta_p)``.
    """

    nargs = 1

    def _latex(self, printer: LatexPrinter) -> str:
        return r"\sum_{p=1}^{|\tilde{\theta}|}" + printer.parenthesize(self.args[0], 1000)


class Tends(sp.Function):
    """The relation ``lhs -> rhs`` as ``width -> oo`` (not an equality: a limit claim)."""

    nargs = 3

    @property
    def lhs(self) -> sp.Expr:
        """The finite-width quantity."""
        return self.args[0]

    @property
    def rhs(self) -> sp.Expr:
        """Its claimed limit."""
        return self.args[1]

    def _latex(self, printer: LatexPrinter) -> str:
        a, c, n = (printer._print(t) for t in self.args)
        return f"{a} \\xrightarrow[{n}\\to\\infty]{{}} {c}"


class GaussE(sp.Function):
    """``E_{(u,v) ~ N(0, Sigma^(layer))}[F(u, v)]`` for the kernel ``Sigma^(layer)``.

    Arguments: ``(F, u, v, layer)`` where ``F`` is an expression in the dummy symbols
    ``u`` (value at ``x``) and ``v`` (value at ``x'``).
    """

    nargs = 4

    def _latex(self, printer: LatexPrinter) -> str:
        f, uu, vv, layer = self.args
        g = f.subs({uu: sp.Symbol("g(x)"), vv: sp.Symbol("g(x')")})
        return (
            r"\mathbb{E}_{g\sim\mathcal{N}(0,\Sigma^{("
            + printer._print(layer)
            + r")})}\left["
            + printer._print(g)
            + r"\right]"
        )


#: LaTeX of single symbols the engine names (the generic parameter of the first layers).
SYMBOL_TEX = {"theta_p": r"\tilde{\theta}_p"}


class SeedLatexPrinter(LatexPrinter):
    r"""The engine's LaTeX printer: the seed's notation from the registry and name tables.

    Network objects print from :data:`OBJECTS` and :data:`KIND_TEX` (``w_{ki}^{(l)}``),
    the named kernels from :data:`NAME_TEX`, pre-activations as functions of the
    parameter from :data:`ZF_INFO`, special symbols from :data:`SYMBOL_TEX`. The notes'
    printer (:class:`ntksym.notes.printer.NotesPrinter`) is a subclass.
    """

    def _print_Indexed(self, expr: sp.Indexed) -> str:
        info = OBJECTS.get(expr.base)
        idx = "".join(self._print(i) for i in expr.indices)
        if info is None:
            return super()._print_Indexed(expr)
        name = KIND_TEX[info.kind]
        sup = "" if info.kind == "x" else "^{(" + _layer_tex(info.layer) + ")}"
        arg = ""
        if info.kind in ("a", "z"):
            arg = "(x')" if info.prime else "(x)"
        elif info.kind == "x" and info.prime:
            name = "x'"
        return f"{name}_{{{idx}}}{sup}{arg}"

    def _print_IndexedBase(self, expr: sp.IndexedBase) -> str:
        info = OBJECTS.get(expr)
        if info is None:
            return self._print(expr.label)
        if info.kind == "x":
            return "x'" if info.prime else "x"
        return BASE_TEX[info.kind] + "^{(" + self._print(info.layer) + ")}"

    def _print_KroneckerDelta(self, expr: sp.KroneckerDelta, exp: str | None = None) -> str:
        s = r"\delta_{" + "".join(self._print(a) for a in expr.args) + "}"
        return s if exp is None else s + "^{" + exp + "}"

    def _named(self, expr: sp.Function, exp: str | None) -> str | None:
        """A pre-activation or a named kernel in the seed's notation (None otherwise)."""
        if isinstance(expr, (LayerScalar, LayerActivation)):
            return expr._latex(self, exp)  # sigma_w^{(l)}, phi_l(u): they print themselves
        name = expr.func.__name__
        if name in ZF_INFO:
            layer, prime = ZF_INFO[name]
            s = (
                r"\tilde{\alpha}^{("
                + self._print(layer)
                + ")}_{"
                + self._print(expr.args[0])
                + "}"
                + ("(x')" if prime else "(x)")
            )
            return s if exp is None else f"{s}^{{{exp}}}"
        if name in NAME_TEX:
            layer, *idx = expr.args
            sub = "_{" + "".join(self._print(i) for i in idx) + "}" if idx else ""
            s = NAME_TEX[name] + "^{(" + self._print(layer) + ")}" + sub + "(x,x')"
            return s if exp is None else rf"\left({s}\right)^{{{exp}}}"
        return None

    def _print_Function(self, expr: sp.Function, exp: str | None = None) -> str:
        named = self._named(expr, exp)
        if named is not None:
            return named
        if expr.func.__name__ == "sigmadot":
            s = r"\dot{\sigma}\left(" + self._print(expr.args[0]) + r"\right)"
            return s if exp is None else f"{s}^{{{exp}}}"
        return super()._print_Function(expr, exp)

    def _print_Symbol(self, expr: sp.Symbol, style: str = "plain") -> str:
        if expr.name in SYMBOL_TEX:
            return SYMBOL_TEX[expr.name]
        if expr.name.startswith("n_{"):
            return expr.name
        return super()._print_Symbol(expr, style=style)


def latex(expr: sp.Basic | None) -> str:
    r"""LaTeX in the seed's notation (``w^{(l)}_{ki}``, ``\\delta_{kk'}``, ``\\dot\\sigma``)."""
    if expr is None:
        return ""
    if isinstance(expr, (list, tuple)):
        return r" \\ ".join(latex(e) for e in expr)
    return SeedLatexPrinter().doprint(expr)
