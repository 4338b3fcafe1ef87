"""Check details, rule descriptions and notes are data: words and formulas, never parsed.

A :class:`ntksym.derive.text.Text` prints as LaTeX for the notes and as plain text for the
terminal from the same pieces; these tests compare the two printings with each other and
with hand-written expectations, and check that nothing in the notes' word pieces is
ASCII mathematics.
"""

import argparse
import dataclasses
import pickle
import re

import pytest
import sympy as sp

from ntksym.derive.finite_width import exact_finite_width
from ntksym.derive.numeric import RateFit
from ntksym.derive.registry import DESCRIPTIONS, describe
from ntksym.derive.rules import RULES, Context
from ntksym.derive.steps import Step, Verdict
from ntksym.derive.symbols import (
    KIND_TEX,
    NAME_TEX,
    SeedLatexPrinter,
    Sigma,
    W,
    alpha_t,
    b,
    index,
    theta,
    width,
)
from ntksym.derive.text import (
    Config,
    Math,
    Measured,
    Number,
    RateBound,
    Shape,
    Tex,
    Text,
    as_text,
    text,
)
from ntksym.errors import InputError, NTKSymError
from ntksym.notes.build import md_text, tex_text
from ntksym.notes.content import readable_indices
from ntksym.notes.duals import source_text
from ntksym.notes.printer import NotesPrinter

k, kp, i, j = (index(s) for s in ("k", "k'", "i", "j"))
#: What ASCII mathematics looks like once it is escaped as LaTeX words.
ESCAPED_MATH = ("\\textasciicircum", "\\textasciitilde", "\\textgreater", "\\textless", "\\_")


def test_records_print_both_forms():
    assert Measured("rate", -0.4931, 0.0052).plain() == "rate -0.493 +- 0.005"
    assert Measured("rate", -0.4931, 0.0052).latex() == r"\text{rate} = -0.493 \pm 0.005"
    assert Measured("chi2/dof", 1.386, fmt=".2f").plain() == "chi2/dof 1.39"
    assert Measured("chi2/dof", 1.386, fmt=".2f").latex() == r"\chi^2/\mathrm{dof} = 1.39"
    assert Number(3.8e-26).plain() == "3.8e-26"
    assert Number(3.8e-26).latex() == r"3.8\times 10^{-26}"
    assert Number(0.125, ".3g").latex() == "0.125"
    assert RateBound(3, 0.02).plain() == "|rate + 1/2| <= 3 s.e. + 0.02"
    assert RateBound(3).latex() == r"\lvert\text{rate} + \tfrac12\rvert \le 3\,\text{s.e.}"
    assert (Shape(3, 1).plain(), Shape(3, 1).latex()) == ("3x1", r"3\times 1")
    cfg = Config((("L", 1),), (1, 2, 1), ((k, 1), (kp, 1), (theta, W(0)[1, 1])))
    assert cfg.plain() == "L=1 n=(1,2,1) k=1, k'=1, theta~_p=w^(0)_11"
    assert cfg.latex() == r"L=1,\ n=(1,2,1),\ k=1,\ k'=1,\ \tilde{\theta}_p=w_{11}^{(0)}"


def test_text_prints_sympy_pieces_with_the_engines_printers():
    t = Text("index: ", W(0)[i, i], " printed, ", W(0)[j, i], " derived")
    assert t.plain() == "index: w^(0)_ii printed, w^(0)_ji derived"
    assert t.latex() == "index: $w_{ii}^{(0)}$ printed, $w_{ji}^{(0)}$ derived"
    assert str(t) == t.latex()  # the one-line form of --json and older callers
    assert "w_{ii}^{(0)}" in t and "w^(0)_ji" in t and "nothing" not in t
    assert t.as_json()[1] == {"latex": "w_{ii}^{(0)}", "plain": "w^(0)_ii"}
    # records print in their plain form in the one-line form
    assert str(Text("at ", Config(widths=(2, 3)))) == "at n=(2,3)"


def test_text_is_built_and_split_without_parsing():
    t = Text("a", "b", None, "", Text("c", Sigma(1)), 3)
    assert t.pieces[0] == "abc" and isinstance(t.pieces[1], Math) and t.pieces[2] == "3"
    assert Text() == Text("") and not Text()
    assert "x; " + Text(Sigma(1)) == Text("x; ", Sigma(1))
    first, second = Text("fails at ", Config(widths=(2,)), "; worst ", Number(1e-3)).clauses()
    assert first == Text("fails at ", Config(widths=(2,))) and second.plain() == "worst 1.0e-03"
    assert Text.join(", ", [k, kp]).plain() == "k, k'"
    # a formula record is never split, even if its plain form contains the separator
    assert len(Text(Tex(r"a; b", "a; b")).clauses()) == 1


def test_text_template_slots():
    t = text("at {c} the {s} form needs {c}", c=sp.Eq(sp.Symbol("l"), 0), s=Tex(r"\sigma", "s"))
    assert t.plain() == "at l = 0 the s form needs l = 0"
    assert t.latex() == r"at $l = 0$ the $\sigma$ form needs $l = 0$"
    assert text("braces {{kept}} {x}", x="words").plain() == "braces {kept} words"
    with pytest.raises(InputError, match=r"slot \{y\}.*\(x\)"):
        text("{y}", x=1)
    with pytest.raises(InputError, match="format spec"):
        text("{x:>3}", x=1)
    with pytest.raises(InputError, match=r"\['z'\] have no slot"):
        text("{x}", x=1, z=2)
    with pytest.raises(InputError, match="bad text template"):
        text("{x", x=1)


def test_bad_pieces_are_rejected_with_the_allowed_kinds():
    with pytest.raises(InputError, match="SymPy object, a formula record or a Text"):
        Text(object())
    with pytest.raises(InputError, match="a formula is a SymPy object"):
        Math(Text("words are not a formula"))
    with pytest.raises(InputError, match="contains '\\$'"):
        Tex("$x$", "x")
    with pytest.raises(InputError, match="non-empty plain form"):
        Tex("x", "")
    with pytest.raises(InputError, match="known: rate"):
        Measured("speed", 1.0)
    assert issubclass(InputError, NTKSymError)


def test_plain_strings_are_words_in_the_notes():
    note = "E is over w^(l) -> oo; 100% & #1 $x$"
    tex = tex_text(note)
    assert "$" not in tex.replace(r"\$", "")  # no mathematics was guessed
    assert r"\textasciicircum{}" in tex and r"\%" in tex and r"\&" in tex and r"\#" in tex
    assert r"\$x\$" in md_text(note)
    assert as_text(note).plain() == note


def test_text_fields_take_words_or_text_and_always_read_as_text():
    # a string given to a Text field is words (never parsed); a Text is kept as it is
    v = Verdict("failed", "symbolic", "x^2 > 1 fails")
    assert isinstance(v.detail, Text) and v.detail.plain() == "x^2 > 1 fails"
    t = Text("at ", sp.Symbol("L"), " = 1")
    assert Verdict("failed", detail=t).detail is t
    assert isinstance(Verdict("assumed").detail, Text) and Verdict("assumed").detail.plain() == ""
    # equality, hashing, replace and pickling see the Text, as with a plain field
    assert v == Verdict("failed", "symbolic", Text("x^2 > 1 fails"))
    assert hash(v) == hash(Verdict("failed", "symbolic", Text("x^2 > 1 fails")))
    assert dataclasses.replace(v, status="verified").detail == v.detail
    assert pickle.loads(pickle.dumps(v)) == v
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.detail = Text("changed")  # type: ignore[misc]  # frozen: the point of the test
    step = Step("1", None, "definition", note="a gap")
    assert isinstance(step.note, Text) and step.replace(label="2").note == step.note


def test_notes_print_formulas_with_the_notes_printer():
    t = Text("the middle line uses independence of ", W(0), " from ", alpha_t(1)[k])
    assert tex_text(t) == (
        r"the middle line uses independence of $W^{(0)}$ from $\tilde{\alpha}^{(1)}_{k}(x)$"
    )
    assert tex_text(t, fit=True).count(r"\fitinline{") == 2
    assert md_text(t).count("$") == 4


def test_machine_indices_get_one_free_letter_everywhere():
    s0, s0p = sp.Symbol("s_0", integer=True), sp.Symbol("s_0'", integer=True)
    n = width(1)
    detail = Text(
        "term: ",
        sp.KroneckerDelta(i, s0p),
        " printed, ",
        sp.Sum(W(0)[k, s0], (s0, 1, n)),
        " derived",
    )
    out = readable_indices(detail)
    assert "s_" not in tex_text(out)
    # i and k are taken; j is the first free letter, the prime is kept
    assert tex_text(out) == (
        r"term: $\delta_{ij'}$ printed, $\sum_{j=1}^{n_{1}} w^{(0)}_{kj}$ derived"
    )
    assert "j" not in {s.name for s in detail.symbols()}  # the original is unchanged
    assert tex_text(readable_indices(detail, ["q"])).count("q") == 3


def test_rate_fit_description_is_data():
    fit = RateFit((64, 1024), (0.1234, 0.0311), (0.001, 0.0004), -0.513, 0.020, 1.386)
    d = fit.describe()
    assert d.plain() == (
        "distance 0.123 at n=64 -> 0.0311 at n=1024; rate -0.513 +- 0.020 "
        "(chi2/dof 1.39; accepted if |rate + 1/2| <= 3 s.e. + 0.02)"
    )
    tex = tex_text(d)
    for want in (
        r"$\text{rate} = -0.513 \pm 0.020$",
        r"$\chi^2/\mathrm{dof} = 1.39$",
        r"$\lvert\text{rate} + \tfrac12\rvert \le 3\,\text{s.e.} + 0.02$",
    ):
        assert want in tex
    assert not any(bad in tex for bad in ESCAPED_MATH)


def test_exact_check_detail_names_the_configuration_as_a_formula():
    stmt = sp.Eq(b(0)[k], b(0)[k], evaluate=False)
    ctx = Context(ranges={k: width(1), i: width(0)})
    ok, detail = exact_finite_width(stmt, ctx, [({}, {0: 2, 1: 3})])
    assert ok and detail == Text("exact at ", Config((), (2, 3)))
    ok, detail = exact_finite_width(sp.Eq(b(0)[k], 2 * b(0)[k]), ctx, [({}, {0: 2, 1: 3})])
    assert not ok and detail.plain() == "fails at n=(2,3) k=1"
    assert tex_text(detail) == r"fails at $n=(2,3),\ k=1$"


def test_every_rule_has_a_description_without_ascii_math_in_words():
    assert set(RULES) <= set(DESCRIPTIONS)
    for name in RULES:
        desc = as_text(describe(name))
        words = "".join(p for p in desc.pieces if isinstance(p, str))
        assert not re.search(r"[_^~]|->|\bE\[|\(x\)", words), (name, words)
        assert not any(bad in tex_text(desc) for bad in ESCAPED_MATH[:-1]), name


def test_dual_sources_quote_their_formula_as_mathematics():
    src = "Gaussian moment generating function " + (
        "E[exp(b'w - w'Aw/2)] = det(I+Sigma A)^(-1/2) exp(b'(I+Sigma A)^(-1) Sigma b/2)"
    )
    t = source_text(src + "; for sin/cos see Rahimi and Recht")
    assert len([p for p in t.pieces if isinstance(p, Math)]) == 1
    assert t.plain() == src + "; for sin/cos see Rahimi and Recht"
    assert "textasciicircum" not in tex_text(t)
    assert source_text("Cho and Saul, 2009") == Text("Cho and Saul, 2009")


def test_one_latex_printer_with_shared_tables():
    assert issubclass(NotesPrinter, SeedLatexPrinter)
    assert KIND_TEX["z"] in NotesPrinter().doprint(alpha_t(1)[k])
    assert NAME_TEX["Sigma"] in NotesPrinter().doprint(Sigma(1))


def test_verify_table_on_the_seed_has_no_latex(capsys):
    from ntksym.cli.verify import run
    from ntksym.derive.loader import package_derivations_dir

    args = argparse.Namespace(
        paths=[str(package_derivations_dir() / "seed.py")], json=False, quick=True
    )
    assert run(args) == 0
    out = capsys.readouterr().out
    explanations = [ln for ln in out.splitlines() if ln.strip().startswith("->")]
    assert explanations
    for ln in explanations:
        assert "$" not in ln and "\\" not in ln, ln


def test_an_engine_exception_keeps_its_formulas_in_the_error_verdict():
    from ntksym.derive.finite_width import UndefinedObject
    from ntksym.derive.judge import run_step
    from ntksym.derive.steps import Step

    def derive(env):
        why = Text(W(0)[k, i], ": index 0 out of range")
        raise UndefinedObject(why.plain(), why)

    stmt = sp.Eq(b(0)[k], b(0)[k], evaluate=False)
    res = run_step(Step("1", stmt, "algebra", derive=derive), {})
    assert res.verdict == "error" and res.error == "UndefinedObject: w^(0)_ki: index 0 out of range"
    assert res.detail.plain() == (
        "deriving raised UndefinedObject: w^(0)_ki: index 0 out of range in rule 'algebra'"
    )
    assert "$w^{(0)}_{ki}$" in tex_text(res.detail)
    row = res.as_dict()
    assert row["detail"] == str(res.detail)
    assert row["detail_text"][1] == {"latex": "w_{ki}^{(0)}", "plain": "w^(0)_ki"}
