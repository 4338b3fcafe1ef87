"""Build the notes: check derivations, draw figures, render templates, compile the PDF.

The templates (``templates/notes.tex.j2``, ``templates/notes.md.j2``) are package data,
rendered by jinja2 with ``StrictUndefined`` (a missing field is an error, never an empty
string). The LaTeX template uses ``((* *))``/``((( )))`` delimiters so that TeX braces
never look like template syntax.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from ntksym._io import atomic_write_text
from ntksym.derive.text import Math, Text, as_text
from ntksym.errors import GeneratedFileError, NotesBuildError, TeXMissingError
from ntksym.notes.printer import notes_latex
from ntksym.version import __version__

__all__ = [
    "NotesBuildError",
    "TeXMissingError",
    "NotesBuild",
    "TEX_PACKAGES",
    "build_notes",
    "compile_pdf",
    "environment",
    "tex_text",
    "md_text",
    "render_tex",
    "render_markdown",
    "tex_missing_message",
]

#: Debian packages that provide everything the LaTeX template and the PDF test use.
TEX_PACKAGES = ("texlive-latex-base", "texlive-latex-recommended", "latexmk", "poppler-utils")


def tex_missing_message() -> str:
    """What to install to build the PDF."""
    return (
        "building the PDF needs pdflatex (and preferably latexmk), which are not installed. "
        "On Debian/Ubuntu: `apt-get install " + " ".join(TEX_PACKAGES) + "`; elsewhere "
        "install TeX Live with the packages amsmath, geometry, booktabs, hyperref, xcolor "
        "and graphicx. The .tex file and the figures were written anyway."
    )


_TEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}


def _tex_plain(piece: str) -> str:
    out = []
    for n, chunk in enumerate(piece.split("``")):
        esc = "".join(_TEX_SPECIAL.get(c, c) for c in chunk)
        if n % 2:  # ``code`` in a docstring: breakable after , and =
            esc = re.sub(r"([,=])", r"\1\\allowbreak{}", esc)
        out.append(esc)
    return "".join(out)


def _md_plain(piece: str) -> str:
    return re.sub(r"([\\*_\[\]<>|#$])", r"\\\1", piece).replace("``", "`")


def md_math(tex: str) -> str:
    r"""A display line of the notes for Markdown: the marked terms (``\hl``) boxed.

    ``\hl`` is the LaTeX notes' own macro; Markdown math has no macros, so the box is
    written out (the colour is left to the box).
    """
    return tex.replace(r"\hl{", r"\boxed{")


def tex_text(text: Text | str, fit: bool = False) -> str:
    """LaTeX of a :class:`~ntksym.derive.text.Text`: words escaped, formulas as math.

    A plain string is words only (every character escaped, ``$`` included). Formulas
    print with the notes' printer; with ``fit``, inline math wider than the line is
    scaled down to fit.
    """

    def math(m: Math) -> str:
        tex = m.latex(notes_latex)
        return r"\fitinline{" + tex + "}" if fit else f"${tex}$"

    return as_text(text).render(math, _tex_plain)


def md_text(text: Text | str) -> str:
    """Markdown of a :class:`~ntksym.derive.text.Text`: words escaped, formulas in ``$``."""
    return as_text(text).render(lambda m: f"${m.latex(notes_latex)}$", _md_plain)


def _sci(value: float | None, digits: int) -> str:
    """A relative error as LaTeX math (``< 10^{-30}`` when it rounds to zero)."""
    if value is None:
        return "--"
    if value == 0.0 or value < 10.0 ** (-digits):
        return rf"$<10^{{-{digits}}}$"
    mant, exp = f"{value:.1e}".split("e")
    return rf"${mant}\times 10^{{{int(exp)}}}$"


@functools.lru_cache(maxsize=2)
def environment(kind: str) -> jinja2.Environment:
    """The notes' jinja2 environment for ``kind``: ``"tex"`` (LaTeX-safe delimiters) or ``"md"``."""
    common: dict[str, Any] = {
        "loader": jinja2.PackageLoader("ntksym.notes", "templates"),
        "undefined": jinja2.StrictUndefined,
        "keep_trailing_newline": True,
        "trim_blocks": True,
        "lstrip_blocks": True,
        "autoescape": False,
    }
    if kind == "tex":
        env = jinja2.Environment(
            block_start_string="((*",
            block_end_string="*))",
            variable_start_string="(((",
            variable_end_string=")))",
            comment_start_string="((=",
            comment_end_string="=))",
            **common,
        )
        env.filters["text"] = tex_text
        env.filters["fittext"] = functools.partial(tex_text, fit=True)
    else:
        env = jinja2.Environment(**common)
        env.filters["text"] = md_text
        env.filters["fittext"] = md_text
        env.filters["mdmath"] = md_math
    env.filters["sci"] = _sci
    return env


def render_tex(context: dict[str, Any]) -> str:
    """Render the LaTeX template with ``context``."""
    return environment("tex").get_template("notes.tex.j2").render(**context)


def render_markdown(context: dict[str, Any]) -> str:
    """Render the Markdown template with ``context``."""
    return environment("md").get_template("notes.md.j2").render(**context)


@dataclass(frozen=True)
class NotesBuild:
    """What :func:`build_notes` wrote.

    Attributes:
        tex: the LaTeX source.
        figures: the figure files (PDF and PNG).
        pdf: the compiled PDF, or None if not asked for.
        markdown: the Markdown file, or None if not asked for.
        html: the web page, or None if not asked for.
        pages: number of pages of the PDF (None without a PDF).
        seconds: total build time.
    """

    tex: Path
    figures: list[Path]
    pdf: Path | None = None
    markdown: Path | None = None
    html: Path | None = None
    pages: int | None = None
    seconds: float = 0.0
    context: dict[str, Any] = field(default_factory=dict, repr=False)


def pdf_pages(pdf: Path) -> int | None:
    pdfinfo = shutil.which("pdfinfo")
    if pdfinfo is not None:
        proc = subprocess.run([pdfinfo, str(pdf)], capture_output=True, text=True, check=False)
        m = re.search(r"^Pages:\s+(\d+)", proc.stdout, re.M)
        if m:
            return int(m.group(1))
    data = pdf.read_bytes()
    counts = [int(m) for m in re.findall(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)", data)]
    return max(counts) if counts else None


#: Every file the notes write says so in its first line (a comment).
GENERATED_MARKER = "Autogenerated by ntksym"


def refuse_foreign(paths: Sequence[Path]) -> None:
    """Refuse, before any work, to replace a file that the notes did not write.

    Raises:
        GeneratedFileError: a path exists and is not a file whose first lines carry
            :data:`GENERATED_MARKER` (the message names it and says how to replace it).
    """
    for path in paths:
        if not path.exists() and not path.is_symlink():
            continue
        head = ""
        if path.is_file():
            with open(path, encoding="utf-8", errors="replace") as f:
                head = f.read(400)
        if GENERATED_MARKER not in head:
            raise GeneratedFileError(
                f"{path} exists and was not written by ntksym notes; move it away, "
                "choose another --name or output directory, or pass --force to replace it"
            )


def compile_pdf(tex: Path) -> Path:
    """Compile ``tex`` to PDF with latexmk, or pdflatex run twice.

    Raises:
        TeXMissingError: no TeX installation was found.
        NotesBuildError: LaTeX reported errors (the message names the log file).
    """
    tex = Path(tex)
    latexmk, pdflatex = shutil.which("latexmk"), shutil.which("pdflatex")
    if pdflatex is None:
        raise TeXMissingError(tex_missing_message())
    flags = ["-interaction=nonstopmode", "-halt-on-error", "-file-line-error"]
    if latexmk is not None:
        cmds = [[latexmk, "-pdf", "-silent", *flags, tex.name]]
    else:
        cmds = [[pdflatex, *flags, tex.name]] * 2
    for cmd in cmds:
        proc = subprocess.run(cmd, cwd=tex.parent, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            log = tex.with_suffix(".log")
            errors = [
                ln
                for ln in (log.read_text(errors="replace").splitlines() if log.exists() else [])
                if ln.startswith("!") or ":" in ln and "error" in ln.lower()
            ]
            raise NotesBuildError(f"LaTeX failed on {tex} (see {log}): " + "; ".join(errors[:5]))
    return tex.with_suffix(".pdf")


def build_notes(
    paths: Sequence[Path] | None,
    outdir: Path,
    *,
    pdf: bool = False,
    markdown: bool = False,
    html: bool = False,
    quick: bool = False,
    name: str = "ntk_notes",
    progress: Callable[[str], None] | None = None,
    force: bool = False,
    jobs: int | None = None,
    cache: Path | bool | None = None,
) -> NotesBuild:
    """Write the notes for the derivation modules at ``paths`` into ``outdir``.

    Args:
        paths: derivation module files (default: every module in ``derivations/``).
        outdir: output directory (created).
        pdf: also compile the PDF.
        markdown: also write GitHub-flavoured Markdown with ``$...$`` math.
        html: also write a self-contained web page (MathML, figures inlined).
        quick: the engine's quick checks, a small Monte-Carlo experiment and fewer
            certification points (for tests; the published notes use the full run).
        name: file stem of the outputs.
        progress: called with a short message before each stage.
        force: replace output files that ntksym did not write (else refused up front).
        jobs: processes certifying the closed forms meanwhile (default: CPUs, <= 4).
        cache: certified closed forms' directory, True for the default one
            (:func:`~ntksym.notes.duals.certification_cache`) or False (default: True
            except in quick mode).

    Returns:
        A :class:`NotesBuild`.

    Raises:
        InputError: a path is not a derivation module.
        GeneratedFileError: an output file is not ntksym's and ``force`` is off.
        MatplotlibMissingError: matplotlib is not installed.
        TeXMissingError: no TeX for ``pdf`` (the ``.tex`` and figures are written).
        NotesBuildError: LaTeX failed, or a formula has no MathML for ``html``.
    """
    from ntksym.derive.loader import default_paths
    from ntksym.notes.figures import pyplot

    t0 = time.perf_counter()
    say = progress or (lambda _msg: None)
    pyplot()  # fail early and clearly if matplotlib is missing
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    files = [Path(p) for p in paths] if paths else default_paths()
    tex_path = outdir / f"{name}.tex"
    md_path = outdir / f"{name}.md" if markdown else None
    html_path = outdir / f"{name}.html" if html else None
    if not force:
        refuse_foreign([p for p in (tex_path, md_path, html_path) if p is not None])
    context = _context(files, outdir, quick, say, *_workers(quick, jobs, cache))
    atomic_write_text(tex_path, render_tex(context))
    if md_path is not None:
        atomic_write_text(md_path, render_markdown(context))
    if html_path is not None:
        from ntksym.notes.html import render_html

        atomic_write_text(html_path, render_html(context))
    pdf_path, pages = None, None
    if pdf:
        say("compiling the PDF")
        pdf_path = compile_pdf(tex_path)
        pages = pdf_pages(pdf_path)
    figures = sorted((outdir / "figures").glob("*.*"))
    return NotesBuild(
        tex=tex_path,
        figures=figures,
        pdf=pdf_path,
        markdown=md_path,
        html=html_path,
        pages=pages,
        seconds=time.perf_counter() - t0,
        context=context,
    )


def _workers(quick: bool, jobs: int | None, cache: Path | bool | None) -> tuple[int, Path | None]:
    """The worker count and the cache directory that ``build_notes``' defaults stand for."""
    if jobs is None:
        jobs = 1 if quick else max(1, min(4, os.cpu_count() or 1))
    if cache is None:
        cache = not quick
    if cache is True:
        from ntksym.notes.duals import certification_cache

        cache = certification_cache()
    return jobs, cache or None


def _context(
    files: list[Path],
    outdir: Path,
    quick: bool,
    say: Callable[[str], None],
    jobs: int = 1,
    cache: Path | None = None,
) -> dict[str, Any]:
    """Check the derivations, certify the closed forms, draw the figures: the template's data."""
    from ntksym.notes.content import METHOD_TEXT
    from ntksym.notes.duals import CERT_COVARIANCES, start_dual_table
    from ntksym.notes.worked import WORKED_PAIR, worked_example

    covs = CERT_COVARIANCES[:2] if quick else CERT_COVARIANCES
    names = ("relu", "erf", "step", "sin") if quick else None
    say(
        "certifying closed-form dual kernels against mpmath"
        + (" (in the background)" if jobs > 1 else "")
    )
    pending = start_dual_table(names, covariances=covs, dps=30, jobs=jobs, cache=cache)
    try:
        views, chapters, exercises, figs = _checks(files, outdir, quick, say)
        say("collecting the certified closed forms")
        duals = pending.result()
    except BaseException:
        pending.cancel()
        raise
    from ntksym.notes.prose import (
        LIMITATIONS,
        MOTIVATION,
        NOTATION,
        PARAMETERIZATION,
        REFERENCES,
    )

    return {
        "motivation": MOTIVATION,
        "notation": NOTATION,
        "parameterization": PARAMETERIZATION,
        "limitations": LIMITATIONS,
        "references": [entry for _key, entry in REFERENCES],
        "bibliography": REFERENCES,
        "derivations": views,
        "chapters": chapters,
        "exercises": exercises,
        "worked": worked_example(),
        "worked_pair": WORKED_PAIR,
        "duals": duals,
        "covariances": covs,
        "figures": figs,
        "quick": quick,
        "method_text": METHOD_TEXT,
        "version": __version__,
        "sources": [str(p) for p in files],
        "total_seconds": sum(v.seconds for v in views),
        "total_steps": sum(len(v.steps) for v in views),
    }


def _checks(
    files: list[Path], outdir: Path, quick: bool, say: Callable[[str], None]
) -> tuple[list[Any], list[Any], list[Any], Any]:
    """Check the derivations, plant the exercises' errors, draw the figures."""
    from ntksym.derive.loader import load_derivation
    from ntksym.notes.chapters import chapter_views
    from ntksym.notes.content import derivation_view
    from ntksym.notes.exercises import find_the_error
    from ntksym.notes.figures import make_figures

    views, chapters, exercises = [], [], []
    for d in (load_derivation(p) for p in files):
        say(f"checking derivation {d.name!r}")
        view = derivation_view(d, quick=quick)
        views.append(view)
        chapters.extend(chapter_views(view))
        verified = [s.label for s in view.steps if s.verdict == "verified"]
        say(f"planting errors in {d.name!r} for the exercises")
        exercises.extend(find_the_error(d, verified, limit=3 if d.name == "seed" else 1))
    say("drawing figures")
    return views, chapters, exercises, make_figures(outdir, quick=quick)
