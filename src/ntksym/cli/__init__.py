"""Command line: ``ntksym <command> ...`` (also ``python -m ntksym``).

Each command lives in the module that implements it, which provides
``configure(parser)`` and ``run(args) -> int``; this file only wires them up
and calls library functions.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import importlib.util
import os
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
    from ntksym.version import __version__

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
    """Run the command line; returns the exit code.

    Errors are handled here, once for every command, as one line on stderr and a
    non-zero exit code, never a traceback: a clear ntksym error (2), an operating-system
    error such as a full disk or a missing permission (1), a closed output pipe as in
    ``ntksym verify --json | head`` (141), and SIGINT/SIGTERM (130/143, after the command
    has cleaned up or kept its partial work; the line says which).
    """
    where = "ntksym"
    try:
        parser = build_parser()
        args = parser.parse_args(argv)  # --help and usage errors exit here (SystemExit)
        if not getattr(args, "command", None):
            parser.print_help()
            sys.stdout.flush()
            return 2
        where = f"ntksym {args.command}"
        code = int(importlib.import_module(args._module).run(args))
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except NTKSymError as exc:
        _say(f"{where}: error: {exc}")
        return 2
    except BrokenPipeError:
        return _broken_pipe(where)
    except SystemExit:  # argparse's --help or usage error: its text may meet a closed pipe
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            return _broken_pipe(where)
        raise
    except OSError as exc:
        _say(f"{where}: error: {_describe(exc)}")
        return 1
    except KeyboardInterrupt as exc:
        _say(f"{where}: {exc}" if str(exc) else f"{where}: interrupted")
        return int(getattr(exc, "exit_code", 130))


def _say(line: str) -> None:
    """Print one line on stderr, even if stderr itself is a closed pipe."""
    try:
        print(line, file=sys.stderr, flush=True)
    except OSError:
        pass


def _broken_pipe(where: str) -> int:
    """Report a closed output pipe once; stdout goes to /dev/null so exit does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    _say(f"{where}: stopped: the program reading the output closed it (broken pipe)")
    return 141


def _describe(exc: OSError) -> str:
    """One line for an operating-system error: what failed, on which file, what to check."""
    what = exc.strerror or str(exc) or type(exc).__name__
    files = [str(f) for f in (exc.filename, exc.filename2) if f is not None]
    on = f" ({' -> '.join(files)})" if files else ""
    if exc.errno == errno.ENOSPC:
        fix = "free some space or write elsewhere"
    elif isinstance(exc, PermissionError):
        fix = "choose a path you can write to, or fix its permissions"
    elif isinstance(exc, (FileNotFoundError, NotADirectoryError, IsADirectoryError)):
        fix = "check the path"
    else:
        fix = "check the path, its permissions and the free space"
    return f"{what}{on}; {fix}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
