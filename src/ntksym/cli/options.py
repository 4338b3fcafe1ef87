"""Options and helpers shared by several commands, written once.

* :func:`add_network_options`: ``--activation``, ``--depth``, ``--bias-std`` and
  ``--weight-std`` (gram, converge, train, demo), with per-command defaults.
* :func:`parse_widths`: the ``--widths 64,256,1024`` list (converge, train).
* :class:`ProgressBar`: a ``progress(done, total)`` callback drawing on stderr (gram, train).
* :func:`require_matplotlib`: fail before the work starts when the ``plot`` extra is missing.
* :func:`writable_directory`: refuse an output directory that cannot be written, up front.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

from ntksym.errors import InputError, MatplotlibMissingError

__all__ = [
    "add_network_options",
    "parse_widths",
    "ProgressBar",
    "require_matplotlib",
    "writable_directory",
]

#: Marks an option without a default: the command requires it.
REQUIRED = None


def add_network_options(
    parser: argparse.ArgumentParser,
    *,
    activation: str | None = REQUIRED,
    depth: int | None = REQUIRED,
    bias_std: float = 0.0,
    weight_std: float | None = 1.0,
    min_depth: int = 1,
    activation_help: str = "registered name (relu, erf, tanh, ...) or expression in u",
) -> None:
    """Add the network's options; a default of None makes the option required.

    Args:
        parser: The command's parser.
        activation: Default activation, or None: ``--activation`` is required.
        depth: Default number of affine layers, or None: ``--depth`` is required.
        bias_std: Default bias scale.
        weight_std: Default weight scale, or None: the command has no ``--weight-std``.
        min_depth: Smallest depth the command accepts (shown in the help).
        activation_help: Help text of ``--activation``.
    """

    def default(value: object) -> str:
        return "required" if value is None else f"default: {value}"

    parser.add_argument(
        "--activation",
        default=activation,
        required=activation is None,
        help=f"{activation_help} ({default(activation)})",
    )
    parser.add_argument(
        "--depth",
        type=int,
        default=depth,
        required=depth is None,
        help=f"number of affine layers L >= {min_depth} ({default(depth)})",
    )
    parser.add_argument(
        "--bias-std", type=float, default=bias_std, help=f"bias scale ({default(bias_std)})"
    )
    if weight_std is not None:
        parser.add_argument(
            "--weight-std",
            type=float,
            default=weight_std,
            help=f"weight scale ({default(weight_std)})",
        )


def parse_widths(text: str) -> list[int]:
    """``"64,256,1024"`` -> ``[64, 256, 1024]``.

    Raises:
        InputError: An entry is not an integer.
    """
    try:
        return [int(w) for w in text.split(",") if w.strip()]
    except ValueError:
        raise InputError(
            f"--widths must be comma-separated integers such as 64,256,1024, got {text!r}"
        ) from None


class ProgressBar:
    """A ``progress(done, total)`` callback: a text bar on stderr, redrawn ~4 times a second.

    Args:
        label: Printed before the bar, e.g. ``"ntksym gram"``.
        unit: What is counted, e.g. ``"blocks"``.
        enabled: Draw nothing when false.
    """

    def __init__(self, label: str, unit: str, enabled: bool = True) -> None:
        self.label, self.unit, self.enabled = label, unit, enabled
        self.start = self.last = time.monotonic()
        self.first: int | None = None

    def __call__(self, done: int, total: int) -> None:
        """Redraw the bar after ``done`` of ``total`` units."""
        if self.first is None:  # a resumed run starts part-way: time only this run's units
            self.first = done
        now = time.monotonic()
        if not self.enabled or (now - self.last <= 0.25 and done < total):
            return
        self.last = now
        frac = done / total if total else 1.0
        el = now - self.start
        rate = (done - self.first) / el if el > 0 else 0.0
        eta = f"~{(total - done) / rate:5.0f}s left" if rate > 0 else "estimating"
        bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
        sys.stderr.write(
            f"\r{self.label} [{bar}] {100 * frac:5.1f}% {self.unit} {done}/{total} "
            f"{el:6.1f}s elapsed, {eta}"
        )
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def require_matplotlib(purpose: str) -> None:
    """Fail at once, before any work, when matplotlib (the ``plot`` extra) is missing.

    Args:
        purpose: What needs it, e.g. ``"ntksym train -o DIR"``.

    Raises:
        MatplotlibMissingError: matplotlib cannot be imported.
    """
    try:
        found = importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise MatplotlibMissingError(
            f"{purpose} draws figures with matplotlib, which is not installed; install the "
            "plot extra: pip install 'ntksym[plot]' (or pip install matplotlib)"
        )


def writable_directory(path: Path, what: str) -> None:
    """Refuse, before any work, an output directory that is a file or cannot be written.

    A missing directory is fine when its nearest existing ancestor can be written.

    Raises:
        InputError: ``path`` is not a directory, or it (or its nearest existing
            ancestor) cannot be written.
    """
    if path.exists() and not path.is_dir():
        raise InputError(f"{what} {str(path)!r} is a file, not a directory; give a directory")
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(
            f"{what} {str(path)!r} cannot be written ({str(probe)!r}: permission denied); "
            "choose a directory you can write to"
        )
