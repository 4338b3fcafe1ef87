"""The derivation engine: steps, rules as data, checks and verdicts."""

from ntksym.derive.checks import Chain, canonical, exact_finite_width, explain, symbolic_equal
from ntksym.derive.core import Derivation, ForAll, Step, StepResult, Verdict, run_step
from ntksym.derive.definitions import definition_range
from ntksym.derive.rules import RULES, Context, RuleError, apply_rule
from ntksym.derive.symbols import E, GaussE, Tends, latex
from ntksym.derive.tangent import Grad, Mat, Member, Outer, Tr, Vec

__all__ = [
    "RULES",
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
    "definition_range",
    "exact_finite_width",
    "explain",
    "latex",
    "run_step",
    "symbolic_equal",
]
