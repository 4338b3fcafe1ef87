"""The layer maps whose partial derivatives the gradients use, and the diagonal map.

The generated kernels run one layer map per activation (:func:`ntksym.codegen.spec.kernel_spec`):
``nngp = E[sigma(u) sigma(v)]``, ``ntk = E[sigma'(u) sigma'(v)]``, the next determinant
``det`` and the diagonal ``E[sigma(u)^2]``, as SymPy expressions in the covariance entries
``S11, S22, S12``, the determinant ``D`` carried as a variable of its own, the root gap ``U``
(stable forms), the clipped correlation ``RHO`` (SymPy closed forms), the next diagonal
``N11, N22`` and the scales ``W2, B2`` (:data:`ARGS`). Each is differentiated by SymPy with
respect to each of those variables and compiled (:mod:`ntksym.kernels.gradients_compiled`);
here are the diagonal map ``E[sigma(u)^2]`` and its derivative in the variance, lambdified.

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

import sympy as sp

from ntksym.activations import Activation
from ntksym.codegen.spec import RHO, S, kernel_spec
from ntksym.dual.family import ERF, numpy_function
from ntksym.dual.stable import B2, N11, N22, S11, S12, S22, W2, D, U
from ntksym.errors import NoClosedFormError

__all__ = ["ARGS", "Partials", "layer_partials"]

#: The variables every lambdified function takes, in this order.
ARGS: tuple[sp.Symbol, ...] = (S11, S22, S12, D, N11, N22, W2, B2, U, RHO)

NumericMap = Callable[..., Any]


@dataclass(frozen=True)
class Partials:
    """What the gradients need to know of an activation's layer map, and its diagonal map.

    Attributes:
        kind: ``"stable"`` or ``"closed"`` (see :mod:`ntksym.codegen.spec`).
        has_ntk: Whether ``E[sigma'(u) sigma'(v)]`` is finite (not for a Dirac delta).
        has_det: Whether the map forms the next determinant (else ``N11 N22 - S12'^2``).
        diag: ``E[sigma(u)^2]`` as a function of the variance ``S``.
        diag_prime: Its derivative in ``S``.
        diag_ntk: ``E[sigma'(u)^2]`` as a function of ``S``, or None.
    """

    kind: str
    has_ntk: bool
    has_det: bool
    diag: NumericMap
    diag_prime: NumericMap
    diag_ntk: NumericMap | None


def _lambdify(expr: sp.Expr, args: tuple[sp.Symbol, ...]) -> NumericMap:
    return numpy_function(args, expr, ERF, cse=True)


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
        has_ntk=spec.ntk is not None,
        has_det=spec.det is not None,
        diag=_lambdify(spec.diag, (S,)),
        diag_prime=_lambdify(sp.diff(spec.diag, S), (S,)),
        diag_ntk=diag_ntk,
    )
