"""Steps, derivations and verdicts.

A :class:`Step` pairs the statement *as printed* in the source with a ``derive`` callable
that produces the statement mechanically from earlier steps by registered rules. Running a
step (:func:`run_step`) decides a :class:`Verdict`:

* ``verified`` — the printed statement equals the derived one for general widths
  (method ``symbolic``), or, when their forms differ, the printed statement itself holds
  exactly at every tested finite width (``exact-finite-width``), numerically (``numeric``)
  or in Monte-Carlo evidence (``monte-carlo``);
* ``misprint`` — the printed statement fails an independent check while the derived one
  passes; both are reported with the smallest differing subterms;
* ``failed`` — the derived statement fails its independent check, or nothing could be
  verified;
* ``assumed`` — definitions and stated hypotheses (never anything derived).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import sympy as sp

from ntksym.derive.checks import (
    Chain,
    NotExact,
    counterexample,
    exact_finite_width,
    explain,
    pairs,
    short_explain,
    stray_index,
    symbolic_equal,
    well_formed,
)
from ntksym.derive.rules import RULES, Context
from ntksym.derive.symbols import Tends, latex
from ntksym.derive.tangent import exact_matrix, has_matrix

__all__ = ["Verdict", "Step", "StepResult", "Derivation", "ForAll", "run_step", "VERDICTS"]

VERDICTS = ("verified", "misprint", "failed", "assumed")
METHODS = (
    "symbolic",
    "exact-finite-width",
    "numeric",
    "monte-carlo",
    "symbolic+monte-carlo",
    "symbolic+numeric+monte-carlo",
    "well-formedness",
    "definition",
    "",
)


@dataclass(frozen=True)
class Verdict:
    """Outcome of checking one step.

    Attributes:
        status: one of :data:`VERDICTS`.
        method: how it was established (``symbolic``, ``exact-finite-width``, ``numeric``,
            ``monte-carlo``; ``definition`` for assumed steps).
        detail: the configurations checked, or every difference found.
        summary: for a misprint, one line: the first difference and a counterexample.
    """

    status: str
    method: str = ""
    detail: str = ""
    summary: str = ""


class ForAll(sp.Basic):
    """A statement asserted for ``var = lo..hi`` (the seed's "for l = 0,...,L-1")."""

    @property
    def statement(self) -> sp.Basic:
        """The statement."""
        return self.args[0]

    @property
    def domain(self) -> tuple[sp.Symbol, sp.Expr, sp.Expr]:
        """``(var, lo, hi)``."""
        return tuple(self.args[1])

    def _latex(self, printer: Any) -> str:
        v, lo, hi = self.domain
        return latex(self.statement) + rf",\quad {latex(v)} = {latex(lo)},\dots,{latex(hi)}"


#: ``check(statement, ctx, env) -> (holds, method, detail)``; raise NotExact if it does
#: not apply. ``env`` maps earlier labels to their derived statements.
CheckFn = Callable[[sp.Basic, Context, dict], tuple[bool, str, str]]


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
        note: logical gaps a careful reader notices.
        quick: whether the step belongs to the quick subset.
    """

    label: str
    printed: sp.Basic | None
    rule: str
    uses: tuple[str, ...] = ()
    derive: Callable[[dict], sp.Basic] | None = None
    ctx: Context = field(default_factory=Context)
    configs: tuple = ()
    extra_check: CheckFn | None = None
    note: str = ""
    quick: bool = True

    def replace(self, **kw: Any) -> Step:
        """A copy with some fields changed."""
        return replace(self, **kw)

    def _repr_latex_(self) -> str:
        return f"$({self.label})\\quad {latex(self.printed)}$"


@dataclass(frozen=True)
class StepResult:
    """The record of one checked step (all statements as LaTeX)."""

    label: str
    verdict: str
    method: str
    rule: str
    printed: str
    derived: str
    note: str
    seconds: float
    detail: str = ""
    derived_expr: Any = None
    explanation: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "label": self.label,
            "verdict": self.verdict,
            "method": self.method,
            "rule": self.rule,
            "printed": self.printed,
            "derived": self.derived,
            "note": self.note,
            "detail": self.detail,
            "explanation": self.explanation,
            "seconds": round(self.seconds, 4),
        }

    def _repr_latex_(self) -> str:
        return f"$({self.label})\\ {self.derived}$ — {self.verdict} ({self.method})"


def _independent(
    step: Step, stmt: sp.Basic, env: dict | None = None, extra: bool = True
) -> tuple[bool, str, str] | None:
    """Exact finite-width check, then the extra check; None if neither applies."""
    results = []
    target = stmt.statement if isinstance(stmt, ForAll) else stmt
    if has_matrix(target):
        if not step.configs:
            return None
        from ntksym.derive.symbols import L

        ok, detail = exact_matrix(target, L, list(step.configs))
        return ok, "exact-finite-width", detail
    ok, detail = well_formed(target)
    if not ok:
        return False, "well-formedness", detail
    if _plain(target):
        ok = all(sp.simplify(sp.expand(a - c)) == 0 for a, c in pairs(target))
        return ok, "symbolic", "identity" if ok else "the two sides differ"
    if step.configs:
        try:
            ok, detail = exact_finite_width(_finite_part(target), step.ctx, list(step.configs))
            results.append((ok, "exact-finite-width", detail))
            if not ok:
                return results[-1]
        except NotExact:
            pass
    if step.extra_check is not None and extra:
        try:
            ok, method, detail = step.extra_check(target, step.ctx, env or {})
            results.append((ok, method, detail))
            if not ok:
                return results[-1]
        except NotExact:
            pass
    if not results:
        return None
    return results[0][0], results[0][1], "; ".join(r[2] for r in results)


def _plain(stmt: sp.Basic) -> bool:
    """Whether a statement is plain algebra (no network objects, limits, names)."""
    if not isinstance(stmt, (sp.Eq, Chain)):
        return False
    return not (
        stmt.atoms(sp.Indexed)
        or stmt.atoms(sp.Derivative)
        or stmt.atoms(sp.Sum)
        or any(isinstance(f, sp.Function) and not f.is_number for f in stmt.atoms(sp.Function))
    )


def _finite_part(stmt: sp.Basic) -> sp.Basic:
    """For a limit claim, the finite-width quantity is what can be checked exactly."""
    from ntksym.derive.symbols import Tends

    if isinstance(stmt, Tends):
        raise NotExact("limit")
    return stmt


def run_step(step: Step, env: dict[str, sp.Basic], extra: bool = True) -> StepResult:
    """Derive and check one step; record the derived statement in ``env``.

    ``extra=False`` skips the step's (expensive) extra numeric/Monte-Carlo check.
    """
    t0 = time.perf_counter()

    def done(v: Verdict, derived: sp.Basic | None) -> StepResult:
        env[step.label] = derived if derived is not None else step.printed
        return StepResult(
            label=step.label,
            verdict=v.status,
            method=v.method,
            rule=step.rule,
            printed=latex(step.printed),
            derived=latex(derived),
            note=step.note,
            seconds=time.perf_counter() - t0,
            detail=v.detail,
            derived_expr=derived,
            explanation=v.summary or (v.detail if v.status == "misprint" else ""),
        )

    if step.derive is None:
        if step.rule not in ("definition", "hypothesis"):
            return done(Verdict("failed", "", "no derivation given"), None)
        return done(Verdict("assumed", "definition", step.rule), step.printed)
    if step.rule not in RULES and step.rule not in ("definition", "hypothesis"):
        return done(Verdict("failed", "", f"unknown rule {step.rule!r}"), None)
    try:
        derived = step.derive(env)
    except Exception as exc:  # a rule that does not apply is a failed step, not a crash
        return done(Verdict("failed", "", f"derivation raised {type(exc).__name__}: {exc}"), None)
    if derived is sp.false or derived is sp.true:
        status = "failed" if derived is sp.false else "verified"
        return done(
            Verdict(status, "symbolic", f"SymPy evaluates the statement to {derived}"), derived
        )
    if isinstance(derived, Verdict):  # definition-range checks return a verdict directly
        return done(derived, step.printed)
    if isinstance(derived, ForAll) and isinstance(step.printed, ForAll):
        from ntksym.derive.definitions import reason

        (v, lo, hi), (_, lo2, hi2) = step.printed.domain, derived.domain
        why = (
            rf"range: ${latex(v)} = {latex(lo)},\dots,{latex(hi)}$ printed, "
            rf"${latex(lo2)},\dots,{latex(hi2)}$ derived; {reason(derived)}"
        )
        return done(Verdict("misprint", "definition", why), derived)
    indep = _independent(step, derived, env, extra)
    if indep is not None and not indep[0]:
        return done(Verdict("failed", indep[1], "derived statement " + indep[2]), derived)
    if step.printed is None:
        method = "symbolic" if indep is None else indep[1]
        return done(Verdict("verified", method, "" if indep is None else indep[2]), derived)
    if symbolic_equal(step.printed, derived, step.ctx):
        detail = "printed = derived for general widths"
        method = "symbolic"
        if indep is not None:
            detail += "; derived also " + indep[2]
            if indep[1] not in ("symbolic", "exact-finite-width"):
                method = "symbolic+" + indep[1]
        return done(Verdict("verified", method, detail), derived)
    pv = _independent(step, step.printed, env, extra)
    if pv is not None and pv[0]:
        return done(Verdict("verified", pv[1], pv[2]), derived)
    why = explain(step.printed, derived)
    if pv is None:
        return done(
            Verdict(
                "misprint",
                "symbolic",
                why + " (printed differs from the derivation)",
                short_explain(step.printed, derived),
            ),
            derived,
        )
    detail = f"{why}; printed {pv[2]}"
    if indep is not None:
        detail += f"; derived {indep[2]} ({indep[1]})"
    summary = short_explain(step.printed, derived)
    if pv[1] == "well-formedness":
        target = step.printed.statement if isinstance(step.printed, ForAll) else step.printed
        stray = stray_index(target)
        if stray is not None:
            s, carriers = stray
            free = (
                f"{s.name} is free on one side only (in "
                + ", ".join(f"${latex(c)}$" for c in carriers)
                + ")"
            )
            # keep the first difference when it is short (an index slip, a missing sum)
            summary = f"{summary}; {free}" if len(summary) <= 160 else f"index: {free}"
        if "undefined symbol" in pv[2]:
            summary += "; " + pv[2].replace("ill-formed: ", "") + " (the line breaks off)"
        cex = _printed_counterexample(step, derived)
        if cex:
            summary += "; " + cex
            detail += "; " + cex
    elif has_matrix(step.printed):
        summary = "shape: " + pv[2]
    elif pv[2]:
        summary += "; printed " + pv[2].split(";")[0]
    return done(Verdict("misprint", pv[1], detail, summary), derived)


def _printed_counterexample(step: Step, derived: sp.Basic) -> str | None:
    """A concrete counterexample to an ill-formed printed statement, if one can be built.

    With finite-width configurations the printed statement itself is evaluated on the
    network (its one-sided indices included); otherwise it is compared with the derived
    (verified) form at small concrete widths.
    """
    target = step.printed.statement if isinstance(step.printed, ForAll) else step.printed
    if step.configs and not isinstance(target, Tends):
        try:
            ok, det = exact_finite_width(target, step.ctx, list(step.configs))
        except NotExact:
            ok, det = True, ""
        if not ok:
            return "counterexample on the network: printed " + det
    return counterexample(step.printed, derived, step.ctx)


@dataclass(frozen=True)
class Derivation:
    """An ordered list of steps with the hypotheses they rest on.

    Attributes:
        name: short name (``"seed"``).
        title: one-line description.
        steps: the steps in order.
        hypotheses: the assumptions stated in words.
    """

    name: str
    title: str
    steps: tuple[Step, ...]
    hypotheses: tuple[str, ...] = ()

    def run(
        self,
        labels: set[str] | None = None,
        quick: bool = False,
        progress: Callable[[Step], None] | None = None,
    ) -> list[StepResult]:
        """Check every step (or the quick subset, or the given labels) in order."""
        env: dict[str, sp.Basic] = {}
        out = []
        for step in self.steps:
            if labels is not None and step.label not in labels:
                continue
            if quick and not step.quick:
                # derive only (cheap), so that later steps still see its statement
                if step.derive is not None:
                    try:
                        env[step.label] = step.derive(env)
                    except Exception:  # noqa: BLE001 - reported when the step itself runs
                        env[step.label] = step.printed
                continue
            if progress is not None:
                progress(step)
            out.append(run_step(step, env, extra=not quick))
        return out

    def step(self, label: str) -> Step:
        """The step with this label."""
        for s in self.steps:
            if s.label == label:
                return s
        raise KeyError(f"no step {label!r}; labels: {[s.label for s in self.steps]}")

    def replace_step(self, label: str, **kw: Any) -> Derivation:
        """A copy with one step's fields changed (e.g. a perturbed transcription)."""
        self.step(label)
        steps = tuple(s.replace(**kw) if s.label == label else s for s in self.steps)
        return replace(self, steps=steps)

    def _repr_latex_(self) -> str:
        rows = [f"({s.label})\\ {latex(s.printed)}" for s in self.steps if s.printed is not None]
        return "$\\begin{aligned}" + r"\\ ".join(rows) + "\\end{aligned}$"
