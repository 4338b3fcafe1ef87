"""``ntksym notes [PATH ...] -o DIR [--pdf] [--markdown] [--html] [--quick]``: teaching notes.

Always writes ``DIR/ntk_notes.tex`` and the figures (``DIR/figures/*.pdf``, ``*.png``);
``--pdf`` compiles the PDF with latexmk (or pdflatex twice), ``--markdown`` writes
``DIR/ntk_notes.md`` for GitHub and ``--html`` a self-contained ``DIR/ntk_notes.html``
(MathML, figures inlined). ``--network FILE.py`` writes the notes of one network instead
(``DIR/network_notes.*``): the file defines ``net``, a :mod:`ntksym.stax` layer. An
existing output file that ntksym did not write is refused
unless ``--force`` is given.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ntksym.cli.options import require_matplotlib, writable_directory
from ntksym.errors import InputError, NotesBuildError, TeXMissingError

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
        "--html",
        action="store_true",
        help="also write a self-contained web page (MathML formulas, figures inlined)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace output files that were not written by ntksym notes",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="processes certifying the closed forms meanwhile (default: CPUs, at most 4)",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="recompute the certified closed forms instead of reusing cached ones",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="cheap checks and a small Monte-Carlo experiment (for tests)",
    )
    parser.add_argument(
        "--name",
        default=None,
        help="file stem (default: ntk_notes, or network_notes with --network)",
    )
    parser.add_argument(
        "--network",
        default=None,
        metavar="FILE.py",
        help="the notes of one network instead: a Python file defining `net` (a ntksym.stax "
        "layer), whose recursion is derived from the engine's general derivations and checked",
    )


def run(args: argparse.Namespace) -> int:
    """Build the notes; 0 on success, 1 if a step failed or LaTeX failed, 2 on bad input.

    Without a TeX installation ``--pdf`` writes the ``.tex`` file and the figures, says
    which packages to install, and returns 3.
    """
    if args.network is None:
        require_matplotlib("ntksym notes")
    if args.jobs is not None and args.jobs < 1:
        raise InputError(f"--jobs must be a positive number of processes, got {args.jobs}")
    out = Path(args.output)
    writable_directory(out, "-o/--output")
    if args.network is not None:
        return _run_network(args, out)
    args.name = args.name or "ntk_notes"
    from ntksym.notes.build import build_notes

    progress = _progress
    paths = [Path(p) for p in args.paths] or None
    try:
        built = build_notes(
            paths,
            out,
            pdf=args.pdf,
            markdown=args.markdown,
            html=args.html,
            quick=args.quick,
            name=args.name,
            progress=progress,
            force=args.force,
            jobs=args.jobs,
            cache=False if args.no_cache else None,
        )
    except NotesBuildError as exc:  # the .tex file and the figures are written
        print(f"wrote {out / (args.name + '.tex')} and the figures, but no PDF")
        print(f"ntksym notes: {exc}", file=sys.stderr)
        return 3 if isinstance(exc, TeXMissingError) else 1
    for f in (built.tex, *built.figures, built.markdown, built.html):
        if f is not None:
            print(f"wrote {f}")
    if built.pdf is not None:
        print(f"wrote {built.pdf} ({built.pages} pages)")
    failed = sum(v.counts["failed"] for v in built.context["derivations"])
    if failed:
        print(f"ntksym notes: {failed} step(s) failed their checks; see the notes", file=sys.stderr)
        return 1
    return 0


def _progress(msg: str) -> None:
    print(f"[notes] {msg} ...", file=sys.stderr, flush=True)


def _run_network(args: argparse.Namespace, out: Path) -> int:
    """``--network FILE.py``: the notes of one network's derivation."""
    if args.paths:
        raise InputError("--network takes no derivation PATHs; give one or the other")
    from ntksym.architecture.loading import load_network
    from ntksym.notes.network_build import build_network_notes

    name = args.name or "network_notes"
    net = load_network(args.network, label="")
    try:
        built = build_network_notes(
            net,
            out,
            pdf=args.pdf,
            markdown=args.markdown,
            html=args.html,
            quick=args.quick,
            name=name,
            force=args.force,
            progress=_progress,
        )
    except NotesBuildError as exc:
        print(f"wrote {out / (name + '.tex')}, but no PDF")
        print(f"ntksym notes: {exc}", file=sys.stderr)
        return 3 if isinstance(exc, TeXMissingError) else 1
    for f in (built.tex, built.markdown, built.html):
        if f is not None:
            print(f"wrote {f}")
    if built.pdf is not None:
        print(f"wrote {built.pdf} ({built.pages} pages)")
    view = built.context["view"]
    bad = view.counts["failed"] + view.counts["error"]
    print(", ".join(f"{n} {v}" for v, n in view.counts.items() if n))
    if bad:
        print(f"ntksym notes: {bad} step(s) failed their checks; see the notes", file=sys.stderr)
        return 1
    return 0
