r"""Worked closed forms: the dual maps in the seed's notation and the recursion for two inputs.

The closed forms are :mod:`ntksym.dual`'s (derived by ntksym, with their citation), printed
with ``\Sigma(x,x)``, ``\Sigma(x,x')``, ``\Sigma(x',x')`` for the covariance entries; the
numbers are the recursion of :func:`ntksym.reference.recursion.recursion` in mpmath.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sympy as sp

from ntksym.notes.printer import NotesPrinter

__all__ = ["WORKED_PAIR", "Worked", "WorkedLayer", "dual_formulas", "worked_example"]

#: The two inputs of the worked example (unit vectors at an angle with cosine 0.6).
WORKED_PAIR = (("1", "0"), ("0.6", "0.8"))


class _DualPrinter(NotesPrinter):
    """The notes' printer with the covariance entries named as in the seed."""

    def __init__(self, names: dict[sp.Symbol, str]) -> None:
        super().__init__()
        self._names = names

    def _print_Symbol(self, expr: sp.Symbol, style: str = "plain") -> str:
        if expr in self._names:
            return self._names[expr]
        return super()._print_Symbol(expr, style=style)


def dual_formulas(maps: Any) -> tuple[str, str]:
    r"""LaTeX of the NNGP and NTK maps of a :class:`~ntksym.dual.family.DualMaps`.

    The covariance entries print as ``\Sigma(x,x)``, ``\Sigma(x,x')``, ``\Sigma(x',x')``;
    an NTK map without a closed form gives ``""``.
    """
    from ntksym import dual

    names = {dual.S11: r"\Sigma_{xx}", dual.S12: r"\Sigma_{xx'}", dual.S22: r"\Sigma_{x'x'}"}
    printer = _DualPrinter(names)
    nngp = printer.doprint(maps.nngp)
    ntk = printer.doprint(maps.ntk) if maps.ntk is not None else ""
    return nngp, ntk


@dataclass(frozen=True)
class WorkedLayer:
    """One layer of the recursion for the worked pair (numbers rounded for print)."""

    layer: int
    var: str
    sigma: str
    sigma_dot: str
    theta: str


@dataclass(frozen=True)
class Worked:
    """The worked example of one activation.

    Attributes:
        name: the activation; nngp, ntk: its closed-form maps (LaTeX).
        source: the citation; method: how ntksym derived the maps.
        layers: the recursion for the pair :data:`WORKED_PAIR`, layer by layer.
        bias: the bias scale used.
    """

    name: str
    nngp: str
    ntk: str
    source: str
    method: str
    layers: list[WorkedLayer]
    bias: str


def _fmt(v: Any) -> str:
    return f"{float(v):.6f}"


def worked_example(
    names: Sequence[str] = ("relu", "erf"), depth: int = 3, bias: str = "0"
) -> list[Worked]:
    """The closed forms of ``names`` and their recursion for :data:`WORKED_PAIR`.

    Args:
        names: Registered activations with closed-form maps.
        depth: Number of affine layers ``L``.
        bias: The bias scale ``beta`` (an exact decimal).

    Returns:
        One :class:`Worked` per activation.
    """
    from ntksym import dual
    from ntksym.reference.recursion import recursion

    out = []
    x1, x2 = WORKED_PAIR
    for name in names:
        maps = dual.closed_form(name)
        nngp, ntk = dual_formulas(maps)
        rec = recursion(name, list(x1), list(x2), depth, bias, dps=20)
        layers = [
            WorkedLayer(
                layer=n + 1,
                var=_fmt(rec.var1[n]),
                sigma=_fmt(rec.sigma[n]),
                sigma_dot=_fmt(rec.sigma_dot[n - 1]) if n >= 1 else "",
                theta=_fmt(rec.theta[n]),
            )
            for n in range(depth)
        ]
        method = maps.method.removeprefix("derived: ")
        out.append(Worked(name, nngp, ntk, maps.source, method, layers, bias))
    return out
