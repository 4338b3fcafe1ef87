"""What the notes say: the steps of a checked derivation and a summary.

Everything here is data for the templates; nothing is formatted for one output format
except the displayed statements, which are LaTeX from
:class:`~ntksym.notes.printer.NotesPrinter` (GitHub's Markdown renders the same LaTeX
between dollar signs). Rule descriptions, check details, notes and hypotheses are
:class:`~ntksym.derive.text.Text` (words and formulas), printed by the templates' filters
(:func:`ntksym.notes.build.tex_text`, :func:`~ntksym.notes.build.md_text`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from ntksym.derive import VERDICTS, Derivation, ForAll, StepResult, Tends
from ntksym.derive.explain import StrayIndex
from ntksym.derive.limits import StrongerRelation
from ntksym.derive.symbols import width_layer
from ntksym.derive.text import Tex, Text, as_text
from ntksym.notes.course import limit_of, rule_text, step_sentence
from ntksym.notes.display import drop_repeats, marked_pairs, one_line
from ntksym.notes.printer import is_machine, notes_latex, statement_members

__all__ = [
    "StepView",
    "DerivationView",
    "METHOD_TEXT",
    "statement_lines",
    "derivation_view",
]

#: How each verification method is described in the notes.
METHOD_TEXT = {
    "symbolic": "symbolic identity for general widths",
    "exact-finite-width": "exact computation at concrete widths",
    "numeric": "high-precision numerical evaluation",
    "monte-carlo": "Monte Carlo evidence with its error bar",
    "well-formedness": "index bookkeeping (free indices must match on both sides)",
    "definition": "definition or stated hypothesis",
    "": "not established",
}


def statement_lines(stmt: sp.Basic | None, highlight: Sequence[sp.Basic] = ()) -> list[str]:
    r"""A statement as display lines: the first member, then ``= member`` (or ``\\to``).

    Args:
        stmt: An engine statement (``Eq``, ``Chain``, ``Tends``, ``ForAll``) or an
            expression.
        highlight: subexpressions to print marked (``\\hl{...}``).

    Returns:
        LaTeX lines; joining them with spaces gives the whole statement.
    """
    if stmt is None:
        return []
    suffix = ""
    inner = stmt
    if isinstance(stmt, ForAll):
        v, lo, hi = stmt.domain
        suffix = rf",\quad {notes_latex(v)} = {notes_latex(lo)},\dots,{notes_latex(hi)}"
        inner = stmt.statement
    members = statement_members(inner)
    if isinstance(inner, Tends):
        rel = rf"\xrightarrow[{notes_latex(inner.args[2])}\to\infty]{{}}"
    else:
        rel = "="
    free = (
        {s.name for s in inner.free_symbols if isinstance(s, sp.Symbol)}
        if isinstance(inner, sp.Basic)
        else set()
    )
    lines = []
    for n, m in enumerate(members):
        tex = _member_tex(m, free, tuple(highlight))
        lines.append(tex if n == 0 else f"{{}}{rel} {tex}")
    if lines:
        lines[-1] += suffix
    return lines


def _member_tex(member: sp.Basic, free: set[str], highlight: tuple = ()) -> str:
    # print each member with the statement's free symbols reserved, so a summation
    # index renamed in one member never collides with an index free in another
    from ntksym.notes.printer import NotesPrinter

    printer = NotesPrinter({"highlight": highlight})
    printer._taken = [set(free)]
    return printer._print(member)


@dataclass(frozen=True)
class StepView:
    r"""One step as the notes show it.

    Attributes:
        label: the source's equation number.
        anchor: a label safe for LaTeX ``\\label`` and HTML anchors.
        verdict: ``verified``, ``misprint``, ``failed`` or ``assumed``.
        method: how it was checked (a key of :data:`METHOD_TEXT`).
        method_text: the method in words.
        rule: the rule's name; rule_text: its one-line description (:class:`Text`).
        printed: display lines of the statement as printed (empty if none).
        derived: display lines of the statement as derived.
        same: whether printed and derived print identically.
        differing: pairs ``(printed member, derived member)`` that differ.
        detail: the engine's one-line explanation (:class:`Text`, machine summation
            indices renamed to letters).
        note: the derivation's note on gaps in the argument (:class:`Text`).
        seconds: time spent checking.
        sentence: one sentence saying what the step does (:class:`Text`, may be empty).
        display: the lines shown for the step: the statement as the source printed it
            (the derived one when nothing was printed).
        oneline: whether the display fits on one line.
        repeat_of: the label of the previous step when it displays the same statement.
        limit: LaTeX of the limit the statement holds in, when the source leaves it out.
        pairs: for a misprint, ``(printed line, corrected line)`` with the differing
            subterms marked by ``\\hl``; a line common to both has ``corrected == ""``.
        marks: for a misprint, the differing subterms ``(printed, corrected)`` as LaTeX.
        reason: for a misprint, why it is one, in a line (:class:`Text`).
    """

    label: str
    anchor: str
    verdict: str
    method: str
    method_text: str
    rule: str
    rule_text: Text
    printed: list[str]
    derived: list[str]
    same: bool
    differing: list[tuple[str, str]]
    detail: Text
    note: Text
    seconds: float
    sentence: Text = field(default_factory=Text)
    display: list[str] = field(default_factory=list)
    oneline: bool = False
    repeat_of: str = ""
    limit: str = ""
    pairs: list[tuple[str, str]] = field(default_factory=list)
    marks: list[tuple[str, str]] = field(default_factory=list)
    reason: Text = field(default_factory=Text)


@dataclass(frozen=True)
class DerivationView:
    """A checked derivation as the notes show it.

    Attributes:
        name: short name; title: one-line title; hypotheses: stated assumptions
            (:class:`Text`).
        steps: the :class:`StepView` rows in order.
        counts: number of steps by verdict (every verdict present, zeros included).
        seconds: CPU time of the check (this process); quick: whether the quick subset ran.
    """

    name: str
    title: str
    hypotheses: list[Text]
    steps: list[StepView]
    counts: dict[str, int]
    seconds: float
    quick: bool

    @property
    def misprints(self) -> list[StepView]:
        """The steps the engine found misprinted."""
        return [s for s in self.steps if s.verdict == "misprint"]


#: Letters for the engine's machine summation indices, after the statements' own.
_LETTERS = ("j", "m", "q", "r", "t")


def _sum_indices(stmts: Sequence[sp.Basic | None]) -> list[str]:
    """Readable summation indices of statements, in order (to name machine indices)."""
    found: list[str] = []
    for stmt in stmts:
        if not isinstance(stmt, sp.Basic):
            continue
        for s in sorted(stmt.atoms(sp.Sum), key=sp.default_sort_key):
            for v, *_ in s.limits:
                if not is_machine(v) and v.name not in found:
                    found.append(v.name)
    return found


def _base(name: str) -> tuple[str, str]:
    """A machine index name split into its stem and its primes (``s_0''`` -> ``s_0``, ``''``)."""
    stem = name.rstrip("'")
    return stem, name[len(stem) :]


def readable_indices(detail: Text, prefer: Sequence[str] = ()) -> Text:
    """``detail`` with the engine's machine summation indices renamed to free letters.

    The same machine index (primes aside) gets the same letter in every formula: the
    first of ``prefer``, then of ``j, m, q, r, t``, that no formula of ``detail`` uses.
    """
    syms = detail.symbols()
    ours = {s for s in syms if is_machine(s) and width_layer(s) is None}
    machine = sorted({_base(s.name)[0] for s in ours})
    if not machine:
        return detail
    used = {_base(s.name)[0] for s in syms - ours}
    letters: dict[str, str] = {}
    for stem in machine:
        for cand in (*prefer, *_LETTERS):
            if len(cand) == 1 and cand not in used and cand not in letters.values():
                letters[stem] = cand
                break
        else:
            return detail
    rep = {}
    for s in syms:
        stem, primes = _base(s.name)
        if s in ours and stem in letters:
            rep[s] = sp.Symbol(letters[stem] + primes, integer=True, positive=True)
    return detail.map_math(lambda e: e.xreplace(rep))


def _view(deriv: Derivation, r: StepResult) -> StepView:
    try:
        printed_stmt = deriv.step(r.label).printed
    except KeyError:
        printed_stmt = None
    derived_stmt = r.derived_expr if r.derived_expr is not None else printed_stmt
    printed = statement_lines(printed_stmt)
    derived = statement_lines(derived_stmt) if isinstance(derived_stmt, sp.Basic) else []
    if not derived and r.derived:
        derived = [r.derived]
    differing = []
    if printed and derived:
        if len(printed) == len(derived):
            differing = [(p, d) for p, d in zip(printed, derived, strict=True) if p != d]
        else:
            differing = [(" ".join(printed), " ".join(derived))]
    pairs: list[tuple[str, str]] = []
    marks: list[tuple[str, str]] = []
    if r.verdict == "misprint" and isinstance(printed_stmt, sp.Basic):
        if isinstance(derived_stmt, sp.Basic):
            pairs, marks = marked_pairs(printed_stmt, derived_stmt, r.differences, statement_lines)
    display = one_line(printed or derived)
    limit = limit_of(deriv.name, r.label)
    return StepView(
        label=r.label,
        anchor="eq:" + r.label.replace(".", "-"),
        verdict=r.verdict,
        method=r.method,
        method_text=METHOD_TEXT.get(r.method, r.method),
        rule=r.rule,
        rule_text=rule_text(r.rule),
        printed=printed,
        derived=derived,
        same=printed == derived,
        differing=differing,
        detail=readable_indices(r.detail, _sum_indices([printed_stmt, derived_stmt])),
        note=r.note,
        seconds=r.seconds,
        sentence=step_sentence(deriv.name, r.label),
        display=display,
        oneline=len(display) == 1,
        limit=limit.latex() if limit is not None else "",
        pairs=pairs,
        marks=marks,
        reason=_reason(r) if r.verdict == "misprint" else Text(),
    )


def _reason(r: StepResult) -> Text:
    """Why a step is a misprint, in one line: what kind of slip, and which check it fails."""
    method = METHOD_TEXT.get(r.method, r.method)
    limits = [p for p in r.summary_parts if isinstance(p, StrongerRelation)]
    if limits:
        return Text(
            "printed as an equality, but it holds only in the limit as ",
            limits[0].width,
            Tex(r" \to \infty", " -> oo"),
            f"; at finite width the left side is random ({method})",
        )
    strays = [p for p in r.summary_parts if isinstance(p, StrayIndex)]
    if strays:
        return Text(
            "an index free on one side only (a sum over ",
            strays[0].index,
            f" is missing or extra); the printed line fails the check by {method}",
        )
    kinds = {d.kind for d in r.differences}
    what = "a wrong index" if kinds == {"index"} else "a wrong term"
    return Text(f"{what}; the printed line fails the check by {method}")


def derivation_view(
    deriv: Derivation, *, quick: bool = False, progress: Any = None
) -> DerivationView:
    """Run a derivation's checks and turn the results into a :class:`DerivationView`.

    Args:
        deriv: The derivation.
        quick: Run only the engine's quick subset (cheap checks).
        progress: Passed to :meth:`Derivation.run`.

    Returns:
        The view.
    """
    t0 = time.process_time()  # CPU time: what the check costs, however busy the machine
    results = deriv.run(quick=quick, progress=progress)
    seconds = time.process_time() - t0
    counts = Counter(r.verdict for r in results)
    return DerivationView(
        name=deriv.name,
        title=deriv.title,
        hypotheses=[as_text(h) for h in deriv.hypotheses],
        steps=drop_repeats([_view(deriv, r) for r in results]),
        counts={v: counts.get(v, 0) for v in VERDICTS},
        seconds=seconds,
        quick=quick,
    )
