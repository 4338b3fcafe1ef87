"""Branch-free ``atan2`` and selection helpers of the generated Numba kernels.

The closed-form layer map of a Numba kernel runs in a loop over the columns of one
row, and LLVM vectorises that loop only if it has no branches and no calls: a
``Piecewise`` is printed as ``_sel`` (both sides evaluated), and ``atan2`` as
:func:`_atan2` here instead of libm's. Every function is inlined into its caller
(``inline="always"``). Included by ``kernel_numba.py.jinja`` for closed-form maps.
"""

# The regions' functions carry no annotations (they are copied as they are), so mypy
# checks their bodies with the types it infers.
# mypy: check-untyped-defs

# The regions are copied into the generated modules byte for byte, so their docstrings and
# names stay as they are there: ruff checks everything else.
# ruff: noqa: D205, D209, D403

import math

import numba

# region branch_free
# The layer map runs in a loop over the columns of one row that LLVM vectorises, so it
# has no branches: a Piecewise evaluates both sides and selects (_sel), and atan2 is
# the branch-free _atan2 below, atan the cheaper _atan (libm's are calls that block
# vectorisation).


@numba.njit(cache=True, error_model="numpy", inline="always")
def _sel(c, a, b):
    return a if c else b


@numba.njit(cache=True, error_model="numpy", inline="always")
def _max(a, b):
    return a if a >= b else b


@numba.njit(cache=True, error_model="numpy", inline="always")
def _min(a, b):
    return a if a <= b else b


# pi/4 = _PIO4_HI + _PIO4_LO; k * _PIO4_HI is exact for k = 0..4.
_PIO4_HI = 0.7853981633974483
_PIO4_LO = 3.061616997868383e-17


@numba.njit(cache=True, error_model="numpy", inline="always")
def _atan_poly(u):
    """atan u for |u| <= tan(pi/8) (+0.01%): u + u z P(z), z = u^2, with P of degree 10
    from mpmath.chebyfit (approximation error below 0.07 ulp), evaluated by Estrin's
    scheme: independent multiply-adds on z, z^2, z^4, z^8 (a dependency chain of 6
    operations instead of Horner's 11, which the vectorised loop waits for)."""
    z = u * u
    z2 = z * z
    z4 = z2 * z2
    a0 = -0.3333333333333333 + 0.19999999999995513 * z
    a1 = -0.1428571428466482 + 0.11111111015117626 * z
    a2 = -0.09090904572487347 + 0.07692183059894114 * z
    a3 = -0.06664509603255386 + 0.05858132894427922 * z
    a4 = -0.05085365922344248 + 0.03922923713835943 * z
    b0 = a0 + a1 * z2
    b1 = a2 + a3 * z2
    b2 = a4 - 0.01917392228554793 * z2
    q = (b0 + b1 * z4) + b2 * (z4 * z4)
    return u + (u * z) * q


@numba.njit(cache=True, error_model="numpy", inline="always")
def _atan2(y, x):
    """atan2(y, x) without branches (IEEE signs of zeros; within a few ulp of libm).

    With t = min(|x|,|y|)/max(|x|,|y|) in [0, 1]: atan t from the polynomial, after
    atan t = pi/4 + atan((t - 1)/(t + 1)) for t > tan(pi/8); then the octant:
    atan2 = k pi/4 +- atan(...), k in 0..4, and the sign of y.
    """
    ax = abs(x)
    ay = abs(y)
    swap = ay > ax
    mx = _sel(swap, ay, ax)
    mn = _sel(swap, ax, ay)
    # one division: u = mn/mx, or (mn - mx)/(mn + mx) = (t - 1)/(t + 1) above tan(pi/8),
    # with both scaled by 1/4 near the overflow threshold (exact: mn/mx underflows to 0
    # whenever the scaling could round a subnormal mn)
    sc = _sel(mx > 8.98846567431158e307, 0.25, 1.0)
    mx = mx * sc
    mn = mn * sc
    eq = mn == mx  # (0, 0), (inf, inf) and y = +-x
    big = (mn > 0.41421356237309503 * mx) | (eq & (mx > 0.0))
    u = _sel(big, mn - mx, mn) / _sel(big, mn + mx, mx)  # (0/0 at (0, 0): replaced below)
    u = _sel(eq, 0.0, u)
    p = _atan_poly(u)
    k = _sel(big, 1.0, 0.0)
    k = _sel(swap, 2.0 - k, k)
    s = _sel(swap, -1.0, 1.0)
    xneg = math.copysign(1.0, x) < 0.0
    k = _sel(xneg, 4.0 - k, k)
    s = _sel(xneg, -s, s)
    return math.copysign(k * _PIO4_HI + (s * p + k * _PIO4_LO), y)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _atan(z):
    """atan z without branches: _atan2(z, 1.0) bit for bit, with the octant logic of a
    fixed x = 1 written out (three sectors of |z|: below tan(pi/8), up to tan(3pi/8), and
    above, where atan |z| = pi/2 + atan(-1/|z|); no scaling, since |z| + 1 stays finite)."""
    a = abs(z)
    big = (a > 0.41421356237309503) & (a < 2.414213562373095)
    far = a >= 2.414213562373095
    u = _sel(big, a - 1.0, _sel(far, -1.0, a)) / _sel(big, a + 1.0, _sel(far, a, 1.0))
    k = _sel(big, 1.0, _sel(far, 2.0, 0.0))
    return math.copysign(k * _PIO4_HI + (_atan_poly(u) + k * _PIO4_LO), z)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _atan2q(y, x):
    """atan2(y, x) for y >= 0, x >= 0 (the first quadrant of _atan2, without its octants;
    0 at (0, 0), as _atan2)."""
    swap = y > x
    mx = _sel(swap, y, x)
    mn = _sel(swap, x, y)
    sc = _sel(mx > 8.98846567431158e307, 0.25, 1.0)
    mx = mx * sc
    mn = mn * sc
    big = mn > 0.41421356237309503 * mx
    u = _sel(big, mn - mx, mn) / _sel(big, mn + mx, mx)
    u = _sel(mx > 0.0, u, 0.0)  # (0/0 at (0, 0))
    p = _atan_poly(u)
    k = _sel(big, 1.0, 0.0)
    k = _sel(swap, 2.0 - k, k)
    s = _sel(swap, -1.0, 1.0)
    return k * _PIO4_HI + (s * p + k * _PIO4_LO)
    # endregion branch_free


#: The branch-free helpers that :class:`ntksym.codegen.printers.NumbaLoopPrinter` prints, by
#: their printed names (for code compiled outside a generated module: the gradients).
LOOP_HELPERS = {
    "_sel": _sel,
    "_max": _max,
    "_min": _min,
    "_atan2": _atan2,
    "_atan": _atan,
    "_atan2q": _atan2q,
}
