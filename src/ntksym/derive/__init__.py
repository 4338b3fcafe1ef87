"""The derivation engine: steps, rules as data, checks and verdicts."""

from ntksym.derive.checks import canonical, exact_finite_width, explain, symbolic_equal
from ntksym.derive.definitions import definition_range
from ntksym.derive.derivation import Change, Derivation, compare
from ntksym.derive.judge import run_step
from ntksym.derive.rules import RULES, Context, RuleError, apply_rule
from ntksym.derive.statements import Chain, ForAll
from ntksym.derive.steps import VERDICTS, Step, StepResult, Verdict
from ntksym.derive.symbols import E, GaussE, Tends, latex
from ntksym.derive.tangent import Grad, Mat, Member, Outer, Tr, Vec

__all__ = [
    "RULES",
    "VERDICTS",
    "Change",
    "Chain",
    "Context",
    "Derivation",
    "E",
    "ForAll",
    "GaussE",
    "Grad",
    "Mat",
    "Member",
    "Outer",
    "RuleError",
    "Step",
    "StepResult",
    "Tends",
    "Tr",
    "Vec",
    "Verdict",
    "apply_rule",
    "canonical",
    "compare",
    "definition_range",
    "exact_finite_width",
    "explain",
    "latex",
    "run_step",
    "symbolic_equal",
]
