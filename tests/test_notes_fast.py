"""``ntksym notes`` in the fast run: the TeX-free part of a build, on the smallest derivation.

The thorough build of the seed's notes (with the PDF) is in test_notes_build.py (slow).
"""

from __future__ import annotations

import re
import shutil

import pytest

pytest.importorskip("matplotlib", reason="the notes' figures need matplotlib (test extra)")

from ntksym.cli import main  # noqa: E402
from ntksym.derive.loader import package_derivations_dir  # noqa: E402

DERIVATION = package_derivations_dir() / "weight_variance.py"

#: Implementation words that must never reach the mathematics or the prose of the notes.
FORBIDDEN = (
    "AllParams",
    "SymPy",
    "sympy",
    "Derivative",
    "ntksym.reference",
    "Dummy",
    "Subs(",
    "operatorname",
    "Tends",
    "PSum",
    "GaussE",
    "Sigmadot",
    "Theta_inf",
    "KroneckerDelta",
    "Indexed",
    "chain_rule",
    "law_of_large_numbers",
    "delta_sum",
    "gaussian_process",
    "Evaluate every",
    "mathrm{theta}",
    "s_{0}",
    "j_{",
)


def body(text: str) -> str:
    """The generated file without its leading provenance comments (they name the template)."""
    return "\n".join(ln for ln in text.splitlines() if not ln.startswith(("%%", "<!--")))


def forbidden_words(text: str) -> list[str]:
    """The :data:`FORBIDDEN` words found in ``text``."""
    return [w for w in FORBIDDEN if w in body(text)]


def tex_displays(tex: str) -> list[str]:
    """The displayed equations of a LaTeX file, in order, tags and labels removed."""
    found = re.findall(r"\\begin\{(equation\*?)\}(.*?)\\end\{\1\}", tex, re.S)
    return [re.sub(r"\\(label|tag\*?)\{[^}]*\}|\s+", "", d) for _, d in found]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("notes")
    code = main(["notes", str(DERIVATION), "-o", str(out), "--markdown", "--html", "--quick"])
    return code, out


def test_notes_command_writes_tex_markdown_and_figures(built):
    code, out = built
    assert code == 0
    tex = (out / "ntk_notes.tex").read_text()
    md = (out / "ntk_notes.md").read_text()
    assert "\\documentclass" in tex and "\\end{document}" in tex
    assert (out / "figures" / "ntk_convergence.png").is_file()
    assert "$" in md and "![" in md
    # every step of the derivation is displayed with its label, in both outputs
    from ntksym.derive.loader import load_derivation

    for step in load_derivation(DERIVATION).steps:
        assert f"\\tag{{{step.label}}}" in tex or f"({step.label})}}" in tex, step.label
        assert f"({step.label})" in md, step.label
    # nothing half-written is left behind
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


def test_course_sections_are_there(built):
    _, out = built
    tex = (out / "ntk_notes.tex").read_text()
    for title in (
        "Why the tangent kernel",
        "Setting and notation",
        "Worked closed forms",
        "What the limit looks like",
        "Limitations",
        "Exercises",
        "Errata of the source",
        "Answers to the exercises",
    ):
        assert f"section{{{title}}}" in tex, title
    # the hard-coded recursion of the old first section is gone: this derivation's own
    # displays carry the weight scale
    assert "\\sigma_{w}" in tex


def test_no_implementation_words(built):
    _, out = built
    for name in ("ntk_notes.tex", "ntk_notes.md"):
        assert forbidden_words((out / name).read_text()) == [], name


def test_forbidden_word_check_can_fail():
    assert forbidden_words("x = \\mathrm{AllParams}(y)") == ["AllParams"]
    assert forbidden_words("%% from sympy\nclean") == []


def test_no_two_consecutive_identical_displays(built):
    _, out = built
    shown = tex_displays((out / "ntk_notes.tex").read_text())
    assert len(shown) > 5
    assert all(a != b for a, b in zip(shown, shown[1:], strict=False))


def test_the_web_page_renders_in_chromium(built, tmp_path):
    """Loaded in a real headless browser: MathML laid out, no TeX left, both figures shown."""
    from test_notes_html import browser_probe, ink, problems, screenshot

    _, out = built
    page = out / "ntk_notes.html"
    text = page.read_text()
    assert forbidden_words(text) == []
    assert "http://" not in text and "https://" not in text  # nothing fetched when viewed
    if shutil.which("chromium") is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    report = browser_probe(page, tmp_path)
    assert problems(report, images=2) == []
    assert report["math"] > 50
    from ntksym.derive.loader import load_derivation

    for step in load_derivation(DERIVATION).steps:  # every step is shown with its label
        assert f"({step.label})" in report["text"], step.label
    assert ink(screenshot(page, tmp_path / "top.png", height=1200)) > 0.01
