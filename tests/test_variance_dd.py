"""Each input's variance in double-double (``ntksym.kernels.variance_dd``, the fused ``_rgap``).

The low parts are checked against exact rational arithmetic (``fractions.Fraction``) and
mpmath at 60 digits; then a network whose determinant reads the roots' gap after biased
Dense layers and a sum of branches, through Signs, against the referee at 50 digits, with
the low parts dropped as the planted error (5.6e-13 on the layer maps without them).
"""

from fractions import Fraction

import mpmath as mp
import numpy as np
import pytest
import test_random_networks as grammar
from hypothesis import given, settings
from hypothesis import strategies as st

from ntksym import stax
from ntksym.codegen.runtime import numpy_long
from ntksym.kernels import layer_maps, variance_dd

DPS = 60
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.lists(finite, min_size=5, max_size=5), min_size=1, max_size=4))
def test_squared_norms_low_part_is_the_rounding_of_the_norm(rows):
    """``hi + lo`` is ``|x|^2`` to within ``4 eps^2 |x|^2`` (Dot2), against exact rationals
    (and 1e-300 where squares underflow)."""
    X = np.array(rows)
    hi = np.einsum("ij,ij->i", X, X)
    lo = variance_dd.squared_norms_lo(X, hi)
    for x, h, low in zip(X, hi, lo, strict=True):
        exact = sum(Fraction(v) ** 2 for v in x)
        err = abs(Fraction(h) + Fraction(low) - exact)
        assert err <= 4 * Fraction(2) ** -104 * exact + Fraction(1e-300)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    st.floats(min_value=1e-8, max_value=1e8),
    st.floats(min_value=-1e-16, max_value=1e-16),
    st.sampled_from([0.5, 0.52, 2.045, 1.7, 1.0 / 3.0]),
    st.sampled_from([0.0, 0.01, 0.49, 3.0]),
)
def test_affine_low_part_is_exact_to_second_order(hi, rel, a, d):
    """``a (hi + lo) + d`` as ``out + lo'``, exact to ``eps^2`` of it (rationals)."""
    lo = hi * rel
    out = a * hi + d
    got = variance_dd.affine_lo(np.array([hi]), np.array([lo]), a, d, np.array([out]))[0]
    exact = Fraction(a) * (Fraction(hi) + Fraction(lo)) + Fraction(d)
    assert abs(Fraction(out) + Fraction(got) - exact) <= 2 * Fraction(2) ** -104 * exact


@pytest.mark.skipif(not numpy_long.LONG_DOUBLE, reason="long double is float64 here")
@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e6])
def test_the_modules_variance_chain_is_double_double(scale):
    """The homogeneous modules' chain (``runtime/numpy_long.py``, region ``chain``, with
    the identity's diagonal map): ``H + L`` within 1e-18 of the exact rational variances
    at every layer, where ``H`` alone is off by its rounding (above 1e-18 somewhere)."""
    X = scale * np.random.default_rng(3).standard_normal((6, 7))
    sq = np.einsum("ij,ij->i", X, X)
    c, b2, w2, depth = 1.7 / 7, 0.09, 1.44, 6
    H, L = numpy_long._chain_dd(X, sq, c, b2, w2, depth)
    exact = [Fraction(c) * sum(Fraction(v) ** 2 for v in x) + Fraction(b2) for x in X]
    worst_h = worst = 0.0
    for layer in range(depth - 1):
        for i, e in enumerate(exact):
            worst = max(worst, float(abs(Fraction(H[layer, i]) + Fraction(L[layer, i]) - e) / e))
            worst_h = max(worst_h, float(abs(Fraction(H[layer, i]) - e) / e))
        exact = [Fraction(w2) * e + Fraction(b2) for e in exact]
    assert worst <= 1e-18 < worst_h


def test_low_parts_are_zero_where_the_split_overflows():
    """Beyond ~1e300 Dekker's split overflows: the low part is 0 (the float64 variance)."""
    big = np.array([1e305])
    assert variance_dd.affine_lo(big, np.zeros(1), 1.5, 0.0, 1.5 * big)[0] == 0.0
    X = np.array([[1e160, 1.0]])
    assert variance_dd.squared_norms_lo(X, np.einsum("ij,ij->i", X, X))[0] == 0.0


def _pairs():
    """Variances 1e-9 and 1e-13 apart (rounded each), and far apart."""
    v = np.array([0.3, 2.7, 1e-4, 1e4])
    lo = np.array([1.1e-17, -3.3e-17, 4e-21, 2e-13])
    w = v * (1 + np.array([1e-9, 1e-13, -1e-9, 0.5]))
    return v, lo, w, np.zeros(4)


def test_root_gap_matches_mpmath():
    """``sqrt(v + lo) - sqrt(w)`` within 1e-14 of 60 digits, also where it is 1e-13 of them."""
    v, lo, w, wl = _pairs()
    got = variance_dd.root_gap(v, lo, w, wl)
    with mp.workdps(DPS):
        for i in range(4):
            ref = mp.sqrt(mp.mpf(v[i]) + mp.mpf(lo[i])) - mp.sqrt(mp.mpf(w[i]))
            assert abs((got[i, i] - ref) / ref) < 1e-14


def test_cross_gap_matches_mpmath():
    """``sqrt(a11 b22) - sqrt(a22 b11)`` of double-double variances within 1e-13 of 60 digits."""
    v, lo, w, wl = _pairs()
    b11, b22 = 1.7 * w, 1.7 * v * (1 + 3e-10)
    got = variance_dd.cross_gap((v, lo, w, wl), (b11, wl, b22, wl))
    with mp.workdps(DPS):
        for i in range(4):
            a11, a22 = mp.mpf(v[i]) + mp.mpf(lo[i]), mp.mpf(w[i])
            ref = mp.sqrt(a11 * mp.mpf(b22[i])) - mp.sqrt(a22 * mp.mpf(b11[i]))
            assert abs((got[i, i] - ref) / ref) < 1e-13


def _network():
    """Biased Dense layers after biased Dense layers, in two branches summed, then Signs."""
    d = stax.Dense
    return stax.serial(
        d(8, b_std=0.1), stax.FanOut(2),
        stax.parallel(
            stax.serial(d(8, b_std=0.1), stax.Relu(), d(8, b_std=0.2)),
            stax.serial(d(8, W_std=2.0, b_std=0.7), stax.Abs(), d(8, W_std=0.5, b_std=0.9)),
        ),
        stax.FanInSum(), d(8), stax.Sign(), d(8), stax.Sign(), d(8), stax.Relu(), d(1),
    )  # fmt: skip


@pytest.fixture(scope="module")
def referee():
    net = _network()
    X = grammar._hostile()[[0, 1, 2, 3, 5, 6]]
    ((nngp, ntk),) = stax.reference_kernels(net, X, dps=50)
    return net, X, nngp, ntk


def _worst(got, ref):
    return float(np.max(np.abs(got - ref) / np.abs(ref)))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["layers", "fused"])
def test_both_paths_keep_the_roots_gap_after_biased_layers(referee, backend):
    """Within 1e-14 of the referee (session 21, before the low parts: 5.6e-13 on the layer
    maps, 7.3e-14 fused)."""
    net, X, nngp, ntk = referee
    got = net.kernel_fn(X, backend=backend)
    assert max(_worst(got.nngp, nngp), _worst(got.ntk, ntk)) <= 1e-14


@pytest.mark.slow
def test_layer_maps_without_the_low_parts_lose_the_digits(referee, monkeypatch):
    """Planted: the low parts dropped, the layer maps are more than 1e-13 off (5.6e-13)."""
    net, X, nngp, ntk = referee

    def dropped(b):
        return np.zeros_like(b.s11), np.zeros_like(b.s22)

    monkeypatch.setattr(layer_maps.Block, "lows", dropped)
    planted = net.kernel_fn(X, backend="layers")
    assert _worst(planted.ntk, ntk) > 1e-13
