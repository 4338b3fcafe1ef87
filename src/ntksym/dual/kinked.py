"""Dual maps of kinked activations without a closed form, split at their kinks.

:func:`kinked_maps` runs the rule of :mod:`ntksym.dual.kinked_rule` on arrays of
covariances, with the activation and its derivative printed by SymPy (never from user
text) and compiled by Numba once per activation and process (the rule itself once per
machine, in Numba's disk cache). Where :func:`ntksym.dual.split.split_of` writes the
activation as ramps plus a smooth remainder, the rule integrates the ramps in closed
form and the remainder without split points. Where the rule does not reach its
tolerance, it says so with its error estimate (a ``RuntimeWarning``).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

from ntksym.activations import Activation
from ntksym.activations.expr import u
from ntksym.activations.overflow import exp_safe
from ntksym.dual.kinks import kink_points
from ntksym.dual.split import split_of
from ntksym.errors import ActivationError

__all__ = ["TARGET", "kinked_maps", "compiled_pair", "function_source"]

#: Relative accuracy promised; a covariance whose error estimate exceeds it is reported.
TARGET = 1e-12


class _Printer(PythonCodePrinter):
    """Python printer with ``x**(-n)`` as ``1.0/x**n`` (Numba raises on ``0.0**(-n)``)."""

    def _print_Pow(self, expr: sp.Pow, rational: bool = False) -> str:
        b, e = expr.as_base_exp()
        if e.is_Integer and e < 0:
            return f"(1.0/({self._print(b ** (-e))}))"
        return super()._print_Pow(expr, rational=rational)


def _pointwise(expr: sp.Expr) -> sp.Expr:
    """Heaviside steps (from differentiating Max/Min) as Piecewise, which the printer knows.

    SymPy's convention ``Heaviside(0) = 1/2`` is kept: a kink is a split point of the rule,
    where a single value never counts.
    """
    return expr.replace(
        lambda e: isinstance(e, sp.Heaviside),
        lambda e: sp.Piecewise(
            (sp.Float(1.0), e.args[0] > 0), (sp.Float(0.5), sp.Eq(e.args[0], 0)), (0.0, True)
        ),
    )


def function_source(name: str, expr: sp.Expr) -> str:
    """Python source of ``name(u)`` returning ``expr`` in float64 (``math`` functions)."""
    printer = _Printer({"fully_qualified_modules": True})
    body = printer.doprint(_pointwise(exp_safe(expr, u)))
    return f"def {name}(u):\n    return float({body})\n"


@functools.lru_cache(maxsize=32)
def compiled_pair(name: str, expr: sp.Expr) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The activation and its derivative, printed by SymPy and compiled by Numba (cached).

    They are compiled as C callbacks (``numba.cfunc``) of the one type
    ``float64(float64)``, so the rule that takes them (:func:`~.kinked_rule.pair_maps`)
    compiles once for every activation and is cached on disk by Numba: a new activation
    costs only the compilation of these two small functions.
    """
    import numba

    act = Activation(name, expr)
    if act.has_distributional_derivative:
        raise ActivationError(
            f"the derivative of {name!r} contains a Dirac delta: the kink-aware rule needs "
            "pointwise values"
        )
    out = []
    for fname, e in (("sigma", act.expr), ("dsigma", act.derivative)):
        namespace: dict[str, Any] = {"math": math}
        code = compile(function_source(fname, e), f"<ntksym {fname} of {name}>", "exec")
        exec(code, namespace)  # noqa: S102 - source printed by SymPy from SymPy expressions
        out.append(numba.cfunc("float64(float64)", error_model="numpy")(namespace[fname]))
    return out[0], out[1]


def kinked_maps(
    act: Activation,
    s11: np.ndarray,
    s12: np.ndarray,
    s22: np.ndarray,
    det: np.ndarray,
    *,
    ntk: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """``E[sigma(u) sigma(v)]`` and (when ``ntk``) ``E[sigma'(u) sigma'(v)]``, split at kinks.

    Args:
        act: An activation whose derivative has pointwise values.
        s11: Variances of u (checked, broadcastable: see :func:`ntksym.dual.covariance.prepare`).
        s12: Covariances.
        s22: Variances of v.
        det: ``s11 s22 - s12^2 >= 0``, accurately computed.
        ntk: Whether to compute the derivative map too.

    Returns:
        Float64 arrays of the broadcast shape (the second None unless ``ntk``).

    Warns:
        RuntimeWarning: Where the error estimate of the rule exceeds :data:`TARGET`, with
            the largest estimate and how many covariances it concerns.
    """
    from ntksym.dual.kinked_rule import pair_maps

    f, df = compiled_pair(act.name, act.expr)
    kinks = np.array(kink_points(act), dtype=float)
    split = split_of(act)
    if split is None:  # the rule on sigma itself, split at its kinks
        r, dr = f, df
        geo = (kinks, kinks, np.empty(0), np.empty(0))
    else:  # sigma = ramps + a smooth remainder
        r, dr = compiled_pair(f"{act.name} (smooth part)", split.remainder)
        corners, slopes = (np.array(x, dtype=float) for x in (split.corners, split.slopes))
        geo = (kinks, np.empty(0), corners, slopes)
    shape = np.broadcast(s11, s12, s22, det).shape
    a, b, c, d = (
        np.ascontiguousarray(np.broadcast_to(x, shape), dtype=float).ravel()
        for x in (s11, s12, s22, det)
    )
    e = np.empty(a.size)
    ed = np.empty(a.size)
    est = np.zeros(a.size)
    pair_maps(f, df, r, dr, bool(ntk), a, b, c, d, geo, e, ed, est)
    bad = int(np.count_nonzero(~(est <= TARGET)))
    if bad:
        warnings.warn(
            f"ntksym: the kink-aware quadrature of {act.name} reached only {np.nanmax(est):.1e} "
            f"relative (its error estimate) at {bad} of {a.size} "
            f"covariances; the target is {TARGET:.0e}",
            RuntimeWarning,
            stacklevel=3,
        )
    return e.reshape(shape), (ed.reshape(shape) if ntk else None)
