"""A network's notes with a branch whose last Dense layer is standard or follows a Dropout.

Such a branch is read whole as steps of its own (``m.b.j``, its last Dense layer among
them), and the block adds the kernels of its last layer as they are: ``fan_in_sum``'s (3)
and (7) (or ``fan_in_concat``'s mean) with that layer's ``Sigma`` and ``Theta``. Every step
is checked against the referee of the network cut there.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sympy as sp

from ntksym import stax
from ntksym.derive.symbols import Sigma, Theta_inf
from ntksym.notes.network import network_derivation, units
from ntksym.notes.network_units import branch_layer


def _block(fan=stax.FanInSum):
    """Three branches: relu then a standard Dense layer, erf then a Dropout and a Dense
    layer, and the Identity."""
    return (
        stax.Dense(6, W_std=1.2, b_std=0.1),
        stax.FanOut(3),
        stax.parallel(
            stax.serial(stax.Relu(), stax.Dense(6, 1.3, 0.2, parameterization="standard")),
            stax.serial(stax.Erf(), stax.Dropout(0.8), stax.Dense(6, W_std=1.1, b_std=0.1)),
            stax.Identity(),
        ),
        fan(),
    )


def _mixed_block():
    """The block, then relu and a readout."""
    return stax.serial(*_block(), stax.Relu(), stax.Dense(1, W_std=0.9))


@pytest.fixture(scope="module")
def mixed_results():
    deriv = network_derivation(_mixed_block())
    return deriv, deriv.run()


def test_whole_branches_are_steps_of_their_own(mixed_results):
    parts = units(_mixed_block())
    kinds = [u.kind for u in parts]
    assert kinds == ["input", "layer_standard", "layer_dropout", "branches", "layer"], kinds
    block = parts[3]
    assert [a for a, _d in block.branches] == [None, None] and block.skip
    assert block.sources == (branch_layer(2, 1, 1), branch_layer(2, 2, 1))
    # the standard branch's NTK step has its input width (6) and its bias's 1
    assert parts[1].n_in == 6
    deriv, results = mixed_results
    assert all(r.verdict == "verified" for r in results), [r.detail.plain() for r in results]
    assert sum("reference.kernel" in r.detail.plain() for r in results) == len(results)
    labels = [r.label for r in results]
    assert {"S2.1.1", "T2.1.1", "S2.2.1", "T2.2.1", "S2", "T2"} <= set(labels), labels


def test_the_block_adds_the_last_layers_kernels(mixed_results):
    deriv, _ = mixed_results
    names = (branch_layer(2, 1, 1), branch_layer(2, 2, 1))
    s2, t2 = deriv.step("S2").derive({}), deriv.step("T2").derive({})
    assert s2 == sp.Eq(Sigma(2), Sigma(1) + Sigma(names[0]) + Sigma(names[1]))
    assert t2 == sp.Eq(Theta_inf(2), Theta_inf(1) + Theta_inf(names[0]) + Theta_inf(names[1]))


def test_planted_errors_in_a_whole_branch_are_caught(mixed_results):
    deriv, _ = mixed_results
    std = branch_layer(2, 1, 1)
    # the standard branch counted twice in the derived block: the referee disagrees
    right = deriv.step("S2").derive({})
    planted = sp.Eq(right.lhs, right.rhs + Sigma(std))
    r = deriv.replace_step("S2", derive=lambda env: planted).run_one("S2")
    assert r.verdict == "failed", r.detail.plain()
    # the standard branch's NTK without its input width (as if NTK-parameterized): failed
    t = deriv.step(f"T{std}").derive({})
    wrong = t.rhs.xreplace({sp.Integer(6): sp.Float("1.69")})
    assert wrong != t.rhs
    r = deriv.replace_step(f"T{std}", derive=lambda env: sp.Eq(t.lhs, wrong)).run_one(f"T{std}")
    assert r.verdict == "failed", r.detail.plain()
    # a printed block NTK that leaves out the Dropout branch: a misprint
    printed = deriv.step("T2").printed
    dropped = printed.rhs - Theta_inf(branch_layer(2, 2, 1))
    r = deriv.with_printed("T2", sp.Eq(printed.lhs, dropped)).run_one("T2")
    assert r.verdict == "misprint", r.detail.plain()


def test_a_concatenation_with_a_standard_branch_is_verified():
    net = stax.serial(*_block(stax.FanInConcat), stax.Dense(1, W_std=0.7, b_std=0.2))
    parts = units(net)
    assert [u.kind for u in parts] == [
        "input",
        "layer_standard",
        "layer_dropout",
        "concat",
        "layer",
    ]
    assert parts[3].widths == (6, 6, 6)
    results = network_derivation(net).run()
    assert all(r.verdict == "verified" for r in results), [r.detail.plain() for r in results]


def test_whole_branches_render(tmp_path):
    from ntksym.notes.network_build import network_context, render_network

    context = network_context(_mixed_block(), quick=True)
    md = render_network(context, "md")
    assert "layers ending in Dense(6" in md and "Dropout(0.8" in md
    tex = render_network(context, "tex")
    assert "2.1.1" in tex
    if shutil.which("pdflatex") is None:
        return
    from ntksym._io import atomic_write_text
    from ntksym.notes.build import compile_pdf, pdf_pages

    path = Path(tmp_path) / "whole.tex"
    atomic_write_text(path, tex)
    assert pdf_pages(compile_pdf(path)) >= 1


# ---------------------------------------------------------------- a block on the input
def _wide_and_deep():
    """A Dense layer and a deeper branch side by side on the input, then relu."""
    return stax.serial(
        stax.FanOut(2),
        stax.parallel(
            stax.Dense(4, W_std=1.1, b_std=0.2),
            stax.serial(stax.Dense(4), stax.Relu(), stax.Dense(4, W_std=1.3, b_std=0.1)),
        ),
        stax.FanInSum(),
        stax.Relu(),
        stax.Dense(1, W_std=0.8),
    )


def test_a_block_on_the_input_starts_each_branch_with_an_input_step():
    parts = units(_wide_and_deep())
    named = [(u.kind, dict(u.names).get(u.m, u.m)) for u in parts]
    one = [branch_layer(1, b, j) for b, j in ((1, 1), (2, 1), (2, 2))]
    assert named == [
        ("input", one[0]),
        ("input", one[1]),
        ("layer", one[2]),
        ("branches", 1),
        ("layer", 2),
    ], named
    deriv = network_derivation(_wide_and_deep())
    results = deriv.run()
    assert all(r.verdict == "verified" for r in results), [r.detail.plain() for r in results]
    assert sum("reference.kernel" in r.detail.plain() for r in results) == len(results)
    # the block's NNGP is its two branches' last layers' (no kernel before the block)
    s1 = deriv.step("S1").derive({})
    assert s1 == sp.Eq(Sigma(1), Sigma(one[0]) + Sigma(one[2]))
    # the first branch's bias left out of its input step: the referee disagrees
    right = deriv.step(f"S{one[0]}").derive({})
    planted = sp.Eq(right.lhs, right.rhs - sp.Float("0.04"))
    r = deriv.replace_step(f"S{one[0]}", derive=lambda env: planted).run_one(f"S{one[0]}")
    assert r.verdict == "failed", r.detail.plain()
    # a printed block NTK without the deep branch: a misprint
    printed = deriv.step("T1").printed
    dropped = sp.Eq(printed.lhs, printed.rhs - Theta_inf(one[2]))
    assert deriv.with_printed("T1", dropped).run_one("T1").verdict == "misprint"


def test_blocks_on_the_input_the_notes_do_not_cover_are_refused():
    from ntksym.errors import InputError

    deep = stax.serial(stax.Dense(4), stax.Relu(), stax.Dense(4))
    # a branch ending in a LayerNorm beside another that does: their cross terms vanish
    # by LayerNorm's oddness only (beside a Dense-ending branch it is covered)
    normed = stax.serial(stax.Dense(4), stax.LayerNorm())
    with pytest.raises(InputError, match="LayerNorm's oddness"):
        units(stax.serial(stax.FanOut(2), stax.parallel(normed, normed), stax.FanInSum()))
    # the Identity of the input (not a Gaussian field) and an activation on the input are
    # refused by the kernels' own rules first
    with pytest.raises(InputError, match="Gaussian"):
        units(stax.serial(stax.FanOut(2), stax.parallel(stax.Relu(), deep), stax.FanInSum()))


# ---------------------------------------------------------------- a block last in a branch
def _residual(w_std=1.2):
    inner = stax.serial(stax.Relu(), stax.Dense(4, W_std=w_std, b_std=0.1))
    return stax.serial(stax.FanOut(2), stax.parallel(inner, stax.Identity()), stax.FanInSum())


def _block_last():
    """A residual block last in a branch beside the Identity; a block on the input whose
    first branch is itself a block."""
    wide = stax.serial(
        stax.FanOut(2),
        stax.parallel(
            stax.Dense(4, W_std=0.9), stax.serial(stax.Dense(4), stax.Erf(), stax.Dense(4))
        ),
        stax.FanInSum(),
    )
    return stax.serial(
        stax.FanOut(2),
        stax.parallel(wide, stax.Dense(4, W_std=0.7, b_std=0.3)),
        stax.FanInSum(),
        stax.FanOut(2),
        stax.parallel(
            stax.serial(stax.Relu(), stax.Dense(4, W_std=1.1), _residual()), stax.Identity()
        ),
        stax.FanInSum(),
        stax.Relu(),
        stax.Dense(1),
    )


def test_a_block_last_in_a_branch_is_read_whole():
    parts = units(_block_last())
    named = [(u.kind, str(dict(u.names).get(u.m, u.m))) for u in parts]
    assert named == [
        ("input", "1.1.1.1.1"),
        ("input", "1.1.1.2.1"),
        ("layer", "1.1.1.2.2"),
        ("branches", "1.1.1"),
        ("input", "1.2.1"),
        ("branches", "1"),
        ("layer", "2.1.1"),
        ("branches", "2.1.2"),
        ("branches", "2"),
        ("layer", "3"),
    ], named
    deriv = network_derivation(_block_last())
    results = deriv.run()
    assert all(r.verdict == "verified" for r in results), [r.detail.plain() for r in results]
    assert sum("reference.kernel" in r.detail.plain() for r in results) == len(results)
    inner = branch_layer(2, 1, 2)
    assert deriv.step("S2").derive({}) == sp.Eq(Sigma(2), Sigma(1) + Sigma(inner))
    # the inner block's Identity term counted twice in the outer block: failed
    right = deriv.step("T2").derive({})
    planted = sp.Eq(right.lhs, right.rhs + Theta_inf(branch_layer(2, 1, 1)))
    r = deriv.replace_step("T2", derive=lambda env: planted).run_one("T2")
    assert r.verdict == "failed", r.detail.plain()


def test_a_block_last_reading_a_layer_norm_is_refused():
    from ntksym.errors import InputError

    branch = stax.serial(stax.Relu(), stax.Dense(4), stax.LayerNorm(), _residual())
    net = stax.serial(
        stax.Dense(4), stax.FanOut(2), stax.parallel(branch, stax.Identity()), stax.FanInSum()
    )
    with pytest.raises(InputError, match="LayerNorm's oddness"):
        units(net)
