"""The chapters of the notes: each derivation's steps grouped under their theorems."""

from __future__ import annotations

from dataclasses import dataclass

from ntksym.derive.text import Text
from ntksym.notes.content import DerivationView, StepView
from ntksym.notes.course import Chapter, chapters_for
from ntksym.notes.display import one_line

__all__ = ["ChapterView", "TheoremDisplay", "chapter_views"]


@dataclass(frozen=True)
class TheoremDisplay:
    """A display of a theorem: a step's statement (corrected if misprinted) and its limit."""

    label: str
    anchor: str
    lines: list[str]
    limit: str


@dataclass(frozen=True)
class ChapterView:
    """A chapter as the templates show it.

    Attributes:
        chapter: the :class:`~ntksym.notes.course.Chapter` (title, theorem, hypotheses).
        derivation: the name of the derivation the steps come from.
        steps: the chapter's steps, in order.
        displays: the theorem's displays (statements of steps of this derivation).
        hypotheses: the theorem's hypotheses, or the derivation's own when the chapter
            names none.
    """

    chapter: Chapter
    derivation: str
    steps: list[StepView]
    displays: list[TheoremDisplay]
    hypotheses: list[Text]


def _display(step: StepView) -> TheoremDisplay:
    """The step's statement, corrected if misprinted, from its first to its last member."""
    lines = step.derived if step.verdict == "misprint" and step.derived else step.display
    if len(lines) > 2:
        lines = [lines[0], lines[-1]]
    return TheoremDisplay(step.label, step.anchor, one_line(lines), step.limit)


def chapter_views(view: DerivationView) -> list[ChapterView]:
    """The chapters of one checked derivation; steps no chapter names come last."""
    by_label = {s.label: s for s in view.steps}
    chapters = chapters_for(view.name, Text(view.title))
    out = []
    placed: set[str] = set()
    for ch in chapters:
        labels = ch.labels or tuple(s.label for s in view.steps)
        steps = [by_label[x] for x in labels if x in by_label]
        placed.update(s.label for s in steps)
        displays = [_display(by_label[x]) for x in ch.shows if x in by_label]
        hyps = list(ch.hypotheses) if ch.hypotheses else list(view.hypotheses)
        out.append(ChapterView(ch, view.name, steps, displays, hyps))
    rest = [s for s in view.steps if s.label not in placed]
    if rest:
        extra = Chapter(f"{view.name}-more", "Further steps of " + view.title)
        out.append(ChapterView(extra, view.name, rest, [], list(view.hypotheses)))
    return out
