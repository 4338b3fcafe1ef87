"""Everything a derivation author imports, in one place.

A derivation document (see ``docs/writing-derivations.md``) declares its steps with the
statement classes and symbols below, justifies each by a registered rule or a check, and
defines ``DERIVATION``; ``ntksym verify path/to/file.py`` then runs it::

    from ntksym.extend import Derivation, Step, Sigma, beta, width, x

The names are re-exported from :mod:`ntksym.derive` (engine, statements, rules, verdicts),
:mod:`ntksym.derive.symbols` (the network's symbols and kernels),
:mod:`ntksym.derive.tangent` (gradients and parameter collections),
:mod:`ntksym.derive.numeric` (numeric and Monte-Carlo checks of a step),
:mod:`ntksym.derive.layered` (parameters and activations that change with the layer),
:mod:`ntksym.derive.layered_numeric` (a derived recursion against ``ntksym.stax``),
:mod:`ntksym.derive.layered_steps` (unfolding, differentiating, parameter sums) and
:mod:`ntksym.derive.text` (notes and descriptions with formulas: ``text``, ``Tex``).
"""

from ntksym.derive import (
    RULES,
    VERDICTS,
    Chain,
    Change,
    Context,
    Counterexample,
    Derivation,
    Difference,
    ForAll,
    Grad,
    Mat,
    Member,
    Outer,
    RuleError,
    Step,
    StepNotFound,
    StepResult,
    Tr,
    Vec,
    Verdict,
    WidthConfig,
    apply_rule,
    compare,
    definition_check,
    definition_range,
    load_derivation,
    plain,
    run_step,
    symbolic_equal,
)
from ntksym.derive.definitions import standard_network, standard_only
from ntksym.derive.layered import layer_activation, layer_scalar
from ntksym.derive.layered_numeric import Architecture, kernel_check
from ntksym.derive.layered_steps import (
    derivative,
    differentiate_unfolded,
    layer_parameter_sum,
    theta_pair,
    unfold,
    with_theta,
)
from ntksym.derive.numeric import limit_check, nngp_check, recursion_check
from ntksym.derive.rules import fresh, merge_sums
from ntksym.derive.symbols import (
    OBJECTS,
    ZF,
    ZF_INFO,
    Dim,
    E,
    GaussE,
    L,
    PSum,
    Sigma,
    Sigma_dot,
    Sigma_t,
    Tends,
    Theta,
    Theta_inf,
    W,
    alpha,
    alpha_t,
    b,
    beta,
    index,
    l,
    latex,
    make_object,
    scalar,
    sigma,
    sigmadot,
    theta,
    weight_std,
    width,
    x,
)
from ntksym.derive.tangent import AllParams
from ntksym.derive.text import Tex, Text, text

__all__ = [
    "RULES", "VERDICTS", "Chain", "Change", "Context", "Counterexample", "Derivation",
    "Difference", "ForAll", "Grad", "Mat", "Member", "Outer", "RuleError", "Step",
    "StepNotFound", "StepResult", "Tr", "Vec", "Verdict", "WidthConfig", "apply_rule", "compare",
    "definition_check", "definition_range", "load_derivation", "plain", "run_step",
    "symbolic_equal", "limit_check", "nngp_check", "recursion_check", "standard_network",
    "standard_only", "fresh", "merge_sums", "layer_activation", "layer_scalar",
    "Architecture", "kernel_check", "derivative", "differentiate_unfolded",
    "layer_parameter_sum", "theta_pair", "unfold", "with_theta",
    "OBJECTS", "ZF", "ZF_INFO", "Dim", "E", "GaussE", "L", "PSum", "Sigma", "Sigma_dot", "Sigma_t",
    "Tends", "Theta", "Theta_inf", "W", "alpha", "alpha_t", "b", "beta", "index", "l",
    "latex", "make_object", "scalar", "sigma", "sigmadot", "theta", "weight_std", "width", "x",
    "AllParams", "Tex", "Text", "text",
]  # fmt: skip
