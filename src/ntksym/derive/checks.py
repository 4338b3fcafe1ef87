"""The checks, gathered (the names derivation documents and tests import).

* :func:`symbolic_equal` (:mod:`ntksym.derive.canonical`) — canonical forms compared
  for general widths;
* :func:`exact_finite_width` (:mod:`ntksym.derive.finite_width`) — the statement at
  concrete widths, exactly;
* :func:`well_formed` (:mod:`ntksym.derive.wellformed`) — free indices and unknowns;
* :func:`explain`, :func:`counterexample` (:mod:`ntksym.derive.explain`) — where printed
  and derived differ.
"""

from __future__ import annotations

from ntksym.derive.canonical import canonical, symbolic_equal
from ntksym.derive.explain import counterexample, explain, short_explain
from ntksym.derive.finite_width import NotExact, UndefinedObject, concretize, exact_finite_width
from ntksym.derive.statements import Chain, chain_members, pairs, statement_parts
from ntksym.derive.wellformed import stray_index, well_formed

__all__ = [
    "Chain",
    "NotExact",
    "UndefinedObject",
    "canonical",
    "chain_members",
    "concretize",
    "counterexample",
    "exact_finite_width",
    "explain",
    "pairs",
    "short_explain",
    "statement_parts",
    "stray_index",
    "symbolic_equal",
    "well_formed",
]
