"""``ntksym codegen ACTIVATION [--backend numba|numpy] [-o DIR] [--force]``."""

from __future__ import annotations

import argparse
import sys

from ntksym.codegen.files import generate
from ntksym.codegen.render import BACKENDS
from ntksym.errors import NTKSymError

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the codegen arguments to ``parser``."""
    parser.add_argument("activation", help="registered name (relu, erf, ...) or expression in u")
    parser.add_argument("--backend", choices=BACKENDS, default="numba", help="default: numba")
    parser.add_argument("-o", "--out-dir", default=None, help="default: the current directory")
    parser.add_argument(
        "--force", action="store_true", help="overwrite a generated file that was edited"
    )


def run(args: argparse.Namespace) -> int:
    """Generate the module; print its path. Returns 0, or 2 on a clear error."""
    try:
        path = generate(args.activation, args.backend, args.out_dir, args.force)
    except NTKSymError as exc:
        print(f"ntksym codegen: error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0
