"""The data of a derivation: steps, verdicts and the record of a checked step.

A :class:`Step` pairs the statement *as printed* in the source with a ``derive`` callable
that produces the statement mechanically from earlier steps by registered rules. Checking
a step (:func:`ntksym.derive.judge.run_step`) yields a :class:`StepResult` whose verdict is
one of :data:`VERDICTS`:

* ``verified`` — a check compared two things and could have failed: the printed statement
  equals the derived one for general widths (``symbolic``), or the statement holds exactly
  at concrete widths (``exact-finite-width``), numerically or in Monte-Carlo evidence;
* ``misprint`` — independent evidence shows the *printed* statement false, while the
  derived one passes;
* ``failed`` — the derived statement fails its own check, or printed and derived differ
  and the evidence puts the fault in the derivation code (or cannot place it);
* ``unchecked`` — nothing could be compared (no check applies, or a step it depends on
  has no derived statement); the reason is given;
* ``error`` — an exception was raised while deriving or checking the step; its type,
  message and the rule that raised it are given;
* ``assumed`` — definitions and stated hypotheses (never anything derived).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeAlias

import sympy as sp

from ntksym.derive.rules import Context
from ntksym.derive.symbols import latex
from ntksym.derive.text import Text, as_text

__all__ = ["VERDICTS", "CheckFn", "Step", "StepResult", "TextField", "Verdict", "WidthConfig"]

VERDICTS = ("verified", "misprint", "failed", "unchecked", "error", "assumed")

#: One configuration of the exact finite-width check, ``(layers, widths)``: the values of
#: the layer symbols (``{l: 1}``; ``{}`` for none; the engine adds ``"theta_layers"``) and
#: the width of each layer (``{0: 2, 1: 3}``).
WidthConfig: TypeAlias = tuple[dict[sp.Symbol | str, int], dict[int, int]]


class TextField:
    """A frozen-dataclass field that takes a :class:`Text` or a string and reads as Text.

    Used as ``detail: TextField = TextField()``: the constructor accepts ``Text | str``
    (a string is taken as words, never parsed) and the attribute is always a
    :class:`Text`, which type checkers see too (the descriptor-typed field of
    :mod:`dataclasses`). The default is an empty Text.
    """

    def __init__(self) -> None:
        self._name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = "_" + name

    def __get__(self, obj: object, objtype: type | None = None) -> Text:
        if obj is None:  # the dataclass asks the class for the field's default
            return Text()
        try:
            value: Text = obj.__dict__[self._name]
        except KeyError:  # not set yet: an attribute error, as for a plain field
            raise AttributeError(self._name[1:]) from None
        return value

    def __set__(self, obj: object, value: Text | str) -> None:
        obj.__dict__[self._name] = as_text(value)


@dataclass(frozen=True)
class Verdict:
    """Outcome of checking one step.

    Attributes:
        status: one of :data:`VERDICTS`.
        method: how it was established (``symbolic``, ``exact-finite-width``, ``numeric``,
            ``monte-carlo``; ``definition`` for assumed steps).
        detail: the configurations checked, or every difference found
            (:class:`~ntksym.derive.text.Text`; a string given here is taken as words).
        summary: for a misprint, one line: the first difference and a counterexample.
        statement: the derived statement when the verdict comes with one (a definition
            whose range the engine corrected).
        differences: the smallest differing subterms
            (:class:`ntksym.derive.explain.Difference`), printed vs derived.
        counterexample: concrete values separating printed and derived
            (:class:`ntksym.derive.explain.Counterexample`), if one was found.
        parts: the one-line summary as data: text, and objects with ``render(show)``
            (differences, stray indices, counterexamples) printed by
            :func:`ntksym.derive.explain.render_parts` as LaTeX or plain text.
    """

    status: str
    method: str = ""
    detail: TextField = TextField()
    summary: str = ""
    statement: sp.Basic | None = None
    differences: tuple[Any, ...] = ()
    counterexample: Any = None
    parts: tuple[Any, ...] = ()


#: ``check(statement, ctx, env) -> (holds, method, detail)``; raise NotExact if it does
#: not apply. ``env`` maps earlier labels to their derived statements; ``detail`` is a
#: :class:`~ntksym.derive.text.Text` (or a string, taken as words).
CheckFn = Callable[[sp.Basic, Context, dict], tuple[bool, str, "Text | str"]]


@dataclass(frozen=True)
class Step:
    """One numbered statement of a derivation.

    Attributes:
        label: the source's equation number (``"11"``; ``"23.2"`` for the second line of
            chain (23)).
        printed: the statement as printed (``Eq``, ``Chain``, ``Tends``, ``ForAll``), or
            None for a pure definition.
        rule: name of the rule that justifies the step (a key of ``RULES`` or
            ``"definition"``/``"hypothesis"``).
        uses: labels of earlier steps this one depends on.
        derive: ``derive(env) -> statement`` where ``env`` maps earlier labels to their
            derived statements; None for definitions and hypotheses.
        ctx: index ranges and assumptions.
        configs: ``(layers, widths)`` pairs for the exact finite-width check.
        extra_check: an additional independent check (numeric or Monte Carlo).
        note: logical gaps a careful reader notices: a :class:`~ntksym.derive.text.Text`
            (words and formulas, see :func:`ntksym.derive.text.text`) or a plain string,
            which is shown as words (never read as mathematics).
        quick: whether the step belongs to the quick subset.
    """

    label: str
    printed: sp.Basic | None
    rule: str
    uses: tuple[str, ...] = ()
    derive: Callable[[dict], sp.Basic] | None = None
    ctx: Context = field(default_factory=Context)
    configs: tuple[WidthConfig, ...] = ()
    extra_check: CheckFn | None = None
    note: TextField = TextField()
    quick: bool = True

    def replace(self, **kw: Any) -> Step:
        """A copy with some fields changed."""
        return replace(self, **kw)

    def _repr_latex_(self) -> str:
        return f"$({self.label})\\quad {latex(self.printed)}$"


@dataclass(frozen=True)
class StepResult:
    """The record of one checked step (statements as LaTeX, the derived one also as SymPy).

    Attributes:
        label, rule, note: copied from the step (``note`` as :class:`Text`).
        verdict, method, detail: the :class:`Verdict` (``detail`` as :class:`Text`;
            ``str(detail)`` is the one-line form, ``detail.plain()`` has no LaTeX).
        printed, derived: the two statements as LaTeX.
        seconds: time spent deriving and checking.
        derived_expr: the derived statement (SymPy), or None.
        explanation: one line for a misprint, a failure or an error.
        error: for an ``error`` verdict, ``"<ExceptionType>: <message>"``.
        failed_rule: the rule that raised (``error``), if known.
        printed_expr: the printed statement (SymPy), or None.
        differences: the smallest differing subterms, printed vs derived (SymPy, see
            :class:`ntksym.derive.explain.Difference`).
        counterexample: concrete widths and indices separating them, or None (see
            :class:`ntksym.derive.explain.Counterexample`).
        summary_parts: the explanation as data (see :attr:`Verdict.parts`).
    """

    label: str
    verdict: str
    method: str
    rule: str
    printed: str
    derived: str
    note: Text
    seconds: float
    detail: TextField = TextField()
    derived_expr: Any = None
    explanation: str = ""
    error: str = ""
    failed_rule: str = ""
    printed_expr: Any = None
    differences: tuple[Any, ...] = ()
    counterexample: Any = None
    summary_parts: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "note", as_text(self.note))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``note``, ``detail``: one-line strings; ``*_text``: pieces)."""
        return {
            "label": self.label,
            "verdict": self.verdict,
            "method": self.method,
            "rule": self.rule,
            "printed": self.printed,
            "derived": self.derived,
            "note": str(self.note),
            "detail": str(self.detail),
            "note_text": self.note.as_json(),
            "detail_text": self.detail.as_json(),
            "explanation": self.explanation,
            "error": self.error,
            "failed_rule": self.failed_rule,
            "differences": [
                {"kind": d.kind, "printed": latex(d.printed), "derived": latex(d.derived)}
                for d in self.differences
            ],
            "counterexample": None
            if self.counterexample is None
            else self.counterexample.as_dict(),
            "seconds": round(self.seconds, 4),
        }

    def _repr_latex_(self) -> str:
        return f"$({self.label})\\ {self.derived}$ — {self.verdict} ({self.method})"
