"""Network notes: Sign wherever a Dense layer follows it (or last), and LayerNorm in branches.

Each shape was refused by the notes until session 18 and is accepted by the kernels; the
random networks of ``tests/test_random_networks.py`` found them (a tenth of the networks
the kernels accept). Every step is checked against ``ntksym.reference.kernel`` of the
network cut there; each test plants an error on the derived side (the referee must fail
it) or on the printed side (a misprint).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sympy as sp

from ntksym import stax
from ntksym.derive.symbols import Sigma, Sigma_dot, Theta_inf
from ntksym.errors import InputError
from ntksym.notes.network import network_derivation, units


def _dense(w: float = 1.0, b: float | None = None, **kw) -> stax.Layer:
    return stax.Dense(4, w, b, **kw)


def _all_verified(deriv) -> dict:
    results = {r.label: r for r in deriv.run()}
    bad = {k: r.detail.plain() for k, r in results.items() if r.verdict != "verified"}
    assert not bad, bad
    assert all("reference.kernel" in r.detail.plain() for r in results.values())
    return results


def _fails(deriv, label: str, planted: sp.Eq) -> None:
    right = deriv.step(label).derive({})
    assert planted != right
    r = deriv.replace_step(label, derive=lambda env: planted).run_one(label)
    assert r.verdict == "failed", r.detail.plain()


def _misprint(deriv, label: str, planted: sp.Eq) -> None:
    assert deriv.with_printed(label, planted).run_one(label).verdict == "misprint"


def _asin(e: sp.Expr) -> sp.Expr:
    (found,) = e.atoms(sp.asin)
    return found


def test_sign_before_a_standard_dense_layer():
    net = stax.serial(
        _dense(1.2, 0.1),
        stax.Sign(),
        stax.Dense(3, 1.1, 0.2, parameterization="standard"),
        stax.Relu(),
        stax.Dense(1),
    )
    assert [u.kind for u in units(net)] == ["input", "layer_standard", "layer"]
    deriv = network_derivation(net)
    results = _all_verified(deriv)
    assert (results["S2"].rule, results["D2"].rule) == ("sheppard", "almost_everywhere")
    assert "of derivation sign" in deriv.step("T2").note.plain()
    assert deriv.step("D2").derive({}) == sp.Eq(Sigma_dot(2), 0)
    # the NTK's weight part is n_in (2/pi) arcsin(rho), n_in = 4: printed without the width
    printed = deriv.step("T2").printed
    weight = 8 * _asin(printed.rhs) / sp.pi
    _misprint(deriv, "T2", sp.Eq(printed.lhs, printed.rhs - weight + weight / 4))
    # a gradient through Sign on the derived side: the referee disagrees
    _fails(deriv, "D2", sp.Eq(Sigma_dot(2), sp.Rational(1, 2)))


def test_sign_then_dropout_in_both_parameterizations():
    for kind, param in (("layer_dropout", "ntk"), ("layer_dropout_standard", "standard")):
        net = stax.serial(
            _dense(1.2, 0.1),
            stax.Sign(),
            stax.Dropout(0.7),
            stax.Dense(3, 1.1, 0.2, parameterization=param),
            stax.Erf(),
            stax.Dense(1),
        )
        assert [u.kind for u in units(net)] == ["input", kind, "layer"]
        deriv = network_derivation(net)
        _all_verified(deriv)
        # one mask for every pair (the delta_{x x'} term dropped): the referee, on a
        # repeated input, disagrees
        right = deriv.step("S2").derive({})
        deltas = [d for d in right.rhs.free_symbols if "delta" in str(d)]
        assert deltas, right
        _fails(deriv, "S2", sp.Eq(right.lhs, right.rhs.subs(deltas[0], 0)))


def test_sign_last():
    net = stax.serial(_dense(1.2, 0.1), stax.Relu(), _dense(1.0, 0.3), stax.Sign())
    assert [u.kind for u in units(net)] == ["input", "layer", "activation"]
    deriv = network_derivation(net)
    _all_verified(deriv)
    assert deriv.step("S3").derive({}).rhs.has(sp.asin)
    _misprint(deriv, "D3", sp.Eq(Sigma_dot(3), sp.Integer(1)))
    _misprint(deriv, "S3", sp.Eq(Sigma(3), 3 * _asin(deriv.step("S3").printed.rhs) / sp.pi))


def test_a_residual_block_around_sign():
    """x + Dense(sign(x)): its expectations by derivation sign (its NTK step failed the
    referee before session 18: E[sign' sign'] was read as the derivative with its delta)."""
    net = stax.serial(
        _dense(1.2, 0.1),
        stax.FanOut(2),
        stax.parallel(stax.Identity(), stax.serial(stax.Sign(), _dense(0.9, 0.2))),
        stax.FanInSum(),
        stax.Relu(),
        stax.Dense(1),
    )
    assert [u.kind for u in units(net)] == ["input", "residual", "layer"]
    deriv = network_derivation(net)
    _all_verified(deriv)
    # a gradient through Sign planted in the block's NTK: Theta^(1) (1 + w^2) for Theta^(1)
    right = deriv.step("T2").derive({})
    _fails(deriv, "T2", sp.Eq(right.lhs, right.rhs + sp.Float("0.81") * Theta_inf(1)))


def _pre_norm(last: stax.Layer) -> stax.Layer:
    """x + Dense(phi(Dense(LayerNorm(x)))): a pre-LayerNorm residual block."""
    branch = stax.serial(stax.LayerNorm(), _dense(0.9, 0.2), stax.Gelu(), _dense(1.1, 0.1))
    return stax.serial(
        _dense(1.2, 0.1),
        stax.FanOut(2),
        stax.parallel(stax.Identity(), branch),
        stax.FanInSum(),
        last,
        stax.Dense(1),
    )


def test_a_pre_layer_norm_residual_block():
    deriv = network_derivation(_pre_norm(stax.Erf()))
    results = _all_verified(deriv)
    assert list(results)[2:4] == ["S2.2.1", "T2.2.1"]  # the LayerNorm, inside the branch
    # the branch's last pair reading the LayerNorm (2.2.1) instead of the Dense layer
    # after it (2.2.2): the referee disagrees
    right = deriv.step("S2").derive({})
    names = [sp.Symbol(f"2.2.{j}", integer=True, positive=True) for j in (1, 2)]
    assert right.rhs.has(names[1])
    _fails(deriv, "S2", sp.Eq(right.lhs, right.rhs.xreplace({names[1]: names[0]})))
    # the printed block NTK without the Identity: a misprint
    printed = deriv.step("T2").printed
    _misprint(deriv, "T2", sp.Eq(printed.lhs, printed.rhs - Theta_inf(1)))


def test_a_branch_ending_in_a_layer_norm_beside_dense_branches():
    normed = stax.serial(_dense(1.1, 0.1), stax.LayerNorm())
    net = stax.serial(
        _dense(1.2, 0.1),
        stax.FanOut(3),
        stax.parallel(
            stax.serial(stax.Relu(), _dense(0.9, 0.2)),
            normed,
            stax.serial(stax.Erf(), stax.Dense(4, 1.3, parameterization="standard")),
        ),
        stax.FanInSum(),
        stax.Relu(),
        stax.Dense(1),
    )
    deriv = network_derivation(net)
    _all_verified(deriv)
    assert "vanish by (2)" in deriv.step("S2").note.plain()
    # the LayerNorm's kernels counted twice: the referee disagrees
    right = deriv.step("S2").derive({})
    norm = Sigma(sp.Symbol("2.2.2", integer=True, positive=True))
    assert right.rhs.has(norm)
    _fails(deriv, "S2", sp.Eq(right.lhs, right.rhs + norm))


def test_a_concatenation_of_the_identity_alone():
    net = stax.serial(
        _dense(0.8),
        stax.FanOut(3),
        stax.parallel(stax.Identity(), stax.Identity(), stax.Identity()),
        stax.FanInConcat(),
        _dense(1.4),
        stax.LeakyRelu(0.2),
        stax.Dense(1),
    )
    deriv = network_derivation(net)
    _all_verified(deriv)
    right = deriv.step("S2").derive({})
    _fails(deriv, "S2", sp.Eq(right.lhs, 3 * Sigma(1)))  # a sum, not the mean


@pytest.mark.parametrize(
    ("branches", "words"),
    [
        # LayerNorm's field beside the Identity, or two of them: their cross terms vanish
        # by its oddness, not by fan_in_sum's (2)
        ((stax.Identity(), stax.serial(_dense(), stax.LayerNorm())), "oddness"),
        (
            (stax.serial(_dense(), stax.LayerNorm()), stax.serial(_dense(), stax.LayerNorm())),
            "oddness",
        ),
        # a block last in a branch, one of whose branches ends in a LayerNorm
        (
            (
                stax.serial(
                    _dense(),
                    stax.FanOut(2),
                    stax.parallel(
                        stax.serial(stax.Relu(), _dense()), stax.serial(_dense(), stax.LayerNorm())
                    ),
                    stax.FanInSum(),
                ),
                stax.Identity(),
            ),
            "oddness",
        ),
        # a sum of the Identity alone (the kernels refuse it too)
        ((stax.Identity(), stax.Identity()), "same Gaussian field"),
    ],
)
def test_sums_whose_cross_terms_the_engine_does_not_derive_are_refused(branches, words):
    net = stax.serial(
        _dense(), stax.FanOut(2), stax.parallel(*branches), stax.FanInSum(), stax.Relu()
    )
    with pytest.raises(InputError, match=words):
        units(net)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex")
def test_the_pdf_of_sign_and_layer_norm_branches_compiles(tmp_path):
    from ntksym.notes.network_build import build_network_notes

    normed = stax.serial(_dense(1.1, 0.1), stax.LayerNorm())
    net = stax.serial(
        _dense(1.2, 0.1),
        stax.Sign(),
        stax.Dropout(0.7),
        stax.Dense(4, 1.1, 0.2, parameterization="standard"),
        stax.FanOut(2),
        stax.parallel(stax.serial(stax.LayerNorm(), _dense(0.9), stax.Relu(), _dense()), normed),
        stax.FanInSum(),
        stax.Sign(),
    )
    built = build_network_notes(net, Path(tmp_path), pdf=True)
    assert built.pdf is not None and built.pages is not None and built.pages >= 1
    counts = built.context["view"].counts
    assert counts["verified"] == sum(counts.values()), counts
