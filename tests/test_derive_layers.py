"""The layer derivations (Dropout, Sign, sums of branches, LayerNorm): verified, tied to the
code's kernels, and failing when an error is planted in them."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from ntksym import stax
from ntksym.derivations import dropout, fan_in_concat, fan_in_sum, layer_norm, sign
from ntksym.derive.rules_layers import Ex, GaussPair
from ntksym.extend import Context, RuleError, apply_rule

DERIVATIONS = {d.DERIVATION.name: d for d in (dropout, sign, fan_in_sum, fan_in_concat, layer_norm)}


@pytest.fixture(scope="module")
def runs():
    return {name: {r.label: r for r in mod.DERIVATION.run()} for name, mod in DERIVATIONS.items()}


@pytest.mark.parametrize("name", sorted(DERIVATIONS))
def test_every_step_is_verified_or_assumed(runs, name):
    for label, res in runs[name].items():
        assert res.verdict in ("verified", "assumed"), (name, label, res.verdict, str(res.detail))


def test_the_maps_are_checked_against_the_code(runs):
    expected = {
        ("dropout", "3"),
        ("dropout", "4"),
        ("dropout", "5"),
        ("dropout", "6"),
        ("sign", "3"),
        ("sign", "4"),
        ("fan_in_sum", "3"),
        ("fan_in_sum", "7"),
        ("fan_in_concat", "4"),
        ("fan_in_concat", "5"),
        ("layer_norm", "4"),
        ("layer_norm", "6"),
    }
    for name, label in expected:
        res = runs[name][label]
        assert res.verdict == "verified" and "the code's" in str(res.detail), (name, label)
    assert "refuses this network" in str(runs["fan_in_sum"]["5"].detail)
    assert "refuses this network" in str(runs["fan_in_concat"]["6"].detail)
    assert "finite FanInConcat" in str(runs["fan_in_concat"]["1"].detail)


# ---------------------------------------------------------------- derived map vs stax
def _value(expr: sp.Expr, values: dict) -> float:
    return float(sp.N(expr.xreplace({s: sp.Float(v, 30) for s, v in values.items()}), 30))


def _dense_kernels(x: np.ndarray, w: float, b: float) -> np.ndarray:
    return w**2 * (x @ x.T) / x.shape[1] + b**2


X = np.random.default_rng(3).normal(size=(3, 4))


def test_layer_norm_map_equals_stax_kernel(runs):
    w, b, e = 1.3, 0.4, 0.05
    net = stax.serial(stax.Dense(8, W_std=w, b_std=b), stax.LayerNorm(eps=e))
    nngp, ntk = net.kernel_fn(X, X, ("nngp", "ntk"))
    s = _dense_kernels(X, w, b)
    cov = runs["layer_norm"]["4"].derived_expr.args[1]
    tan = runs["layer_norm"]["6"].derived_expr.args[1].subs({layer_norm.k: 1, layer_norm.kp: 1})
    for i in range(3):
        for j in range(3):
            vals = {
                layer_norm.S11: s[i, i],
                layer_norm.S22: s[j, j],
                layer_norm.S12: s[i, j],
                layer_norm.T12: s[i, j],  # the NTK of the first Dense layer is its Sigma
                layer_norm.eps: e,
            }
            assert _value(cov, vals) == pytest.approx(nngp[i, j], rel=1e-13)
            assert _value(tan, vals) == pytest.approx(ntk[i, j], rel=1e-13)


def test_sign_map_equals_stax_kernel(runs):
    net = stax.serial(stax.Dense(8, W_std=1.1, b_std=0.2), stax.Sign())
    nngp, ntk = net.kernel_fn(X, X, ("nngp", "ntk"))
    s = _dense_kernels(X, 1.1, 0.2)
    cov = runs["sign"]["3"].derived_expr.rhs
    for i in range(3):
        for j in range(3):
            vals = {sign.S11: s[i, i], sign.S22: s[j, j], sign.S12: s[i, j]}
            if i == j:  # rho = 1: arcsin(1) = pi/2
                assert nngp[i, j] == pytest.approx(1.0, rel=1e-14)
            else:
                assert _value(cov, vals) == pytest.approx(nngp[i, j], rel=1e-13)
    assert runs["sign"]["4"].derived_expr.rhs == 0
    assert np.all(ntk == 0)


def test_dropout_map_equals_stax_kernel(runs):
    q, w, b = 0.7, 0.9, 0.3
    net = stax.serial(stax.Dense(8, W_std=w, b_std=b), stax.Dropout(q))
    # x2 = None: K(X, X), an example paired with itself draws one mask
    nngp, ntk = net.kernel_fn(X, None, ("nngp", "ntk"))
    s = _dense_kernels(X, w, b)
    off = runs["dropout"]["3"].derived_expr.rhs
    diag = runs["dropout"]["4"].derived_expr.rhs
    ntk_off = runs["dropout"]["5"].derived_expr.rhs
    ntk_diag = runs["dropout"]["6"].derived_expr.rhs
    for i in range(3):
        for j in range(3):
            vals = {
                dropout.q: q,
                dropout.S11: s[i, i],
                dropout.S12: s[i, j],
                dropout.T11: s[i, i],
                dropout.T12: s[i, j],
            }
            want_cov, want_ntk = (diag, ntk_diag) if i == j else (off, ntk_off)
            assert _value(want_cov, vals) == pytest.approx(nngp[i, j], rel=1e-13)
            assert _value(want_ntk, vals) == pytest.approx(ntk[i, j], rel=1e-13)


def test_fan_in_sum_map_equals_stax_kernel(runs):
    branches = [(1.2, 0.3), (0.7, 0.5)]
    net = stax.serial(
        stax.Dense(8),
        stax.Relu(),
        stax.FanOut(2),
        stax.parallel(*[stax.Dense(8, W_std=w, b_std=b) for w, b in branches]),
        stax.FanInSum(),
    )
    nngp, ntk = net.kernel_fn(X, X, ("nngp", "ntk"))
    parts = [
        stax.serial(stax.Dense(8), stax.Relu(), stax.Dense(8, W_std=w, b_std=b)).kernel_fn(
            X, X, ("nngp", "ntk")
        )
        for w, b in branches
    ]
    cov = runs["fan_in_sum"]["3"].derived_expr.rhs
    tan = runs["fan_in_sum"]["7"].derived_expr.rhs
    f = fan_in_sum
    for i in range(3):
        for j in range(3):
            vals = {f.SA: parts[0][0][i, j], f.SB: parts[1][0][i, j]}
            assert _value(cov, vals) == pytest.approx(nngp[i, j], rel=1e-13)
            vals = {f.TA: parts[0][1][i, j], f.TB: parts[1][1][i, j]}
            assert _value(tan, vals) == pytest.approx(ntk[i, j], rel=1e-13)


# ---------------------------------------------------------------- planted errors
def test_dropout_planted_errors():
    d = dropout.DERIVATION
    typo = d.with_printed("4", sp.Eq(dropout.P4.lhs, dropout.S11 * dropout.q)).run_one("4")
    assert typo.verdict == "misprint", str(typo.detail)
    bug = d.replace_step("4", derive=lambda env: sp.Eq(dropout.P4.lhs, dropout.S11)).run_one("4")
    assert bug.verdict == "failed", str(bug.detail)


def test_sign_planted_errors():
    d = sign.DERIVATION
    typo = d.with_printed("3", sp.Eq(sign.SS, sp.asin(sign.RHO) / sp.pi)).run_one("3")
    assert typo.verdict == "misprint", str(typo.detail)

    def wrong_sheppard(env):  # 1/pi instead of 1/(2 pi)
        e = env["1"].rhs.replace(
            lambda t: t.func.__name__ == "Orthant",
            lambda t: sp.Rational(1, 4) + sp.asin(t.args[0]) / sp.pi,
        )
        return sp.Eq(sign.SS, sp.expand(e))

    assert d.replace_step("3", derive=wrong_sheppard).run_one("3").verdict == "failed"


def test_fan_in_sum_planted_errors():
    d, f = fan_in_sum.DERIVATION, fan_in_sum
    # adding the kernels of Identity + Identity (2 Sigma) is a misprint: the sum is 4 Sigma
    typo = d.with_printed("5", sp.Eq(f.II, 2 * f.SZ)).run_one("5")
    assert typo.verdict == "misprint", str(typo.detail)
    # a derivation that keeps a cross term fails against Monte Carlo
    keep = d.replace_step("2", derive=lambda env: sp.Eq(f.P2.lhs, f.ba * f.bb)).run_one("2")
    assert keep.verdict == "failed", str(keep.detail)
    half = d.with_printed("3", sp.Eq(f.SUM, (f.SA + f.SB) / 2)).run_one("3")
    assert half.verdict == "misprint", str(half.detail)


def test_fan_in_concat_map_equals_stax_kernel(runs):
    """(4) and (5) at the widths 48 and 16 (a : b = 3 : 1) against ``kernel_fn``."""
    widths, scales = (48, 16), ((0.6, 0.1), (2.0, 0.5))
    dense = [stax.Dense(w, W_std=s, b_std=b) for w, (s, b) in zip(widths, scales, strict=True)]
    trunk = [stax.Dense(8), stax.Relu()]
    net = stax.serial(*trunk, stax.FanOut(2), stax.parallel(*dense), stax.FanInConcat())
    nngp, ntk = net.kernel_fn(X, X, ("nngp", "ntk"))
    parts = [stax.serial(*trunk, layer).kernel_fn(X, X, ("nngp", "ntk")) for layer in dense]
    f = fan_in_concat
    cov, tan = (runs["fan_in_concat"][label].derived_expr.args[1] for label in ("4", "5"))
    for i in range(3):
        for j in range(3):
            vals = {f.SA: parts[0][0][i, j], f.SB: parts[1][0][i, j], f.ra: 3, f.rb: 1}
            assert _value(cov, vals) == pytest.approx(nngp[i, j], rel=1e-13)
            vals = {f.TA: parts[0][1][i, j], f.TB: parts[1][1][i, j], f.ra: 3, f.rb: 1}
            assert _value(tan, vals) == pytest.approx(ntk[i, j], rel=1e-13)


def test_fan_in_concat_planted_errors():
    d, f = fan_in_concat.DERIVATION, fan_in_concat
    # the plain mean of branches of unequal widths is a misprint
    half = d.with_printed("4", f.Tends(f.P4.args[0], (f.SA + f.SB) / 2, f.n)).run_one("4")
    assert half.verdict == "misprint", str(half.detail)

    def swapped(env):  # the weights exchanged: fails against the code's map
        good = f.weighted("S", env, ("1", "2", "3"))
        return f.Tends(good.args[0], good.args[1].xreplace({f.ra: f.rb, f.rb: f.ra}), f.n)

    assert d.replace_step("4", derive=swapped).run_one("4").verdict == "failed"
    # a split that drops the second block fails against the code's finite network
    one_block = d.replace_step("1", derive=lambda env: sp.Eq(f.P1.lhs, f.P1.rhs.args[0]))
    assert one_block.run_one("1").verdict == "failed"


def test_layer_norm_planted_errors():
    d, ln = layer_norm.DERIVATION, layer_norm
    wrong = ln.S12 / (ln.S11 + ln.eps)
    typo = d.with_printed("4", ln.Tends(ln.P4.args[0], wrong, ln.n)).run_one("4")
    assert typo.verdict == "misprint", str(typo.detail)

    def no_sqrt(env):
        good = ln.d6(env)
        return ln.Tends(good.args[0], good.args[1] ** 2 / ln.T12, ln.n)

    assert d.replace_step("6", derive=no_sqrt).run_one("6").verdict == "failed"
    # a Jacobian without the mean's term fails the finite differences
    jac = d.replace_step(
        "5", derive=lambda env: sp.Eq(ln.DY, sp.KroneckerDelta(ln.k, ln.j) / ln.sg)
    )
    assert jac.run_one("5").verdict == "failed"


# ---------------------------------------------------------------- the rules refuse misuse
def test_layer_rules_refuse_what_they_do_not_cover():
    ctx = Context()
    xi = dropout.xi
    with pytest.raises(RuleError, match="inside a function"):
        apply_rule("bernoulli_moments", Ex(sp.exp(xi[dropout.k])), dropout.CTX)
    u, v = sign.u, sign.v
    with pytest.raises(RuleError, match="other than through sign"):
        apply_rule("sign_orthants", sign.gp(sp.sign(u) * v), ctx)
    with pytest.raises(RuleError, match="limit_width"):
        apply_rule("power_counting", sp.Integer(1), ctx)
    n = layer_norm.n
    wide = Context(ranges={"limit_width": n})
    with pytest.raises(RuleError, match="not a power"):
        apply_rule("power_counting", 1 / (n + 1), wide)
    kept = apply_rule(
        "power_counting",
        3 + 1 / sp.sqrt(n) + sp.Sum(dropout.h[dropout.k], (dropout.k, 1, n)) / n,
        wide,
    )
    assert kept == 3 + sp.Sum(dropout.h[dropout.k], (dropout.k, 1, n)) / n
    with pytest.raises(RuleError, match="no declared convergent"):
        apply_rule("continuous_mapping", sp.Symbol("nothing_declared", positive=True), ctx)
    assert isinstance(sign.gp(sp.sign(u)), GaussPair)
