"""The course around the steps: theorems, marked misprints, worked numbers, exercises."""

from __future__ import annotations

import math

import pytest
import sympy as sp

from ntksym.derive.loader import load_derivation, package_derivations_dir
from ntksym.derive.text import Text
from ntksym.notes.content import statement_lines
from ntksym.notes.course import RULE_TEXT, chapters_for, step_sentence
from ntksym.notes.display import marked_pairs, one_line
from ntksym.notes.exercises import find_the_error, plantings
from ntksym.notes.worked import worked_example

DERIVATIONS = package_derivations_dir()


@pytest.fixture(scope="module")
def seed():
    return load_derivation(DERIVATIONS / "seed.py")


@pytest.mark.parametrize("name", ["seed", "linearised"])
def test_every_theorem_names_hypotheses_convergence_and_existing_steps(name):
    deriv = load_derivation(DERIVATIONS / f"{name}.py")
    labels = [s.label for s in deriv.steps]
    theorems = [c for c in chapters_for(deriv.name, Text(deriv.title)) if c.theorem]
    assert theorems
    for ch in theorems:
        assert len(ch.hypotheses) >= 2, ch.theorem
        assert ch.convergence and ch.conclusion, ch.theorem
        assert ch.shows and set(ch.shows) <= set(labels), ch.theorem
        assert set(ch.labels) <= set(labels), ch.theorem
    # every step of these derivations has its sentence
    assert all(step_sentence(deriv.name, x) for x in labels)


def test_seed_chapters_cover_each_step_once(seed):
    chapters = chapters_for("seed", Text(seed.title))
    shown = [x for c in chapters for x in c.labels]
    assert sorted(shown) == sorted(s.label for s in seed.steps)
    assert [c.theorem.split(" (")[0] for c in chapters if c.theorem] == ["Theorem 1", "Theorem 2"]


def test_training_chapter_comes_from_the_linearised_derivation():
    (ch,) = chapters_for("linearised", Text(""))
    assert ch.theorem.startswith("Theorem 3") and ch.labels == ()


def test_an_unknown_derivation_gets_one_chapter_of_all_its_steps():
    (ch,) = chapters_for("residual", Text("Residual network"))
    assert ch.labels == () and not ch.theorem and ch.title == "Residual network"


def test_rules_are_described_without_implementation_words(seed):
    rules = {s.rule for s in seed.steps}
    assert rules <= set(RULE_TEXT)
    for t in RULE_TEXT.values():
        words = t.render(lambda _m: " ")
        assert not any(w in words for w in ("SymPy", "Derivative", "alpha~", "_")), words


def test_a_misprint_is_shown_side_by_side_with_the_difference_marked(seed):
    stmt = seed.step("18").printed
    altered = sp.Eq(stmt.lhs, stmt.rhs.subs(sp.KroneckerDelta(*stmt.lhs.args[1:]), 1))
    res = seed.with_printed("18", altered).run_one("18", extra=False)
    assert res.verdict == "misprint" and res.differences
    pairs, marks = marked_pairs(altered, res.derived_expr, res.differences, statement_lines)
    differing = [(a, c) for a, c in pairs if c]
    assert differing and all("\\hl{" in a and "\\hl{" in c for a, c in differing)
    assert marks and "\\delta_{kk'}" in marks[0][1] and "\\delta" not in marks[0][0]


def test_one_line_only_when_short():
    assert one_line(["a", "{}= b"]) == ["a {}= b"]
    long = ["x" * 200, "{}= " + "y" * 200]
    assert one_line(long) == long


def test_worked_relu_second_layer_by_hand():
    (relu,) = worked_example(("relu",), depth=2)
    first, second = relu.layers
    # Sigma^(1) = x.x'/n0 with x=(1,0), x'=(0.6,0.8): 0.3; variance 1/2; correlation 0.6
    assert float(first.sigma) == pytest.approx(0.3) and float(first.var) == pytest.approx(0.5)
    rho, s11 = 0.6, 0.5
    kappa0 = (math.pi - math.acos(rho)) / (2 * math.pi)
    kappa1 = s11 * (math.sqrt(1 - rho**2) + (math.pi - math.acos(rho)) * rho) / (2 * math.pi)
    assert float(second.sigma_dot) == pytest.approx(kappa0, abs=1e-6)
    assert float(second.sigma) == pytest.approx(kappa1, abs=1e-6)
    assert float(second.theta) == pytest.approx(0.3 * kappa0 + kappa1, abs=1e-6)
    assert "\\arccos" in relu.nngp and "\\Sigma_{xx'}" in relu.nngp


def test_planted_errors_are_detected_and_answered(seed):
    (ex,) = find_the_error(seed, ["18"], limit=1)
    assert ex.label == "18" and ex.verdict != "verified"
    assert ex.planted != ex.answer and ex.what
    assert not list(plantings(sp.Symbol("x")))  # only equalities are planted in
