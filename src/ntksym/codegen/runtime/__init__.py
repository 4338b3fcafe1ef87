"""The static numerical code of the generated kernel modules, as real Python.

A generated module (``ntksym/generated/*.py``) is standalone: it never imports
ntksym. Most of its code does not depend on the activation (a branch-free
``atan2``, an adaptive quadrature, a determinant formed without cancellation, the
parallel row loops); that code lives here, in modules that are imported, linted and
unit-tested like any other, and the templates copy it into each generated module
verbatim.

What is copied is a *region* of a runtime file, between two marker lines::

    # region NAME
    ...code...
    # endregion NAME

(the markers may be indented like the code around them; the lines between them are
copied exactly, indentation included). A template includes a region by the name
``runtime/FILE.py#NAME`` (see :mod:`ntksym.codegen.render`). Outside the regions a
runtime file holds its imports and stand-ins for what the generated module defines
around the regions (the activation, its layer maps), so that it runs on its own.

One textual substitution exists, for code that comes in variants of one function
(``_outer`` with and without the reflection of the activation): the runtime file
names the variants apart, e.g. ``_outer_reflect``, and the begin marker says how the
generated module names it::

    # region outer_reflect rename _outer_reflect=_outer

The renderer then replaces the whole word ``_outer_reflect`` by ``_outer`` in that
region, and nothing else.

This package's ``__init__`` only reads files; it imports neither NumPy nor Numba.
"""

from __future__ import annotations

import functools
import importlib.resources
import re

from ntksym.errors import InputError

__all__ = ["RUNTIME_FILES", "read_region", "runtime_sources"]

#: The runtime files a template may include regions of.
RUNTIME_FILES = (
    "module_api.py",
    "numba_atan2.py",
    "numba_driver.py",
    "numba_fused.py",
    "numba_mirror.py",
    "numba_quadrature.py",
    "numpy_fused.py",
    "numpy_erf.py",
    "numpy_long.py",
    "numpy_mend.py",
    "numpy_mehler.py",
    "numpy_quadrature.py",
    "quadrature_rule.py",
)

_BEGIN = re.compile(r"^[ ]*# region (\w+)(?: rename (\w+)=(\w+))?$")
_END = re.compile(r"^[ ]*# endregion (\w+)$")


def runtime_sources() -> dict[str, str]:
    """The text of every runtime file, by file name (see :data:`RUNTIME_FILES`)."""
    root = importlib.resources.files(__name__)
    return {name: root.joinpath(name).read_text(encoding="utf-8") for name in RUNTIME_FILES}


@functools.cache
def _regions(name: str) -> dict[str, str]:
    if name not in RUNTIME_FILES:
        raise InputError(f"unknown runtime file {name!r}; choose one of {', '.join(RUNTIME_FILES)}")
    return parse_regions(runtime_sources()[name], name)


def parse_regions(text: str, where: str = "<text>") -> dict[str, str]:
    """The regions of a runtime file's text, by name, with their renames applied.

    Args:
        text: The file's content.
        where: The file's name, for error messages.

    Returns:
        Region name -> the lines between its markers (each ending in a newline).

    Raises:
        InputError: A marker without its partner, or a nested or repeated region.
    """
    out: dict[str, str] = {}
    current: tuple[str, str | None, str | None] | None = None
    body: list[str] = []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        begin = _BEGIN.match(line.rstrip("\n"))
        end = _END.match(line.rstrip("\n"))
        if begin:
            if current is not None:
                raise InputError(
                    f"{where}:{number}: region {begin[1]!r} opens inside {current[0]!r}"
                )
            if begin[1] in out:
                raise InputError(f"{where}:{number}: region {begin[1]!r} is defined twice")
            current, body = (begin[1], begin[2], begin[3]), []
        elif end:
            if current is None or end[1] != current[0]:
                raise InputError(f"{where}:{number}: 'endregion {end[1]}' without its 'region'")
            name, old, new = current
            code = "".join(body)
            if old is not None and new is not None:
                code = re.sub(rf"\b{old}\b", new, code)
            out[name] = code
            current = None
        elif current is not None:
            body.append(line)
    if current is not None:
        raise InputError(f"{where}: region {current[0]!r} is never closed")
    return out


def read_region(name: str, region: str) -> str:
    """The code of one region of a runtime file, renames applied.

    Args:
        name: The runtime file, e.g. ``"numba_atan2.py"``.
        region: The region's name.

    Returns:
        The region's lines, as the generated module holds them.

    Raises:
        InputError: Unknown file or region.
    """
    regions = _regions(name)
    if region not in regions:
        raise InputError(
            f"runtime file {name} has no region {region!r}; it has {', '.join(sorted(regions))}"
        )
    return regions[region]
