"""Blocks of n >= 2 branches: fan_in_sum's n-branch derivation and a network's notes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sympy as sp

from ntksym import stax
from ntksym.derivations import fan_in_sum
from ntksym.derivations._block_sum import block_sum, branch_symbols
from ntksym.errors import InputError
from ntksym.notes.network import network_derivation, units


def _three():
    """Dense, then Relu-Dense + the Identity + Erf-Dense (the issue's three branches)."""
    return stax.serial(
        stax.Dense(5, W_std=1.2, b_std=0.3),
        stax.FanOut(3),
        stax.parallel(
            stax.serial(stax.Relu(), stax.Dense(5, W_std=0.9, b_std=0.2)),
            stax.Identity(),
            stax.serial(stax.Erf(), stax.Dense(5, W_std=1.3)),
        ),
        stax.FanInSum(),
    )


def _four():
    """Four Dense branches after a hidden layer, then one more layer after the block."""
    acts = ((stax.Relu(), 0.9, 0.2), (stax.Erf(), 1.3, None), (stax.Sin(), 0.7, 0.1))
    branches = [stax.serial(a, stax.Dense(3, W_std=w, b_std=b)) for a, w, b in acts]
    branches.append(stax.serial(stax.Relu(), stax.Dense(3, W_std=1.1, b_std=0.4)))
    return stax.serial(
        stax.Dense(4, W_std=1.1, b_std=0.1),
        stax.FanOut(4),
        stax.parallel(*branches),
        stax.FanInSum(),
        stax.Erf(),
        stax.Dense(2, W_std=0.8),
    )


@pytest.mark.parametrize(("dense", "skip"), [(2, False), (2, True), (4, False)])
def test_the_n_branch_sum_is_derived_and_matches_the_code(dense, skip):
    results = {r.label: r for r in block_sum(dense, skip).run()}
    assert list(results) == ["1", "2", "3", "6", "7"]
    assert all(r.verdict == "verified" for r in results.values()), results
    for label in ("3", "7"):  # and the code's float64 and mpmath FanInSum of as many
        assert results[label].method == "symbolic+numeric"
        assert "mpmath FanInSum" in results[label].detail.plain()
    count = dense + skip
    assert len(sp.Add.make_args(results["1"].derived_expr.rhs)) == count**2
    assert len(sp.Add.make_args(results["2"].derived_expr.lhs)) == count * (count - 1)


def test_two_branches_give_the_two_branch_document_s_sum():
    env = {r.label: r.derived_expr for r in fan_in_sum.DERIVATION.run(quick=True)}
    (s1, t1), (s2, t2) = branch_symbols(2)
    mine = {r.label: r.derived_expr for r in block_sum(2).run(quick=True)}
    swap = {s1: fan_in_sum.SA, s2: fan_in_sum.SB, t1: fan_in_sum.TA, t2: fan_in_sum.TB}
    assert mine["3"].rhs.xreplace(swap) == env["3"].rhs
    assert mine["7"].rhs.xreplace(swap) == env["7"].rhs


def test_planted_errors_in_the_n_branch_sum_are_reported():
    deriv = block_sum(2, skip=True)
    (sz, tz), (s1, _), (s2, _) = branch_symbols(2, skip=True)
    # one branch dropped from the printed sum: a misprint (the derivation gives all three)
    dropped = sp.Eq(deriv.step("3").printed.lhs, s1 + s2)
    r = deriv.with_printed("3", dropped).run_one("3")
    assert r.verdict == "misprint", r.detail.plain()
    # a wrong coefficient in a copy of the derivation: the code's FanInSum disagrees
    right = deriv.step("7").derive({"6": deriv.step("6").derive({})})
    wrong = sp.Eq(right.lhs, right.rhs + tz)
    r = deriv.replace_step("7", derive=lambda env: wrong).run_one("7")
    assert r.verdict == "failed", r.detail.plain()
    assert "FanInSum" in r.detail.plain()
    with pytest.raises(InputError, match="two branches"):
        block_sum(1)


@pytest.fixture(scope="module")
def three_context():
    from ntksym.notes.network_build import network_context

    return network_context(_three())


@pytest.fixture(scope="module")
def four_context():
    from ntksym.notes.network_build import network_context

    return network_context(_four())


def _verdicts(context) -> dict[str, str]:
    return {s.label: s.verdict for s in context["view"].steps}


def test_a_three_branch_block_with_the_identity_is_verified_and_rendered(three_context):
    from ntksym.notes.network_build import render_network

    assert [u.kind for u in units(_three())] == ["input", "branches"]
    assert units(_three())[1].skip
    counts = three_context["view"].counts
    assert counts["verified"] == 4 and sum(counts.values()) == 4, counts
    assert list(_verdicts(three_context)) == ["S1", "T1", "S2", "T2"]
    tex = render_network(three_context, "tex")
    assert r"\psi" in tex and r"\tag{T2}" in tex and r"\vverified" in tex
    assert "for 3 branches" in tex
    md = render_network(three_context, "md")
    assert "the sum of 3 branches: the Identity" in md and "**(T2)**" in md


def test_a_four_branch_block_is_verified_and_rendered(four_context):
    from ntksym.notes.network_build import render_network

    assert [u.kind for u in units(_four())] == ["input", "branches", "layer"]
    counts = four_context["view"].counts
    assert counts["verified"] == 7 and sum(counts.values()) == 7, counts
    tex = render_network(four_context, "tex")
    assert r"\chi" in tex and r"\omega" in tex and "for 4 branches" in tex
    md = render_network(four_context, "md")
    assert "the sum of 4 branches" in md and "**(T3)**" in md


def test_planted_errors_in_a_four_branch_network_are_reported():
    from ntksym.notes.network_branches import branch_functions
    from ntksym.notes.network_layers import number

    deriv = network_derivation(_four())
    printed = deriv.step("S2").printed
    # one branch (the Sin one, chi) dropped from the printed sum: a misprint
    chi = branch_functions(2)[0]
    dropped = sp.Add(*[t for t in sp.Add.make_args(printed.rhs) if not t.has(chi)])
    assert dropped != printed.rhs
    r = deriv.with_printed("S2", sp.Eq(printed.lhs, dropped - number(0.1) ** 2)).run_one("S2")
    assert r.verdict == "misprint", r.detail.plain()
    # a wrong coefficient in the derived side (the fourth branch's 1.1^2 -> 1.2^2): failed
    right = deriv.step("T2").derive({})
    planted = right.xreplace({number(1.1) ** 2: sp.Float("1.44")})
    assert planted != right
    r = deriv.replace_step("T2", derive=lambda env: planted).run_one("T2")
    assert r.verdict == "failed", r.detail.plain()


def test_blocks_the_notes_do_not_cover_are_refused_by_name():
    relu = stax.serial(stax.Relu(), stax.Dense(4))
    inner = stax.serial(stax.FanOut(2), stax.parallel(relu, stax.Identity()), stax.FanInSum())
    nested = stax.serial(stax.Relu(), stax.Dense(4), inner)

    def block(n, *branches):
        return stax.serial(stax.Dense(4), stax.FanOut(n), stax.parallel(*branches), stax.FanInSum())

    # a branch ending in a block is read whole (tests/test_network_whole_branches.py)
    assert [u.kind for u in units(block(3, relu, nested, stax.Identity()))][-1] == "branches"
    # a branch ending in a LayerNorm beside the Identity: their cross term vanishes by
    # LayerNorm's oddness only, which the engine does not derive (refused); beside Dense
    # branches alone it is read (tests/test_network_sign_norm.py)
    normed = stax.serial(stax.Relu(), stax.Dense(4), stax.LayerNorm())
    with pytest.raises(InputError, match="LayerNorm's oddness"):
        units(block(3, relu, normed, stax.Identity()))
    assert [u.kind for u in units(block(2, relu, normed))][-1] == "branches"
    # two Identities: the code refuses them (the same Gaussian field) before the notes do
    with pytest.raises(InputError, match="same Gaussian field"):
        units(block(3, relu, stax.Identity(), stax.Identity()))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex")
def test_the_pdf_of_a_four_branch_network_compiles(tmp_path, four_context):
    from ntksym._io import atomic_write_text
    from ntksym.notes.build import compile_pdf, pdf_pages
    from ntksym.notes.network_build import render_network

    tex = Path(tmp_path) / "four.tex"
    atomic_write_text(tex, render_network(four_context, "tex"))
    pdf = compile_pdf(tex)
    assert pdf.stat().st_size > 10_000 and pdf_pages(pdf) >= 1
