"""A mended next determinant evaluated at the entries where the direct difference cancels.

The NumPy half shared by the homogeneous NumPy modules (``_layer.py.jinja``'s
``_pair_mend``, which includes the region ``mend``) and the float64 layer maps
(:mod:`ntksym.kernels.mended_det`, which imports it). Each caller chooses the entries (its
gate, its certified floor) and gathers them; here the gap ``gamma = D / (sqrt(S11 S22) +
|S12|)`` is formed and the derived form (:mod:`ntksym.dual.families.mgf_expr_det`) is
evaluated, its branch for ``S12 > 0`` or for ``S12 <= 0`` at each entry, in blocks: the
form has about a thousand common subexpressions, each an array over its block.

On its own this module evaluates whatever forms it is given (the tests give it simple ones).
"""

# The regions' functions carry no annotations (they are copied as they are), so mypy
# checks their bodies with the types it infers.
# mypy: check-untyped-defs

# The region is copied into the generated modules byte for byte, so its docstrings stay as
# they are there: ruff checks everything else.
# ruff: noqa: D205, D209
# fmt: off

import numpy


# region mend
def _mend_gathered(s11, s22, s12, d, u, forms, W2, B2):
    """The mended determinant at gathered entries (1-D arrays: the variances, covariance,
    carried determinant D and root gap U of each): forms[0] where S12 > 0, forms[1]
    elsewhere, each called as form(sqrt(S22), U, gamma, W2, B2), 4096 entries at a time."""
    m = numpy.sqrt(s11) * numpy.sqrt(s22) + numpy.abs(s12)
    gap = numpy.where(m > 0.0, d / numpy.where(m > 0.0, m, 1.0), 0.0)
    r, pos = numpy.sqrt(s22), s12 > 0.0
    out = numpy.empty(r.shape)
    for lo in range(0, r.size, 4096):
        c = slice(lo, lo + 4096)
        with numpy.errstate(all="ignore"):  # (the branches not taken overflow)
            for part, form in ((pos[c], forms[0]), (~pos[c], forms[1])):
                if part.any():
                    value = form(r[c][part], u[c][part], gap[c][part], W2, B2)
                    out[c][part] = numpy.broadcast_to(value, part.sum())
    return out
# endregion mend


#: Public name, for the float64 layer maps.
mend_gathered = _mend_gathered
