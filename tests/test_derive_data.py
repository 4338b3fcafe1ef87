"""Verdicts as data: a step result carries SymPy objects, its differences and its
counterexample, and plain text is printed from them."""

import importlib

import sympy as sp

from ntksym.derive.explain import Counterexample, Difference, differences, find_counterexample
from ntksym.derive.plaintext import plain
from ntksym.derive.symbols import Sigma, Theta, alpha_t, index, width, x

seed = importlib.import_module("ntksym.derivations.seed")
k, kp, i = index("k"), index("k'"), index("i")


def test_plain_statements():
    assert plain(alpha_t(1, True)[k]) == "alpha~^(1)_k(x')"
    assert plain(seed.P18) == "Theta^(1)_kk'(x,x') = Sigma^(1)(x,x')*delta_kk'"
    s = sp.Sum(x()[i] * x(True)[i], (i, 1, width(0)))
    assert plain(s) == "sum_{i=1}^{n_0} (x_i*x'_i)"
    assert plain(None) == ""


def test_dropped_delta_is_described_by_objects():
    p = seed.P18
    bad = seed.DERIVATION.with_printed("18", sp.Eq(p.lhs, Sigma(1)))
    res = bad.run_one("18", extra=False)
    assert res.verdict == "misprint"
    assert res.printed_expr == sp.Eq(Theta(1, k, kp), Sigma(1))
    (d,) = res.differences
    assert isinstance(d, Difference) and d.kind == "term"
    assert d.printed == Sigma(1) and d.derived == Sigma(1) * sp.KroneckerDelta(k, kp)
    assert d.render(plain) == "term: Sigma^(1)(x,x') printed, Sigma^(1)(x,x')*delta_kk' derived"
    row = res.as_dict()
    assert row["differences"][0]["derived"] == r"\Sigma^{(1)}(x,x') \delta_{kk'}"


def test_counterexample_is_data():
    step = seed.DERIVATION.step("25")
    res = seed.DERIVATION.run_one("25", extra=False)
    assert res.verdict == "misprint"
    cex = res.counterexample
    assert isinstance(cex, Counterexample) and cex.member == "finite-width side"
    assert dict(cex.values)[i] == 1 and [n for _, n in cex.widths] == [2]
    # the printed and derived finite-width sides really differ at those values
    p, d = step.printed.args[0], res.derived_expr.args[0]
    rep = {**dict(cex.values), **dict(cex.widths)}
    diff = (p - d).subs(rep).doit()
    assert sp.expand(diff) != 0
    assert cex.render().startswith("counterexample: at n_{L}=2")


def test_no_difference_no_counterexample():
    p = seed.P18
    assert differences(p, p) == []
    assert find_counterexample(p, p, seed.DERIVATION.step("18").ctx) is None
