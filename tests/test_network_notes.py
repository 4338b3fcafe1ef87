"""The notes of a described network: its recursion derived from the engine, checked, rendered."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from ntksym import stax
from ntksym.cli import main
from ntksym.errors import InputError
from ntksym.notes.network import (
    network_architecture,
    network_derivation,
    number,
    printed_statements,
    units,
)
from ntksym.notes.network_check import recursion_values

NETWORK_FILE = """
from ntksym import stax

block = stax.serial(
    stax.FanOut(2),
    stax.parallel(stax.serial(stax.Relu(), stax.Dense(6, W_std=0.7, b_std=0.3)), stax.Identity()),
    stax.FanInSum(),
)
net = stax.serial(stax.Dense(6, W_std=1.3, b_std=0.4), stax.Erf(), stax.Dense(6, W_std=0.8), block)
"""


def _net(width: int = 6):
    block = stax.serial(
        stax.FanOut(2),
        stax.parallel(
            stax.serial(stax.Relu(), stax.Dense(width, W_std=0.7, b_std=0.3)), stax.Identity()
        ),
        stax.FanInSum(),
    )
    return stax.serial(
        stax.Dense(width, W_std=1.3, b_std=0.4), stax.Erf(), stax.Dense(width, W_std=0.8), block
    )


@pytest.fixture(scope="module")
def checked():
    deriv = network_derivation(_net())
    return deriv, {r.label: r for r in deriv.run()}


def test_every_step_is_derived_and_checked_against_the_referee(checked):
    deriv, results = checked
    assert list(results) == ["S1", "T1", "S2", "D2", "T2", "S3", "T3"]
    for r in results.values():
        assert r.verdict == "verified", (r.label, r.detail.plain())
        assert r.method == "symbolic+numeric"
        assert "ntksym.reference.kernel" in r.detail.plain()
    # the notes name the general step each statement instantiates
    assert "per_layer" in deriv.step("S2").note.plain()
    assert "residual" in deriv.step("T3").note.plain()


def test_the_instantiated_recursion_equals_the_referee(checked):
    from ntksym.derive.symbols import Sigma, Theta_inf
    from ntksym.reference import kernel

    deriv, _ = checked
    stmts = [step.derive({}) for step in deriv.steps]
    # the derived statements carry the network's numbers, not the general symbols
    assert not any(s.name in ("lambda", "beta") for st in stmts for s in st.free_symbols)
    X = np.random.default_rng(3).standard_normal((2, 4))
    nngp, ntk = kernel(_net(), X, dps=20)
    values = recursion_values(stmts, network_architecture(_net(), X), list(X[0]), list(X[1]))
    assert float(values[Sigma(3)]) == pytest.approx(nngp[0, 1], rel=1e-12)
    assert float(values[Theta_inf(3)]) == pytest.approx(ntk[0, 1], rel=1e-12)


def test_a_planted_wrong_layer_variance_is_not_verified(checked):
    deriv, _ = checked
    unit = units(_net())[2]  # the residual block, W_std = 0.7
    wrong = printed_statements(unit)["S"].xreplace({number(0.7) ** 2: sp.Float("0.9") ** 2})
    r = deriv.with_printed("S3", wrong).run_one("S3")
    assert r.verdict == "misprint"
    assert "printed recursion vs ntksym.reference.kernel" in r.detail.plain()


def test_the_derived_side_with_a_wrong_variance_fails():
    deriv = network_derivation(_net())
    right = deriv.step("S2").derive({})
    planted = right.xreplace({number(0.8) ** 2: sp.Float("0.81")})
    assert planted != right
    r = deriv.replace_step("S2", derive=lambda env: planted).run_one("S2")
    assert r.verdict == "failed", r.detail.plain()
    assert "derived statement" in r.detail.plain()


@pytest.mark.parametrize(
    ("layers", "words"),
    [
        # covered now (tests/test_network_shapes.py): a LayerNorm or a Dropout right
        # after a Dense layer, and a network ending in an activation
        ((stax.Relu(), stax.Dense(1)), "Dense layer"),
        # two activations in a row: the kernels themselves refuse them (the second one's
        # input is not a Gaussian field), so the notes have no referee to check against
        ((stax.Dense(4), stax.Relu(), stax.Relu(), stax.Dense(1)), "must follow a Dense"),
        ((stax.Dense(4), stax.Relu(), stax.LayerNorm(), stax.Dense(1)), "put a Dense"),
        ((stax.Dense(4), stax.Relu(), stax.Dropout(0.5)), "followed by a Dense"),
        # Sign last, before a standard Dense layer or a Dropout: covered now
        # (tests/test_network_sign.py); a step activation other than Sign is not
        ((stax.Dense(4), stax.Elementwise("heaviside(u)"), stax.Dense(1)), "zero gradient"),
    ],
)
def test_unsupported_layers_are_refused_by_name(layers, words):
    with pytest.raises(InputError, match=words) as info:
        units(stax.serial(*layers))
    assert "Dense" in str(info.value)


def test_cli_writes_the_notes_of_a_network_file(tmp_path, capsys):
    f = tmp_path / "mynet.py"
    f.write_text(NETWORK_FILE)
    out = tmp_path / "out"
    assert main(["notes", "--network", str(f), "-o", str(out), "--markdown", "--html"]) == 0
    printed = capsys.readouterr().out
    assert "7 verified" in printed
    tex = (out / "network_notes.tex").read_text()
    assert r"\tag{T3}" in tex and r"\vverified" in tex and "Autogenerated by ntksym" in tex
    md = (out / "network_notes.md").read_text()
    assert "**(S2)**" in md and "residual" in md
    html = (out / "network_notes.html").read_text()
    assert "<math" in html and 'id="eq:T3"' in html
    # a file without `net`, and derivation paths with --network, are clear errors
    (tmp_path / "empty.py").write_text("x = 1\n")
    assert main(["notes", "--network", str(tmp_path / "empty.py"), "-o", str(out)]) == 2
    assert "defines no `net`" in capsys.readouterr().err
    assert main(["notes", "a.py", "--network", str(f), "-o", str(out)]) == 2


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex")
def test_the_pdf_of_a_small_network_compiles(tmp_path):
    from ntksym.notes.network_build import build_network_notes

    net = stax.serial(stax.Dense(4, W_std=1.2, b_std=0.1), stax.Relu(), stax.Dense(1, W_std=0.9))
    built = build_network_notes(net, Path(tmp_path), pdf=True)
    assert built.pdf is not None and built.pdf.stat().st_size > 10_000
    assert built.pages is not None and built.pages >= 1
    assert built.context["view"].counts["verified"] == 5


def _mixed():
    return stax.serial(
        stax.Dense(5, W_std=1.3, b_std=0.4, parameterization="standard"),
        stax.Relu(),
        stax.Dense(5, W_std=0.8),
        stax.LayerNorm(),
        stax.Erf(),
        stax.Dense(5, W_std=1.1, b_std=0.2, parameterization="standard"),
        stax.Dropout(0.5, mode="test"),
    )


def test_standard_steps_are_derived_from_the_engine_and_layer_norm_is_derived():
    deriv = network_derivation(_mixed())
    results = {r.label: r for r in deriv.run()}
    assert list(results) == ["S1", "T1", "S2", "D2", "T2", "S3", "T3", "S4", "D4", "T4"]
    assert all(r.verdict == "verified" for r in results.values())
    for label in results:  # every step: printed = derived, and the referee agrees
        assert results[label].method == "symbolic+numeric", label
    for label in ("S1", "T1", "S4", "D4", "T4"):  # standard Dense: derivations/standard.py
        assert "derivation standard" in deriv.step(label).note.plain(), label
    assert (results["S1"].rule, results["T1"].rule) == ("expectation", "chain_rule")
    # what the standard NTK takes from neural-tangents' convention is said, not hidden
    assert "stated, neural-tangents' convention" in deriv.step("T4").note.plain()
    assert "stated" not in deriv.step("S4").note.plain()
    # LayerNorm: derivations/layer_norm.py instantiated at layer 2, and checked
    assert (results["S3"].rule, results["T3"].rule) == ("field_moments", "power_counting")
    for label in ("S3", "T3"):
        assert "derivation layer_norm" in deriv.step(label).note.plain()
    # a LayerNorm map without eps in one variance is a misprint (the referee rejects it)
    printed = deriv.step("S3").printed
    typo = printed.xreplace({sp.Float("1.0e-12"): sp.Integer(1)})
    assert deriv.with_printed("S3", typo).run_one("S3").verdict == "misprint"
    # a wrong width in the standard NTK's n Sigma term: in the derived side it fails,
    # in the printed recursion it is a misprint
    step = deriv.step("T4")
    wrong = step.derive({}).xreplace({sp.Integer(5): sp.Integer(6)})
    bad = deriv.replace_step("T4", derive=lambda env: wrong).run_one("T4")
    assert bad.verdict == "failed", bad.detail.plain()
    typo = step.printed.xreplace({sp.Integer(5): sp.Integer(6)})
    assert typo != step.printed
    assert deriv.with_printed("T4", typo).run_one("T4").verdict == "misprint"


def test_standard_width_multiplier_and_dropout_are_derived():
    from ntksym.derive.symbols import GaussE

    net = stax.serial(
        stax.Dense(4, W_std=1.2, b_std=0.3, parameterization="standard", s=(1, 2)),
        stax.Abs(),
        stax.Dropout(0.6),
        stax.Dense(3, W_std=0.7, parameterization="standard", s=(2, 1)),
    )
    deriv = network_derivation(net)
    results = {r.label: r for r in deriv.run()}
    assert list(results) == ["S1", "T1", "S2", "D2", "T2"]
    for r in results.values():
        assert (r.verdict, r.method) == ("verified", "symbolic+numeric"), r.label
    assert "derivation dropout" in deriv.step("T2").note.plain()
    # the input width out_dim * s_out = 8 over s_in = 2 multiplies E[phi phi] (4, and
    # 4 (1/0.6 - 1) on delta_{x x'}: through Dropout's map for an example with itself)
    derived = deriv.step("T2").derive({}).rhs
    coeffs = {t.as_coeff_Mul()[0] for t in sp.Add.make_args(derived) if t.has(GaussE)}
    assert coeffs == {sp.Integer(4), sp.Float(4 * (1 / 0.6 - 1))}, coeffs
    # no bias in the last layer: a planted bias term 1 is a misprint of the printed side
    typo = sp.Eq(deriv.step("T2").printed.lhs, deriv.step("T2").printed.rhs + 1)
    assert deriv.with_printed("T2", typo).run_one("T2").verdict == "misprint"


def _sign_net():
    return stax.serial(
        stax.Dense(5, W_std=1.2, b_std=0.3),
        stax.Sign(),
        stax.Dense(4, W_std=0.9, b_std=0.2),
    )


def test_sign_is_derived_from_the_orthant_probability():
    from ntksym.derive.symbols import Sigma_dot

    X = np.random.default_rng(8).standard_normal((3, 3))
    X[2] = X[0]  # an input with itself at two examples: arcsin(1) exactly
    deriv = network_derivation(_sign_net(), inputs=X)
    results = {r.label: r for r in deriv.run()}
    assert list(results) == ["S1", "T1", "S2", "D2", "T2"]
    for r in results.values():
        assert (r.verdict, r.method) == ("verified", "symbolic+numeric"), r.label
    assert (results["S2"].rule, results["D2"].rule) == ("sheppard", "almost_everywhere")
    assert "step (3), (2/pi) arcsin(rho) of derivation sign" in deriv.step("S2").note.plain()
    assert deriv.step("D2").derive({}) == sp.Eq(Sigma_dot(2), 0)
    assert deriv.step("S2").derive({}).rhs.has(sp.asin)
    # a wrong coefficient (3/pi for 2/pi) in the derived side fails the referee check;
    # in the printed recursion it is a misprint
    right = deriv.step("S2").derive({})
    planted = right.xreplace({sp.pi: sp.Rational(2, 3) * sp.pi})
    assert planted != right
    bad = deriv.replace_step("S2", derive=lambda env: planted).run_one("S2")
    assert bad.verdict == "failed", bad.detail.plain()
    assert deriv.with_printed("S2", planted).run_one("S2").verdict == "misprint"
    # a nonzero gradient through Sign planted in the printed Sigmadot is a misprint too
    typo = sp.Eq(Sigma_dot(2), sp.Rational(1, 2))
    assert deriv.with_printed("D2", typo).run_one("D2").verdict == "misprint"


def test_a_width_mismatch_is_refused_before_any_check():
    block = stax.serial(
        stax.FanOut(2),
        stax.parallel(stax.serial(stax.Relu(), stax.Dense(6)), stax.Identity()),
        stax.FanInSum(),
    )
    with pytest.raises(InputError, match="FanInSum"):
        units(stax.serial(stax.Dense(5), block))


def test_the_derivation_documents_share_the_extend_helpers():
    import ntksym.extend as ext
    from ntksym.derivations import per_layer, residual, seed, standard, weight_variance

    for doc in (per_layer, residual, seed, standard, weight_variance):
        assert doc.unfold is ext.unfold, doc.__name__
    for doc in (per_layer, residual, standard, weight_variance):
        assert doc._eval_d is ext.differentiate_unfolded, doc.__name__
        assert doc._pair is ext.theta_pair, doc.__name__


def test_dropout_is_checked_with_one_mask_per_example():
    from ntksym.notes.network_check import SAME_EXAMPLE

    net = stax.serial(
        stax.Dense(5, W_std=1.2, b_std=0.3),
        stax.Relu(),
        stax.Dropout(0.7),
        stax.Dense(5, W_std=0.9, b_std=0.1),
        stax.Erf(),
        stax.Dropout(0.6),
        stax.Dense(4, W_std=1.1, b_std=0.2, parameterization="standard"),
    )
    X = np.random.default_rng(5).standard_normal((3, 3))
    X[2] = X[0]  # the same input as another example: its own mask, not the same one
    deriv = network_derivation(net, inputs=X)
    results = {r.label: r for r in deriv.run()}
    assert all(r.verdict == "verified" for r in results.values()), results
    assert "Dropout(0.7" in deriv.step("S2").note.plain()
    # NTK parameterization: derived (per_layer's Dense map composed with dropout.py's)
    for label in ("S2", "D2", "T2"):
        assert results[label].method == "symbolic+numeric", label
    assert results["S3"].rule == "gaussian_process"  # the standard one: standard.py (4)
    assert results["T3"].method == "symbolic+numeric"
    # one mask for every pair (the factor 1/rate on every entry) is caught by the repeat
    wrong = deriv.step("S2").derive({}).xreplace({SAME_EXAMPLE: 1})
    bad = deriv.replace_step("S2", derive=lambda env: wrong).run_one("S2")
    assert bad.verdict == "failed", bad.detail.plain()


def _branches_net():
    two = stax.parallel(
        stax.serial(stax.Relu(), stax.Dense(4, W_std=0.9, b_std=0.2)),
        stax.serial(stax.Erf(), stax.Dense(4, W_std=1.3)),
    )
    return stax.serial(
        stax.Dense(5, W_std=1.2, b_std=0.3),
        stax.FanOut(2),
        two,
        stax.FanInSum(),
    )


def test_two_dense_branches_are_derived_from_fan_in_sum():
    from ntksym.notes.network_branches import psi

    deriv = network_derivation(_branches_net())
    results = {r.label: r for r in deriv.run()}
    assert list(results) == ["S1", "T1", "S2", "T2"]
    for r in results.values():
        assert (r.verdict, r.method) == ("verified", "symbolic+numeric"), r.label
    assert results["S2"].rule == results["T2"].rule == "independent_zero_mean"
    note = deriv.step("T2").note.plain()
    assert "step (7) of derivation fan_in_sum" in note and "per_layer" in note
    # the second branch's activation is its own function: both expectations are there
    derived = deriv.step("S2").derive({})
    assert derived.rhs.has(psi) and derived.rhs.has(general_phi())
    # a wrong coefficient in the second branch (1.3^2 -> 1.4^2): failed when derived,
    # a misprint when printed
    planted = derived.xreplace({number(1.3) ** 2: sp.Float("1.96")})
    assert planted != derived
    bad = deriv.replace_step("S2", derive=lambda env: planted).run_one("S2")
    assert bad.verdict == "failed", bad.detail.plain()
    assert deriv.with_printed("S2", planted).run_one("S2").verdict == "misprint"
    # a cross term kept (the NTK summed twice over the shared Theta^(1)) is caught too
    right = deriv.step("T2").printed
    wrong = sp.Eq(right.lhs, right.rhs + deriv.step("S2").printed.rhs)
    assert deriv.with_printed("T2", wrong).run_one("T2").verdict == "misprint"


def general_phi():
    from ntksym.notes.network import general_statements

    return general_statements()["phi"]


def test_branch_blocks_that_are_not_covered_are_refused():
    def block(a, b):
        return stax.serial(stax.Dense(4), stax.FanOut(2), stax.parallel(a, b), stax.FanInSum())

    relu_dense = stax.serial(stax.Relu(), stax.Dense(4))
    # a branch ending in a LayerNorm is covered beside branches ending in Dense layers
    # (tests/test_network_sign_norm.py), not beside the Identity; one ending in an
    # activation is not a Gaussian field (the kernels refuse it too)
    normed = stax.serial(stax.Relu(), stax.Dense(4), stax.LayerNorm())
    with pytest.raises(InputError, match="LayerNorm's oddness"):
        units(block(stax.Identity(), normed))
    with pytest.raises(InputError, match="must end in a Dense layer of its own|Gaussian"):
        units(block(relu_dense, stax.serial(stax.Dense(4), stax.Relu())))
    # a Dropout or a standard Dense layer last in a branch is covered: the branch is read
    # whole (tests/test_network_whole_branches.py)
    dropped = stax.serial(stax.Relu(), stax.Dropout(0.5), stax.Dense(4))
    assert [u.kind for u in units(block(relu_dense, dropped))][1] == "layer_dropout"


def test_cli_renders_sign_standard_and_branches(tmp_path, capsys):
    f = tmp_path / "mixed.py"
    f.write_text(
        "from ntksym import stax\n"
        "two = stax.parallel(stax.serial(stax.Relu(), stax.Dense(4, W_std=0.9)),\n"
        "                    stax.serial(stax.Erf(), stax.Dense(4, W_std=1.3, b_std=0.1)))\n"
        "net = stax.serial(stax.Dense(4, W_std=1.2, b_std=0.3, parameterization='standard'),\n"
        "                  stax.FanOut(2), two, stax.FanInSum(), stax.Sign(),\n"
        "                  stax.Dense(3, W_std=0.8, b_std=0.1))\n"
    )
    out = tmp_path / "out"
    assert main(["notes", "--network", str(f), "-o", str(out), "--markdown"]) == 0
    assert "7 verified" in capsys.readouterr().out
    tex = (out / "network_notes.tex").read_text()
    assert r"\psi" in tex and r"\arcsin" in tex
    md = (out / "network_notes.md").read_text()
    assert "derivation fan\\_in\\_sum" in md
    assert "derivation sign" in md and "derivation standard" in md


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex")
def test_the_pdf_of_sign_standard_and_branches_compiles(tmp_path):
    from ntksym.notes.network_build import build_network_notes

    two = stax.parallel(
        stax.serial(stax.Relu(), stax.Dense(4, W_std=0.9)),
        stax.serial(stax.Erf(), stax.Dense(4, W_std=1.3, b_std=0.1)),
    )
    net = stax.serial(
        stax.Dense(4, W_std=1.2, b_std=0.3, parameterization="standard"),
        stax.FanOut(2),
        two,
        stax.FanInSum(),
        stax.Sign(),
        stax.Dense(3, W_std=0.8, b_std=0.1),
    )
    built = build_network_notes(net, Path(tmp_path), pdf=True)
    assert built.pdf is not None and built.pdf.stat().st_size > 10_000
    assert built.context["view"].counts["verified"] == 7


def test_the_checks_evaluate_each_earlier_statement_once_and_see_planted_ones(monkeypatch):
    """The steps' checks share the values of the statements before them (a memo per
    derivation): a network of L steps evaluates about L statements per pair of inputs,
    not L^2 / 2; and a statement planted in an earlier step is what the later checks see."""
    import ntksym.notes.network_check as nc

    layers = [stax.Dense(4, W_std=1.1, b_std=0.1)]
    for _ in range(5):
        layers += [stax.Erf(), stax.Dense(4, W_std=1.2, b_std=0.2)]
    net = stax.serial(*layers)
    calls = []
    real = nc._value
    monkeypatch.setattr(nc, "_value", lambda *a, **k: calls.append(1) or real(*a, **k))
    deriv = network_derivation(net)
    results = deriv.run()
    assert all(r.verdict == "verified" for r in results)
    steps, pairs = len(results), 6  # (3 inputs: 6 pairs, each evaluated at 3 pairs of keys)
    # each check evaluates its own statement and at most one more (a Sigmadot's NTK step),
    # not the whole recursion before it
    assert len(calls) <= 3 * pairs * 2 * steps, (len(calls), steps)
    # a wrong variance planted in the first hidden layer's covariance: the later steps,
    # evaluated on it, disagree with the referee too
    right = deriv.step("S2").derive({})
    planted = sp.Eq(right.lhs, right.rhs * sp.Rational(11, 10))
    bad = deriv.replace_step("S2", derive=lambda env: planted)
    verdicts = {r.label: r.verdict for r in bad.run()}
    assert verdicts["S2"] == "failed" and verdicts["S3"] == "failed", verdicts
