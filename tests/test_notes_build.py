"""Build the notes for real: render, compile with TeX, parse the log, look at the pages."""

import re
import shutil
import subprocess

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="the notes' figures need matplotlib (test extra)")

from ntksym.cli import main  # noqa: E402
from ntksym.derive.loader import package_derivations_dir  # noqa: E402
from ntksym.notes.build import build_notes, compile_pdf  # noqa: E402

SEED = package_derivations_dir() / "seed.py"
LINEARISED = package_derivations_dir() / "linearised.py"
pytestmark = pytest.mark.slow  # builds the notes (~40 s with the PDF)
HAVE_TEX = shutil.which("pdflatex") is not None


def _outside_math(tex: str) -> str:
    """``tex`` without its inline mathematics (``$...$`` and ``\\fitinline{...}``)."""
    out, n = [], 0
    while n < len(tex):
        if tex.startswith("\\fitinline{", n):
            depth, n = 0, n + len("\\fitinline")
            while True:
                depth += {"{": 1, "}": -1}.get(tex[n], 0)
                n += 1
                if depth == 0:
                    break
            out.append(" ")
        else:
            out.append(tex[n])
            n += 1
    return re.sub(r"\$[^$]*\$", " ", "".join(out))


@pytest.fixture(scope="module")
def built(tmp_path_factory, request):
    out = tmp_path_factory.mktemp("notes")
    return build_notes([SEED, LINEARISED], out, markdown=True, html=True, quick=True)


def test_tex_markdown_and_figures_are_written(built):
    tex = built.tex.read_text()
    md = built.markdown.read_text()
    names = {p.name for p in built.figures}
    assert {
        "ntk_convergence.pdf",
        "ntk_convergence.png",
        "kernel_vs_angle.pdf",
        "kernel_vs_angle.png",
    } <= names
    for labels in ("(1)", "(18)", "(27)"):
        assert labels in md
    # every step of the run is displayed with its label
    view = built.context["derivations"][0]
    for s in view.steps:
        assert f"\\tag{{{s.label}}}" in tex or f"({s.label})}}" in tex, s.label
        assert f"({s.label})" in md
    # SymPy's default spellings never leak into the notes
    for bad in ("dsigma", "operatorname", "Subs(", "\\begin{cases}", "{f}_{k}", "j_{"):
        assert bad not in tex, bad
    # the engine's ASCII formulas were turned into mathematics, not typeset verbatim
    for bad in (
        "\\textasciicircum",
        "\\textasciitilde",
        "\\textgreater",
        "\\textless",
        "alpha~",
        "Sigma~",
        "->",
        "chi2",
        "+-",
        "s_{0}",
        "\\left(u \\right)",
    ):
        assert bad not in tex, bad
    for line in _outside_math(tex).splitlines():
        if line.startswith("{\\small\\raggedright By"):
            assert "^(" not in line and " oo" not in line and "_{" not in line, line
    for bad in ("alpha~", "->", "chi2", "s_{0}", "\\textasciicircum"):
        assert bad not in re.sub(r"\$[^$]*\$", " ", md.split("\n", 1)[1]), bad  # not the <!-- -->
    # the dual-kernel certification really ran and agrees to 30 digits
    for r in built.context["duals"]:
        assert r.worst_nngp < 1e-25 and (r.worst_ntk is None or r.worst_ntk < 1e-25)
    # the Monte-Carlo slope is compatible with n^(-1/2) (4 error bars, quick run)
    f = built.context["figures"]
    assert abs(f.slope + 0.5) < 4 * f.slope_stderr + 0.05
    assert "$" in md and "![" in md


@pytest.mark.skipif(
    not HAVE_TEX,
    reason="pdflatex not installed (apt-get install "
    "texlive-latex-base texlive-latex-recommended latexmk poppler-utils)",
)
def test_pdf_compiles_cleanly_and_pages_are_not_blank(built):
    pdf = compile_pdf(built.tex)
    log = built.tex.with_suffix(".log").read_text(errors="replace")
    assert not re.search(r"^! ", log, re.M), "LaTeX error"
    assert "undefined references" not in log and "Reference `" not in log
    assert "Citation `" not in log
    widths = [float(w) for w in re.findall(r"Overfull \\hbox \((\d+\.?\d*)pt too wide", log)]
    assert all(w <= 10.0 for w in widths), widths
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) not installed")
    prefix = built.tex.parent / "page"
    subprocess.run(
        ["pdftoppm", "-r", "30", "-gray", "-f", "1", "-l", "3", str(pdf), str(prefix)], check=True
    )
    pages = sorted(built.tex.parent.glob("page-*.pgm"))
    assert len(pages) == 3
    for page in pages:
        data = page.read_bytes()
        header = re.match(rb"P5\s+(\d+)\s+(\d+)\s+(\d+)\s", data)
        w, h = int(header.group(1)), int(header.group(2))
        pixels = np.frombuffer(data[header.end() : header.end() + w * h], dtype=np.uint8)
        assert pixels.var() > 50.0, f"{page.name} looks blank"
        assert (pixels < 200).mean() > 0.0005  # some ink on the page


def test_cli_notes_without_tex_says_what_to_install(tmp_path, monkeypatch, capsys, request):
    import ntksym.notes.build as nb

    monkeypatch.setattr(nb.shutil, "which", lambda _name: None)
    code = main(["notes", str(SEED), "-o", str(tmp_path), "--pdf", "--quick"])
    err = capsys.readouterr().err
    assert code == 3
    assert "texlive-latex-base" in err and "latexmk" in err
    assert (tmp_path / "ntk_notes.tex").is_file()
    assert (tmp_path / "figures" / "ntk_convergence.pdf").is_file()


def test_cli_rejects_a_non_derivation(tmp_path, capsys):
    bad = tmp_path / "x.txt"
    bad.write_text("not python")
    assert main(["notes", str(bad), "-o", str(tmp_path / "o")]) == 2
    assert "not a Python file" in capsys.readouterr().err


def test_the_seed_notes_read_as_a_course(built):
    from test_notes_fast import forbidden_words, tex_displays

    tex, md = built.tex.read_text(), built.markdown.read_text()
    # three theorems, each with hypotheses and the kind of convergence, and the training chapter
    for n in (1, 2, 3):
        assert f"\\begin{{ntktheorem}}{{Theorem {n} (" in tex
    assert tex.count("\\emph{Hypotheses.}") == 3 and tex.count("\\emph{Convergence:}") == 3
    assert "section{Training: the linearised network and kernel regression}" in tex
    assert "Theorem 3 (training dynamics)" in md
    # the equalities that hold only in the limit say so
    assert "\\text{as } n_1,\\dots,n_{L}\\to\\infty" in tex
    # every misprint is shown with its differing terms marked, on both sides
    for s in built.context["derivations"][0].misprints:
        assert any("\\hl{" in a and "\\hl{" in c for a, c in s.pairs if c), s.label
        assert s.marks and s.reason, s.label
    assert forbidden_words(tex) == [] and forbidden_words(md) == []
    shown = tex_displays(tex)
    assert all(a != b for a, b in zip(shown, shown[1:], strict=False))
    # the errata table is set at full size, without scaled cells
    errata = tex.split("section{Errata of the source}", 1)[1].split("\\appendix", 1)[0]
    assert "\\fitin" not in errata and "\\small" not in errata and "raggedright" in errata
    # exercises made by planting errors, with answers
    assert built.context["exercises"] and "section{Answers to the exercises}" in tex


def test_the_seed_web_page_renders_in_chromium(built, tmp_path):
    """The seed's page in a real browser: MathML, no TeX, figures, misprints boxed."""
    from test_notes_html import CHROMIUM, browser_probe, problems

    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    report = browser_probe(built.html, tmp_path)
    assert problems(report, images=2) == []
    text = report["text"]
    for n in (1, 2, 3):
        assert f"Theorem {n} (" in text
    misprints = built.context["derivations"][0].misprints
    assert misprints and report["boxed"] >= 2 * len(misprints)  # both sides of each
    for s in misprints:
        assert f"({s.label}) as printed (left) and corrected (right)" in text, s.label


@pytest.mark.skipif(not HAVE_TEX, reason="pdflatex not installed")
def test_the_new_derivations_build_notes_that_compile(tmp_path):
    """The per-layer and residual derivations' notes compile: multi-line exercise displays too."""
    paths = [package_derivations_dir() / f"{name}.py" for name in ("per_layer", "residual")]
    result = build_notes(paths, tmp_path, markdown=True, html=True, quick=True)
    tex = result.tex.read_text(encoding="utf-8")
    for exercise in re.findall(r"\\paragraph\{Exercise.*?\\end\{equation\*\}", tex, re.S):
        if "\\\\" in exercise:  # a line break in a display needs an alignment around it
            assert "\\begin{aligned}" in exercise
    pdf = compile_pdf(result.tex)
    assert pdf.exists()
    log = result.tex.with_suffix(".log").read_text(errors="replace")
    assert not re.search(r"^! ", log, re.M), "LaTeX error"
    assert "\\lambda" in tex and "per layer" in tex.lower()
