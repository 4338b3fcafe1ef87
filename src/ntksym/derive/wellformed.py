"""Well-formedness: both sides of an equality carry the same free indices, no unknowns.

Inside an expectation the units of a layer are exchangeable, so an index alone in its
slot is not free (see :func:`free_indices`).
"""

from __future__ import annotations

import sympy as sp

from ntksym.derive.statements import pairs
from ntksym.derive.symbols import (
    NAMES,
    OBJECTS,
    SCALARS,
    ZF_INFO,
    E,
    GaussE,
    latex,
    theta,
    width_layer,
)
from ntksym.derive.text import Text

__all__ = ["free_indices", "is_name", "stray_index", "unknown_symbols", "well_formed"]


def _slots(e: sp.Basic, bound: frozenset) -> dict:
    """Index symbols by slot (object family and position) inside an expectation."""
    out: dict = {}
    bound = bound | {v for s in e.atoms(sp.Sum) for v in s.variables}
    for t in e.atoms(sp.Indexed):
        info = OBJECTS.get(t.base)
        for pos, ind in enumerate(t.indices):
            if isinstance(ind, sp.Symbol) and ind not in bound:
                key = t.base if info is None else (info.kind, info.layer)
                out.setdefault((key, pos), set()).add(ind)
    for f in e.atoms(sp.Function):
        if f.func.__name__ in ZF_INFO and isinstance(f.args[0], sp.Symbol):
            if f.args[0] not in bound:
                key = ("z", ZF_INFO[f.func.__name__][0])
                out.setdefault((key, 0), set()).add(f.args[0])
    return out


def free_indices(e: sp.Basic, bound: frozenset = frozenset()) -> set[sp.Symbol]:
    """Indices on which the value of ``e`` can depend.

    Inside an expectation the units of a layer are exchangeable, so the value depends on
    an index only through its equality with other indices of the same slot: an index that
    is alone in its slot (``E[z_k z'_k]``) is not free; ``E[w_ki w_k'i]`` depends on
    ``k, k'``.
    """
    if isinstance(e, GaussE):
        return set()
    if isinstance(e, E) or getattr(e, "exchangeable_units", False):
        rel: set = set()
        for syms in _slots(e, bound).values():
            if len(syms) > 1:
                rel |= syms
        return rel
    if isinstance(e, sp.Sum):
        inner = bound | {v for v, *_ in e.limits}
        out = free_indices(e.function, inner)
        for _, lo, hi in e.limits:
            out |= free_indices(lo, bound) | free_indices(hi, bound)
        return out
    if isinstance(e, sp.Symbol):
        is_index = e.is_integer and width_layer(e) is None and e.name not in ("l", "L")
        return {e} if is_index and e not in bound else set()
    if isinstance(e, sp.Indexed):
        return set().union(*(free_indices(i, bound) for i in e.indices))
    if isinstance(e, sp.IndexedBase):
        return set()
    return set().union(set(), *(free_indices(a, bound) for a in e.args))


def unknown_symbols(e: sp.Basic) -> set[sp.Symbol]:
    """Symbols that are neither indices nor declared scalars (:func:`symbols.scalar`)."""
    if isinstance(e, (GaussE, sp.Indexed, sp.IndexedBase)):
        return set()
    bound = getattr(e, "bound_variables", ())
    if bound:  # an expectation over its own dummy variables (rules_layers.GaussPair)
        return set().union(set(), *(unknown_symbols(a) for a in e.args)) - set(bound)
    if isinstance(e, sp.Symbol):
        ok = e.is_integer or e == theta or SCALARS.get(e.name) == e
        return set() if ok else {e}
    return set().union(set(), *(unknown_symbols(a) for a in e.args))


def is_name(e: sp.Basic) -> bool:
    """Whether ``e`` is a named kernel quantity (``Sigma``, ``Theta``, ...)."""
    return isinstance(e, sp.Function) and e.func.__name__ in NAMES


def well_formed(stmt: sp.Basic) -> tuple[bool, Text | str]:
    """Both sides of each equality carry the same free indices and no unknown symbols."""
    for lhs, rhs in pairs(stmt):
        unk = unknown_symbols(lhs) | unknown_symbols(rhs)
        if unk:
            names = Text.join(", ", sorted(unk, key=latex))
            return False, Text("ill-formed: undefined symbol ", names)
        if is_name(lhs) or lhs.is_number or rhs.is_number:
            continue  # a definition introduces its own name; a constant has no indices
        fl, fr = free_indices(lhs), free_indices(rhs)
        if fl != fr and not _pattern_only(lhs, rhs):
            odd = Text.join(", ", sorted(fl ^ fr, key=lambda s: s.name))
            return False, Text("ill-formed: free index ", odd, " on one side only")
    return True, "well formed"


def _pattern_only(lhs: sp.Basic, rhs: sp.Basic) -> bool:
    """One side has no free index, the other depends on its indices only inside ``E``.

    An expectation depends on its indices only through which of them are equal, so for
    a given pattern (``k != k'`` say) its value may well be index-free (``E[z_k z'_k'] =
    beta^2`` when the biases are not centred).
    """

    def outside_e(e: sp.Basic) -> set:
        return free_indices(e.replace(lambda t: isinstance(t, E), lambda t: sp.S.One))

    for one, other in ((lhs, rhs), (rhs, lhs)):
        if not free_indices(one) and other.has(E) and not outside_e(other):
            return True
    return False


def stray_index(stmt: sp.Basic) -> tuple[sp.Symbol, list[sp.Basic]] | None:
    """The first index free on one side of an equality only, with the factors carrying it."""
    for lhs, rhs in pairs(stmt):
        if is_name(lhs) or lhs.is_number or rhs.is_number:
            continue
        odd = sorted(free_indices(lhs) ^ free_indices(rhs), key=lambda s: s.name)
        if odd:
            s = odd[0]
            carriers = [
                t
                for t in (
                    lhs.atoms(sp.Indexed)
                    | rhs.atoms(sp.Indexed)
                    | lhs.atoms(sp.KroneckerDelta)
                    | rhs.atoms(sp.KroneckerDelta)
                    | {
                        f
                        for f in (lhs.atoms(sp.Function) | rhs.atoms(sp.Function))
                        if f.func.__name__ in ZF_INFO
                    }
                )
                if s in t.free_symbols
            ]
            return s, sorted(carriers, key=sp.default_sort_key)
    return None
