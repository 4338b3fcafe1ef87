"""A network's notes for shapes with no activation between layers or no Dense layer last:
a network ending in an activation, and a LayerNorm, a Dropout or a Dense layer right after a
Dense layer (the Dense layer after them has no activation: the identity)."""

from __future__ import annotations

import pytest
import sympy as sp

from ntksym import stax
from ntksym.derive.symbols import Sigma, Sigma_dot, Theta_inf
from ntksym.notes.network import network_derivation, units
from ntksym.notes.network_check import SAME_EXAMPLE
from ntksym.notes.network_layers import number
from ntksym.notes.network_units import NO_ACTIVATION


def _all_verified(results) -> None:
    for r in results:
        assert (r.verdict, r.method) == ("verified", "symbolic+numeric"), (
            r.label,
            r.detail.plain(),
        )
        assert "ntksym.reference.kernel" in r.detail.plain(), r.label


def _ends_in_relu():
    return stax.serial(stax.Dense(4, W_std=1.2, b_std=0.3), stax.Relu())


def test_a_network_ending_in_an_activation_is_derived_and_checked():
    parts = units(_ends_in_relu())
    assert [u.kind for u in parts] == ["input", "activation"]
    assert parts[1].dense is None and parts[1].act is not None
    deriv = network_derivation(_ends_in_relu())
    results = deriv.run()
    assert [r.label for r in results] == ["S1", "T1", "S2", "D2", "T2"]
    _all_verified(results)
    # per_layer's (4) and (6) at sigma_w = 1, beta = 0, its (7) left out
    note = deriv.step("T2").note.plain()
    assert "derivation per_layer" in note and "(7) left out" in note
    assert deriv.step("T2").derive({}) == sp.Eq(Theta_inf(2), Theta_inf(1) * Sigma_dot(2))
    # the NTK of a Dense-ending network (its own parameters' term Sigma^(2) added) printed
    # for the activation's: a misprint
    printed = deriv.step("T2").printed
    dense_like = sp.Eq(printed.lhs, printed.rhs + Sigma(2))
    r = deriv.with_printed("T2", dense_like).run_one("T2")
    assert r.verdict == "misprint", r.detail.plain()
    # a weight variance 1.1^2 planted in the derived covariance: failed
    right = deriv.step("S2").derive({})
    planted = sp.Eq(right.lhs, sp.Float("1.21") * right.rhs)
    r = deriv.replace_step("S2", derive=lambda env: planted).run_one("S2")
    assert r.verdict == "failed", r.detail.plain()
    # the same for the derivative kernel (checked through the NTK step that uses it)
    right = deriv.step("D2").derive({})
    planted = sp.Eq(right.lhs, sp.Float("1.21") * right.rhs)
    r = deriv.replace_step("D2", derive=lambda env: planted).run_one("D2")
    assert r.verdict == "failed", r.detail.plain()


def test_an_activation_after_a_residual_block_ends_the_network():
    block = stax.serial(
        stax.FanOut(2),
        stax.parallel(stax.serial(stax.Relu(), stax.Dense(5, W_std=0.7)), stax.Identity()),
        stax.FanInSum(),
    )
    net = stax.serial(stax.Dense(5, W_std=1.2, b_std=0.3), block, stax.Gelu())
    assert [u.kind for u in units(net)] == ["input", "residual", "activation"]
    results = network_derivation(net).run()
    assert [r.label for r in results][-3:] == ["S3", "D3", "T3"]
    _all_verified(results)


def _linear_chain():
    """LayerNorm, Dropout and Dense layers right after Dense layers, then an activation."""
    return stax.serial(
        stax.Dense(5, W_std=1.2, b_std=0.3),
        stax.LayerNorm(),
        stax.Dense(4, W_std=0.9, b_std=0.1),
        stax.Dropout(0.7),
        stax.Dense(3, W_std=1.1),
        stax.Dense(3, W_std=0.8, b_std=0.2, parameterization="standard"),
        stax.Erf(),
    )


@pytest.fixture(scope="module")
def linear_context():
    from ntksym.notes.network_build import network_context

    return network_context(_linear_chain())


def test_layers_right_after_a_dense_layer_are_derived_with_no_activation(linear_context):
    parts = units(_linear_chain())
    kinds = ["input", "layer_norm", "layer", "layer_dropout", "layer_standard", "activation"]
    assert [u.kind for u in parts] == kinds
    assert all(u.act is NO_ACTIVATION for u in parts[2:5])
    counts = linear_context["view"].counts
    assert counts["verified"] == 16 and sum(counts.values()) == 16, counts
    assert all(s.method == "symbolic+numeric" for s in linear_context["view"].steps)


def test_linear_layers_are_rendered(linear_context):
    from ntksym.notes.network_build import render_network

    md = render_network(linear_context, "md")
    assert "no activation: the Dense layer is linear" in md and "**(T6)**" in md
    assert "the network's output" in md and "(7) left out" in md
    tex = render_network(linear_context, "tex")
    assert r"\tag{D6}" in tex and r"\vverified" in tex


def test_planted_errors_after_a_dense_layer_are_reported():
    deriv = network_derivation(_linear_chain())
    # the Dense layer after the LayerNorm: a wrong weight variance, failed when derived
    # and a misprint when printed
    right = deriv.step("S3").derive({})
    planted = right.xreplace({number(0.9) ** 2: sp.Float("0.9")})
    assert planted != right
    r = deriv.replace_step("S3", derive=lambda env: planted).run_one("S3")
    assert r.verdict == "failed", r.detail.plain()
    assert deriv.with_printed("S3", planted).run_one("S3").verdict == "misprint"
    # the Dropout on the Dense layer's field with one mask for every pair: failed
    wrong = deriv.step("S4").derive({}).xreplace({SAME_EXAMPLE: 1})
    r = deriv.replace_step("S4", derive=lambda env: wrong).run_one("S4")
    assert r.verdict == "failed", r.detail.plain()


def test_a_branch_ending_in_a_dense_layer_after_a_layer_norm_and_dropout_after_concat():
    relu = stax.serial(stax.Relu(), stax.Dense(4, W_std=0.9, b_std=0.2))
    normed = stax.serial(
        stax.Erf(), stax.Dense(4, W_std=1.3), stax.LayerNorm(), stax.Dense(4, W_std=0.7)
    )
    net = stax.serial(
        stax.Dense(4, W_std=1.1), stax.FanOut(2), stax.parallel(relu, normed), stax.FanInSum()
    )
    parts = units(net)
    assert [u.kind for u in parts] == ["input", "layer", "layer_norm", "branches"]
    assert parts[-1].branches[1][0] is NO_ACTIVATION
    results = network_derivation(net).run()
    assert [r.label for r in results][2:] == ["S2.2.1", "D2.2.1", "T2.2.1", "S2.2.2", "T2.2.2"] + [
        "S2",
        "T2",
    ]
    _all_verified(results)
    concat = stax.serial(
        stax.Dense(4, W_std=1.1),
        stax.FanOut(2),
        stax.parallel(relu, stax.serial(stax.Erf(), stax.Dense(6))),
        stax.FanInConcat(),
        stax.Dropout(0.6),
        stax.Dense(3, W_std=0.8),
    )
    assert [u.kind for u in units(concat)] == ["input", "concat", "layer_dropout"]
    _all_verified(network_derivation(concat).run())
