"""``ntksym verify [PATH ...] [--json] [--quick]``: check derivation modules.

A derivation module is a Python file in the project's ``derivations/`` directory that
defines ``DERIVATION`` (a :class:`ntksym.derive.Derivation`). Modules are loaded from their
file path with :mod:`importlib` (these are the project's own files).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ntksym.derive.core import StepResult
from ntksym.derive.loader import default_paths, load_derivation
from ntksym.derive.plain import plain_text
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


def _table(name: str, results: list[StepResult]) -> str:
    head = f"{'label':<6} {'statement':<38} {'rule':<20} {'method':<28} {'verdict':<9} {'s':>6}"
    lines = [f"== {name}", head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r.label:<6} {_short(plain_text(f'${r.printed or r.derived}$')):<38} {r.rule:<20} "
            f"{r.method:<28} {r.verdict:<9} {r.seconds:6.2f}"
        )
        if r.verdict == "misprint":
            lines.append(f"       -> {plain_text(r.explanation or r.detail)}")
        elif r.verdict == "failed":
            lines.append(f"       -> {plain_text(r.detail)}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run the checks; 0 if no step failed, 1 otherwise, 2 on bad input."""
    try:
        paths = [Path(p) for p in args.paths] if args.paths else default_paths()
        derivations = [load_derivation(p) for p in paths]
    except InputError as exc:
        print(f"ntksym verify: {exc}", file=sys.stderr)
        return 2
    all_rows: list[dict] = []
    failed = False
    for deriv in derivations:
        t0 = time.perf_counter()

        def progress(step: object, _name: str = deriv.name) -> None:
            print(f"[{_name}] ({step.label}) ...", file=sys.stderr, flush=True)

        results = deriv.run(quick=args.quick, progress=progress)
        failed |= any(r.verdict == "failed" for r in results)
        print(
            f"[{deriv.name}] {len(results)} steps in {time.perf_counter() - t0:.1f} s",
            file=sys.stderr,
        )
        if args.json:
            all_rows.extend({"derivation": deriv.name, **r.as_dict()} for r in results)
        else:
            print(_table(f"{deriv.name}: {deriv.title}", results))
    if args.json:
        print(json.dumps(all_rows, indent=1))
    return 1 if failed else 0
