"""A network description read from a Python file that defines ``net``.

``ntksym gram --network NET.py`` and ``ntksym notes --network NET.py`` take a network this
way. The file is imported as a module (as ``ntksym verify`` imports a derivation file), so
the user writes ordinary Python with ``ntksym.stax``; no string is ever evaluated.
"""

from __future__ import annotations

import os
from pathlib import Path

from ntksym._io import import_file
from ntksym.architecture.description import Net, as_description
from ntksym.errors import InputError

__all__ = ["load_network"]

_EXAMPLE = "net = stax.serial(stax.Dense(512), stax.Relu(), stax.Dense(1))"


def load_network(path: str | os.PathLike[str], label: str = "--network") -> Net:
    """The description of the ``net`` defined by the Python file ``path``.

    Args:
        path: A ``.py`` file defining ``net``: a ``ntksym.stax`` layer, its
            ``(init_fn, apply_fn, kernel_fn)`` triple, or a ``ntksym.architecture``
            description.
        label: How error messages name the file's option (e.g. ``"--network"``).

    Raises:
        InputError: The file is missing or not ``.py``, has a syntax error, raises when
            imported, or defines no such ``net`` (one line each).
    """
    file = Path(path)
    where = f"{label} {path}" if label else str(path)
    if not file.is_file() or file.suffix != ".py":
        raise InputError(f"{where}: not a Python file (expected a file that defines `net`)")
    try:
        module = import_file(file, f"_ntksym_network_{file.stem}")
    except SyntaxError as exc:
        raise InputError(f"{where}:{exc.lineno}: syntax error: {exc.msg}") from None
    except InputError:
        raise
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the file's own failure, one line
        raise InputError(f"{where}: importing it raised {type(exc).__name__}: {exc}") from None
    net = as_description(getattr(module, "net", None)) if module is not None else None
    if net is None:
        raise InputError(
            f"{where}: defines no `net` that is a ntksym.stax network or a "
            f"ntksym.architecture description (e.g. {_EXAMPLE})"
        )
    return net
