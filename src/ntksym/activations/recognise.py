"""Recognising a typed expression as a named activation, so it gets the named one's kernel.

``"relu(u)"``, ``"max(0, u)"``, ``"u*heaviside(u)"`` and ``"0.5*(u + abs(u))"`` are all the
ReLU; ``"max(u, 0.2*u)"`` is the leaky ReLU of slope 0.2; ``"tanh(u)"`` is ``tanh``. Typed as
text they would otherwise be integrated numerically (slowly, and across a kink, inaccurately);
recognised, they run the named activation's closed form and generated kernel.

Two checks, both exact: an expression identical to a registered activation's after SymPy's
own canonical ordering; and a piecewise-linear expression with its only kink at 0, whose two
halves (``u = t`` and ``u = -t`` with ``t > 0``, where SymPy resolves every ``max``, ``min``,
``abs`` and step exactly) are the lines ``a t`` and ``-b t``: that is ``a*max(u, 0) +
b*min(u, 0)``, the leaky family when ``a = 1``.
"""

from __future__ import annotations

import sympy as sp

from ntksym.activations.expr import kinks_of, u

__all__ = ["piecewise_linear_slopes", "recognise"]

_T = sp.Symbol("t", positive=True)
_KINKED = (sp.Max, sp.Min, sp.Abs, sp.Heaviside, sp.sign)


def piecewise_linear_slopes(expr: sp.Expr) -> tuple[sp.Expr, sp.Expr] | None:
    """``(a, b)`` when ``expr`` is exactly ``a*max(u, 0) + b*min(u, 0)``, else None."""
    if not expr.has(*_KINKED) or any(not isinstance(f, _KINKED) for f in expr.atoms(sp.Function)):
        return None
    if kinks_of(expr) not in ((), (0.0,)):
        return None
    halves = []
    for side in (_T, -_T):
        half = sp.expand(expr.subs(u, side))
        if half.has(*_KINKED) or not half.is_polynomial(_T) or sp.degree(half, _T) > 1:
            return None
        halves.append(half)
    right, left = halves
    if not all(sp.S(c).is_zero for c in (right.coeff(_T, 0), left.coeff(_T, 0))):
        return None
    return right.coeff(_T, 1), -left.coeff(_T, 1)


def recognise(expr: sp.Expr, registry: dict[str, sp.Expr]) -> tuple[str, dict] | None:
    """The registered name (and parameters) that ``expr`` is exactly, or None.

    Args:
        expr: The parsed expression in ``u``.
        registry: Registered parameterless activations, name -> expression.
    """
    for name, reg in registry.items():
        if expr == reg:
            return name, {}
    slopes = piecewise_linear_slopes(expr)
    if slopes is None or float(slopes[0]) != 1.0:  # (SymPy: Float(1.0) != Integer(1))
        return None
    b = float(slopes[1])
    named = {0.0: "relu", 1.0: "identity", -1.0: "abs"}
    if b in named:
        return named[b], {}
    return "leaky_relu", {"slope": b}
