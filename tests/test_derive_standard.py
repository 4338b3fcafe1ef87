"""The standard-parameterization derivation and the engine's support for it."""

from collections import Counter

import pytest
import sympy as sp

from ntksym.derivations import standard as S
from ntksym.derive.finite_width import exact_finite_width
from ntksym.derive.rules import Context, RuleError, apply_rule
from ntksym.errors import NTKSymError
from ntksym.extend import E, alpha_t, beta, index, weight_std, width, x

k, i = index("k"), index("i")
n0, n1 = width(0), width(1)
ZZ = E(alpha_t(1)[k] * alpha_t(1, True)[k])
CONFIGS = [({}, {0: 2, 1: 1}), ({}, {0: 3, 1: 2})]


def _sigma1(factor: sp.Expr) -> sp.Eq:
    return sp.Eq(ZZ, factor * sp.Sum(x()[i] * x(True)[i], (i, 1, n0)) + beta**2)


@pytest.fixture(scope="module")
def results():
    return {r.label: r for r in S.DERIVATION.run()}


def test_unknown_parameterization_is_refused_naming_the_allowed_ones():
    with pytest.raises(RuleError, match="'mup'.*ntk, standard") as info:
        Context(parameterization="mup")
    assert isinstance(info.value, NTKSymError)


def test_exact_checker_uses_the_weight_variance_of_the_context():
    ctx = Context(ranges={k: n1, i: n0}, weight_var=sp.Integer(4))
    assert exact_finite_width(_sigma1(4 / n0), ctx, CONFIGS)[0]
    # the unit-variance answer is now a counterexample (it passed before the fix)
    assert not exact_finite_width(_sigma1(1 / n0), ctx, CONFIGS)[0]


def test_standard_parameterization_in_the_rules_and_the_exact_checker():
    ctx = Context(ranges={k: n1, i: n0}, weight_scale=weight_std, parameterization="standard")
    one = apply_rule("definition", alpha_t(1)[k], ctx)
    assert not one.has(sp.sqrt(n0)) and one.has(sp.Sum)
    assert exact_finite_width(_sigma1(weight_std**2 / n0), ctx, CONFIGS)[0]
    assert not exact_finite_width(_sigma1(weight_std**2), ctx, CONFIGS)[0]
    assert not exact_finite_width(_sigma1(1 / n0), ctx, CONFIGS)[0]


def test_every_step_verified_by_a_check_that_compared(results):
    assert Counter(r.verdict for r in results.values()) == {"verified": 10}
    assert "exact at" in results["1"].detail and "exact at" in results["5"].detail
    assert "reference.recursion" in results["4"].detail
    for label in ("6", "8", "9"):
        assert results[label].method == "symbolic+monte-carlo"
        assert "finite SP networks" in results[label].detail
    assert results["10"].method == "symbolic+numeric+monte-carlo"


def test_ntk_weight_part_carries_n0_over_sigma_w_squared(results):
    rhs = results["5"].derived_expr.args[-1]
    coeff = sp.expand(rhs).coeff(S.Sigma(1) * S.dK)
    assert sp.simplify(coeff - n0 / weight_std**2) == 0


PLANTED = {
    # a dropped sigma_w^2: the NTK parameterization's unit-variance Sigma^(1)
    "1": S.Chain(S.Sigma(1), ZZ, sp.Sum(x()[i] * x(True)[i], (i, 1, n0)) / n0 + beta**2),
    # the NTK parameterization's Theta^(1) = Sigma^(1) delta, without n_0 / sigma_w^2
    "5": S.Chain(S.Theta(1, S.k, S.kp), S.LHS5, S.Sigma(1) * S.dK),
    # the weights' learning rate not scaled: sigma_w^2 / n_0 dropped
    "7": sp.Eq(S.LHS7.subs(weight_std**2 / n0, 1), S.Sigma(1) * S.dK),
}


@pytest.mark.parametrize("label", sorted(PLANTED))
def test_planted_error_is_a_misprint_with_a_counterexample(label):
    bad = S.DERIVATION.with_printed(label, PLANTED[label])
    res = bad.run_one(label)
    assert res.verdict == "misprint", (res.verdict, res.detail)
    assert "fails at" in res.detail


def test_wrong_limit_is_caught_by_monte_carlo():
    u, v = S.u, S.v
    wrong = S.Tends(
        S.WL / S.nL, weight_std**2 * S.GaussE(S.sigma(u) * S.sigma(v), u, v, S.L) * S.dK, S.nL
    )
    res = S.DERIVATION.with_printed("6", wrong).run_one("6")
    assert res.verdict == "misprint", (res.verdict, res.detail)
    assert "printed" in res.detail and "rate" in res.detail


def test_bug_in_the_derivation_code_is_failed_not_misprint():
    def drops_bias(env: dict) -> sp.Basic:
        good = S.d5(env)
        return S.Chain(*good.args[:-1], sp.expand(good.args[-1]).subs(beta, 0))

    res = S.DERIVATION.replace_step("5", derive=drops_bias).run_one("5")
    assert res.verdict == "failed", (res.verdict, res.detail)


def test_wrong_factor_through_the_earlier_layers_is_caught_by_monte_carlo():
    u, v = S.u, S.v
    no_sw = S.dK * S.GaussE(S.sigmadot(u) * S.sigmadot(v), u, v, S.L) * S.Theta_inf(S.L)
    res = S.DERIVATION.with_printed("9", S.Tends(S.LHS9, no_sw, S.nL)).run_one("9")
    assert res.verdict == "misprint", (res.verdict, res.detail)
    assert res.method == "monte-carlo"


def test_recursion_without_theta_inf_is_caught_numerically():
    wrong = sp.Eq(S.Theta(S.L + 1, S.k, S.kp), (S.Sigma_dot(S.L + 1) + S.Sigma(S.L + 1)) * S.dK)
    res = S.DERIVATION.with_printed("10", wrong).run_one("10")
    assert res.verdict == "misprint", (res.verdict, res.detail)
    assert "reference.recursion" in res.detail


def test_the_nngp_statement_holds_on_both_networks_and_the_ntk_statement_only_on_one():
    """Sigma^(1) of (1) and Theta^(1) of (5), evaluated exactly on both networks."""
    configs = list(S.CFG1)
    for label, holds_on_ntk in (("1", True), ("5", False)):
        step = S.DERIVATION.step(label)
        ntk = step.ctx.replace(parameterization="ntk")
        assert exact_finite_width(step.printed, step.ctx, configs)[0]
        assert exact_finite_width(step.printed, ntk, configs)[0] is holds_on_ntk
