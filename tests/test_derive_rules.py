import pytest
import sympy as sp

from ntksym.derive import RULES, Chain, Context, E, apply_rule, symbolic_equal
from ntksym.derive.checks import exact_finite_width, explain, well_formed
from ntksym.derive.rules import RuleError, merge_sums
from ntksym.derive.symbols import (
    ZF,
    PSum,
    W,
    alpha,
    alpha_t,
    b,
    beta,
    index,
    l,
    sigma,
    sigmadot,
    theta,
    width,
    x,
)

k, kp, i, j = (index(s) for s in ("k", "k'", "i", "j"))
n0, n1, nl = width(0), width(1), width(l)
CTX1 = Context(ranges={k: n1, kp: n1, i: n0, j: n1})


def test_registry_lists_rules():
    for name in (
        "definition",
        "chain_rule",
        "delta_sum",
        "linearity",
        "independence",
        "gaussian_moments",
        "law_of_large_numbers",
        "gaussian_process",
        "parameter_sum",
    ):
        assert name in RULES
    with pytest.raises(NotImplementedError, match="no rule"):
        apply_rule("nonexistent", sp.Integer(1))


def test_definition_unfolds_one_layer():
    e = apply_rule("definition", alpha_t(1)[k], CTX1)
    e = apply_rule("definition", e, CTX1)
    expected = sp.Sum(W(0)[k, i] * x()[i], (i, 1, n0)) / sp.sqrt(n0) + beta * b(0)[k]
    assert symbolic_equal(e, expected, CTX1)
    assert apply_rule("definition", alpha(l + 1)[k], CTX1) == sigma(alpha_t(l + 1)[k])


def test_chain_rule_gives_delta_form():
    f = apply_rule("definition", apply_rule("definition", alpha_t(1)[k], CTX1), CTX1)
    d = apply_rule("chain_rule", sp.Derivative(f, W(0)[j, i]), CTX1)
    assert sp.simplify(d - x()[i] * sp.KroneckerDelta(j, k) / sp.sqrt(n0)) == 0


def test_chain_rule_through_sigma():
    z = ZF(1)
    f = sp.Sum(W(1)[k, i] * sigma(z(i, theta)), (i, 1, width(1)))
    d = apply_rule("chain_rule", sp.Derivative(f, theta), CTX1)
    assert d.has(sigmadot(z(i, theta))) or any(
        isinstance(t, sp.Sum) and t.function.has(sigmadot) for t in d.atoms(sp.Sum)
    )


def test_delta_sum_contracts():
    e = sp.Sum(sp.KroneckerDelta(j, k) * sp.KroneckerDelta(j, kp) * beta**2, (j, 1, n1))
    assert apply_rule("delta_sum", e, CTX1) == beta**2 * sp.KroneckerDelta(k, kp)


def test_gaussian_moments_wick():
    w = W(0)
    assert apply_rule("gaussian_moments", E(w[k, i]), CTX1) == 0
    assert apply_rule("gaussian_moments", E(w[k, i] * w[kp, j]), CTX1) == (
        sp.KroneckerDelta(k, kp) * sp.KroneckerDelta(i, j)
    )
    four = apply_rule("gaussian_moments", E(w[1, 1] ** 4), CTX1)
    assert four == 3
    assert apply_rule("gaussian_moments", E(w[k, i] * b(0)[k]), CTX1) == 0


def test_linearity_and_independence():
    e = E(2 * beta * b(l)[k] + sp.Sum(W(l)[k, j] * alpha(l)[j], (j, 1, nl)))
    lin = apply_rule("linearity", e, CTX1)
    assert lin.has(E(b(l)[k]))
    ind = apply_rule("independence", lin, CTX1)
    assert ind.has(E(W(l)[k, j]) * E(alpha(l)[j])) or E(alpha(l)[j]) in ind.atoms(E)


def test_independence_refuses_dependent_factors():
    with pytest.raises(RuleError):
        apply_rule("independence", E(W(0)[k, i] * alpha(1)[i]), CTX1)


def test_expectation_of_first_layer_covariance():
    ctx = CTX1
    zk = apply_rule("definition", alpha_t(1)[k], ctx)
    zkp = apply_rule("definition", alpha_t(1, True)[kp], ctx)
    got = apply_rule("expectation", E(zk * zkp), ctx)
    want = sp.KroneckerDelta(k, kp) * (
        sp.Sum(alpha(0)[i] * alpha(0, True)[i], (i, 1, n0)) / n0 + beta**2
    )
    got = got.replace(lambda t: isinstance(t, E), lambda t: t.args[0])
    assert symbolic_equal(got, want, ctx)


def test_law_of_large_numbers():
    s = sp.Sum(sigma(alpha_t(l)[j]) * sigma(alpha_t(l, True)[j]), (j, 1, nl)) / nl + beta**2
    got = apply_rule("law_of_large_numbers", s, CTX1)
    ii = sp.Symbol("i", integer=True, positive=True)
    assert got == E(sigma(alpha_t(l)[ii]) * sigma(alpha_t(l, True)[ii])) + beta**2
    with pytest.raises(RuleError):
        apply_rule("law_of_large_numbers", sp.Sum(alpha(l)[j], (j, 1, nl)) / n1, CTX1)


def test_parameter_sum_pulls_out_constants():
    z = ZF(1)
    e = PSum(W(1)[k, i] * sp.Derivative(z(i, theta), theta))
    got = apply_rule("parameter_sum", e, CTX1)
    assert got == W(1)[k, i] * PSum(sp.Derivative(z(i, theta), theta))


def test_merge_sums_renames_clashing_indices():
    a = sp.Sum(W(0)[k, j] * x()[j], (j, 1, n0))
    merged = merge_sums(a * a)
    assert len(merged.limits) == 2
    assert merged.limits[0][0] != merged.limits[1][0]


def test_exact_check_catches_false_identity():
    stmt = sp.Eq(sp.Derivative(alpha_t(1)[k], W(0)[k, i]), 2 * x()[i] / sp.sqrt(n0))
    ok, detail = exact_finite_width(stmt, CTX1, [({}, {0: 2, 1: 2})])
    assert not ok and "fails" in detail
    good = sp.Eq(sp.Derivative(alpha_t(1)[k], W(0)[k, i]), x()[i] / sp.sqrt(n0))
    assert exact_finite_width(good, CTX1, [({}, {0: 2, 1: 2})])[0]


def test_well_formed_and_explain():
    bad = sp.Eq(alpha_t(1)[k], alpha_t(1)[j])
    assert not well_formed(bad)[0]
    msg = explain(Chain(W(0)[i, i], x()[i]), Chain(W(0)[j, i], x()[i]))
    assert "w_{ii}" in msg and "w_{ji}" in msg


def test_outer_product_rule():
    from ntksym.derive import Grad, Mat, Outer, Tr, Vec
    from ntksym.derive.symbols import L

    e = apply_rule("outer_product", PSum(Outer(Grad(L, False), Grad(L, True))))
    assert isinstance(e, Mat)
    body, (r, _, hi), (c, _, hi2) = e.args
    assert hi == hi2 == width(L)
    # entry (r, c) is sum_p dF_r(x) dF_c(x')
    assert isinstance(body, PSum)
    ders = sorted(body.args[0].atoms(sp.Derivative), key=str)
    assert {d.expr.indices[0] for d in ders} == {r, c}
    row = Vec(sp.Derivative(alpha_t(L)[k], theta, evaluate=False), sp.Tuple(k, 1, width(L)))
    assert apply_rule("outer_product", Outer(Tr(row), Tr(row))).has(Mat)
    with pytest.raises(RuleError, match="non-column"):
        apply_rule("outer_product", Outer(row, row))
