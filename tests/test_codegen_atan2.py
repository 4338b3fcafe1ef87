"""The branch-free ``_atan2`` of the generated Numba kernels, against libm and mpmath.

The column loop of the Numba kernel vectorises only without calls to libm, so the
kernels carry their own ``atan2``. Checked here over a dense grid of angles and
magnitudes and the IEEE edge cases (zeros of both signs, subnormals, the largest
finite numbers, infinities, NaN, y = +-x); then the runtime's functions compiled as the
kernels' ``_layer`` (contracted multiply-adds), densely against mpmath at the sector
edges of the argument reduction, and for any two floats (hypothesis).
"""

from __future__ import annotations

import math
import re

import mpmath
import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ntksym.codegen import load, render
from ntksym.codegen.runtime import numba_atan2

MAX_ULP = 2.0  # measured maximum against math.atan2 over the grid below


@pytest.fixture(scope="module")
def vec_atan2():
    at = load("relu", "numba")._atan2

    @numba.njit(error_model="numpy")
    def run(y, x, out):
        for k in range(y.shape[0]):
            out[k] = at(y[k], x[k])

    def f(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        out = np.empty_like(y)
        run(np.ascontiguousarray(y), np.ascontiguousarray(x), out)
        return out

    return f


def _grid() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    ys, xs = [], []
    th = np.linspace(-np.pi, np.pi, 100_001)
    r = 10.0 ** rng.uniform(-300, 300, th.size)
    ys.append(r * np.sin(th))
    xs.append(r * np.cos(th))
    with np.errstate(over="ignore"):
        ratios = 10.0 ** np.linspace(-330, 330, 6601)  # includes 0, subnormals and inf
    for sy in (1.0, -1.0):
        for sx in (1.0, -1.0):
            ys += [sy * ratios, sy * np.ones_like(ratios)]
            xs += [sx * np.ones_like(ratios), sx * ratios]
    v = rng.normal(size=50_000) * 10.0 ** rng.uniform(-300, 300, 50_000)
    ys += [v, v, v * (1 + rng.uniform(-1e-3, 1e-3, v.size)), v * 0.41421356237309503]
    xs += [v, -v, v, v]
    special = [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1.0, -1.0]
    special += [1.7976931348623157e308, -1.7976931348623157e308, math.inf, -math.inf]
    pairs = np.array([(a, b) for a in special for b in special])
    ys.append(pairs[:, 0])
    xs.append(pairs[:, 1])
    return np.concatenate(ys), np.concatenate(xs)


def test_atan2_within_two_ulp_of_libm_with_ieee_edge_cases(vec_atan2):
    y, x = _grid()
    got = vec_atan2(y, x)
    ref = np.array([math.atan2(a, b) for a, b in zip(y.tolist(), x.tolist(), strict=True)])
    assert np.array_equal(np.signbit(got), np.signbit(ref))  # signed zeros, +-pi
    exact = got == ref
    ulp = np.abs(got - ref) / np.spacing(np.abs(ref))
    assert np.max(ulp[~exact]) <= MAX_ULP
    # the edge cases are exact: zeros, +-pi/2, +-pi, +-pi/4 at infinities
    assert exact[-121:].all()


def test_atan2_nan_propagates(vec_atan2):
    y = np.array([math.nan, 1.0, math.nan, 0.0])
    x = np.array([1.0, math.nan, math.nan, math.nan])
    assert np.isnan(vec_atan2(y, x)).all()


def test_atan2_against_mpmath(vec_atan2):
    rng = np.random.default_rng(1)
    y = rng.normal(size=2000) * 10.0 ** rng.uniform(-20, 20, 2000)
    x = rng.normal(size=2000) * 10.0 ** rng.uniform(-20, 20, 2000)
    got = vec_atan2(y, x)
    with mpmath.workdps(40):
        ref = [mpmath.atan2(mpmath.mpf(a), mpmath.mpf(b)) for a, b in zip(y, x, strict=True)]
        err = [abs((mpmath.mpf(g) - r) / r) for g, r in zip(got, ref, strict=True)]
    assert float(max(err)) < 3 * 2.0**-53


def test_generated_numba_layer_map_is_branch_free():
    # the layer map of the closed forms has no conditional expressions and no libm atan2
    src = render("relu", "numba")
    pair = src[src.index("def _pair_any(") : src.index("def _diag(")]
    assert "_atan2(" in pair and "math.atan2" not in pair
    assert not re.search(r"\bif\b", pair)


def test_layer_loop_vectorises():
    # packed AVX (ymm/zmm) or SSE (pd) double instructions in the column loop
    m = load("erf", "numba")
    layer = numba.njit(error_model="numpy", fastmath={"contract"})(m._layer.py_func)
    v = np.ones(8)
    s, d, t, u = np.full(8, 0.5), np.full(8, 0.5), np.full(8, 0.5), np.zeros(8)
    layer(1.0, 1.0, 1.0, 1.0, v, v, v, v, 1.0, 0.01, s, d, t, u, True, False)
    asm = layer.inspect_asm(layer.signatures[0])
    assert re.search(r"\b(vsqrtpd|sqrtpd|vdivpd|divpd)\b", asm)


def test_first_quadrant_atan2q_matches_atan2():
    """_atan2q (y >= 0, x >= 0, used by _pair_pos and _pair_neg) gives the same values as
    _atan2 there, the axis x = +0 and (0, 0) included (at (0, -0) _atan2 gives pi, the
    other side, and _atan2q 0: a zero variance, where the value multiplies a zero NTK)."""
    at, atq = (getattr(load("relu", "numba"), f) for f in ("_atan2", "_atan2q"))

    @numba.njit(error_model="numpy")
    def run(y, x, out, outq):
        for k in range(y.shape[0]):
            out[k] = at(y[k], x[k])
            outq[k] = atq(y[k], x[k])

    y, x = _grid()
    keep = (y >= 0) & (x > 0) & np.isfinite(y) & np.isfinite(x)
    y, x = np.ascontiguousarray(y[keep]), np.ascontiguousarray(x[keep])
    y = np.concatenate([y, [0.0, 1e-300, 1.0, 1e300, np.inf, 0.0]])
    x = np.concatenate([x, [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]])
    out, outq = np.empty_like(y), np.empty_like(y)
    run(y, x, out, outq)
    assert y.size > 50_000
    np.testing.assert_array_equal(outq, out)


@numba.njit(error_model="numpy", fastmath={"contract"})
def _run_contracted(y, x, out):
    # compiled as the kernels' _layer (contracted multiply-adds): out[0] atan2(y, x),
    # out[1] atan2(-y, x), out[2] atan(y), out[3] atan2(y, 1), out[4] atan2q(y, x)
    for k in range(y.shape[0]):
        out[0, k] = numba_atan2._atan2(y[k], x[k])
        out[1, k] = numba_atan2._atan2(-y[k], x[k])
        out[2, k] = numba_atan2._atan(y[k])
        out[3, k] = numba_atan2._atan2(y[k], 1.0)
        out[4, k] = numba_atan2._atan2q(y[k], x[k])


def _contracted(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    out = np.empty((5, len(y)))
    _run_contracted(np.asarray(y, dtype=float), np.asarray(x, dtype=float), out)
    return out


def _ulp_to_rounded(got, y, x):
    """Distance in ulps from the correctly rounded atan2 (mpmath at 40 digits)."""
    with mpmath.workdps(40):
        pairs = zip(np.asarray(y).tolist(), np.asarray(x).tolist(), strict=True)
        ref = np.array([float(mpmath.atan2(mpmath.mpf(a), mpmath.mpf(b))) for a, b in pairs])
    exact = got == ref
    return np.where(exact, 0.0, np.abs(got - ref) / np.spacing(np.abs(ref)))


def test_atan2_dense_against_mpmath_near_every_octant_boundary():
    """Angles crowded at the sector edges k pi/8 (where the reduction switches), over
    magnitudes 1e-300..1e300: within 2 ulp of the correctly rounded value, odd in y
    bit for bit, and atan(z) = atan2(z, 1) bit for bit."""
    rng = np.random.default_rng(7)
    n = 6000
    edge = np.pi / 8 * rng.integers(-8, 9, n) + rng.normal(0.0, 1e-4, n) * rng.random(n)
    th = np.concatenate([edge, rng.uniform(-np.pi, np.pi, n // 4)])
    r = 10.0 ** rng.uniform(-300, 300, th.size)
    y, x = r * np.sin(th), r * np.cos(th)
    out = _contracted(y, x)
    assert _ulp_to_rounded(out[0], y, x).max() <= 2.0
    np.testing.assert_array_equal(out[1], -out[0])
    z = y / x
    out = _contracted(z, x)
    np.testing.assert_array_equal(out[2], out[3])
    assert _ulp_to_rounded(out[2], z, np.ones_like(z)).max() <= 2.0


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.floats(allow_nan=False), st.floats(allow_nan=False))
def test_atan2_property_any_pair_of_floats(y, x):
    """Any two floats (zeros of both signs, subnormals, the largest, infinities):
    within 2 ulp of mpmath where finite, libm's value at the IEEE edge cases, odd in y,
    and _atan, _atan2q agreeing with _atan2 where they apply."""
    a, an, at, one, q = _contracted([y], [x])[:, 0]
    ref = math.atan2(y, x)
    assert math.copysign(1.0, a) == math.copysign(1.0, ref)
    if math.isfinite(x) and math.isfinite(y) and y != 0.0:
        assert _ulp_to_rounded(np.array([a]), [y], [x])[0] <= 2.0
    else:  # zeros and infinities: exact
        assert a == ref
    assert an == -a and at == one
    if y >= 0.0 and x > 0.0 and math.isfinite(x) and math.isfinite(y):
        assert q == a


def test_generated_layer_maps_print_atan_as_the_cheaper_atan():
    src = render("erf", "numba")
    pair = src[src.index("def _pair_any(") : src.index("def _diag(")]
    assert "_atan(" in pair and "_atan2(" not in pair
