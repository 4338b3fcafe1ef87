r"""The source's reading order for products and sums, which SymPy's canonical order loses.

SymPy stores ``a*b`` and ``a + b`` sorted by its own key, so a statement transcribed
from the seed prints ``E[\sigma(g(x'))\sigma(g(x))]`` and
``\Sigma\delta + \dot\Sigma\Theta_\infty\delta`` where the seed writes
``E[\sigma(g(x))\sigma(g(x'))]`` and ``\Theta_\infty\dot\Sigma\delta + \Sigma\delta``.
The notes print in the seed's conventions instead:

* **x before x'**: of two factors that differ only by primes (``\sigma(g(x))`` and
  ``\sigma(g(x'))``, ``\tilde\alpha_k(x)`` and ``\tilde\alpha_{k'}(x')``), the one with
  fewer primes comes first;
* **earlier layers first**: the layer kernels (``\Sigma``, ``\dot\Sigma``, ``\Theta``,
  ``\Theta_\infty``) of a product are ordered by layer, and the terms of a sum whose
  terms all carry such kernels are ordered by their earliest layer (the recursion
  reads ``\Theta^{(L)}_\infty \dot\Sigma^{(L+1)} + \Sigma^{(L+1)}``).

Both rules are stable: anything they do not compare keeps SymPy's order. They only
reorder what is printed; no statement is changed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sympy as sp

from ntksym.derive import symbols as S

__all__ = ["LAYER_KERNELS", "reading_order_factors", "reading_order_terms"]

#: The engine's functions whose first argument is a layer.
LAYER_KERNELS = frozenset((S.Sigma, S.Sigma_t, S.Sigma_dot, S.Theta, S.Theta_inf))


def _layer(e: sp.Basic) -> sp.Basic | None:
    """The layer of a layer kernel ``Sigma(L + 1)`` (its first argument), else None."""
    if isinstance(e, sp.Function) and e.func in LAYER_KERNELS and e.args:
        return e.args[0]
    return None


def _offset(layer: sp.Basic) -> sp.Basic:
    """``L + 1`` -> 1, ``L`` -> 0 (the constant part of a layer expression)."""
    return layer.as_coeff_Add()[0] if isinstance(layer, sp.Expr) else sp.Integer(0)


def _earliest(term: sp.Basic) -> tuple[sp.Basic, sp.Basic] | None:
    """The earliest layer kernel in ``term``: ``(its layer's symbol part, its offset)``."""
    layers = [_layer(t) for t in sp.preorder_traversal(term)]
    found = [x for x in layers if x is not None]
    if not found:
        return None
    best = min(found, key=lambda x: (_offset(x), sp.default_sort_key(x)))
    return best - _offset(best), _offset(best)


def reading_order_terms(terms: Sequence[sp.Basic]) -> list[sp.Basic]:
    """The terms of a sum, earliest layer first when every term carries a layer kernel."""
    keys = [k for t in terms if (k := _earliest(t)) is not None]
    if len(terms) < 2 or len(keys) != len(terms):
        return list(terms)
    if len({k[0] for k in keys}) != 1:  # layers of different depths (l and L) do not compare
        return list(terms)
    order = sorted(range(len(terms)), key=lambda n: keys[n][1])
    return [terms[n] for n in order]


def reading_order_factors(
    factors: Sequence[sp.Basic], tex: Callable[[sp.Basic], str]
) -> list[sp.Basic]:
    """The factors of a product in the seed's order (see the module docstring).

    Args:
        factors: The factors in SymPy's print order.
        tex: The printer's LaTeX of one factor (twins are recognised by their LaTeX
            with the primes removed).
    """
    out = list(factors)
    # layer kernels by layer, in the places the kernels already occupy
    at = {n: layer for n, f in enumerate(out) if (layer := _layer(f)) is not None}
    slots = list(at)
    layers = {layer - _offset(layer) for layer in at.values()}
    if len(slots) > 1 and len(layers) == 1:
        kernels = [out[n] for n in sorted(slots, key=lambda n: _offset(at[n]))]
        for n, f in zip(slots, kernels, strict=True):
            out[n] = f
    # x before x': swap twins whose primed member comes first
    printed = [tex(f) for f in out]
    for a in range(len(out)):
        for b in range(a + 1, len(out)):
            same = printed[a].replace("'", "") == printed[b].replace("'", "")
            if same and printed[a].count("'") > printed[b].count("'"):
                out[a], out[b] = out[b], out[a]
                printed[a], printed[b] = printed[b], printed[a]
    return out
