"""The variable ``u`` of every activation, and how an expression in it is evaluated and analysed.

Float64 (NumPy) and mpmath evaluation by ``lambdify`` with the conventions of the seed
(``Heaviside(0) = 1/2``; a Dirac delta refuses pointwise evaluation), and the kinks of an
expression (the points where it is not differentiable).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import mpmath
import numpy as np
import sympy as sp

from ntksym.errors import ActivationError

__all__ = ["u", "lambdify_numpy", "kinks_of"]


#: The variable every activation is written in.
u = sp.Symbol("u", real=True)


# --------------------------------------------------------------------------- numerics
def _np_erf(x: Any) -> Any:
    """Vectorised ``math.erf`` (NumPy itself has no erf and SciPy is not required)."""
    x = np.asarray(x, dtype=float)
    return np.vectorize(math.erf, otypes=[float])(x) if x.ndim else math.erf(float(x))


def _np_heaviside(x: Any, h0: Any = 0.5) -> Any:
    return np.heaviside(x, h0)


def _no_delta(*_: Any) -> Any:
    raise ActivationError(
        "this derivative contains a Dirac delta (the activation has a jump); it has no "
        "pointwise value: use a closed-form dual kernel instead"
    )


_NUMPY_MODULES: list[Any] = [
    {"erf": _np_erf, "Heaviside": _np_heaviside, "DiracDelta": _no_delta},
    "numpy",
]


def _mp_heaviside(x: Any, h0: Any = 0.5) -> Any:
    return mpmath.mpf(1) if x > 0 else (mpmath.mpf(0) if x < 0 else mpmath.mpf(h0))


def _mp_sign(x: Any) -> Any:
    return mpmath.sign(x)


MPMATH_MODULES: list[Any] = [
    {
        "Heaviside": _mp_heaviside,
        "sign": _mp_sign,
        "DiracDelta": _no_delta,
        "Max": max,
        "Min": min,
        "Abs": abs,
    },
    "mpmath",
]


def lambdify_numpy(expr: sp.Expr) -> Callable[[Any], Any]:
    """Float64 evaluation of an expression in u (SymPy conventions at kinks, see module)."""
    f = sp.lambdify(u, expr, modules=_NUMPY_MODULES)

    def wrapped(x: Any) -> Any:
        x = np.asarray(x, dtype=float)
        return np.broadcast_to(np.asarray(f(x), dtype=float), x.shape).copy()

    wrapped.__doc__ = f"NumPy evaluation of {sp.sstr(expr)}."
    return wrapped


def kinks_of(expr: sp.Expr) -> tuple[float, ...]:
    """Zeros of the arguments of the non-smooth atoms in ``expr``."""
    candidates: list[sp.Expr] = []
    for atom in expr.atoms(sp.Max, sp.Min):
        args = list(atom.args)
        candidates += [a - b for i, a in enumerate(args) for b in args[i + 1 :]]
    for atom in expr.atoms(sp.Abs, sp.Heaviside, sp.sign, sp.DiracDelta):
        candidates.append(atom.args[0])
    points: set[float] = set()
    for c in candidates:
        if not c.has(u):
            continue
        poly = sp.Poly(c, u) if c.is_polynomial(u) else None
        if poly is None or poly.degree() > 4:
            continue
        for r in sp.real_roots(poly) if poly.domain.is_Exact else poly.nroots():
            if r.is_real:
                points.add(float(r))
    return tuple(sorted(points))
