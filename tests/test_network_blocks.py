"""A network's notes with FanInConcat blocks (fan_in_concat's width-weighted mean) and with
branches longer than one activation and Dense layer (steps of their own inside a branch)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sympy as sp

from ntksym import stax
from ntksym.derive.symbols import GaussE, Sigma, Theta_inf
from ntksym.errors import InputError
from ntksym.notes.network import network_derivation, units


def _concat():
    """The issue's network: two branches of widths 12 and 4 concatenated, then a Dense."""
    return stax.serial(
        stax.Dense(8, W_std=1.2, b_std=0.1),
        stax.FanOut(2),
        stax.parallel(
            stax.serial(stax.Relu(), stax.Dense(12, W_std=0.9, b_std=0.2)),
            stax.serial(stax.Erf(), stax.Dense(4, W_std=1.3)),
        ),
        stax.FanInConcat(),
        stax.Dense(1, W_std=0.8, b_std=0.05),
    )


def _with_identity():
    """Three branches (the Identity among them, width 5) of three different widths."""
    return stax.serial(
        stax.Dense(5, W_std=1.1, b_std=0.3),
        stax.FanOut(3),
        stax.parallel(
            stax.serial(stax.Erf(), stax.Dense(3, W_std=1.4, b_std=0.1)),
            stax.Identity(),
            stax.serial(stax.Sin(), stax.Dense(7, W_std=0.7)),
        ),
        stax.FanInConcat(),
    )


@pytest.fixture(scope="module")
def concat_context():
    from ntksym.notes.network_build import network_context

    return network_context(_concat())


def test_a_concatenation_is_verified_and_rendered(concat_context):
    from ntksym.notes.network_build import render_network

    parts = units(_concat())
    assert [u.kind for u in parts] == ["input", "concat", "layer"]
    assert parts[1].widths == (12, 4)
    counts = concat_context["view"].counts
    assert counts["verified"] == 7 and sum(counts.values()) == 7, counts
    tex = render_network(concat_context, "tex")
    assert r"\psi" in tex and r"\tag{T2}" in tex and r"fan\_in\_concat" in tex
    assert r"}{16}" in tex  # the widths show: (12 (...) + 4 (...)) / 16
    md = render_network(concat_context, "md")
    assert "the concatenation (FanInConcat) of 2 branches" in md and "**(T3)**" in md
    assert "no activation: the Dense layer is linear" in md and "widths 12, 4" in md


def test_a_concatenation_with_the_identity_is_verified():
    parts = units(_with_identity())
    assert parts[1].kind == "concat" and parts[1].skip and parts[1].widths == (5, 3, 7)
    results = network_derivation(_with_identity()).run()
    assert [r.verdict for r in results] == ["verified"] * 4, [r.detail.plain() for r in results]


def test_planted_weights_in_a_concatenation_are_reported():
    from dataclasses import replace

    from ntksym.notes import network
    from ntksym.notes.network_branches import concat_derived

    deriv = network_derivation(_concat())
    # the plain mean printed for the width-weighted one: a misprint
    printed = deriv.step("S2").printed
    plain = printed.rhs.xreplace({sp.Integer(12): sp.Integer(1), sp.Integer(4): sp.Integer(1)})
    assert plain != printed.rhs
    r = deriv.with_printed("S2", sp.Eq(Sigma(2), plain)).run_one("S2")
    assert r.verdict == "misprint", r.detail.plain()
    # the widths swapped in a copy of the unit the derived side is built from: failed
    unit = units(_concat())[1]
    swapped = concat_derived(replace(unit, widths=(4, 12)), "S", network._derived)
    assert swapped != deriv.step("S2").derive({})
    r = deriv.replace_step("S2", derive=lambda env: swapped).run_one("S2")
    assert r.verdict == "failed", r.detail.plain()
    assert "reference.kernel" in r.detail.plain()


def test_concatenations_the_notes_do_not_cover_are_refused_by_name():
    relu = stax.serial(stax.Relu(), stax.Dense(4))
    block = (stax.Dense(4), stax.FanOut(2), stax.parallel(relu, relu), stax.FanInConcat())
    # an activation right after the concatenation: not the map of the mean (refused)
    with pytest.raises(InputError, match="after FanInConcat"):
        units(stax.serial(*block, stax.Erf(), stax.Dense(1)))


def _signed_branches():
    """Sign last in one branch, and Sign inside a longer one beside the Identity."""
    return stax.serial(
        stax.Dense(8, 1.2, 0.1),
        stax.FanOut(2),
        stax.parallel(
            stax.serial(stax.Sign(), stax.Dense(8, 0.9, 0.2)),
            stax.serial(stax.Relu(), stax.Dense(8, 1.1, 0.1)),
        ),
        stax.FanInSum(),
        stax.FanOut(2),
        stax.parallel(
            stax.serial(stax.Sign(), stax.Dense(8, 0.8, 0.1), stax.Erf(), stax.Dense(8, 1.3)),
            stax.Identity(),
        ),
        stax.FanInSum(),
        stax.Relu(),
        stax.Dense(1),
    )


def test_sign_in_a_branch_is_derived_through_derivation_sign():
    """Sign before a branch's NTK-parameterized Dense layer: per_layer's map with
    E[sign sign] = (2/pi) arcsin(rho) and E[sign' sign'] = 0 (derivation sign), as at the
    top level; each step against the referee of the network cut there."""
    kinds = [u.kind for u in units(_signed_branches())]
    assert kinds == ["input", "branches", "layer_sign", "branches", "layer"], kinds
    deriv = network_derivation(_signed_branches())
    results = deriv.run()
    assert all(r.verdict == "verified" for r in results), [r.detail.plain() for r in results]
    assert sum("reference.kernel" in r.detail.plain() for r in results) == len(results)
    # a gradient through Sign planted in the derived NTK of the block (Theta^(1) w^2, as if
    # E[sign' sign'] were 1): the referee disagrees, so the step fails
    right = deriv.step("T2").derive({})
    through = sp.expand(right.rhs).coeff(Theta_inf(1))  # the relu branch's gradient alone
    assert len(through.atoms(GaussE)) == 1 and not through.atoms(sp.asin), through
    planted = sp.Eq(right.lhs, right.rhs + sp.Float("0.81") * Theta_inf(1))
    r = deriv.replace_step("T2", derive=lambda env: planted).run_one("T2")
    assert r.verdict == "failed", r.detail.plain()
    # and a printed statement with a term the derivation does not have: a misprint
    printed = deriv.step("T2").printed
    extra = sp.Eq(printed.lhs, printed.rhs + sp.Symbol("g", positive=True))
    assert deriv.with_printed("T2", extra).run_one("T2").verdict == "misprint"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex")
def test_the_pdf_of_a_concatenation_compiles(tmp_path, concat_context):
    from ntksym._io import atomic_write_text
    from ntksym.notes.build import compile_pdf, pdf_pages
    from ntksym.notes.network_build import render_network

    tex = Path(tmp_path) / "concat.tex"
    atomic_write_text(tex, render_network(concat_context, "tex"))
    pdf = compile_pdf(tex)
    assert pdf.stat().st_size > 10_000 and pdf_pages(pdf) >= 1


# ---------------------------------------------------------------- longer branches
def _long_sum():
    """A sum of a branch of two pairs (Relu-Dense, Erf-Dense) and a branch of one."""
    return stax.serial(
        stax.Dense(6, W_std=1.2, b_std=0.1),
        stax.FanOut(2),
        stax.parallel(
            stax.serial(
                stax.Relu(), stax.Dense(16, W_std=0.9, b_std=0.2), stax.Erf(), stax.Dense(16)
            ),
            stax.serial(stax.Erf(), stax.Dense(16, W_std=1.3, b_std=0.3)),
        ),
        stax.FanInSum(),
    )


def _long_concat():
    """A concatenation of a branch that starts with a Dense layer, the Identity, and a
    branch through Dropout, a standard Dense layer and a LayerNorm; then a Dense layer."""
    return stax.serial(
        stax.Dense(6, W_std=1.2, b_std=0.1),
        stax.FanOut(3),
        stax.parallel(
            stax.serial(stax.Dense(16, W_std=0.9, b_std=0.2), stax.Relu(), stax.Dense(16)),
            stax.Identity(),
            stax.serial(
                stax.Erf(),
                stax.Dropout(0.8),
                stax.Dense(8, W_std=1.1, parameterization="standard"),
                stax.LayerNorm(),
                stax.Sin(),
                stax.Dense(6, W_std=0.7),
            ),
        ),
        stax.FanInConcat(),
        stax.Dense(2, W_std=0.8),
    )


def test_a_longer_branch_has_steps_of_its_own_checked_against_its_cut_network():
    from ntksym.architecture.description import Serial
    from ntksym.notes.network_units import branch_layer

    parts = units(_long_sum())
    assert [u.kind for u in parts] == ["input", "layer", "branches"]
    q = branch_layer(2, 1, 1)
    assert parts[1].names == ((2, q),) and parts[2].sources == (q, 1)
    # the inner layer's referee network: the layers before the block, then the branch cut
    assert str(Serial(parts[1].prefix)).startswith("serial(Dense(6") and len(parts[1].prefix) == 3
    results = network_derivation(_long_sum()).run()
    assert [r.label for r in results] == ["S1", "T1", "S2.1.1", "D2.1.1", "T2.1.1", "S2", "T2"]
    assert all(r.verdict == "verified" for r in results), [r.detail.plain() for r in results]
    assert all("reference.kernel" in r.detail.plain() for r in results)
    # the block's sum reads the branch's own layer through its last pair
    s2 = results[-2].derived_expr
    assert {g.args[3] for g in s2.rhs.atoms(GaussE)} == {q, 1}


def test_longer_branches_of_every_covered_kind_are_verified_and_rendered():
    from ntksym.notes.network_build import network_context, render_network

    kinds = [u.kind for u in units(_long_concat())]
    assert kinds == ["input", "layer", "layer_dropout_standard", "layer_norm", "concat", "layer"]
    context = network_context(_long_concat())
    counts = context["view"].counts
    assert counts["verified"] == 15 and sum(counts.values()) == 15, counts
    md = render_network(context, "md")
    assert "**(S2.3.2)**" in md and r"\Sigma^{(2.3.2)}" in md and "inside branch 3" in md
    assert "| 2.1.1 |" in md and "l = L = 2.3.2" in md


def test_a_planted_error_inside_a_branch_is_reported():
    deriv = network_derivation(_long_sum())
    # the inner layer's weight 0.9^2 printed as 0.9: a misprint
    printed = deriv.step("S2.1.1").printed
    wrong = printed.rhs.xreplace({sp.Float("0.81"): sp.Float("0.9")})
    assert wrong != printed.rhs
    r = deriv.with_printed("S2.1.1", sp.Eq(printed.lhs, wrong)).run_one("S2.1.1")
    assert r.verdict == "misprint", r.detail.plain()
    # the block's sum reading the block's input instead of the branch's own layer: failed
    right = deriv.step("S2").derive({})
    q = deriv.step("S2.1.1").printed.lhs.args[0]
    planted = right.xreplace({q: sp.Integer(1)})
    assert planted != right
    r = deriv.replace_step("S2", derive=lambda env: planted).run_one("S2")
    assert r.verdict == "failed", r.detail.plain()


def test_a_block_after_a_concatenation_starts_its_branches_with_dense_layers():
    """Its branches read the concatenation through Dense layers (no activation): the
    inner layer's referee network is cut inside the branch without an activation."""

    def relu_dense(w):
        return stax.serial(stax.Relu(), stax.Dense(w, W_std=1.1, b_std=0.2))

    net = stax.serial(
        stax.Dense(5),
        stax.FanOut(2),
        stax.parallel(relu_dense(4), relu_dense(6)),
        stax.FanInConcat(),
        stax.FanOut(2),
        stax.parallel(
            stax.serial(stax.Dense(3), stax.Erf(), stax.Dense(3)), stax.Dense(3, W_std=0.5)
        ),
        stax.FanInSum(),
    )
    results = network_derivation(net).run()
    assert [r.label for r in results][4:] == ["S3.1.1", "D3.1.1", "T3.1.1", "S3", "T3"]
    assert all(r.verdict == "verified" for r in results), [r.detail.plain() for r in results]


# ---------------------------------------------------------------- blocks inside a branch
def _nested_sum():
    """A sum of three branches, one of them with a residual block inside (then a pair)."""
    inner = stax.serial(
        stax.FanOut(2),
        stax.parallel(stax.serial(stax.Sin(), stax.Dense(4, W_std=0.8)), stax.Identity()),
        stax.FanInSum(),
    )
    nested = stax.serial(
        stax.Relu(), stax.Dense(4, W_std=1.1), inner, stax.Gelu(), stax.Dense(4, W_std=0.6)
    )
    relu = stax.serial(stax.Relu(), stax.Dense(4, W_std=0.9, b_std=0.2))
    return stax.serial(
        stax.Dense(4, W_std=1.2, b_std=0.3),
        stax.FanOut(3),
        stax.parallel(relu, nested, stax.Identity()),
        stax.FanInSum(),
    )


def _nested_concat():
    """A concatenation inside a branch, then a Dense layer of its own; the network ends in
    an activation after the outer block."""
    relu = stax.serial(stax.Relu(), stax.Dense(4, W_std=0.9, b_std=0.2))
    cat = stax.serial(
        stax.FanOut(2),
        stax.parallel(relu, stax.serial(stax.Sin(), stax.Dense(6))),
        stax.FanInConcat(),
        stax.Dense(4, W_std=0.7),
    )
    erf = stax.serial(stax.Erf(), stax.Dense(4, W_std=1.3))
    return stax.serial(
        stax.Dense(4, W_std=1.2),
        stax.FanOut(2),
        stax.parallel(cat, erf),
        stax.FanInSum(),
        stax.Relu(),
    )


def test_a_block_inside_a_branch_has_steps_of_its_own_checked_against_its_cut_network():
    from ntksym.notes.network_branches import branch_functions
    from ntksym.notes.network_layers import number
    from ntksym.notes.network_units import branch_layer

    parts = units(_nested_sum())
    assert [u.kind for u in parts] == ["input", "layer", "branches", "branches"]
    q1, q2 = branch_layer(2, 2, 1), branch_layer(2, 2, 2)
    assert parts[2].names == ((1, q1), (2, q2)) and parts[2].skip
    assert parts[2].first == 2  # its Sin branch is chi: psi is the enclosing branch's
    assert parts[3].sources == (1, q2)
    # the inner block's referee network: the layers before, then the branch up to it
    assert len(parts[2].prefix) == 6
    deriv = network_derivation(_nested_sum())
    results = deriv.run()
    labels = ["S1", "T1", "S2.2.1", "D2.2.1", "T2.2.1", "S2.2.2", "T2.2.2", "S2", "T2"]
    assert [r.label for r in results] == labels
    for r in results:
        assert (r.verdict, r.method) == ("verified", "symbolic+numeric"), r.detail.plain()
        assert "reference.kernel" in r.detail.plain()
    s = deriv.step("S2.2.2").derive({})
    assert s.rhs.has(branch_functions(2)[0]) and s.rhs.has(Sigma(q1))
    assert "inside branch 2 of the block of layer 2" in deriv.step("T2.2.2").note.plain()
    # the inner block's Identity read as the block's input (layer 1) instead of the
    # branch's own layer 2.2.1: failed; its Sin weight 0.8^2 printed as 0.8: a misprint
    planted = s.xreplace({Sigma(q1): Sigma(1)})
    assert planted != s
    r = deriv.replace_step("S2.2.2", derive=lambda env: planted).run_one("S2.2.2")
    assert r.verdict == "failed", r.detail.plain()
    printed = deriv.step("S2.2.2").printed
    typo = printed.rhs.xreplace({number(0.8) ** 2: sp.Float("0.8")})
    assert typo != printed.rhs
    r = deriv.with_printed("S2.2.2", sp.Eq(printed.lhs, typo)).run_one("S2.2.2")
    assert r.verdict == "misprint", r.detail.plain()


def test_a_concatenation_inside_a_branch_is_verified_and_rendered():
    from dataclasses import replace

    from ntksym.notes import network
    from ntksym.notes.network_branches import concat_derived, in_branch
    from ntksym.notes.network_build import network_context, render_network

    parts = units(_nested_concat())
    assert [u.kind for u in parts] == ["input", "concat", "branches", "activation"]
    assert parts[1].widths == (4, 6) and parts[2].branches[0][0].label.startswith("no activ")
    context = network_context(_nested_concat())
    counts = context["view"].counts
    assert counts["verified"] == 9 and sum(counts.values()) == 9, counts
    md = render_network(context, "md")
    assert "**(S2.1.1)**" in md and "| 2.1.1 |" in md and "widths 4, 6" in md
    # the concatenation's widths swapped in the derived side: failed
    deriv = network_derivation(_nested_concat())
    right = deriv.step("S2.1.1").derive({})
    unit = parts[1]
    swapped = concat_derived(replace(unit, widths=(6, 4)), "S", network._derived)
    swapped = in_branch(unit, swapped)
    assert swapped != right and swapped.lhs == right.lhs
    r = deriv.replace_step("S2.1.1", derive=lambda env: swapped).run_one("S2.1.1")
    assert r.verdict == "failed", r.detail.plain()


def test_a_concatenation_may_hold_the_identity_twice():
    """``[x, x, Dense(relu(x))]`` concatenated: the mean counts the input's kernels twice
    (a sum may not: the kernels refuse one field counted twice)."""
    net = stax.serial(
        stax.Dense(4, W_std=1.1, b_std=0.2),
        stax.FanOut(3),
        stax.parallel(stax.Identity(), stax.Identity(), stax.serial(stax.Relu(), stax.Dense(6))),
        stax.FanInConcat(),
        stax.Dense(1),
    )
    block = units(net)[1]
    assert block.kind == "concat" and block.skip == 2 and block.widths == (4, 4, 6)
    deriv = network_derivation(net)
    results = deriv.run()
    assert all(r.verdict == "verified" for r in results), [r.detail.plain() for r in results]
    # the Identity counted once in the derived mean: the referee disagrees
    from dataclasses import replace

    from ntksym.notes import network
    from ntksym.notes.network_branches import concat_derived

    once = concat_derived(replace(block, skip=1, widths=(4, 6)), "S", network._derived)
    assert once != deriv.step("S2").derive({})
    r = deriv.replace_step("S2", derive=lambda env: once).run_one("S2")
    assert r.verdict == "failed", r.detail.plain()
