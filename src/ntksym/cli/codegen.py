"""``ntksym codegen ACTIVATION [--backend numba|numpy] [-o DIR] [--force]``.

``ntksym codegen --committed`` regenerates every committed module (both backends) into the
package's ``generated/`` directory: a developer's command, refused for an installed package.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ntksym.cli.options import writable_directory
from ntksym.codegen.files import generate, package_generated_dir
from ntksym.codegen.render import BACKENDS
from ntksym.codegen.spec import COMMITTED
from ntksym.errors import InputError

__all__ = ["configure", "run", "regenerate_committed"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the codegen arguments to ``parser``."""
    parser.add_argument(
        "activation",
        nargs="?",
        default=None,
        help="registered name (relu, erf, ...) or expression in u",
    )
    parser.add_argument("--backend", choices=BACKENDS, default="numba", help="default: numba")
    parser.add_argument("-o", "--out-dir", default=None, help="default: the current directory")
    parser.add_argument(
        "--force", action="store_true", help="overwrite a generated file that was edited"
    )
    parser.add_argument(
        "--committed",
        action="store_true",
        help="regenerate every committed module (all backends) into the package's generated/ "
        "directory (from a source checkout)",
    )


def regenerate_committed(target: Path, force: bool = False) -> list[Path]:
    """Regenerate the committed kernel modules, both backends, into ``target``.

    Raises:
        InputError: ``target`` lies inside an installed package (site-packages) or cannot
            be written.
    """
    if {"site-packages", "dist-packages"} & set(target.resolve().parts):
        raise InputError(
            f"{str(target)!r} belongs to an installed package, not a source checkout; run "
            "`ntksym codegen --committed` from a checkout installed with pip install -e ."
        )
    writable_directory(target, "the package's generated/ directory")
    return [generate(name, backend, target, force) for name in COMMITTED for backend in BACKENDS]


def run(args: argparse.Namespace) -> int:
    """Generate the module(s); print their paths. Returns 0."""
    if args.committed:
        if args.activation is not None or args.out_dir is not None:
            raise InputError(
                "--committed regenerates the committed modules into the package; give no "
                "ACTIVATION or --out-dir with it"
            )
        for path in regenerate_committed(package_generated_dir(), args.force):
            print(path)
        return 0
    if args.activation is None:
        raise InputError("give an ACTIVATION (e.g. relu or 'tanh(u)'), or --committed")
    out_dir = Path(args.out_dir) if args.out_dir is not None else Path.cwd()
    writable_directory(out_dir, "--out-dir")
    print(generate(args.activation, args.backend, out_dir, args.force))
    return 0
