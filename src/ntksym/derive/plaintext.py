"""Plain text (ASCII) of the engine's SymPy statements, printed from the objects.

The terminal table of ``ntksym verify`` prints statements and differences with
:func:`plain`, in the seed's notation: ``alpha~^(l+1)_k(x')``, ``w^(0)_ji``,
``delta_kk'``, ``Sigma^(1)(x,x')``, ``E[...]``, ``sum_{i=1}^{n_0} (...)``.
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.str import StrPrinter

from ntksym.derive.statements import Chain, ForAll
from ntksym.derive.symbols import (
    NAMES,
    OBJECTS,
    ZF_INFO,
    Dim,
    E,
    GaussE,
    PSum,
    Tends,
    theta,
)

__all__ = ["plain"]

_NAMES = {"W": "w", "b": "b", "x": "x", "a": "alpha", "z": "alpha~"}
_BASES = {**_NAMES, "W": "W"}
_KERNELS = {
    "Sigma": "Sigma",
    "Sigmatilde": "Sigma~",
    "Sigmadot": "Sigma'",
    "Theta": "Theta",
    "Thetainf": "Theta_inf",
}


def _layer(e: sp.Basic) -> str:
    return sp.sstr(e).replace(" ", "")


class _Plain(StrPrinter):
    printmethod = "_ntksym_plain"  # not "_sympystr": Indexed would print itself

    def _print_Indexed(self, expr: sp.Indexed) -> str:
        info = OBJECTS.get(expr.base)
        idx = "".join(self._print(i) for i in expr.indices)
        if info is None:
            return f"{self._print(expr.base.label)}_{idx}"
        if info.kind == "x":
            return ("x'" if info.prime else "x") + f"_{idx}"
        arg = ("(x')" if info.prime else "(x)") if info.kind in "az" else ""
        return f"{_NAMES[info.kind]}^({_layer(info.layer)})_{idx}{arg}"

    def _print_IndexedBase(self, expr: sp.IndexedBase) -> str:
        info = OBJECTS.get(expr)
        if info is None:
            return self._print(expr.label)
        if info.kind == "x":
            return "x'" if info.prime else "x"
        return f"{_BASES[info.kind]}^({_layer(info.layer)})"

    def _print_KroneckerDelta(self, expr: sp.KroneckerDelta) -> str:
        return "delta_" + "".join(self._print(a) for a in expr.args)

    def _print_Symbol(self, expr: sp.Symbol) -> str:
        if expr == theta:
            return "theta~_p"
        if expr.name.startswith("n_{"):
            return "n_" + expr.name[3:-1].replace(" ", "")
        # a symbol named in LaTeX (a transcribed fragment such as \delta_{i\ldots})
        return expr.name.replace(r"\ldots", "...").replace(r"\dots", "...").replace("\\", "")

    def _print_Function(self, expr: sp.Function) -> str:
        name = expr.func.__name__
        if isinstance(expr, E):
            sub = f"_(w^({_layer(expr.args[1])}),b)" if len(expr.args) > 1 else ""
            return f"E{sub}[{self._print(expr.args[0])}]"
        if isinstance(expr, GaussE):
            g, u, v, layer = expr.args
            inner = self._print(g.xreplace({u: sp.Symbol("g(x)"), v: sp.Symbol("g(x')")}))
            return f"E_g~N(0,Sigma^({_layer(layer)}))[{inner}]"
        if isinstance(expr, PSum):
            return f"sum_p ({self._print(expr.args[0])})"
        if isinstance(expr, Dim):
            return f"dim {self._print(expr.args[0])}"
        if isinstance(expr, Tends):
            lhs, rhs, n = expr.args
            return f"{self._print(lhs)} -> {self._print(rhs)} as {self._print(n)} -> oo"
        if name in ZF_INFO:
            layer, prime = ZF_INFO[name]
            return f"alpha~^({_layer(layer)})_{self._print(expr.args[0])}" + (
                "(x')" if prime else "(x)"
            )
        if name in NAMES:
            layer, *idx = expr.args
            sub = "_" + "".join(self._print(i) for i in idx) if idx else ""
            return f"{_KERNELS[name]}^({_layer(layer)}){sub}(x,x')"
        return super()._print_Function(expr)

    def _print_Sum(self, expr: sp.Sum) -> str:
        lims = "".join(
            f"sum_{{{self._print(v)}={self._print(lo)}}}^{{{self._print(hi)}}} "
            for v, lo, hi in expr.limits
        )
        return f"{lims}({self._print(expr.function)})"

    def _print_Derivative(self, expr: sp.Derivative) -> str:
        by = "".join(f"d/d{self._print(v)} " for v in expr.variables)
        return f"{by}{self._print(expr.expr)}"

    def _print_Equality(self, expr: sp.Eq) -> str:
        return f"{self._print(expr.lhs)} = {self._print(expr.rhs)}"

    def _print_Tuple(self, expr: sp.Tuple) -> str:
        return "; ".join(self._print(a) for a in expr.args)

    def _print_Chain(self, expr: Chain) -> str:
        return " = ".join(self._print(a) for a in expr.args)

    def _print_ForAll(self, expr: ForAll) -> str:
        v, lo, hi = expr.domain
        return f"{self._print(expr.statement)}, {self._print(v)} = {lo},...,{hi}"


def plain(expr: sp.Basic | None) -> str:
    """A SymPy statement or expression of the engine as one line of plain text.

    >>> from ntksym.derive.symbols import alpha_t, index
    >>> plain(alpha_t(1, True)[index("k")])
    "alpha~^(1)_k(x')"
    """
    if expr is None:
        return ""
    return " ".join(_Plain().doprint(expr).split())
