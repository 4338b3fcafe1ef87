"""Checking one step: derive, then judge, then explain.

:func:`run_step` never raises: an exception while deriving or checking becomes the
verdict ``error`` with the exception's type, message and the rule that raised it. A
verdict only says what was shown (see :mod:`ntksym.derive.steps` for the verdicts):

* printed and derived agree symbolically -> ``verified`` (``symbolic``);
* they differ and the printed statement fails an independent check (exact at concrete
  widths, well-formedness, numeric or Monte Carlo) -> ``misprint``;
* they differ, no check applies to the printed statement, but the derived one passes its
  own check and a concrete counterexample separates the two -> ``misprint``;
* the printed statement passes its check and a counterexample separates it from an
  unconfirmed derived statement -> ``failed`` (the derivation code is at fault);
* nothing could be compared -> ``unchecked`` with the reason.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass

import sympy as sp

from ntksym.derive.canonical import symbolic_equal
from ntksym.derive.explain import (
    Counterexample,
    StrayIndex,
    UndefinedSymbols,
    differences,
    explain,
    find_counterexample,
    first_difference,
    render_parts,
)
from ntksym.derive.finite_width import NotExact, exact_finite_width
from ntksym.derive.limits import stronger_than_derived
from ntksym.derive.rules import RULES
from ntksym.derive.statements import Chain, ForAll, pairs
from ntksym.derive.steps import Step, StepResult, TextField, Verdict
from ntksym.derive.symbols import L, Tends, latex
from ntksym.derive.tangent import exact_matrix, has_matrix
from ntksym.derive.text import Tex, Text, as_text, text
from ntksym.derive.wellformed import stray_index, unknown_symbols, well_formed

__all__ = ["Evidence", "derive_statement", "independent", "judge", "run_step"]

_ASSUMED = ("definition", "hypothesis")


def _renamed_to(a: sp.Symbol, c: sp.Symbol) -> Text:
    """``a -> c`` (an index renamed) as one formula."""
    return Text(Tex(rf"{latex(a)} \to {latex(c)}", f"{a} -> {c}"))


@dataclass(frozen=True)
class Evidence:
    """The outcome of the independent checks of one statement.

    Attributes:
        ok: True (passed), False (failed) or None (no check could compare anything).
        method: the check that decided.
        detail: what was checked, the counterexample, or why nothing was.
    """

    ok: bool | None
    method: str = ""
    detail: TextField = TextField()


def run_step(step: Step, env: dict[str, sp.Basic], extra: bool = True) -> StepResult:
    """Derive and check one step; record the derived statement in ``env``.

    ``extra=False`` skips the step's (expensive) extra numeric/Monte-Carlo check. Never
    raises: an exception becomes the verdict ``error``, and then ``env`` gets no entry
    for the step.
    """
    t0 = time.perf_counter()
    derived: sp.Basic | None = None
    error, failed_rule = "", ""
    try:
        derived, verdict = derive_statement(step, env)
        if verdict is None:
            verdict = judge(step, derived, env, extra)
    except Exception as exc:  # noqa: BLE001 - any failure is reported as the step's verdict
        verdict, error, failed_rule = _error_verdict(step, exc, derived is None)
    if verdict.status != "error" and derived is not None:
        env[step.label] = derived
    explanation = render_parts(verdict.parts) if verdict.parts else verdict.summary
    if not explanation and verdict.status in ("misprint", "error"):
        explanation = str(verdict.detail)
    return StepResult(
        label=step.label,
        verdict=verdict.status,
        method=verdict.method,
        rule=step.rule,
        printed=latex(step.printed),
        derived=latex(derived),
        note=as_text(step.note),
        seconds=time.perf_counter() - t0,
        detail=verdict.detail,
        derived_expr=derived,
        explanation=explanation,
        error=error,
        failed_rule=failed_rule,
        printed_expr=step.printed,
        differences=verdict.differences,
        counterexample=verdict.counterexample,
        summary_parts=verdict.parts,
    )


def _error_verdict(step: Step, exc: Exception, deriving: bool) -> tuple[Verdict, str, str]:
    """The ``error`` verdict for an exception, naming its type, message and rule."""
    what = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, KeyError) and deriving:
        what = f"KeyError: needs the derived statement {exc}, which is not available"
    rule = getattr(exc, "ntksym_rule", "") or (step.rule if deriving else "")
    stage = "deriving" if deriving else "checking"
    where = f" in rule {rule!r}" if rule else ""
    said = getattr(exc, "detail", None)
    if isinstance(said, Text):  # the engine's own exceptions say it with formulas
        detail = Text(f"{stage} raised {type(exc).__name__}: ", said, where)
        return Verdict("error", "", detail), what, rule
    return Verdict("error", "", Text(f"{stage} raised {what}{where}")), what, rule


def derive_statement(
    step: Step, env: dict[str, sp.Basic]
) -> tuple[sp.Basic | None, Verdict | None]:
    """The derived statement, with a verdict when the derivation alone decides it.

    Raises whatever the step's ``derive`` raises.
    """
    if step.derive is None:
        if step.rule not in _ASSUMED:
            return None, Verdict("failed", "", Text("no derivation given"))
        return step.printed, Verdict("assumed", "definition", Text(step.rule))
    if step.rule not in RULES and step.rule not in _ASSUMED:
        return None, Verdict("failed", "", Text(f"unknown rule {step.rule!r}"))
    derived = step.derive(env)
    if not isinstance(derived, (sp.Basic, Verdict)):
        raise TypeError(f"derive returned {type(derived).__name__}, not a SymPy statement")
    if isinstance(derived, Verdict):  # definition-range checks decide directly
        return (derived.statement or step.printed), derived
    if derived is sp.false or derived is sp.true:
        status = "failed" if derived is sp.false else "verified"
        return derived, Verdict(
            status, "symbolic", Text(f"SymPy evaluates the statement to {derived}")
        )
    return derived, None


def judge(step: Step, derived: sp.Basic, env: dict, extra: bool = True) -> Verdict:
    """The verdict for a derived statement against the printed one."""
    indep = independent(step, derived, env, extra)
    if indep.ok is False:
        return Verdict("failed", indep.method, "derived statement " + indep.detail)
    if step.printed is None:
        if indep.ok is None:
            return Verdict("unchecked", "", "no printed statement and " + indep.detail)
        return Verdict("verified", indep.method, indep.detail)
    if symbolic_equal(step.printed, derived, step.ctx):
        detail = Text("printed = derived for general widths")
        method = "symbolic"
        if indep.ok:
            detail += Text("; derived also ", indep.detail)
            if indep.method not in ("symbolic", "exact-finite-width"):
                method = "symbolic+" + indep.method
        return Verdict("verified", method, detail)
    stronger = stronger_than_derived(step, derived, indep)  # '=' printed, a limit derived
    if stronger is not None:
        return stronger
    pv = independent(step, step.printed, env, extra)
    if pv.ok is False:
        return _misprint(step, derived, pv, indep)
    return _differ(step, derived, pv, indep)


def _differ(step: Step, derived: sp.Basic, pv: Evidence, indep: Evidence) -> Verdict:
    """Printed and derived differ in form and the printed one is not shown false."""
    renamed = _renaming(step, derived)
    if renamed is not None:
        return Verdict("verified", "symbolic", Text("printed = derived with ", renamed))
    found = _safe_counterexample(step, derived)
    # evidence only when both statements are about the same quantity (same left side)
    cex = None if found is None or not found.anchored else found.text()
    why = explain(step.printed, derived)
    diffs = tuple(differences(step.printed, derived))
    if pv.ok:
        if indep.ok or cex is None:
            note = "" if indep.ok else "; the derived form differs but no value separates them"
            return Verdict("verified", pv.method, pv.detail + note)
        return Verdict(
            "failed",
            "symbolic",
            text(
                "the derivation code is at fault: the printed statement passes ({m}: {pd}) "
                "but the derived one differs ({why}; {cex})",
                m=pv.method,
                pd=pv.detail,
                why=why,
                cex=cex,
            ),
            parts=("derivation code", first_difference(step.printed, derived), found),
            differences=diffs,
            counterexample=found,
        )
    if cex is not None and indep.ok:
        return Verdict(
            "misprint",
            "counterexample",
            Text(why, "; ", cex, "; derived ", indep.detail, f" ({indep.method})"),
            parts=(first_difference(step.printed, derived), found),
            differences=diffs,
            counterexample=found,
        )
    if cex is not None:
        return Verdict(
            "failed",
            "symbolic",
            text(
                "printed and derived differ ({why}; {cex}), and neither could be checked "
                "independently ({pd}), so the engine cannot say which one is wrong",
                why=why,
                cex=cex,
                pd=pv.detail,
            ),
            parts=("undecided", first_difference(step.printed, derived), found),
            differences=diffs,
            counterexample=found,
        )
    return Verdict(
        "unchecked",
        "",
        text(
            "printed and derived differ in form ({why}); no check could compare them ({pd})",
            why=why,
            pd=pv.detail,
        ),
        differences=diffs,
        counterexample=found,
    )


def _renaming(step: Step, derived: sp.Basic) -> Text | None:
    """A renaming of free indices (same ranges) that makes printed and derived agree.

    A statement for all values of its free indices says the same after a bijective
    renaming that keeps every index's range and the assumed inequalities.
    """
    printed = step.printed
    if printed is None or isinstance(printed, ForAll) or has_matrix(printed) or has_matrix(derived):
        return None
    ranges, unequal = step.ctx.ranges, {frozenset(p) for p in step.ctx.unequal}
    free = sorted((printed.free_symbols | derived.free_symbols) & set(ranges), key=lambda t: t.name)
    if not 1 < len(free) <= 4:
        return None
    for perm in itertools.permutations(free):
        rep = dict(zip(free, perm, strict=True))
        if all(a == c for a, c in rep.items()) or any(
            ranges[a] != ranges[c] for a, c in rep.items()
        ):
            continue
        if {frozenset(rep.get(a, a) for a in p) for p in unequal} != unequal:
            continue
        if symbolic_equal(printed.xreplace(rep), derived, step.ctx):
            moved = Text.join(", ", (_renamed_to(a, c) for a, c in rep.items() if a != c))
            return Text("the free indices renamed (", moved, ")")
    return None


def _safe_counterexample(step: Step, derived: sp.Basic) -> Counterexample | None:
    if isinstance(step.printed, ForAll) or has_matrix(step.printed) or has_matrix(derived):
        return None
    return find_counterexample(step.printed, derived, step.ctx)


def _misprint(step: Step, derived: sp.Basic, pv: Evidence, indep: Evidence) -> Verdict:
    """The printed statement failed an independent check: a misprint, explained."""
    why = explain(step.printed, derived)
    detail = Text(why, "; printed ", pv.detail)
    if indep.ok:
        detail += Text("; derived ", indep.detail, f" ({indep.method})")
    parts: tuple = (first_difference(step.printed, derived),)
    found = None
    if pv.method == "well-formedness":
        parts = _ill_formed_parts(step, parts)
        cex, found = _printed_counterexample(step, derived)
        if cex:
            parts += (found or cex,)
            detail += Text("; ", cex)
    elif has_matrix(step.printed):
        parts = (Text("shape: ", pv.detail),)
    elif pv.detail:
        parts += (Text("printed ", pv.detail.clauses()[0]),)
    diffs = () if has_matrix(step.printed) else tuple(differences(step.printed, derived))
    return Verdict(
        "misprint", pv.method, detail, parts=parts, differences=diffs, counterexample=found
    )


def _ill_formed_parts(step: Step, parts: tuple) -> tuple:
    """The summary of an ill-formed printed statement: stray index, undefined symbols."""
    target = step.printed.statement if isinstance(step.printed, ForAll) else step.printed
    stray = stray_index(target)
    if stray is not None:
        s, carriers = stray
        # keep the first difference when it is short (an index slip, a missing sum)
        if len(render_parts(parts)) <= 160:
            parts += (StrayIndex(s, tuple(carriers)),)
        else:
            parts = (StrayIndex(s, tuple(carriers), "index: "),)
    unknown = set().union(*(unknown_symbols(a) | unknown_symbols(c) for a, c in pairs(target)))
    if unknown:
        parts += (UndefinedSymbols(tuple(sorted(unknown, key=lambda t: t.name))),)
    return parts


def independent(
    step: Step, stmt: sp.Basic, env: dict | None = None, extra: bool = True
) -> Evidence:
    """Exact finite-width check, then the extra check, of one statement."""
    target = stmt.statement if isinstance(stmt, ForAll) else stmt
    if has_matrix(target):
        if not step.configs:
            return Evidence(
                None, "", Text("no finite-width configuration to evaluate the matrix on")
            )
        ok, detail = exact_matrix(target, L, list(step.configs))
        return Evidence(ok, "exact-finite-width", detail)
    ok, wf_detail = well_formed(target)
    if not ok:
        return Evidence(False, "well-formedness", as_text(wf_detail))
    if _plain(target):
        ok = all(sp.simplify(sp.expand(a - c)) == 0 for a, c in pairs(target))
        return Evidence(ok, "symbolic", Text("identity" if ok else "the two sides differ"))
    passed: list[Evidence] = []
    skipped: list[Text] = []
    for ev in _checks(step, target, env or {}, extra):
        if ev.ok is False:
            return ev
        (passed.append(ev) if ev.ok else skipped.append(ev.detail))
    if not passed:
        return Evidence(None, "", Text.join("; ", skipped) or Text("no independent check applies"))
    return Evidence(True, passed[0].method, Text.join("; ", (e.detail for e in passed)))


def _checks(step: Step, target: sp.Basic, env: dict, extra: bool) -> Iterator[Evidence]:
    """Run the exact and the extra check in turn (None-evidence when one does not apply)."""
    if step.configs:
        try:
            if isinstance(target, Tends):
                raise NotExact("a limit has no exact finite-width value")
            ok, detail = exact_finite_width(target, step.ctx, list(step.configs))
            yield Evidence(ok, "exact-finite-width", detail)
        except NotExact as exc:
            yield Evidence(None, "", Text("exact check: ", exc.detail))
    if step.extra_check is not None and extra:
        try:
            ok, method, extra_detail = step.extra_check(target, step.ctx, env)
            yield Evidence(ok, method, as_text(extra_detail))
        except NotExact as exc:
            yield Evidence(None, "", Text("extra check: ", exc.detail))


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


def _printed_counterexample(
    step: Step, derived: sp.Basic
) -> tuple[Text | None, Counterexample | None]:
    """A concrete counterexample to an ill-formed printed statement, if one can be built.

    With finite-width configurations the printed statement itself is evaluated on the
    network (its one-sided indices included; returned as Text only); otherwise it is
    compared with the derived (verified) form at small concrete widths.
    """
    target = step.printed.statement if isinstance(step.printed, ForAll) else step.printed
    if step.configs and not isinstance(target, Tends):
        try:
            ok, det = exact_finite_width(target, step.ctx, list(step.configs))
        except NotExact:
            ok, det = True, Text()
        if not ok:
            return Text("counterexample on the network: printed ", det), None
    found = find_counterexample(step.printed, derived, step.ctx)
    return (None, None) if found is None else (found.text(), found)
