"""An activation's diagonal map ``S -> E[sigma(u)^2]`` as NumPy code in long double.

The variances' low parts after an activation whose diagonal map is not affine
(:mod:`ntksym.codegen.runtime.numpy_long`) compare the float64 map with this one. It is
the SymPy diagonal of :func:`ntksym.codegen.spec.kernel_spec` printed by NumPy's printer
with every constant that is not a small integer in long double (``pi``, ``E``, rationals,
floats), so that nothing in it is rounded to float64 (a float64 ``pi`` would shift every
variance by its rounding). The same source is written into the fused modules and, through
:func:`long_diag`, run by the float64 layer maps.

``exp(x) - 1`` and ``log(1 + x)`` are printed as ``expm1`` and ``log1p`` (SymPy's
rewriting), so that ``1 - e^(-2S)`` keeps its digits at small ``S``. Each source is
checked before use: evaluated at the variances :data:`CHECK_AT` (1e-12 to 1e6) against
the same SymPy expression at 40 digits by mpmath, it must agree to 1e-17 relative (long
double's precision is 5.4e-20) wherever the value is within long double's range, else
there is none (the low part stays 0). A form that cancels somewhere in that range (a
difference of exponentials that ``expm1`` does not cover) is refused that way.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import mpmath
import numpy as np
import sympy as sp
from sympy.codegen.rewriting import expm1_opt, log1p_opt, optimize
from sympy.printing.numpy import NumPyPrinter

from ntksym.activations import Activation
from ntksym.codegen.runtime.numpy_long import LONG_DOUBLE
from ntksym.codegen.spec import S, affine_diag, kernel_spec
from ntksym.errors import ActivationError, NoClosedFormError

__all__ = ["long_diag", "long_diag_source"]

#: Where each source is checked against mpmath (variances 1e-12..1e6, two per decade),
#: and how closely it must agree.
CHECK_AT = tuple(f"{m}e{k}" for k in range(-12, 7) for m in ("1.3", "4.7"))
CHECK_RTOL = 1e-17
#: Values beyond this are outside long double's range (1.2e4932) and not checked.
_HUGE = mpmath.mpf("1e4900")
_PI = "3.14159265358979323846264338327950288"
_E = "2.71828182845904523536028747135266250"


class _LongPrinter(NumPyPrinter):
    """NumPy code whose constants are ``_L(...)`` (``numpy.longdouble``) literals."""

    def _print_Integer(self, expr: Any) -> str:
        return str(expr.p) if abs(expr.p) < 2**53 else f'_L("{expr.p}")'

    def _print_Rational(self, expr: Any) -> str:
        return f'(_L("{expr.p}") / _L("{expr.q}"))'

    def _print_Float(self, expr: Any) -> str:
        return f"_L({float(expr)!r})"

    def _print_Pi(self, expr: Any) -> str:
        return f'_L("{_PI}")'

    def _print_Exp1(self, expr: Any) -> str:
        return f'_L("{_E}")'


def _diag(act: Activation) -> sp.Expr | None:
    """The non-affine closed-form diagonal of ``act``, or None."""
    if affine_diag(act) is not None:
        return None  # (its low part is exact: variance_dd.affine_lo)
    try:
        diag = kernel_spec(act).diag
    except (ActivationError, NoClosedFormError):
        return None
    if diag is None or not diag.free_symbols <= {S} or diag.has(sp.Piecewise):
        return None  # (sign's Piecewise: its variances are 1 exactly)
    return optimize(diag, [expm1_opt, log1p_opt])


def _agrees(diag: sp.Expr, f: Callable[[Any], Any]) -> bool:
    exact = sp.lambdify(S, diag, "mpmath")
    at = np.array([np.longdouble(x) for x in CHECK_AT])
    with np.errstate(all="ignore"):
        got = np.broadcast_to(f(at), at.shape)
    with mpmath.workdps(40):
        for x, g in zip(at, got, strict=True):
            want = exact(mpmath.mpf(str(x)))
            if abs(want) > _HUGE:
                continue
            if not (np.isfinite(g) and abs(mpmath.mpf(str(g)) - want) <= CHECK_RTOL * abs(want)):
                return False
    return True


def _compile(source: str, name: str) -> Callable[[Any], Any]:
    # the source is printed from a SymPy expression (no user text), as lambdify does
    namespace: dict[str, Any] = {"numpy": np, "_L": np.longdouble}
    exec(source, namespace)  # noqa: S102
    return namespace[name]


@functools.lru_cache(maxsize=128)
def long_diag_source(act: Activation, name: str) -> str | None:
    """The function ``name(S)``: ``act``'s diagonal map in long double, or None.

    None where the map is affine (its low part is exact without it), not known in closed
    form, a ``Piecewise``, where NumPy's long double is no wider than float64, or where
    the printed code does not agree with mpmath (:data:`CHECK_RTOL`). The code needs
    ``numpy`` and ``_L = numpy.longdouble`` in its namespace.
    """
    diag = _diag(act)
    if diag is None or not LONG_DOUBLE:
        return None
    code = _LongPrinter({"fully_qualified_modules": True}).doprint(diag)
    source = f"def {name}(S):\n    return {code}\n"
    try:
        ok = _agrees(diag, _compile(source, name))
    except (TypeError, ValueError, AttributeError, NameError, ZeroDivisionError):
        ok = False  # (a function NumPy has no long double loop for, ...)
    return source if ok else None


@functools.lru_cache(maxsize=128)
def long_diag(act: Activation) -> Callable[[Any], Any] | None:
    """``act``'s diagonal map in long double, compiled (:func:`long_diag_source`), or None."""
    source = long_diag_source(act, "_long")
    return None if source is None else _compile(source, "_long")
