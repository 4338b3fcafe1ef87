"""The low part of an input's variance after an activation, from its map in long double.

Included by the fused architecture template (``fused_numba.py.jinja``, region ``low``)
and imported by the float64 layer maps (:mod:`ntksym.kernels.layer_maps`), so that both
paths form the low part the same way. The map ``f`` is the activation's diagonal
``S -> E[sigma(u)^2]`` written in NumPy with long double constants
(:mod:`ntksym.codegen.long_diag`).

Why: the roots' gap ``sqrt(S11) - sqrt(S22)`` that a biased layer's determinant reads
needs each variance to more than float64's 16 digits when two inputs are nearly parallel
(:mod:`ntksym.kernels.variance_dd`). Where ``E[sigma(u)^2]`` is affine in ``S`` the
rounding error of each operation is known exactly; elsewhere (erf, GELU, sin, ...) the
float64 value ``hi`` of the map is compared here with the map evaluated in long double
(64 bits of mantissa on x86: 11 more than float64) at the input's double-double variance,
and the difference is the low part. Where long double is no wider than float64, or the
two disagree by more than :data:`LOW_BOUND` of ``hi`` (then neither is trusted to that
level), the low part is 0: the old behaviour.
"""

# The region is copied into the generated modules byte for byte, so its docstrings stay as
# they are there: ruff checks everything else.
# ruff: noqa: D205, D209
# fmt: off

import numpy

# region low
#: Whether NumPy's long double has more bits than float64 (not on Windows or macOS/arm64).
LONG_DOUBLE = numpy.finfo(numpy.longdouble).nmant > numpy.finfo(numpy.float64).nmant
#: The largest |low part| / |hi| taken as a rounding correction (float64's rounding of a
#: closed form is a few ulps; beyond this the two evaluations disagree for another reason).
LOW_BOUND = 1e-13


def _long_low(f, hi, lo, out):
    """The low part of out = f(hi + lo) rounded: f(hi + lo) - out, f in long double.

    hi, lo: the input variances and their low parts; out: the float64 map of hi (the
    variances the kernels carry). 0 where f is not finite or disagrees with out beyond
    LOW_BOUND."""
    if not LONG_DOUBLE:
        return numpy.zeros_like(out)
    with numpy.errstate(all="ignore"):
        s = hi.astype(numpy.longdouble) + lo
        d = (numpy.broadcast_to(f(s), s.shape) - out).astype(numpy.float64)
        keep = numpy.isfinite(d) & (numpy.abs(d) <= LOW_BOUND * numpy.abs(out))
    return numpy.where(keep, d, 0.0)
# endregion low


#: Public name, for the float64 layer maps.
long_low = _long_low
