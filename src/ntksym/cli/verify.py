"""``ntksym verify [PATH ...] [--json] [--quick]``: check derivation modules.

A derivation module is a Python file in the project's ``derivations/`` directory that
defines ``DERIVATION`` (a :class:`ntksym.derive.Derivation`). Modules are loaded from their
file path with :mod:`importlib` (these are the project's own files).

Every checked step is listed (table, or ``--json``); each derivation ends with a summary
line (steps per verdict, time, the steps ``--quick`` skipped), and several derivations
with a total. Exit code: 0, 1 if a step is ``failed`` or ``error``, 2 if a file cannot be
loaded (one line each: syntax error, exception on import, no ``DERIVATION``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

from ntksym.derive.derivation import Derivation
from ntksym.derive.explain import render_parts
from ntksym.derive.loader import default_paths, load_derivation
from ntksym.derive.plaintext import plain
from ntksym.derive.steps import VERDICTS, Step, StepResult
from ntksym.errors import InputError

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``verify`` arguments to ``parser``."""
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="derivation module files (default: every module in derivations/)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per step")
    parser.add_argument("--quick", action="store_true", help="only the cheap checks (< 10 s)")


def _short(tex: str, width: int = 38) -> str:
    s = " ".join(tex.split())
    return s if len(s) <= width else s[: width - 1] + "…"


def _statement(r: StepResult) -> str:
    """The statement as plain text, printed from the SymPy object."""
    stmt = r.printed_expr if r.printed_expr is not None else r.derived_expr
    return plain(stmt) if stmt is not None else ""


def _table(name: str, results: list[StepResult]) -> str:
    head = f"{'label':<6} {'statement':<38} {'rule':<20} {'method':<28} {'verdict':<9} {'s':>6}"
    lines = [f"== {name}", head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r.label:<6} {_short(_statement(r)):<38} {r.rule:<20} "
            f"{r.method:<28} {r.verdict:<9} {r.seconds:6.2f}"
        )
        if r.summary_parts and r.verdict in ("misprint", "failed"):
            lines.append(f"       -> {render_parts(r.summary_parts, plain)}")
        elif r.verdict in ("misprint", "error", "unchecked", "failed"):
            lines.append(f"       -> {r.detail.plain()}")
    return "\n".join(lines)


def summary_line(results: list[StepResult], seconds: float, skipped: list[str]) -> str:
    """One line: the number of steps per verdict, the total time, the skipped steps."""
    counts = Counter(r.verdict for r in results)
    parts = [f"{counts[v]} {v}" for v in VERDICTS if counts[v]]
    line = f"{len(results)} steps in {seconds:.1f} s: " + ", ".join(parts)
    if skipped:
        line += "; --quick skipped " + ", ".join(f"({lab})" for lab in skipped)
    return line


def _load(paths: list[Path]) -> tuple[list[Derivation], list[str]]:
    loaded, problems = [], []
    for p in paths:
        try:
            loaded.append(load_derivation(p))
        except InputError as exc:
            problems.append(str(exc))
    return loaded, problems


def run(args: argparse.Namespace) -> int:
    """Run the checks: 0 if no step failed or raised, 1 otherwise, 2 on bad input.

    A derivation file that cannot be loaded (missing, syntax error, raising on import, no
    ``DERIVATION``) is reported in one line; the others still run, and the exit code is 2.
    """
    try:
        paths = [Path(p) for p in args.paths] if args.paths else default_paths()
    except InputError as exc:
        print(f"ntksym verify: {exc}", file=sys.stderr)
        return 2
    derivations, problems = _load(paths)
    for msg in problems:
        print(f"ntksym verify: {msg}", file=sys.stderr)
    bad = _run_all(derivations, args)  # a closed output pipe is reported by cli.main
    return 2 if problems else (1 if bad else 0)


def _run_all(derivations: list[Derivation], args: argparse.Namespace) -> bool:
    """Run and print every derivation; whether any step failed or raised."""
    all_rows: list[dict] = []
    everything: list[StepResult] = []
    bad = False
    start = time.perf_counter()
    for deriv in derivations:
        t0 = time.perf_counter()

        def progress(step: Step, _name: str = deriv.name) -> None:
            print(f"[{_name}] ({step.label}) ...", file=sys.stderr, flush=True)

        results = deriv.run(quick=args.quick, progress=progress)
        bad |= any(r.verdict in ("failed", "error") for r in results)
        skipped = [s.label for s in deriv.steps if args.quick and not s.quick]
        line = summary_line(results, time.perf_counter() - t0, skipped)
        if args.json:
            all_rows.extend({"derivation": deriv.name, **r.as_dict()} for r in results)
        else:
            print(_table(f"{deriv.name}: {deriv.title}", results))
            print(f"summary: {line}", flush=True)
        print(f"[{deriv.name}] {line}", file=sys.stderr, flush=True)
        everything.extend(results)
    if len(derivations) > 1:
        total = summary_line(everything, time.perf_counter() - start, [])
        print(f"total ({len(derivations)} derivations): {total}", file=sys.stderr, flush=True)
        if not args.json:
            print(f"total ({len(derivations)} derivations): {total}", flush=True)
    if args.json:
        print(json.dumps(all_rows, indent=1))
    sys.stdout.flush()
    return bad
