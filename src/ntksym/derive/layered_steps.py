"""Small building blocks the layer-by-layer derivation documents share.

``derivations/per_layer.py`` and ``derivations/residual.py`` unfold definitions,
differentiate through them and sum over one layer's parameters in the same way; the
pieces live here (re-exported by :mod:`ntksym.extend`) instead of in each document.
"""

from __future__ import annotations

import sympy as sp

from ntksym.derive.registry import Context, apply_rule
from ntksym.derive.symbols import OBJECTS, ZF, ZF_INFO, L, PSum, W, b, theta

__all__ = [
    "derivative",
    "differentiate_unfolded",
    "layer_parameter_sum",
    "theta_pair",
    "unfold",
    "with_theta",
]


def unfold(e: sp.Basic, ctx: Context, times: int = 1) -> sp.Basic:
    """Apply the ``definition`` rule ``times`` times."""
    for _ in range(times):
        e = apply_rule("definition", e, ctx)
    return e


def derivative(f: sp.Expr, p: sp.Expr) -> sp.Derivative:
    """The unevaluated derivative ``d f / d p``."""
    return sp.Derivative(f, p, evaluate=False)


def layer_parameter_sum(
    layer: object,
    fx: sp.Expr,
    fxp: sp.Expr,
    n_in: sp.Expr,
    n_out: sp.Expr,
    i: sp.Symbol,
    j: sp.Symbol,
) -> sp.Expr:
    """The NTK's sum over one layer's weights ``W[j, i]`` and biases ``b[j]``."""
    return sp.Sum(
        derivative(fx, W(layer)[j, i]) * derivative(fxp, W(layer)[j, i]),
        (i, 1, n_in),
        (j, 1, n_out),
    ) + sp.Sum(derivative(fx, b(layer)[j]) * derivative(fxp, b(layer)[j]), (j, 1, n_out))


def differentiate_unfolded(e: sp.Expr, ctx: Context, times: int) -> sp.Expr:
    """Unfold inside every derivative of ``e`` ``times`` times, then apply the chain rule."""
    e = e.replace(
        lambda t: isinstance(t, sp.Derivative),
        lambda t: sp.Derivative(unfold(t.expr, ctx, times), *t.variables),
    )
    return apply_rule("chain_rule", e, ctx)


def with_theta(e: sp.Expr) -> sp.Expr:
    """``alpha~^(L)_i`` in ``e`` as a function of a generic parameter of the first layers."""

    def is_zl(t: sp.Basic) -> bool:
        info = OBJECTS.get(getattr(t, "base", None))
        return (
            isinstance(t, sp.Indexed) and info is not None and info.kind == "z" and info.layer == L
        )

    return e.replace(is_zl, lambda t: ZF(L, OBJECTS[t.base].prime)(t.indices[0], theta))


def theta_pair(t: PSum) -> tuple[sp.Expr, sp.Expr]:
    """The unit indices ``(i, i')`` of a parameter sum of ``alpha~^(L)`` derivatives."""
    idx = {ZF_INFO[d.expr.func.__name__][1]: d.expr.args[0] for d in t.args[0].atoms(sp.Derivative)}
    return idx[False], idx[True]
