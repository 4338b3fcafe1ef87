"""The per-layer and residual derivations: verified, cross-checked, and errors planted in them."""

import importlib

import pytest
import sympy as sp

from ntksym.derive import ForAll
from ntksym.derive.layered import layer_activation, layer_scalar
from ntksym.derive.layered_numeric import parts_of, reference_gap
from ntksym.derive.recursion import DerivedRecursion
from ntksym.derive.symbols import (
    GaussE,
    L,
    Sigma,
    Sigma_dot,
    Theta_inf,
    alpha,
    alpha_t,
    b,
    beta,
    l,
    sigma,
    width,
)
from ntksym.errors import InputError

pl = importlib.import_module("ntksym.derivations.per_layer")
rs = importlib.import_module("ntksym.derivations.residual")
u, v = sp.symbols("u v", real=True)


@pytest.fixture(scope="module")
def per_layer():
    # the whole run: the stax cross-checks of (4) and (8) included
    return {r.label: r for r in pl.DERIVATION.run()}


@pytest.fixture(scope="module")
def residual():
    return {r.label: r for r in rs.DERIVATION.run()}


def _verdicts(results):
    return {lab: r.verdict for lab, r in results.items()}


def test_per_layer_every_step_verified_or_assumed(per_layer):
    assumed = {"d0", "d1", "d2", "h"}
    assert _verdicts(per_layer) == {
        lab: "assumed" if lab in assumed else "verified" for lab in per_layer
    }
    # the finite-width steps were compared exactly, at two depths for the layer map
    assert "exact at l=1" in per_layer["2"].detail and "l=2" in per_layer["2"].detail
    assert per_layer["4"].method == "symbolic+numeric"
    assert per_layer["8"].method == "symbolic+numeric+monte-carlo"
    assert "reference_kernels (nngp, ntk)" in per_layer["8"].detail


def test_residual_every_step_verified_or_assumed(residual):
    assumed = {"d0", "d1", "d2", "d3", "h"}
    assert _verdicts(residual) == {
        lab: "assumed" if lab in assumed else "verified" for lab in residual
    }
    assert "exact at L=1" in residual["6.1"].detail
    assert residual["4"].method == "symbolic+numeric"
    assert residual["8"].method == "symbolic+numeric+monte-carlo"


def test_residual_ntk_in_feedforward_form_fails_the_stax_check(residual):
    # Theta^(L) Sigmadot + Sigma: the feedforward recursion, without the skip's own Theta^(L)
    env = {r.label: r.derived_expr for r in residual.values()}
    step = rs.DERIVATION.step("8")
    wrong = step.printed.func(
        step.printed.lhs,
        step.printed.rhs.xreplace({1 + rs.lam**2 * rs.SDOT: rs.lam**2 * rs.SDOT}),
        *step.printed.args[2:],
    )
    assert wrong != step.printed
    ok, method, detail = step.extra_check(wrong, step.ctx, env)
    assert ok is False and method == "numeric", detail
    ok, method, _ = step.extra_check(step.printed, step.ctx, env)
    assert ok is True and method == "numeric+monte-carlo"


def test_layer_symbols_follow_the_layer():
    sw = layer_scalar("sigma_w_l")
    phi, phidot = layer_activation("phi")
    assert layer_scalar("sigma_w_l") is sw and sw(l).is_positive
    assert sp.diff(phi(l, 3 * u), u) == 3 * phidot(l, 3 * u)
    assert (sw(l + 1) * phi(l + 1, u)).xreplace({l: 2}) == sw(3) * phi(3, u)
    with pytest.raises(InputError, match="already a layer scalar"):
        layer_activation("sigma_w_l")
    with pytest.raises(InputError, match="letters, digits"):
        layer_scalar("not a name")


def test_per_layer_recursion_uses_each_layers_own_scales(per_layer):
    sig = per_layer["4"].derived_expr.rhs
    assert sig.has(pl.sw(l)) and sig.has(pl.bt(l)) and sig.has(pl.phi(l, u))
    th = per_layer["8"].derived_expr.rhs
    assert th.has(Sigma_dot(L + 1)) and th.has(Theta_inf(L))


def test_per_layer_numeric_check_sees_a_wrong_layer_index(per_layer):
    env = {r.label: r.derived_expr for r in per_layer.values()}
    env["Sigmadot(L+1)"] = sp.Integer(0)
    labels = {"sigma1": "1", "sigma_next": "4"}
    right = parts_of(env, labels)
    assert reference_gap(right, pl.ARCH, ("nngp",)) < 1e-12
    # the scale of the previous layer instead of this one's: one index off
    wrong = DerivedRecursion(
        right.sigma1, right.sigma_next.xreplace({pl.sw(l): pl.sw(l - 1)}), sp.S.Zero, sp.S.Zero
    )
    assert reference_gap(wrong, pl.ARCH, ("nngp",)) > 1e-2


def test_residual_numeric_check_sees_a_dropped_skip(residual):
    env = {r.label: r.derived_expr for r in residual.values()}
    right = parts_of(env, {"sigma1": "1", "sigma_next": "4"})
    assert reference_gap(right, rs.ARCH, ("nngp",)) < 1e-12
    feedforward = DerivedRecursion(right.sigma1, right.sigma_next - Sigma(l), sp.S.Zero, sp.S.Zero)
    assert reference_gap(feedforward, rs.ARCH, ("nngp",)) > 1e-2


# ---------------------------------------------------------------- planted errors
k, i = sp.Symbol("k", integer=True, positive=True), sp.Symbol("i", integer=True, positive=True)
PL2 = pl.P2.args[-1]
RS2 = rs.P2.rhs


def _swap_first_x(e):
    """x' -> x in the first sigma factor that is at x'."""
    target = next(t for t in sorted(e.atoms(sp.Function), key=str) if t.has(alpha_t(l, True)))
    return e.xreplace({target: target.xreplace({alpha_t(l, True): alpha_t(l)})})


MUTATIONS = {
    # (derivation, label, new printed statement, verdict, method)
    "pl wrong factor": (
        pl,
        "1",
        pl.P1.func(*pl.P1.args[:-1], pl.P1.args[-1].xreplace({pl.sw(0) ** 2: pl.sw(0)})),
        "misprint",
        "exact-finite-width",
    ),
    "pl dropped term": (
        pl,
        "2",
        pl.P2.func(*pl.P2.args[:-1], PL2 - pl.bt(l) ** 2),
        "misprint",
        "exact-finite-width",
    ),
    "pl swapped argument": (
        pl,
        "2",
        pl.P2.func(*pl.P2.args[:-1], _swap_first_x(PL2)),
        "misprint",
        "exact-finite-width",
    ),
    "pl wrong index": (
        pl,
        "2",
        pl.P2.func(*pl.P2.args[:-1], PL2.xreplace({pl.bt(l): pl.bt(l + 1)})),
        "misprint",
        "exact-finite-width",
    ),
    "rs wrong factor": (
        rs,
        "2",
        sp.Eq(rs.ST, RS2.xreplace({rs.lam**2: rs.lam})),
        "misprint",
        "exact-finite-width",
    ),
    "rs dropped skip": (rs, "2", sp.Eq(rs.ST, RS2 - rs.ZZ), "misprint", "exact-finite-width"),
    "rs wrong index": (
        rs,
        "2",
        sp.Eq(rs.ST, RS2.xreplace({rs.ZZ: alpha_t(l)[i] * alpha_t(l, True)[k]})),
        "misprint",
        "exact-finite-width",
    ),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_planted_error_is_caught_where_planted(name):
    mod, label, printed, verdict, method = MUTATIONS[name]
    assert printed != mod.DERIVATION.step(label).printed
    res = mod.DERIVATION.with_printed(label, printed).run_one(label, extra=False)
    assert (res.verdict, res.method) == (verdict, method), (name, res.verdict, res.detail)
    assert res.explanation and "\n" not in res.explanation


def test_residual_nngp_without_the_skip_is_a_numeric_misprint():
    printed = sp.Eq(Sigma(l + 1), rs.P4.rhs - Sigma(l))
    res = rs.DERIVATION.with_printed("4", printed).run_one("4")
    assert res.verdict == "misprint" and res.method == "numeric", res.detail


def test_true_rewrite_stays_verified():
    # (2) of the per-layer network with the sum written the other way round
    rewritten = pl.P2.func(*pl.P2.args[:-1], sp.expand(PL2 * 2) / 2)
    assert (
        pl.DERIVATION.with_printed("2", rewritten).run_one("2", extra=False).verdict == "verified"
    )


def test_changed_definition_changes_the_steps_that_unfold_it():
    # the residual block without its skip: (2) as printed no longer follows
    d2 = rs.D2.statement
    changed = ForAll(sp.Eq(d2.lhs, d2.rhs - alpha_t(l)[d2.lhs.indices[0]]), rs.D2.domain)
    res = rs.DERIVATION.with_printed("d2", changed).run_one("2", extra=False)
    assert res.verdict == "misprint" and res.method == "exact-finite-width", res.detail
    # a per-layer bias squared in the definition: (1) follows it
    d1 = pl.D1.statement
    sq = ForAll(sp.Eq(d1.lhs, d1.rhs.xreplace({b(l)[k]: b(l)[k] ** 2})), pl.D1.domain)
    res = pl.DERIVATION.with_printed("d1", sq).run_one("1", extra=False)
    assert res.verdict == "misprint", res.detail


def test_bug_in_the_derivation_code_is_failed():
    def buggy(env):  # drops the bias of the first layer
        out = pl.d1(env)
        return out.func(*out.args[:-1], out.args[-1].subs(pl.bt(0), 0))

    res = pl.DERIVATION.replace_step("1", derive=buggy).run_one("1", extra=False)
    assert res.verdict == "failed" and str(res.detail).startswith("derived statement fails")


def test_vanishing_terms_needs_its_width_and_keeps_sums():
    from ntksym.derive.rules import Context, RuleError, apply_rule

    n = width(l)
    with pytest.raises(RuleError, match="limit width"):
        apply_rule("vanishing_terms", alpha(l)[k] / sp.sqrt(n), Context())
    ctx = Context(ranges={"limit_width": n})
    s = sp.Sum(alpha(l)[i], (i, 1, n)) / sp.sqrt(n)
    assert apply_rule("vanishing_terms", alpha(l)[k] / sp.sqrt(n) + beta, ctx) == beta
    assert apply_rule("vanishing_terms", s, ctx) == s  # a sum of n terms may not vanish
    assert apply_rule("gaussian_covariance", GaussE(u * v, u, v, l), ctx) == Sigma(l)
    g = GaussE(sigma(u) * sigma(v), u, v, l)
    assert apply_rule("gaussian_covariance", g, ctx) == g


def test_random_point_shows_nonzero_only_with_evidence():
    from ntksym.derive.finite_width import nonzero_at_random_point

    y = sp.Symbol("y", real=True)
    xi = sp.Dummy("xi")
    d2 = sp.Subs(sp.Derivative(sigma(xi), xi), (xi,), (y + 1,))
    assert nonzero_at_random_point(sigma(y) - sigma(2 * y))
    assert nonzero_at_random_point(d2 - 2 * d2.xreplace({}))
    # equal in value: never called nonzero (the caller then decides exactly)
    assert not nonzero_at_random_point(sigma(2 * y) - sigma(y + y))
    assert not nonzero_at_random_point(sp.sin(y) ** 2 + sp.cos(y) ** 2 - 1)
    assert not nonzero_at_random_point(d2 - sp.Subs(sp.Derivative(sigma(xi), xi), (xi,), (1 + y,)))
