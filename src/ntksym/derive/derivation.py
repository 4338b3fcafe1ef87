"""A derivation: an ordered list of steps, run in order with the failures contained.

A derivation is data: load one (:func:`ntksym.derive.loader.load_derivation`), replace a
step's printed statement (:meth:`Derivation.with_printed`, a new derivation — they are
immutable), re-run one step (:meth:`Derivation.run_one`) or all (:meth:`Derivation.run`)
and compare two runs (:func:`compare`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import sympy as sp

from ntksym.derive.judge import derive_statement, run_step
from ntksym.derive.network import Network, check_statements, using_network
from ntksym.derive.steps import Step, StepResult
from ntksym.derive.symbols import latex
from ntksym.derive.text import Text
from ntksym.errors import InputError

__all__ = ["Change", "Derivation", "StepNotFound", "compare"]


class StepNotFound(InputError, KeyError):
    """A step label that the derivation does not have."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Derivation:
    """An ordered list of steps with the hypotheses they rest on.

    Attributes:
        name: short name (``"seed"``).
        title: one-line description.
        steps: the steps in order.
        hypotheses: the assumptions, each a :class:`~ntksym.derive.text.Text` (words and
            formulas) or a plain string (words).
        network: labels of the steps whose statements define the network the rules work
            on (``alpha^(0) = x``, ``alpha~^(l+1) = ...``, ``alpha^(l) = sigma(...)``)
            and state the hypotheses the rules use (``Theta^(L)_{ii'} -> ...``); see
            :mod:`ntksym.derive.network`. Empty: the rules use the standard network.
    """

    name: str
    title: str
    steps: tuple[Step, ...]
    hypotheses: tuple[Text | str, ...] = ()
    network: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        labels = [s.label for s in self.steps]
        twice = sorted({lab for lab in labels if labels.count(lab) > 1})
        if twice:
            raise InputError(f"derivation {self.name!r}: step labels used twice: {twice}")
        unknown = sorted({(s.label, u) for s in self.steps for u in s.uses if u not in labels})
        if unknown:
            listed = ", ".join(f"({a}) uses ({u})" for a, u in unknown)
            raise InputError(f"derivation {self.name!r}: unknown step labels: {listed}")
        absent = [lab for lab in self.network if lab not in labels]
        if absent:
            raise InputError(
                f"derivation {self.name!r}: network labels not among the steps: {absent}"
            )
        check_statements(self.network, {s.label: s.printed for s in self.steps})

    def network_at(self, env: dict[str, sp.Basic]) -> Network | None:
        """The network made of the derivation's network steps, as far as ``env`` has them.

        A network step's derived statement (a definition with its range corrected) is
        used once derived, its printed one before. None when the derivation names none.
        """
        if not self.network:
            return None
        printed = {lab: self.step(lab).printed for lab in self.network}
        return Network({lab: env.get(lab, printed[lab]) for lab in self.network}, printed)

    def run(
        self,
        labels: set[str] | None = None,
        quick: bool = False,
        progress: Callable[[Step], None] | None = None,
    ) -> list[StepResult]:
        """Check every step (or the quick subset, or the given labels) in order.

        Steps that are not checked (outside ``labels``, or not ``quick``) are still
        derived, so that later steps see their statements. A step that depends on one
        without a derived statement (it raised) is ``unchecked``, naming it. Never raises
        for a failing step.
        """
        if labels is not None:
            unknown = set(labels) - {s.label for s in self.steps}
            if unknown:
                raise StepNotFound(f"no step(s) {sorted(unknown)} in {self.name!r}")
        env: dict[str, sp.Basic] = {}
        missing: dict[str, str] = {}
        out = []
        last = max(
            (n for n, s in enumerate(self.steps) if labels is None or s.label in labels),
            default=-1,
        )
        for step in self.steps[: last + 1]:
            checked = (labels is None or step.label in labels) and not (quick and not step.quick)
            blocked = [u for u in step.uses if u in missing]
            if not checked:
                with using_network(self.network_at(env)):
                    _derive_only(step, env, missing, blocked)
                continue
            if progress is not None:
                progress(step)
            if blocked:
                out.append(_blocked_result(step, blocked, missing))
                missing[step.label] = "is unchecked"
                continue
            with using_network(self.network_at(env)):
                res = run_step(step, env, extra=not quick)
            if res.verdict == "error":
                missing[step.label] = f"ended in error ({res.error.split(':')[0]})"
            elif step.label not in env:
                missing[step.label] = f"has no derived statement (it is {res.verdict})"
            out.append(res)
        return out

    def run_one(self, label: str, extra: bool = True) -> StepResult:
        """Re-run one step (the earlier ones are derived, not checked)."""
        self.step(label)
        env: dict[str, sp.Basic] = {}
        missing: dict[str, str] = {}
        for step in self.steps:
            blocked = [u for u in step.uses if u in missing]
            with using_network(self.network_at(env)):
                if step.label == label:
                    if blocked:
                        return _blocked_result(step, blocked, missing)
                    return run_step(step, env, extra=extra)
                _derive_only(step, env, missing, blocked)
        raise AssertionError("unreachable")  # pragma: no cover

    def step(self, label: str) -> Step:
        """The step with this label."""
        for s in self.steps:
            if s.label == label:
                return s
        raise StepNotFound(f"no step {label!r}; labels: {[s.label for s in self.steps]}")

    def replace_step(self, label: str, **kw: Any) -> Derivation:
        """A copy with one step's fields changed (e.g. a perturbed transcription)."""
        self.step(label)
        steps = tuple(s.replace(**kw) if s.label == label else s for s in self.steps)
        return replace(self, steps=steps)

    def with_printed(self, label: str, printed: sp.Basic) -> Derivation:
        """A copy in which step ``label`` prints ``printed`` (the rest unchanged)."""
        return self.replace_step(label, printed=printed)

    def _repr_latex_(self) -> str:
        rows = [f"({s.label})\\ {latex(s.printed)}" for s in self.steps if s.printed is not None]
        return "$\\begin{aligned}" + r"\\ ".join(rows) + "\\end{aligned}$"


def _derive_only(step: Step, env: dict, missing: dict[str, str], blocked: list[str]) -> None:
    """Derive a step without checking it; note it in ``missing`` when that fails."""
    if blocked:
        missing[step.label] = f"depends on ({blocked[0]}), which {missing[blocked[0]]}"
        return
    try:
        derived, verdict = derive_statement(step, env)
    except Exception as exc:  # noqa: BLE001 - reported by the steps that depend on it
        missing[step.label] = f"could not be derived ({type(exc).__name__}: {exc})"
        return
    if derived is None:
        why = verdict.detail if verdict is not None else "no statement"
        missing[step.label] = f"has no derived statement ({why})"
        return
    env[step.label] = derived


def _blocked_result(step: Step, blocked: list[str], missing: dict[str, str]) -> StepResult:
    why = "; ".join(f"({u}) {missing[u]}" for u in blocked)
    return StepResult(
        label=step.label,
        verdict="unchecked",
        method="",
        rule=step.rule,
        printed=latex(step.printed),
        derived="",
        note=step.note,
        seconds=0.0,
        detail=f"not checked: it depends on {why}",
        explanation=f"not checked: it depends on {why}",
    )


@dataclass(frozen=True)
class Change:
    """A step whose verdict differs between two runs."""

    label: str
    before: str
    after: str
    explanation: str


def compare(before: list[StepResult], after: list[StepResult]) -> list[Change]:
    """The steps whose verdict changed from ``before`` to ``after`` (in ``after``'s order).

    A step present in one run only is reported with ``"absent"`` for the other.
    """
    old = {r.label: r for r in before}
    new = {r.label: r for r in after}
    out = []
    for label in [*new, *(lab for lab in old if lab not in new)]:
        a = old[label].verdict if label in old else "absent"
        b = new[label].verdict if label in new else "absent"
        if a != b:
            why = new[label].explanation if label in new else ""
            out.append(Change(label, a, b, why))
    return out
