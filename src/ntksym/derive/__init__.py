"""The derivation engine: steps, rules as data, checks and verdicts.

A derivation is data that programs can use::

    from ntksym.derive import compare, load_derivation
    seed = load_derivation(path)                       # a module defining DERIVATION
    before = seed.run(quick=True)                      # every step, in order
    bad = seed.with_printed("18", new_statement)       # a new Derivation (immutable)
    one = bad.run_one("18")                            # earlier steps derived, not checked
    changes = compare(before, bad.run(quick=True))     # steps whose verdict changed

Verdicts (:data:`VERDICTS`): ``verified`` (a check compared two things and could have
failed), ``misprint`` (independent evidence against the printed statement, the derived one
passing), ``failed`` (the derived statement fails, or the evidence cannot clear the
derivation code), ``unchecked`` (nothing could be compared, or a step it depends on has no
derived statement; the reason is given), ``error`` (an exception while deriving or
checking, with its type, message and rule) and ``assumed`` (definitions, hypotheses).
A :class:`StepResult` carries the printed and derived statements as SymPy objects, the
smallest :class:`Difference` s and a :class:`Counterexample`; :func:`plain` and
:func:`latex` print them.

Modules, upstream first: ``layered`` (per-layer scalars and activations) -> ``symbols``
-> ``statements`` -> ``plaintext`` (plain text of statements) -> ``text`` (check
details, notes and rule descriptions as words and formulas,
:class:`~ntksym.derive.text.Text`, printed as LaTeX or plain text, never parsed back) ->
``registry``, ``rules_network``, ``rules_probability`` (``rules`` gathers them) ->
``steps`` -> ``wellformed``, ``finite_width`` -> ``tangent`` -> ``canonical``,
``explain`` (``checks`` gathers them), ``definitions``, ``recursion``, ``numeric``,
``layered_numeric`` (a derived recursion against ``ntksym.stax``) ->
``judge`` -> ``derivation`` (``core`` gathers the step/derivation names) -> ``loader``.
"""

from ntksym.derive.checks import canonical, exact_finite_width, explain, symbolic_equal
from ntksym.derive.definitions import definition_check, definition_range
from ntksym.derive.derivation import Change, Derivation, StepNotFound, compare
from ntksym.derive.explain import Counterexample, Difference
from ntksym.derive.judge import run_step
from ntksym.derive.loader import load_derivation
from ntksym.derive.plaintext import plain
from ntksym.derive.rules import RULES, Context, RuleError, apply_rule
from ntksym.derive.statements import Chain, ForAll
from ntksym.derive.steps import VERDICTS, Step, StepResult, Verdict, WidthConfig
from ntksym.derive.symbols import E, GaussE, Tends, latex
from ntksym.derive.tangent import Grad, Mat, Member, Outer, Tr, Vec

__all__ = [
    "RULES",
    "VERDICTS",
    "Chain",
    "Change",
    "Context",
    "Counterexample",
    "Derivation",
    "Difference",
    "E",
    "ForAll",
    "GaussE",
    "Grad",
    "Mat",
    "Member",
    "Outer",
    "RuleError",
    "Step",
    "StepNotFound",
    "StepResult",
    "Tends",
    "Tr",
    "Vec",
    "Verdict",
    "WidthConfig",
    "apply_rule",
    "canonical",
    "compare",
    "definition_check",
    "definition_range",
    "exact_finite_width",
    "explain",
    "latex",
    "load_derivation",
    "plain",
    "run_step",
    "symbolic_equal",
]
