r"""How a step is displayed: the source's own form, misprints side by side and marked.

A verified step shows the statement as the source printed it (the engine's rewritten
form would lose the source's term order and indices); a misprint shows the printed and
the corrected statement member by member, with the smallest differing subterms (the
engine's :class:`~ntksym.derive.explain.Difference` records) marked by ``\hl`` — a
coloured box, which stays visible in black and white. A step whose display equals the
previous step's is not displayed twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import sympy as sp

from ntksym.derive.canonical import pull_constants, rename_indices
from ntksym.notes.printer import is_machine

__all__ = ["ONE_LINE", "canonical_form", "marked_pairs", "one_line", "drop_repeats"]

#: Displays shorter than this many LaTeX characters are set on one line.
ONE_LINE = 240
#: A differing subterm longer than this (LaTeX characters) is too wide for the errata.
WIDE_MARK = 100


def canonical_form(stmt: sp.Basic) -> sp.Basic:
    """``stmt`` with constants pulled out of sums and summation indices renamed in order.

    This is the form in which the engine reports the differing subterms of a misprint.
    """
    if isinstance(stmt, sp.Expr) and not isinstance(stmt, sp.MatrixBase):
        return rename_indices(pull_constants(stmt))
    if stmt.args:
        return stmt.func(*[canonical_form(a) for a in stmt.args])
    return stmt


def _contains_all(stmt: sp.Basic, terms: Sequence[sp.Basic]) -> bool:
    subs = set(sp.preorder_traversal(stmt))
    return all(t in subs for t in terms)


def _markable(stmt: sp.Basic, terms: Sequence[sp.Basic]) -> sp.Basic | None:
    """``stmt`` itself when it contains every term, else its canonical form if that does."""
    if not terms:
        return None
    if _contains_all(stmt, terms):
        return stmt
    canon = canonical_form(stmt)
    return canon if _contains_all(canon, terms) else None


def one_line(lines: list[str]) -> list[str]:
    """The display lines joined into one line when they are short together."""
    joined = " ".join(lines)
    return [joined] if lines and len(joined) <= ONE_LINE else lines


def marked_pairs(
    printed: sp.Basic,
    derived: sp.Basic,
    differences: Sequence[Any],
    lines: Any,
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """A misprint's displays, member by member, with its differing subterms marked.

    Args:
        printed: The statement as printed.
        derived: The statement as derived.
        differences: The engine's differences (``.printed``, ``.derived`` subterms).
        lines: ``lines(stmt, highlight) -> list of LaTeX lines`` (the notes' printer).

    Returns:
        ``pairs``: ``(printed line, corrected line)``; a line common to both comes as
        ``(line, "")``. ``marks``: the differing subterms ``(printed, corrected)`` as
        LaTeX (``""`` for one too wide for a table cell).
    """
    p_terms = [d.printed for d in differences]
    d_terms = [d.derived for d in differences]
    p_stmt = _markable(printed, p_terms)
    d_stmt = _markable(derived, d_terms)
    p_lines = lines(printed, ()) if p_stmt is None else lines(p_stmt, p_terms)
    d_lines = lines(derived, ()) if d_stmt is None else lines(d_stmt, d_terms)
    pairs: list[tuple[str, str]] = []
    if len(p_lines) == len(d_lines):
        for a, c in zip(p_lines, d_lines, strict=True):
            pairs.append((a, "") if a == c else (a, c))
    else:
        width = max(len(p_lines), len(d_lines))
        p_pad = p_lines + ["{}"] * (width - len(p_lines))
        d_pad = d_lines + ["{}"] * (width - len(d_lines))
        pairs = list(zip(p_pad, d_pad, strict=True))
    # a difference the subterms do not locate (e.g. an index range) marks the whole line
    pairs = [(a, c) if not c else (_marked(a), _marked(c)) for a, c in pairs]
    marks = [(_mark(a, lines), _mark(c, lines)) for a, c in zip(p_terms, d_terms, strict=True)]
    if not marks and printed != derived:
        marks = [(_wide(" ".join(p_lines)), _wide(" ".join(d_lines)))]
    return pairs, marks


def _free_letters(term: sp.Basic) -> sp.Basic:
    """``term`` with the engine's summation indices (free once cut out of their sum) renamed."""
    names = {s.name for s in term.free_symbols if isinstance(s, sp.Symbol)}
    rep = {}
    pool = [c for c in ("j", "m", "q", "r", "t") if c not in names]
    for s in sorted(term.free_symbols, key=sp.default_sort_key):
        if isinstance(s, sp.Symbol) and is_machine(s) and pool:
            rep[s] = sp.Symbol(pool.pop(0), integer=True, positive=True)
    return term.xreplace(rep)


def _marked(line: str) -> str:
    return line if r"\hl{" in line or line == "{}" else r"\hl{" + line + "}"


def _wide(tex: str) -> str:
    """``tex``, or ``""`` when it is too wide for a cell of the errata."""
    return tex if len(tex) <= WIDE_MARK else ""


def _mark(term: sp.Basic, lines: Any) -> str:
    return _wide(" ".join(lines(_free_letters(term), ())))


def drop_repeats(views: list[Any]) -> list[Any]:
    """Views with ``repeat_of`` set where a step displays what the previous one did."""
    out = []
    prev_display: list[str] = []
    prev_label = ""
    for v in views:
        if v.display and v.display == prev_display and not v.pairs:
            v = replace(v, repeat_of=prev_label)
        else:
            prev_display, prev_label = v.display, v.label
        out.append(v)
    return out
