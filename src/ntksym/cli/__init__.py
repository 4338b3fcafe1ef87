"""Command line: ``ntksym <command> ...`` (also ``python -m ntksym``).

Each command lives in the module that implements it, which provides
``configure(parser)`` and ``run(args) -> int``; this file only wires them up
and calls library functions.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence

from ntksym.errors import NTKSymError

__all__ = ["main", "build_parser"]

#: command -> (module providing configure/run, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("ntksym.cli.demo", "NTK Gram matrix of a few inputs beside its mpmath reference"),
    "verify": ("ntksym.cli.verify", "check the derivation(s) step by step"),
    "codegen": ("ntksym.cli.codegen", "generate a NumPy/Numba kernel module"),
    "converge": ("ntksym.cli.converge", "finite-width NTK converging to the limit"),
    "notes": ("ntksym.cli.notes", "LaTeX/PDF/Markdown teaching notes from the verified derivation"),  # noqa: E501
    "gram": ("ntksym.cli.gram", "NNGP/NTK Gram matrix of .npy files, in bounded memory"),
    "train": ("ntksym.cli.train", "trained finite networks vs the infinite-width prediction"),
}


def _available() -> dict[str, tuple[str, str]]:
    """The commands whose implementing module is present in this installation."""
    found = {}
    for name, (module, text) in COMMANDS.items():
        try:
            present = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            present = False
        if present:
            found[name] = (module, text)
    return found


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-parser per available command."""
    from ntksym import __version__

    parser = argparse.ArgumentParser(
        prog="ntksym",
        description="The Neural Tangent Kernel derivation, machine-checked and compiled.",
    )
    parser.add_argument("--version", action="version", version=f"ntksym {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, text) in _available().items():
        p = sub.add_parser(name, help=text, description=text)
        importlib.import_module(module).configure(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(importlib.import_module(args._module).run(args))
    except NTKSymError as exc:
        print(f"ntksym {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
