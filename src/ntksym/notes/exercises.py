"""Exercises the engine checks: "find the error" in a step with a planted error.

An error is planted in the printed statement of a verified step (a square dropped, a
Kronecker delta dropped, a layer index shifted); the engine re-runs the step on the
altered statement (:meth:`~ntksym.derive.Derivation.with_printed`,
:meth:`~ntksym.derive.Derivation.run_one`). Only plantings the engine detects become
exercises; the answer is the step as the source printed it, with the engine's reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import sympy as sp
from sympy.core.function import AppliedUndef

from ntksym.derive import Derivation
from ntksym.derive.text import Text
from ntksym.notes.content import readable_indices, statement_lines
from ntksym.notes.display import one_line

__all__ = ["Exercise", "PREFERRED", "find_the_error", "plantings"]

#: Steps that make good exercises, by derivation (others: their last checked steps).
PREFERRED: dict[str, tuple[str, ...]] = {"seed": ("12.2", "18", "27")}

#: Layer functions whose layer argument a planting may shift.
_LAYERED = ("Sigma", "Sigmadot", "Theta", "Thetainf")


def _first(
    e: sp.Basic, match: Callable[[sp.Basic], bool], new: Callable[[sp.Basic], sp.Basic]
) -> sp.Basic:
    """``e`` with the first subterm (in preorder) that ``match`` accepts replaced."""
    for t in sp.preorder_traversal(e):
        if match(t):
            return e.xreplace({t: new(t)})
    return e


def _drop_square(e: sp.Basic) -> sp.Basic:
    return _first(e, lambda t: t.is_Pow and t.exp == 2 and t.base.is_Symbol, lambda t: t.base)


def _drop_delta(e: sp.Basic) -> sp.Basic:
    return _first(e, lambda t: isinstance(t, sp.KroneckerDelta), lambda t: sp.Integer(1))


def _shift_layer(e: sp.Basic) -> sp.Basic:
    return _first(
        e,
        lambda t: isinstance(t, AppliedUndef) and t.func.__name__ in _LAYERED,
        lambda t: t.func(t.args[0] - 1, *t.args[1:]),
    )


#: The plantings, in the order they are tried: (what the answer says, how).
PLANTINGS: tuple[tuple[str, Callable[[sp.Basic], sp.Basic]], ...] = (
    ("a square is missing", _drop_square),
    ("a Kronecker delta is missing", _drop_delta),
    ("a layer index is one too small", _shift_layer),
)


def plantings(stmt: sp.Basic) -> Iterator[tuple[str, sp.Basic]]:
    """Altered copies of ``stmt``: ``(what was planted, the altered statement)``.

    Only the right-hand side of an equality is altered, so the statement still says
    what it is about.
    """
    if not isinstance(stmt, sp.Eq):
        return
    for what, fn in PLANTINGS:
        rhs = fn(stmt.rhs)
        if rhs != stmt.rhs:
            yield what, sp.Eq(stmt.lhs, rhs, evaluate=False)


@dataclass(frozen=True)
class Exercise:
    """A "find the error" exercise.

    Attributes:
        label: the step; planted: the altered statement (display lines).
        answer: the step as printed (display lines); what: the planted error in words.
        verdict: the engine's verdict on the altered step; detail: its reason.
    """

    label: str
    planted: list[str]
    answer: list[str]
    what: str
    verdict: str
    detail: Text


def _candidates(deriv: Derivation, verified: set[str]) -> list[str]:
    preferred = [x for x in PREFERRED.get(deriv.name, ()) if x in verified]
    if preferred:
        return preferred
    ok = [s.label for s in deriv.steps if s.label in verified and isinstance(s.printed, sp.Eq)]
    return ok[-3:]


def find_the_error(deriv: Derivation, verified: Sequence[str], limit: int = 3) -> list[Exercise]:
    """Up to ``limit`` exercises from the verified steps of ``deriv``.

    Args:
        deriv: The derivation.
        verified: Labels of its steps the engine verified.
        limit: The number of exercises.

    Returns:
        The exercises whose planted error the engine detects (verdict not "verified").
    """
    out: list[Exercise] = []
    for label in _candidates(deriv, set(verified)):
        stmt = deriv.step(label).printed
        for what, altered in plantings(stmt):
            res = deriv.with_printed(label, altered).run_one(label, extra=False)
            if res.verdict == "verified":
                continue
            out.append(
                Exercise(
                    label=label,
                    planted=one_line(statement_lines(altered)),
                    answer=one_line(statement_lines(stmt)),
                    what=what,
                    verdict=res.verdict,
                    detail=readable_indices(res.detail),
                )
            )
            break
        if len(out) >= limit:
            break
    return out
