"""The activation families with closed-form dual kernels, one module each.

:data:`FAMILIES` is the registry, in the order the families are tried: the first whose
:meth:`~ntksym.dual.family.Family.covers` accepts an activation derives its maps.
"""

from __future__ import annotations

from ntksym.activations import Activation
from ntksym.dual.families import erf, gelu, jump, mgf, piecewise_linear, polynomial
from ntksym.dual.family import Family

__all__ = ["FAMILIES", "closed_form_names", "family_of"]

FAMILIES: tuple[Family, ...] = (
    piecewise_linear.FAMILY,
    jump.FAMILY,
    erf.FAMILY,
    gelu.FAMILY,
    mgf.FAMILY,
    polynomial.FAMILY,
    mgf.EXPRESSIONS,
)


def family_of(act: Activation) -> Family | None:
    """The first family that covers ``act``, or None."""
    for family in FAMILIES:
        if family.covers(act):
            return family
    return None


def closed_form_names() -> list[str]:
    """Registered activation names whose members all have closed-form dual maps."""
    return sorted({name for family in FAMILIES for name in family.members})
