"""Parameters of the quadrature rule of the generated kernels (both backends).

The region below is included by ``_layer.py.jinja`` in every module whose layer map
has no closed form. :data:`RULE` gives the same numbers public names, for the
runtime modules that run the rule on their own
(:mod:`ntksym.codegen.runtime.numba_quadrature`,
:mod:`ntksym.codegen.runtime.numpy_quadrature`).
"""

# The regions' functions carry no annotations (they are copied as they are), so mypy
# checks their bodies with the types it infers.
# mypy: check-untyped-defs

from __future__ import annotations

from typing import NamedTuple

__all__ = ["RULE", "Rule"]

# region rule
# No closed form: every expectation is a 1-D integral E[g(m + c z)], z ~ N(0, 1), or an
# iterated one, computed by the trapezoid rule in t after the map
#     z = z0 + _R asinh((l/_R) sinh t).
# Near z0, where g(m + c z) changes (l = 1/c: the activation varies on a scale ~1), the
# nodes are l h apart; far from it at most _R h, enough for the Gaussian. The integrand
# stays analytic in a strip around the real t axis, so the rule converges geometrically
# as the step h shrinks (Trefethen & Weideman, SIAM Review 56, 2014), at any variance.
# h = _H0 / 2^k is halved (the old nodes kept) until two successive rules agree to _TOL
# relative to the integral of |g| (or to rounding: _FLOOR times the largest such integral
# of the pair); the error of the last rule is then about the square of _TOL. For tanh,
# sigmoid, softplus and silu the first halving always suffices (measured at variances
# 1e-6..1e3 and all correlations: errors ~1e-15).
_Z = 9.0  # nodes cover |z| <= 9 (the N(0, 1) density is about 1e-18 there)
_R = 3.0  # widest spacing _R h
_H0 = 0.3  # first step in t
_TOL = 1e-8
_LEVELS = 6  # at most 6 halvings (reached only where the activation is not smooth)
_TABLE = 3  # nodes of levels 0.._TABLE tabled once per pair (Numba)
_FLOOR = 8.9e-16  # 4 eps: the rounding noise of a rule, relative to the integral of |g|
_INV_SQRT_2PI = 0.3989422804014327
# endregion rule


class Rule(NamedTuple):
    """The rule's parameters (see the comments of the region above)."""

    Z: float
    R: float
    H0: float
    TOL: float
    LEVELS: int
    TABLE: int
    FLOOR: float
    INV_SQRT_2PI: float


#: The parameters, in the order of :class:`Rule`.
RULE = Rule(_Z, _R, _H0, _TOL, _LEVELS, _TABLE, _FLOOR, _INV_SQRT_2PI)
