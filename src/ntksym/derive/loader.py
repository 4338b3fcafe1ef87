"""Finding and loading derivation documents.

A derivation document is a Python module that defines ``DERIVATION`` (a
:class:`ntksym.derive.Derivation`). The ones ntksym ships live in the
:mod:`ntksym.derivations` package; any other file can be loaded by its path.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from ntksym._io import import_file
from ntksym.derive.derivation import Derivation
from ntksym.errors import InputError

__all__ = ["default_paths", "load_derivation", "package_derivations_dir"]


def package_derivations_dir() -> Path:
    """The directory of the derivations shipped with ntksym (``ntksym/derivations``)."""
    return Path(__file__).resolve().parents[1] / "derivations"


def default_paths() -> list[Path]:
    """Derivation modules in ``./derivations`` or, failing that, the ones ntksym ships."""
    for root in (Path.cwd() / "derivations", package_derivations_dir()):
        if root.is_dir():
            files = sorted(p for p in root.glob("*.py") if not p.name.startswith("_"))
            if files:
                return files
    raise InputError("no derivations/ directory with modules found; pass PATH explicitly")


def load_derivation(path: Path) -> Derivation:
    """Import a derivation module from its file and return its ``DERIVATION``.

    Raises:
        InputError: the file is missing, is not Python, has a syntax error, raises when
            imported, or defines no ``DERIVATION`` (one line, naming the file).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file (expected a derivations/*.py module)")
    if not path.is_file() or path.suffix != ".py":
        raise InputError(f"{path}: not a Python file (expected a derivations/*.py module)")
    try:
        module = _import(path)
    except SyntaxError as exc:
        raise InputError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
    except InputError:
        raise
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the module's own failure, one line
        raise InputError(f"{path}: importing it raised {type(exc).__name__}: {exc}") from None
    return _derivation_of(module, path)


def _import(path: Path) -> object:
    if path.resolve().parent == package_derivations_dir():
        # one of ntksym's own: import it under its package name (one module object)
        return importlib.import_module(f"ntksym.derivations.{path.stem}")
    root = str(path.resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)  # so that 'derivations.x' imports inside the module work
    module = import_file(path, f"_ntksym_derivation_{path.stem}")
    if module is None:
        raise InputError(f"{path}: cannot be loaded as a module")
    return module


def _derivation_of(module: object, path: Path) -> Derivation:
    deriv = getattr(module, "DERIVATION", None)
    if not isinstance(deriv, Derivation):
        raise InputError(f"{path}: defines no DERIVATION (an ntksym.derive.Derivation)")
    return deriv
