"""Partial derivatives of the layer maps, derived by SymPy and lambdified.

The generated kernels run one layer map per activation (:func:`ntksym.codegen.spec.kernel_spec`):
``nngp = E[sigma(u) sigma(v)]``, ``ntk = E[sigma'(u) sigma'(v)]``, the next determinant
``det`` and the diagonal ``E[sigma(u)^2]``, as SymPy expressions in the covariance entries
``S11, S22, S12``, the determinant ``D`` carried as a variable of its own, the root gap ``U``
(stable forms), the clipped correlation ``RHO`` (SymPy closed forms), the next diagonal
``N11, N22`` and the scales ``W2, B2``. Here each of them is differentiated by SymPy with
respect to each of those variables and turned into a NumPy function.

Treating ``D`` as an independent variable is what keeps the derivatives accurate near
``|rho| = 1``: the stable forms never form ``1 - rho^2``, and neither do their partials (an
``arccos(rho)`` would have the derivative ``-1/sqrt(1 - rho^2)``, which loses half the digits of
``rho`` for nearly parallel pairs). The caller carries ``dD`` itself without cancellation (see
:mod:`ntksym.kernels.gradients`); partials that are infinite at ``D = 0`` (``1/sqrt(D)``) meet a
tangent ``dD`` that is zero there, and such products are taken as zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import sympy as sp

from ntksym.activations import Activation
from ntksym.codegen.spec import RHO, S, kernel_spec
from ntksym.dual.stable import B2, N11, N22, S11, S12, S22, W2, D, U
from ntksym.errors import NoClosedFormError

__all__ = [
    "ARGS",
    "NAMES",
    "MapPartials",
    "Partials",
    "combine",
    "layer_partials",
    "partial_values",
]

#: The variables every lambdified function takes, in this order.
ARGS: tuple[sp.Symbol, ...] = (S11, S22, S12, D, N11, N22, W2, B2, U, RHO)

#: Names of :data:`ARGS`, as the keys of :attr:`MapPartials.partials`.
NAMES: tuple[str, ...] = ("s11", "s22", "s12", "d", "n11", "n22", "w2", "b2", "u", "rho")

NumericMap = Callable[..., Any]


@dataclass(frozen=True)
class MapPartials:
    """One map and its nonzero partial derivatives as NumPy functions of :data:`ARGS`.

    Attributes:
        value: The map itself.
        partials: Variable name (see :data:`NAMES`) -> the partial derivative.
    """

    value: NumericMap
    partials: dict[str, NumericMap]


@dataclass(frozen=True)
class Partials:
    """The lambdified layer maps of one activation and their partial derivatives.

    Attributes:
        kind: ``"stable"`` or ``"closed"`` (see :mod:`ntksym.codegen.spec`).
        nngp: ``E[sigma(u) sigma(v)]``.
        ntk: ``E[sigma'(u) sigma'(v)]``, or None (a Dirac delta derivative).
        det: The next determinant, or None when it is formed as ``N11 N22 - S12'^2``.
        diag: ``E[sigma(u)^2]`` as a function of the variance ``S``.
        diag_prime: Its derivative in ``S``.
        diag_ntk: ``E[sigma'(u)^2]`` as a function of ``S``, or None.
    """

    kind: str
    nngp: MapPartials
    ntk: MapPartials | None
    det: MapPartials | None
    diag: NumericMap
    diag_prime: NumericMap
    diag_ntk: NumericMap | None


def _lambdify(expr: sp.Expr, args: tuple[sp.Symbol, ...]) -> NumericMap:
    return sp.lambdify(args, expr, modules="numpy", cse=True)


def _map_partials(expr: sp.Expr) -> MapPartials:
    partials = {}
    for sym, name in zip(ARGS, NAMES, strict=True):
        if sym in expr.free_symbols:
            partials[name] = _lambdify(sp.diff(expr, sym), ARGS)
    return MapPartials(_lambdify(expr, ARGS), partials)


def _on_diagonal(expr: sp.Expr) -> sp.Expr:
    """A pair map on a coincident pair: ``S11 = S22 = S12 = S``, ``D = U = 0``, ``rho = 1``."""
    return expr.subs({S11: S, S22: S, S12: S, D: 0, U: 0, RHO: 1})


@cache
def layer_partials(act: Activation) -> Partials:
    """The layer maps of ``act`` and their partial derivatives (derived once, cached).

    Args:
        act: The activation.

    Returns:
        The :class:`Partials`.

    Raises:
        NoClosedFormError: ``act`` has no closed-form layer map (its kernels integrate
            each pair by quadrature); its gradients come from :mod:`ntksym.kernels.gradients`'
            differentiated quadrature instead.
    """
    spec = kernel_spec(act)
    if spec.kind == "quadrature" or spec.nngp is None or spec.diag is None:
        raise NoClosedFormError(
            f"{act.name!r} has no closed-form layer map; its kernel integrates each pair "
            "by quadrature"
        )
    diag_ntk = None
    if spec.ntk is not None:
        diag_ntk = _lambdify(sp.simplify(_on_diagonal(spec.ntk)), (S,))
    return Partials(
        kind=spec.kind,
        nngp=_map_partials(spec.nngp),
        ntk=None if spec.ntk is None else _map_partials(spec.ntk),
        det=None if spec.det is None else _map_partials(spec.det),
        diag=_lambdify(spec.diag, (S,)),
        diag_prime=_lambdify(sp.diff(spec.diag, S), (S,)),
        diag_ntk=diag_ntk,
    )


def partial_values(mp: MapPartials, args: tuple) -> dict[str, np.ndarray]:
    """The partial derivatives of a map at ``args`` (variable name -> value)."""
    with np.errstate(all="ignore"):
        return {name: np.asarray(fn(*args), dtype=np.float64) for name, fn in mp.partials.items()}


def combine(values: dict[str, np.ndarray], tangents: dict[str, Any]) -> np.ndarray:
    """The derivative along ``tangents`` (variable name -> its derivative) from partials.

    Variables missing from ``tangents`` are held fixed. A product of a partial and a tangent
    that is exactly zero counts as zero, even where the partial is infinite (``1/sqrt(D)`` at
    ``D = 0`` meets ``dD = 0``: the determinant of a coincident pair stays zero).
    """
    total: Any = 0.0
    with np.errstate(all="ignore"):
        for name, value in values.items():
            t = tangents.get(name)
            if t is None or (np.ndim(t) == 0 and t == 0):
                continue
            total = total + np.where(t == 0, 0.0, value * t)
    return np.asarray(total, dtype=np.float64)
