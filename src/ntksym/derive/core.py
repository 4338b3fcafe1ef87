"""Steps, derivations and verdicts (the names derivation documents import).

The pieces live in :mod:`ntksym.derive.statements` (statement shapes),
:mod:`ntksym.derive.steps` (steps and verdicts), :mod:`ntksym.derive.judge` (checking one
step) and :mod:`ntksym.derive.derivation` (running a derivation).
"""

from __future__ import annotations

from ntksym.derive.derivation import Change, Derivation, compare
from ntksym.derive.judge import run_step
from ntksym.derive.statements import ForAll
from ntksym.derive.steps import VERDICTS, CheckFn, Step, StepResult, Verdict

__all__ = [
    "VERDICTS",
    "Change",
    "CheckFn",
    "Derivation",
    "ForAll",
    "Step",
    "StepResult",
    "Verdict",
    "compare",
    "run_step",
]
