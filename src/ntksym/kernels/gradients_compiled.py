"""The forward-mode recursion of :mod:`ntksym.kernels.gradients` compiled by Numba, entry by entry.

The layer map and all its partial derivatives (the SymPy expressions of
:mod:`ntksym.kernels.partials`) are printed as one scalar Python function with common
subexpressions shared (``sympy.lambdify`` with the ``math`` module: a Piecewise becomes a
conditional expression, so only the branch taken is evaluated) and compiled by Numba; a
compiled loop then runs every entry through the layers with its two tangents. Same
arithmetic as the NumPy version, without its N x N temporaries.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache
from typing import Any

import numba
import numpy as np
import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

from ntksym.activations import Activation
from ntksym.codegen.spec import kernel_spec
from ntksym.kernels.partials import ARGS

__all__ = ["compiled_layer", "pair_loop"]

#: Number of layer-map arguments.
NARGS = len(ARGS)
#: Values per map in the compiled layer's output: the map, then its partials in ARGS order.
WIDTH = 1 + NARGS


def _heaviside_free(expr: sp.Expr) -> sp.Expr:
    """Heaviside steps (from differentiating Max) as Piecewise, which the math printer knows."""
    return expr.replace(
        lambda e: isinstance(e, sp.Heaviside),
        lambda e: sp.Piecewise((sp.Float(1.0), e.args[0] > 0), (sp.Float(0.0), True)),
    )


def _entries(expr: sp.Expr | None) -> list[sp.Expr]:
    if expr is None:
        return [sp.Integer(0)] * WIDTH
    return [_heaviside_free(e) for e in [expr] + [sp.diff(expr, a) for a in ARGS]]


class _Printer(PythonCodePrinter):
    """Python printer with ``x**(-n)`` as ``1.0/x**n`` (Numba raises on ``0.0**(-n)``)."""

    def _print_Pow(self, expr: sp.Pow, rational: bool = False) -> str:
        b, e = expr.as_base_exp()
        if e.is_Integer and e < 0:
            return f"(1.0/({self._print(b ** (-e))}))"
        return super()._print_Pow(expr, rational=rational)


def layer_source(exprs: list[sp.Expr]) -> str:
    """Python source of ``layer(*ARGS, o)`` writing ``exprs`` to ``o[0], o[1], ...``.

    Common subexpressions are computed once (``sympy.cse``); the printer is SymPy's Python
    printer with the ``math`` module, so a Piecewise becomes a conditional expression.
    """
    printer = _Printer({"fully_qualified_modules": True})
    temps, reduced = sp.cse(exprs)
    lines = [f"def layer({', '.join(map(str, ARGS))}, o):"]
    lines += [f"    {name} = {printer.doprint(value)}" for name, value in temps]
    lines += [f"    o[{k}] = {printer.doprint(e)}" for k, e in enumerate(reduced)]
    return "\n".join(lines) + "\n"


@cache
def compiled_layer(act: Activation) -> Callable[..., Any]:
    """``layer(*ARGS, o)`` filling ``o[:3 * WIDTH]``: nngp, ntk, det and their partials.

    Printed from the SymPy expressions of :func:`ntksym.codegen.spec.kernel_spec` (never from
    user text) and compiled by Numba. An absent map (ntk of step, det formed directly) is zeros.
    """
    spec = kernel_spec(act)
    exprs = _entries(spec.nngp) + _entries(spec.ntk) + _entries(spec.det)
    namespace: dict[str, Any] = {"math": math}
    code = compile(layer_source(exprs), f"<ntksym gradient layer of {act.name}>", "exec")
    exec(code, namespace)  # noqa: S102 - source printed by SymPy from SymPy expressions
    return numba.njit(error_model="numpy")(namespace["layer"])


@numba.njit(error_model="numpy", cache=True, inline="always")
def _combine(o: Any, base: int, t: Any) -> float:
    total = 0.0
    for a in range(t.size):
        if t[a] != 0.0:
            total += o[base + 1 + a] * t[a]
    return total


@numba.njit(error_model="numpy")
def pair_loop(
    layer: Any,
    depth: int,
    chains: Any,
    first: Any,
    scales: Any,
    flags: Any,
    out: Any,
    grad: Any,
) -> None:
    """Run every entry through layers 2..depth; results in ``out`` and ``grad[..., (b2, w2)]``.

    ``chains = (V1, dV1, V2, dV2)`` are the diagonal chains and their derivatives,
    ``first = (S12, D, dS12, dD)`` layer 1 (derivatives on a leading axis of 2),
    ``scales = (w2, b2)``, ``flags = (has_det, want_ntk, row0)``: with ``row0 >= 0`` the rows
    are inputs ``row0, row0 + 1, ...`` of the columns and only entries with ``j >= row0 + i``
    are computed (the caller mirrors them).
    """
    V1, dV1, V2, dV2 = chains
    S12, D, dS12, dD = first
    w2, b2 = scales
    has_det, want_ntk, row0 = flags
    n1, n2 = S12.shape
    t = np.empty(NARGS)
    o = np.empty(3 * WIDTH)
    ds, dd, dth = np.empty(2), np.empty(2), np.empty(2)
    dnew, dsd, ddn = np.empty(2), np.empty(2), np.empty(2)
    for i in range(n1):
        for j in range(max(0, row0 + i) if row0 >= 0 else 0, n2):
            s12, d = S12[i, j], D[i, j]
            for p in range(2):
                ds[p], dd[p] = dS12[p, i, j], dD[p, i, j]
                dth[p] = ds[p]
            th = s12
            for lay in range(1, depth):
                v1, v2, m1, m2 = V1[lay - 1, i], V2[lay - 1, j], V1[lay, i], V2[lay, j]
                r1, r2 = np.sqrt(v1), np.sqrt(v2)
                m = r1 * r2
                rho = min(1.0, max(-1.0, s12 / m)) if m > 0 else 0.0
                layer(v1, v2, s12, d, m1, m2, w2, b2, r1 - r2, rho, o)
                e, ed = o[0], o[WIDTH]
                new = w2 * e + b2
                for p in range(2):
                    a1, a2 = dV1[lay - 1, i, p], dV2[lay - 1, j, p]
                    t[0], t[1], t[2], t[3] = a1, a2, ds[p], dd[p]
                    t[4], t[5] = dV1[lay, i, p], dV2[lay, j, p]
                    t[6], t[7] = (1.0, 0.0) if p == 1 else (0.0, 1.0)
                    t[8] = (a1 / (2 * r1) if r1 > 0 else 0.0) - (a2 / (2 * r2) if r2 > 0 else 0.0)
                    t[9] = 0.0
                    if d > 0 and m > 0:
                        t[9] = (ds[p] - s12 / 2 * (a1 / v1 + a2 / v2)) / m
                    dnew[p] = w2 * _combine(o, 0, t) + (1.0 if p == 0 else e)
                    dsd[p] = w2 * _combine(o, WIDTH, t) + (ed if p == 1 else 0.0)
                    if has_det:
                        ddn[p] = _combine(o, 2 * WIDTH, t)
                    else:
                        ddn[p] = t[4] * m2 + m1 * t[5] - 2 * new * dnew[p]
                if want_ntk:
                    sd = w2 * ed
                    for p in range(2):
                        dth[p] = dth[p] * sd + th * dsd[p] + dnew[p]
                    th = th * sd + new
                d = max(o[2 * WIDTH], 0.0) if has_det else max(m1 * m2 - new * new, 0.0)
                s12 = new
                for p in range(2):
                    dd[p], ds[p] = ddn[p], dnew[p]
            res = th if want_ntk else s12
            out[i, j] = res
            for p in range(2):
                grad[i, j, p] = dth[p] if want_ntk else ds[p]
