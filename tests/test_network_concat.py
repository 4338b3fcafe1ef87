"""Blocks joined by FanInConcat in a network's notes: fan_in_concat's width-weighted mean."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sympy as sp

from ntksym import stax
from ntksym.derive.symbols import Sigma
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
    assert "no activation after FanInConcat" in md and "widths 12, 4" in md


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
    nested = stax.serial(stax.Relu(), stax.Dense(4), *block[1:], stax.Dense(4))
    with pytest.raises(InputError, match="block inside a branch"):
        units(
            stax.serial(stax.Dense(4), stax.FanOut(2), stax.parallel(relu, nested), stax.FanInSum())
        )


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
