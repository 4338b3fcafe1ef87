"""The rules of the derivation, as data: ``RULES[name](expr, ctx) -> expr``.

Each rule rewrites an expression mechanically; none of them knows the seed's answers.
``ctx`` is a :class:`Context` carrying the index ranges, the assumptions of the step
(e.g. ``k != k'``) and the variances of the Gaussian parameters.

* ``definition`` — unfold (1)–(4): ``alpha~^(m+1)_k = (1/sqrt n_m) sum_j w_kj alpha^(m)_j +
  beta b_k``, ``alpha^(0) = x``, ``alpha^(m) = sigma(alpha~^(m))``.
* ``chain_rule`` — SymPy ``diff`` through sums of ``Indexed`` and an undefined ``sigma``.
* ``delta_sum`` — contract sums of Kronecker deltas one index at a time.
* ``linearity`` — expectation of sums and of deterministic factors.
* ``independence`` — a layer's parameters are independent of the earlier layers' outputs.
* ``gaussian_moments`` — ``E[w]=0``, ``E[w_ki w_k'j] = s^2 d_kk' d_ij`` and Isserlis/Wick.
* ``law_of_large_numbers`` — ``(1/n) sum_{i<=n} g_i -> E[g_i]`` for i.i.d. ``g_i``.
* ``gaussian_process`` — in the limit ``alpha~^(m)_i(x), alpha~^(m)_i(x')`` are jointly
  Gaussian with covariance ``Sigma^(m)`` (the statement (12) proves by induction).
"""

from __future__ import annotations

from ntksym.derive.registry import RULES, Context, RuleError, apply_rule, fresh, rule
from ntksym.derive.rules_layers import (  # noqa: F401 - registers the layer rules
    bernoulli_moments,
)
from ntksym.derive.rules_network import (
    algebra,
    chain_rule,
    definition_of,
    delta_sum,
    depends_on_p,
    drop_range_piecewise,
    induction_hypothesis,
    merge_sums,
    object_derivatives,
    parameter_sum,
    sigma_prime,
    unfold,
)
from ntksym.derive.rules_probability import (
    depends_on_layer,
    expectation,
    gaussian_covariance,
    gaussian_layer,
    gaussian_moments,
    gaussian_process,
    independence,
    is_random,
    law_of_large_numbers,
    linearity,
    tower,
    vanishing_terms,
    wick,
)

__all__ = [
    "RULES",
    "Context",
    "RuleError",
    "algebra",
    "apply_rule",
    "chain_rule",
    "definition_of",
    "delta_sum",
    "depends_on_layer",
    "depends_on_p",
    "drop_range_piecewise",
    "expectation",
    "fresh",
    "gaussian_covariance",
    "gaussian_layer",
    "gaussian_moments",
    "gaussian_process",
    "independence",
    "induction_hypothesis",
    "is_random",
    "law_of_large_numbers",
    "linearity",
    "merge_sums",
    "object_derivatives",
    "parameter_sum",
    "rule",
    "sigma_prime",
    "tower",
    "unfold",
    "vanishing_terms",
    "wick",
]
