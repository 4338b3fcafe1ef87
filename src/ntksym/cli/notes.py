"""``ntksym notes [PATH ...] -o DIR [--pdf] [--markdown] [--quick]``: teaching notes.

Always writes ``DIR/ntk_notes.tex`` and the figures (``DIR/figures/*.pdf``, ``*.png``);
``--pdf`` compiles the PDF with latexmk (or pdflatex twice) and ``--markdown`` writes
``DIR/ntk_notes.md`` for GitHub.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``notes`` arguments to ``parser``."""
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="derivation module files (default: every module in derivations/)",
    )
    parser.add_argument(
        "-o", "--output", required=True, metavar="DIR", help="output directory (created if needed)"
    )
    parser.add_argument(
        "--pdf", action="store_true", help="compile the PDF with latexmk or pdflatex"
    )
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="also write GitHub-renderable Markdown with $...$ math",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="cheap checks and a small Monte-Carlo experiment (for tests)",
    )
    parser.add_argument("--name", default="ntk_notes", help="file stem (default: ntk_notes)")


def run(args: argparse.Namespace) -> int:
    """Build the notes; 0 on success, 1 if a step failed or LaTeX failed, 2 on bad input.

    Without a TeX installation ``--pdf`` writes the ``.tex`` file and the figures, says
    which packages to install, and returns 3.
    """
    from ntksym.notes.build import NotesBuildError, TeXMissingError, build_notes
    from ntksym.notes.figures import MatplotlibMissingError

    def progress(msg: str) -> None:
        print(f"[notes] {msg} ...", file=sys.stderr, flush=True)

    paths = [Path(p) for p in args.paths] or None
    try:
        built = build_notes(
            paths,
            Path(args.output),
            pdf=False,
            markdown=args.markdown,
            quick=args.quick,
            name=args.name,
            progress=progress,
        )
    except MatplotlibMissingError as exc:
        print(f"ntksym notes: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {built.tex}")
    for f in built.figures:
        print(f"wrote {f}")
    if built.markdown is not None:
        print(f"wrote {built.markdown}")
    failed = sum(v.counts["failed"] for v in built.context["derivations"])
    if args.pdf:
        from ntksym.notes.build import compile_pdf, pdf_pages

        progress("compiling the PDF")
        try:
            pdf = compile_pdf(built.tex)
        except TeXMissingError as exc:
            print(f"ntksym notes: {exc}", file=sys.stderr)
            return 3
        except NotesBuildError as exc:
            print(f"ntksym notes: {exc}", file=sys.stderr)
            return 1
        pages = pdf_pages(pdf)
        print(f"wrote {pdf} ({pages} pages)")
    if failed:
        print(f"ntksym notes: {failed} step(s) failed their checks; see the notes", file=sys.stderr)
        return 1
    return 0
