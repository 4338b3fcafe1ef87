"""Tests of ntksym.reference against values derived independently in this file.

References typed here: the arc-cosine kernels of Cho & Saul (2009), Williams'
(1997) erf kernel, the Gaussian moment-generating function, Isserlis' theorem,
the sin/cos expectations, the Gaussian density at the origin and Price's theorem
(d/ds12 E[f(u) f(v)] = E[f'(u) f'(v)]) checked by numerical differentiation.
"""

from __future__ import annotations

import importlib.util

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mpmath import mp

from ntksym.activations import get_activation
from ntksym.errors import ActivationError, InputError
from ntksym.reference import (
    Recursion,
    dual,
    dual_closed_form,
    dual_quadrature,
    kernel,
    recursion,
)

HI = 120  # digits for the typed references and for the arithmetic inside the tests


@pytest.fixture(autouse=True)
def _high_precision_arithmetic():
    with mp.workdps(HI):
        yield


def _m(x):
    return mpmath.mpf(x) if not isinstance(x, str) else mpmath.mpf(x)


def _theta(s11, s12, s22):
    s11, s12, s22 = _m(s11), _m(s12), _m(s22)
    return mpmath.atan2(mpmath.sqrt(s11 * s22 - s12 * s12), s12)


def cho_saul_k1(s11, s12, s22):
    """E[relu(u) relu(v)] (Cho & Saul 2009, arc-cosine kernel of degree 1)."""
    with mp.workdps(HI):
        t = _theta(s11, s12, s22)
        return (
            mpmath.sqrt(_m(s11) * _m(s22))
            / (2 * mpmath.pi)
            * (mpmath.sin(t) + (mpmath.pi - t) * mpmath.cos(t))
        )


def cho_saul_k0(s11, s12, s22):
    """E[step(u) step(v)] (Cho & Saul 2009, degree 0)."""
    with mp.workdps(HI):
        return (mpmath.pi - _theta(s11, s12, s22)) / (2 * mpmath.pi)


def williams_erf(s11, s12, s22):
    with mp.workdps(HI):
        s11, s12, s22 = _m(s11), _m(s12), _m(s22)
        return 2 / mpmath.pi * mpmath.asin(2 * s12 / mpmath.sqrt((1 + 2 * s11) * (1 + 2 * s22)))


def williams_erf_dot(s11, s12, s22):
    with mp.workdps(HI):
        s11, s12, s22 = _m(s11), _m(s12), _m(s22)
        return 4 / mpmath.pi / mpmath.sqrt((1 + 2 * s11) * (1 + 2 * s22) - 4 * s12**2)


def close(value, ref, dps, scale=None):
    scale = max(abs(ref), 1e-300) if scale is None else scale
    with mp.workdps(HI):
        return abs(_m(value) - ref) <= mpmath.mpf(10) ** (-(dps - 5)) * scale


# ---------------------------------------------------------------- homogeneous activations
POINTS = [
    (1, 0.5, 2),
    (1, 0, 1),
    (2.5, -1.2, 0.7),
    (1, 1 - 1e-12, 1),
    (1, -(1 - 1e-12), 1),
    (3.0, 3.0, 3.0),
    (2.0, -2.0, 2.0),
    (1e-8, 3e-9, 2e-8),
    (1e8, -4e7, 3e8),
    (1e-8, 1e-9, 1e8),
]


@pytest.mark.parametrize("dps", [20, 30, 50])
@pytest.mark.parametrize("point", POINTS)
def test_relu_matches_arc_cosine_kernels(point, dps):
    value, err = dual_quadrature("relu", *point, dps=dps, error=True)
    ref = cho_saul_k1(*point)
    # at rho = -1 both kernels vanish: compare on the scale of the variances there
    floor = mpmath.sqrt(_m(point[0]) * _m(point[2])) * mpmath.mpf(10) ** -dps
    assert close(value, ref, dps, scale=abs(ref) + floor)
    assert err <= mpmath.mpf(10) ** (-(dps - 5)) * (abs(ref) + floor)
    assert abs(value - ref) <= err + mpmath.mpf(10) ** -100  # the estimate is honest
    dot = dual_quadrature("relu", *point, dps=dps, derivative=True)
    k0 = cho_saul_k0(*point)
    assert close(dot, k0, dps, scale=abs(k0) + mpmath.mpf(10) ** -dps)


@pytest.mark.parametrize("point", POINTS[:6])
def test_step_sign_abs_leaky_from_arc_cosine(point):
    s11, s12, s22 = point
    k1 = cho_saul_k1(s11, s12, s22)
    k1_neg = cho_saul_k1(s11, -s12, s22)  # E[relu(u) relu(-v)]
    k0 = cho_saul_k0(s11, s12, s22)
    assert close(dual_quadrature("step", *point), k0, 30)
    with mp.workdps(HI):
        sign_ref = 2 / mpmath.pi * mpmath.asin(_m(s12) / mpmath.sqrt(_m(s11) * _m(s22)))
    assert close(dual_quadrature("sign", *point), sign_ref, 30, scale=1)
    # |u| = relu(u) + relu(-u)
    assert close(dual_quadrature("abs", *point), 2 * k1 + 2 * k1_neg, 30)
    # leaky(u) = relu(u) - a relu(-u)
    a = mpmath.mpf(1) / 5
    leaky = get_activation("leaky_relu", slope=0.2)
    ref = (1 + a * a) * k1 - 2 * a * k1_neg
    assert close(dual_quadrature(leaky, *point), ref, 30)


def test_step_derivative_is_density_at_origin_and_refused_when_singular():
    s11, s12, s22 = 1.5, 0.4, 0.9
    with mp.workdps(HI):
        p00 = 1 / (2 * mpmath.pi * mpmath.sqrt(_m(s11) * _m(s22) - _m(s12) ** 2))
    assert close(dual_quadrature("step", s11, s12, s22, derivative=True), p00, 30)
    assert close(dual_quadrature("sign", s11, s12, s22, derivative=True), 4 * p00, 30)
    with pytest.raises(InputError, match="infinite"):
        dual_quadrature("step", 1, 1, 1, derivative=True)
    with pytest.raises(ActivationError, match="Dirac delta"):
        dual_quadrature("step(u) + u", 1, 0.2, 1, derivative=True)


@pytest.mark.parametrize("point", [(1, 0.5, 2), (2.0, -1.9, 3.0), (0.3, 0.3, 0.3)])
def test_monomials_match_isserlis(point):
    s11, s12, s22 = (_m(x) for x in point)
    cube = get_activation("monomial", k=3)
    square = get_activation("monomial", k=2)
    with mp.workdps(HI):
        e33 = 9 * s11 * s22 * s12 + 6 * s12**3
        e22 = s11 * s22 + 2 * s12**2
    assert close(dual_quadrature("identity", *point), s12, 30, scale=1)
    assert close(dual_quadrature("identity", *point, derivative=True), 1, 30)
    assert close(dual_quadrature(square, *point), e22, 30)
    assert close(dual_quadrature(cube, *point), e33, 30, scale=abs(e33) + 1)
    assert close(dual_quadrature(cube, *point, derivative=True), 9 * e22, 30)


@settings(max_examples=60, derandomize=True, deadline=None)
@given(
    st.floats(1e-6, 1e6),
    st.floats(1e-6, 1e6),
    st.floats(-1.0, 1.0),
)
def test_relu_random_covariances(s11, s22, r):
    s12 = r * float(np.sqrt(s11 * s22))
    if s12 * s12 > s11 * s22:  # float rounding
        s12 = np.nextafter(s12, 0.0)
    value = dual_quadrature("relu", s11, s12, s22)
    assert close(value, cho_saul_k1(s11, s12, s22), 30)


# ---------------------------------------------------------------- smooth activations
def test_exp_matches_moment_generating_function():
    for point in [(1, 0.5, 2), (0.5, -0.49, 0.5), (0.2, 0.2, 0.2)]:
        with mp.workdps(HI):
            ref = mpmath.exp((_m(point[0]) + 2 * _m(point[1]) + _m(point[2])) / 2)
        value, err = dual_quadrature("exp", *point, dps=20, error=True)
        assert close(value, ref, 20)
        assert abs(value - ref) <= err + mpmath.mpf(10) ** -19 * ref
        assert close(dual_quadrature("exp", *point, dps=20, derivative=True), ref, 20)


@pytest.mark.parametrize("point", [(0.5, 0.2, 0.8), (0.3, -0.3 + 1e-13, 0.3), (1e-8, 0, 2e-8)])
def test_erf_matches_williams(point):
    value, err = dual_quadrature("erf", *point, dps=20, error=True)
    ref = williams_erf(*point)
    scale = abs(ref) + mpmath.sqrt(_m(point[0]) * _m(point[2]))  # ref = 0 at s12 = 0
    assert close(value, ref, 20, scale=scale)
    assert err <= mpmath.mpf(10) ** -15 * scale
    assert abs(value - ref) <= err  # the estimate covers quadrature and rounding
    dot = dual_quadrature("erf", *point, dps=20, derivative=True)
    assert close(dot, williams_erf_dot(*point), 20)


def test_sin_cos_match_gaussian_characteristic_function():
    s11, s12, s22 = 0.7, 0.25, 1.1
    with mp.workdps(HI):
        damp = mpmath.exp(-(_m(s11) + _m(s22)) / 2)
        sin_ref, cos_ref = damp * mpmath.sinh(_m(s12)), damp * mpmath.cosh(_m(s12))
    assert close(dual_quadrature("sin", s11, s12, s22, dps=20), sin_ref, 20)
    assert close(dual_quadrature("cos", s11, s12, s22, dps=20), cos_ref, 20)
    assert close(dual_quadrature("sin", s11, s12, s22, dps=20, derivative=True), cos_ref, 20)


def _slope(f, x, h):
    """Central differences with one Richardson step: error O(h^4)."""

    def d(step):
        return (f(x + step) - f(x - step)) / (2 * step)

    return (4 * d(h / 2) - d(h)) / 3


def test_price_theorem_for_sin_at_higher_precision():
    # d/ds12 E[f(u) f(v)] = E[f'(u) f'(v)], by numerical differentiation of the quadrature
    s11, s12, s22 = mpmath.mpf("0.6"), mpmath.mpf("0.1"), mpmath.mpf("0.9")
    slope = _slope(lambda c: dual_quadrature("sin", s11, c, s22, dps=50), s12, mpmath.mpf(1e-8))
    dot = dual_quadrature("sin", s11, s12, s22, dps=50, derivative=True)
    assert abs(slope - dot) < 1e-28


def test_zero_variance_uses_sigma_at_zero():
    assert dual_quadrature("relu", 0, 0, 2) == 0
    assert dual_quadrature("step", 0, 0, 3) == mpmath.mpf(1) / 4  # Heaviside(0) = 1/2
    assert dual_quadrature("cos", 0, 0, 0) == 1
    with mp.workdps(HI):
        ref = mpmath.exp(-mpmath.mpf(2) / 2)  # cos(0) * E[cos(v)], v ~ N(0, 2)
    assert close(dual_quadrature("cos", 2, 0, 0, dps=20), ref, 20)


def test_inputs_converted_exactly_and_strings_accepted():
    a = dual_quadrature("relu", "1", "0.5", "2", dps=40)
    with mp.workdps(HI):
        ref = cho_saul_k1(1, mpmath.mpf(1) / 2, 2)
    assert close(a, ref, 40)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((-1, 0, 1), "variances"),
        ((1, 2, 1), "positive semidefinite"),
        ((1, float("nan"), 1), "finite"),
        ((1, True, 1), "bool"),
        ((1, [0], 1), "real number"),
        ((1, "abc", 1), "string"),
    ],
)
def test_bad_covariances_are_refused(args, match):
    with pytest.raises(InputError, match=match):
        dual_quadrature("relu", *args)


def test_bad_dps_and_method_are_refused():
    with pytest.raises(InputError, match="dps"):
        dual_quadrature("relu", 1, 0, 1, dps=5)
    with pytest.raises(InputError, match="method"):
        dual("relu", 1, 0, 1, method="magic")


# ---------------------------------------------------------------- closed forms
HAVE_DUAL = importlib.util.find_spec("ntksym.dual") is not None


@pytest.mark.skipif(not HAVE_DUAL, reason="ntksym.dual is not available yet")
@pytest.mark.parametrize("name", ["relu", "step", "abs", "sign", "identity", "erf"])
def test_closed_form_agrees_with_quadrature(name):
    for derivative in (False, True):
        if derivative and name in ("step", "sign"):
            continue  # compared separately above through the density at the origin
        cf = dual_closed_form(name, 1.3, 0.4, 0.8, dps=25, derivative=derivative)
        q = dual_quadrature(name, 1.3, 0.4, 0.8, dps=25, derivative=derivative)
        assert abs(cf - q) <= mpmath.mpf(10) ** -20 * max(abs(q), 1)


# ---------------------------------------------------------------- recursion and kernel
def test_recursion_depth_one_is_the_input_formula():
    x1, x2 = [0.3, -1.2, 2.0], [1.0, 0.5, -0.25]
    r = recursion("relu", x1, x2, 1, bias_std=0.5, weight_std=1.5)
    with mp.workdps(HI):
        dot = sum(_m(a) * _m(b) for a, b in zip(x1, x2, strict=True))
        ref = _m(1.5) ** 2 * dot / 3 + _m(0.5) ** 2
    assert isinstance(r, Recursion)
    assert r.sigma_dot == []
    assert close(r.sigma[0], ref, 30) and r.theta == r.sigma


def test_recursion_depth_two_relu_by_hand():
    x1, x2 = [1.0, 2.0], [0.5, -1.0]
    b, w = 0.1, 1.3
    r = recursion("relu", x1, x2, 2, bias_std=b, weight_std=w)
    with mp.workdps(HI):
        w2, b2 = _m(w) ** 2, _m(b) ** 2
        s11 = w2 * (1 + 4) / 2 + b2
        s22 = w2 * (_m(0.25) + 1) / 2 + b2
        s12 = w2 * (_m(0.5) - 2) / 2 + b2
        sigma2 = w2 * cho_saul_k1(s11, s12, s22) + b2
        dot2 = w2 * cho_saul_k0(s11, s12, s22)
        theta2 = s12 * dot2 + sigma2
    assert close(r.var1[0], s11, 30) and close(r.var2[0], s22, 30)
    assert close(r.sigma[1], sigma2, 30)
    assert close(r.sigma_dot[0], dot2, 30)
    assert close(r.theta[1], theta2, 30)


def test_recursion_theta_relation_and_diagonals():
    r = recursion("relu", [1.0, 0.2, -0.4], [0.1, 0.9, 0.3], 5, bias_std=0.3, dps=40)
    for level in range(4):
        rhs = r.theta[level] * r.sigma_dot[level] + r.sigma[level + 1]
        assert abs(r.theta[level + 1] - rhs) < mpmath.mpf(10) ** -35
    # relu diagonal: Sigma^(l+1)(x,x) = Sigma^(l)(x,x)/2 + beta^2
    for level in range(4):
        assert abs(r.var1[level + 1] - (r.var1[level] / 2 + mpmath.mpf(0.3) ** 2)) < 1e-35


@pytest.mark.parametrize("bias_std", [0.0, 0.7])
def test_identity_network_ntk_closed_form(bias_std):
    # linear network: Sigma^(l) = Sigma^(1) + (l-1) b^2, Theta^(L) = sum_l Sigma^(l)
    x1, x2 = [0.4, 1.1, -2.0, 0.5], [1.5, -0.3, 0.2, 0.8]
    depth = 4
    r = recursion("identity", x1, x2, depth, bias_std=bias_std)
    with mp.workdps(HI):
        s1 = sum(_m(a) * _m(b) for a, b in zip(x1, x2, strict=True)) / 4 + _m(bias_std) ** 2
        b2 = _m(bias_std) ** 2
        ntk = depth * s1 + b2 * depth * (depth - 1) / 2
    assert close(r.theta[-1], ntk, 30)
    assert close(r.sigma[-1], s1 + (depth - 1) * b2, 30)


def test_kernel_matches_recursion_and_is_symmetric():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 4))
    nngp, ntk = kernel("relu", X, depth=3, bias_std=0.2)
    assert nngp.shape == ntk.shape == (3, 3) and nngp.dtype == np.float64
    assert np.array_equal(nngp, nngp.T) and np.array_equal(ntk, ntk.T)
    r = recursion("relu", X[0], X[2], 3, bias_std=0.2)
    assert nngp[0, 2] == float(r.sigma[-1]) and ntk[0, 2] == float(r.theta[-1])
    Y = rng.normal(size=(2, 4))
    nngp2, ntk2 = kernel("relu", X, Y, depth=3, bias_std=0.2)
    assert nngp2.shape == (3, 2)
    r = recursion("relu", X[1], Y[1], 3, bias_std=0.2)
    assert ntk2[1, 1] == float(r.theta[-1])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"x1": [1.0, 2.0], "x2": [1.0]}, "same length"),
        ({"x1": [[1.0]], "x2": [1.0]}, "real number"),
        ({"x1": np.ones((2, 2)), "x2": [1.0, 1.0]}, "1-D"),
        ({"x1": [], "x2": []}, "empty"),
        ({"x1": [np.nan], "x2": [1.0]}, "finite"),
        ({"depth": 0}, "depth"),
        ({"depth": 2.0}, "depth"),
        ({"bias_std": -1.0}, "bias_std"),
        ({"weight_std": float("inf")}, "finite"),
        ({"dps": 10}, "dps"),
    ],
)
def test_recursion_validates_inputs(kwargs, match):
    args = {"x1": [1.0, 0.0], "x2": [0.0, 1.0], "depth": 2} | kwargs
    with pytest.raises(InputError, match=match):
        recursion("relu", **args)


def test_kernel_validates_inputs():
    with pytest.raises(InputError, match="NaN"):
        kernel("relu", np.array([[np.nan, 1.0]]), depth=2)
    with pytest.raises(InputError, match="columns"):
        kernel("relu", np.ones((2, 3)), np.ones((2, 2)), depth=2)
    with pytest.raises(InputError, match="2-D"):
        kernel("relu", np.ones(3), depth=2)


# ---------------------------------------------------------------- slow, thorough
@pytest.mark.slow
@pytest.mark.parametrize(
    ("dps", "point"),
    [(30, (1, 0.5, 2)), (30, (4.0, -3.0, 9.0)), (50, (1, 1 - 1e-12, 1)), (50, (0.4, 0.1, 0.2))],
)
def test_erf_williams_high_precision(dps, point):
    value, err = dual_quadrature("erf", *point, dps=dps, error=True)
    ref = williams_erf(*point)
    assert close(value, ref, dps)
    assert abs(value - ref) <= err


@pytest.mark.slow
def test_price_theorem_for_tanh():
    s11, s12, s22 = mpmath.mpf("0.8"), mpmath.mpf("0.3"), mpmath.mpf("1.2")
    slope = _slope(lambda c: dual_quadrature("tanh", s11, c, s22, dps=30), s12, mpmath.mpf(1e-5))
    dot = dual_quadrature("tanh", s11, s12, s22, dps=30, derivative=True)
    assert abs(slope - dot) < 1e-15


@pytest.mark.slow
def test_recursion_erf_quadrature_equals_closed_form():
    x1, x2 = [0.3, -1.0, 0.8], [1.2, 0.4, -0.5]
    q = recursion("erf", x1, x2, 3, bias_std=0.2, dps=20, method="quadrature")
    with mp.workdps(HI):
        s11 = (_m(0.3) ** 2 + 1 + _m(0.8) ** 2) / 3 + _m(0.2) ** 2
        s22 = (_m(1.2) ** 2 + _m(0.4) ** 2 + _m(0.5) ** 2) / 3 + _m(0.2) ** 2
        s12 = (_m(0.3) * _m(1.2) - _m(0.4) - _m(0.8) * _m(0.5)) / 3 + _m(0.2) ** 2
        theta = s12
        for _ in range(2):
            n12 = williams_erf(s11, s12, s22) + _m(0.2) ** 2
            d12 = williams_erf_dot(s11, s12, s22)
            s11, s22 = (
                williams_erf(s11, s11, s11) + _m(0.2) ** 2,
                williams_erf(s22, s22, s22) + _m(0.2) ** 2,
            )
            theta = theta * d12 + n12
            s12 = n12
    assert close(q.sigma[-1], s12, 20)
    assert close(q.theta[-1], theta, 20)


def test_gelu_recursion_closed_form_keeps_its_digits_at_large_norm():
    """GELU's referee (method "auto" = ntksym.dual's closed form) at norm 1e6, near-parallel.

    The closed form subtracts ``S12^2`` from ``(1 + S11)(1 + S22)`` (~1e24 here, with
    ``1 - rho ~ 1e-16``); 30, 50 and 90 digits must agree to the 30-digit level, so the
    50-digit reference behind the generated-kernel tests is far below float64 rounding.
    """
    rng = np.random.default_rng(3)
    x = 1e6 * rng.normal(size=8)
    y = x * (1 + 1e-8 * rng.normal(size=8))
    runs = [recursion("gelu", x, y, 6, bias_std=0.5, dps=d) for d in (30, 50, 90)]
    for r in runs[:2]:
        for got, want in zip(r.sigma + r.theta, runs[2].sigma + runs[2].theta, strict=True):
            assert close(got, want, 33)


@pytest.mark.slow
def test_gelu_recursion_quadrature_equals_closed_form():
    """The iterated-quadrature route agrees with the closed form through three layers."""
    x1, x2 = [0.9, -2.0, 1.4], [0.9 + 1e-7, -2.0, 1.4 - 2e-7]  # near-parallel, norm ~2.6
    for y in (x2, [-v for v in x1]):
        q = recursion("gelu", x1, y, 3, bias_std=0.3, dps=20, method="quadrature")
        c = recursion("gelu", x1, y, 3, bias_std=0.3, dps=20, method="closed_form")
        for a, b in zip(q.sigma + q.theta, c.sigma + c.theta, strict=True):
            assert close(a, b, 23)


@pytest.mark.slow
def test_kinked_non_homogeneous_activation_by_gauss_legendre_pieces():
    # relu(u) + 1 is not positively homogeneous: it takes the general route, split at the kink
    s11, s12, s22 = 1.0, 0.3, 2.0
    value, err = dual_quadrature("max(0, u) + 1", s11, s12, s22, dps=20, error=True)
    ref = (
        cho_saul_k1(s11, s12, s22)
        + mpmath.sqrt(_m(s11) / (2 * mpmath.pi))
        + mpmath.sqrt(_m(s22) / (2 * mpmath.pi))
        + 1
    )
    assert close(value, ref, 20)
    assert abs(value - ref) <= err


def test_kernel_without_ntk_for_step() -> None:
    from ntksym.reference import kernel as ref_kernel

    """step's NTK is infinite on the diagonal; ntk=False gives the NNGP alone."""
    X = np.random.default_rng(4).normal(size=(3, 4))
    with pytest.raises(InputError, match="infinite"):
        ref_kernel("step", X, depth=2, bias_std=0.5)
    K, T = ref_kernel("step", X, depth=2, bias_std=0.5, ntk=False)
    assert np.isnan(T).all() and np.allclose(np.diag(K), 0.75)
    K2, _ = ref_kernel("step", X[:2], X[1:], depth=2, bias_std=0.5, ntk=False)
    assert K2[1, 0] == K[1, 1] and K2[0, 1] == K[0, 2]


@pytest.mark.parametrize("method", ["closed_form", "quadrature", "auto"])
def test_a_map_beyond_any_mpf_is_a_clear_error(method):
    """``exp`` at a variance ~ 1e12: ``E[e^u e^v]`` is ``e^(2e12)`` (an mpf), but one layer
    on, ``e^(e^(2e12))`` has no mpf; mpmath raised MemoryError building its mantissa (the
    referee of ``exp`` at norm 1e6, depth 10). Now an InputError that says so."""
    huge = mpmath.exp(mpmath.mpf(2e12))
    with pytest.raises(InputError, match="'exp' overflows .* beyond any number mpmath can"):
        dual("exp", huge, huge, huge, method=method)


def test_the_referee_of_a_network_whose_values_no_mpf_holds_says_so():
    x = np.random.default_rng(7).standard_normal(5)
    X = 1e6 * np.stack([x, -x])
    with pytest.raises(InputError, match="overflows .* scale the inputs or the weights down"):
        kernel("exp", X, None, depth=10, bias_std=0.1, weight_std=1.2, dps=40)
