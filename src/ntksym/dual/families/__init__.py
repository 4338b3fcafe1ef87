"""The activation families with closed-form dual kernels, one module each.

:data:`FAMILIES` is the registry, in the order the families are tried: the first whose
:meth:`~ntksym.dual.family.Family.covers` accepts an activation derives its maps. The first
is :data:`AFFINE`, the registered ``affine`` activations ``a*f(b*u) + c``, whose maps come
from those of ``f`` in one of the others.
"""

from __future__ import annotations

from ntksym.activations import Activation
from ntksym.activations.registry import affine_parts
from ntksym.dual.families import (
    affine,
    erf,
    gelu,
    jump,
    mgf,
    piecewise_linear,
    polynomial,
    rectified,
    sums,
)
from ntksym.dual.family import Family

__all__ = ["AFFINE", "FAMILIES", "base_family_name", "closed_form_names", "family_of"]

_BASES: tuple[Family, ...] = (
    piecewise_linear.FAMILY,
    jump.FAMILY,
    rectified.FAMILY,
    erf.FAMILY,
    gelu.FAMILY,
    mgf.FAMILY,
    polynomial.FAMILY,
    # sums of the others' members (before the MGF expressions, which take no kinks or erf)
    sums.sums_family(lambda act: family_of(act)),
    mgf.EXPRESSIONS,
)


def _first(families: tuple[Family, ...], act: Activation) -> Family | None:
    for family in families:
        if family.covers(act):
            return family
    return None


#: ``a*f(b*u) + c`` for ``f`` in one of the other families.
AFFINE = affine.affine_family(lambda act: _first(_BASES, act))

FAMILIES: tuple[Family, ...] = (AFFINE, *_BASES)


def family_of(act: Activation) -> Family | None:
    """The first family that covers ``act``, or None."""
    return _first(FAMILIES, act)


def base_family_name(act: Activation) -> str | None:
    """The name of ``act``'s family, that of ``f`` for a scaled member ``a f(b u) + c``.

    None when no family covers it. The lists of families whose determinant is carried or
    read (``ntksym.dual.stable``) name these base families.
    """
    family = family_of(act)
    inner = affine_parts(act)[0] if family is not None and family.name == "affine" else act
    inner_family = family_of(inner)
    return None if inner_family is None else inner_family.name


def closed_form_names() -> list[str]:
    """Registered activation names whose members all have closed-form dual maps.

    ``affine`` is not listed: its members have closed forms when their base ``f`` has one.
    """
    return sorted({name for family in _BASES for name in family.members})
