"""Code printers for the generated kernels.

Two small subclasses, adding ``_print_<Class>`` only where the defaults do not
suit the generated code:

* :class:`NumbaPrinter` (scalar code for ``numba.njit``): SymPy's
  ``PythonCodePrinter`` already prints ``min(1, max(-1, x))`` and ``math.acos``,
  which Numba compiles; ``Max``/``Min`` of two arguments stay nested built-ins.
* :class:`NumbaLoopPrinter` (the layer map of the Numba kernel, called in a loop
  over the columns that LLVM vectorises): no branches, so ``Piecewise`` becomes
  ``_sel(cond, a, b)`` (both sides evaluated, then a select), ``Max``/``Min``
  become ``_max``/``_min``, ``atan2`` and ``atan`` the module's own branch-free
  ``_atan2`` and ``_atan`` (``_atan2q`` for the first quadrant), ``And`` a bitwise ``&``
  and ``Or`` a bitwise ``|``.
* :class:`NumpyKernelPrinter` (vectorised code): ``NumPyPrinter`` prints
  ``Max``/``Min`` as ``functools.reduce(numpy.maximum, ...)``; here they become nested
  ``numpy.maximum``/``numpy.minimum`` calls, and ``erf`` (absent from NumPy) calls
  the module's own ``_erf``.
"""

from __future__ import annotations

from typing import Any

import sympy as sp
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.pycode import PythonCodePrinter

from ntksym.activations.expr import ProductPowers

__all__ = ["NumbaLoopPrinter", "NumbaPrinter", "NumpyKernelPrinter", "printer_for"]


class NumbaPrinter(PythonCodePrinter):
    """Scalar Python (``math`` module) that ``numba.njit`` compiles."""

    def _print_Max(self, expr: Any) -> str:
        return self._nested("max", expr.args)

    def _print_Min(self, expr: Any) -> str:
        return self._nested("min", expr.args)

    def _nested(self, name: str, args: tuple) -> str:
        out = self._print(args[-1])
        for a in reversed(args[:-1]):
            out = f"{name}({self._print(a)}, {out})"
        return out

    def _print_Float(self, expr: Any) -> str:
        return repr(float(expr))

    def _print_Atan2Q(self, expr: Any) -> str:
        return f"math.atan2({self._print(expr.args[0])}, {self._print(expr.args[1])})"


class NumbaLoopPrinter(NumbaPrinter):
    """Branch-free scalar code: selects instead of conditional expressions."""

    def _print_Max(self, expr: Any) -> str:
        return self._nested("_max", expr.args)

    def _print_Min(self, expr: Any) -> str:
        return self._nested("_min", expr.args)

    def _print_atan2(self, expr: Any) -> str:
        return f"_atan2({self._print(expr.args[0])}, {self._print(expr.args[1])})"

    def _print_atan(self, expr: Any) -> str:
        return f"_atan({self._print(expr.args[0])})"

    def _print_Atan2Q(self, expr: Any) -> str:
        return f"_atan2q({self._print(expr.args[0])}, {self._print(expr.args[1])})"

    def _print_And(self, expr: Any) -> str:
        # bitwise on booleans: no short-circuit branch
        return " & ".join(f"({self._print(a)})" for a in expr.args)

    def _print_Or(self, expr: Any) -> str:
        return " | ".join(f"({self._print(a)})" for a in expr.args)

    def _print_Piecewise(self, expr: Any) -> str:
        # The last condition of a Piecewise built by ntksym is always True.
        out = None
        for value, cond in reversed(expr.args):
            v = self._print(value)
            if out is None:
                out = v if cond == sp.true else f"_sel({self._print(cond)}, {v}, math.nan)"
            else:
                out = f"_sel({self._print(cond)}, {v}, {out})"
        return out


class NumpyKernelPrinter(ProductPowers, NumPyPrinter):
    """Vectorised NumPy without ``functools.reduce``, with a local ``_erf`` and products.

    (Small integer powers of a symbol as products: NumPy's ``x**3`` is ``pow``, see
    :class:`~ntksym.activations.expr.ProductPowers`.)
    """

    def _print_Max(self, expr: Any) -> str:
        return self._nested("numpy.maximum", expr.args)

    def _print_Min(self, expr: Any) -> str:
        return self._nested("numpy.minimum", expr.args)

    def _nested(self, name: str, args: tuple) -> str:
        out = self._print(args[-1])
        for a in reversed(args[:-1]):
            out = f"{name}({self._print(a)}, {out})"
        return out

    def _print_erf(self, expr: Any) -> str:
        return f"_erf({self._print(expr.args[0])})"

    def _print_erfc(self, expr: Any) -> str:
        # (the module's own, from runtime/numpy_erf: 1 - erf cancels where erfc is small)
        return f"_erfc({self._print(expr.args[0])})"

    def _print_Or(self, expr: Any) -> str:
        # (NumPyPrinter's logical_or.reduce of a tuple cannot broadcast a row with a column)
        return self._nested("numpy.logical_or", expr.args)

    def _print_And(self, expr: Any) -> str:
        return self._nested("numpy.logical_and", expr.args)

    def _print_Atan2Q(self, expr: Any) -> str:
        return f"numpy.arctan2({self._print(expr.args[0])}, {self._print(expr.args[1])})"

    def _print_Float(self, expr: Any) -> str:
        return repr(float(expr))

    def _print_Piecewise(self, expr: Any) -> str:
        # numpy.where chains (no NaN default): the last condition of a SymPy
        # Piecewise built here is always True.
        out = None
        for value, cond in reversed(expr.args):
            v = self._print(value)
            if out is None:
                out = v if cond == sp.true else f"numpy.where({self._print(cond)}, {v}, numpy.nan)"
            else:
                out = f"numpy.where({self._print(cond)}, {v}, {out})"
        return out


def printer_for(backend: str) -> PythonCodePrinter:
    """A fresh printer for ``backend`` (``"numba"``, ``"numba_loop"`` or ``"numpy"``)."""
    settings = {"fully_qualified_modules": True, "standard": "python3"}
    if backend == "numba_loop":
        return NumbaLoopPrinter(settings)
    if backend == "numba":
        return NumbaPrinter(settings)
    return NumpyKernelPrinter(settings)
