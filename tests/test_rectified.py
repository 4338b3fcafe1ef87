"""Rectified monomials max(u, 0)**k: recognition, the closed form, its stable maps, kernels."""

import math
from typing import Any

import mpmath
import numpy as np
import pytest
import sympy as sp

import ntksym
from ntksym import codegen, reference
from ntksym.activations import get_activation, u
from ntksym.activations.parser import parse_expression
from ntksym.dual.families import family_of
from ntksym.dual.families import rectified as R
from ntksym.dual.families.jump import homogeneous_general
from ntksym.dual.family import stable_numeric
from ntksym.errors import ActivationError

RHOS = (0.0, 0.3, -0.3, 0.9, -0.9, 0.5403, -0.5403, 1 - 1e-8, -(1 - 1e-8), 1 - 1e-12, -(1 - 1e-12))
VARIANCES = ((1.0, 1.0), (1e-4, 1e4), (3.7, 0.2), (1e4, 1e4))


def _pair(s11: float, s22: float, rho: float) -> tuple[float, float, Any]:
    """Float covariance ``(s12, det)`` near ``rho``, with the determinant exact (mpmath)."""
    s12 = float(rho * math.sqrt(s11 * s22))
    with mpmath.workdps(60):
        det = mpmath.mpf(s11) * s22 - mpmath.mpf(s12) ** 2
        while det < 0:
            s12 = float(np.nextafter(s12, 0))
            det = mpmath.mpf(s11) * s22 - mpmath.mpf(s12) ** 2
    return s12, det


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("max(u,0)**2", "rectified_monomial(2)"),
        ("relu(u)**3", "rectified_monomial(3)"),
        ("heaviside(u)*u**4", "rectified_monomial(4)"),
        ("u**2*heaviside(u)", "rectified_monomial(2)"),
        ("3*max(0,u)**2", "affine(rectified_monomial(2), a=3, b=1, c=0)"),
        ("max(0, 2*u)**2", "affine(rectified_monomial(2), a=4, b=1, c=0)"),
    ],
)
def test_typed_rectified_monomials_are_recognised(text, name):
    act = get_activation(text)
    assert act.name == name
    assert family_of(act) is not None
    # the recognised expression is the typed one (compared at points on both sides of 0)
    typed = sp.lambdify(u, parse_expression(text))
    for x in (-1.7, -0.2, 0.3, 2.5):
        assert act.numpy(x) == pytest.approx(float(typed(x)), rel=1e-15)


def test_not_rectified_monomials():
    # a two-sided power, a shifted one and a kink away from 0 stay user expressions
    for text in ("max(u,0)**2 + min(u,0)**2", "max(u,0)**2 + 1", "max(u,1)**2"):
        assert get_activation(text).registered_base is None


def test_degrees_zero_and_one_are_the_step_and_relu():
    assert get_activation("rectified_monomial", k=0).name == "step"
    assert get_activation("rectified_monomial", k=1).name == "relu"
    for bad in (-1, 2.5, True):
        with pytest.raises(ActivationError, match="non-negative integer"):
            get_activation("rectified_monomial", k=bad)


def test_polynomials_match_cho_saul():
    """P, Q against Cho & Saul's J_1, J_2, J_3 and the degree-1 derivation of ntksym.dual."""
    t = sp.Symbol("t", real=True)
    want = {1: (1, t), 2: (3 * t, 1 + 2 * t**2), 3: (4 + 11 * t**2, 9 * t + 6 * t**3)}
    for k, (p, q) in want.items():
        got_p, got_q = R.arc_cosine_polynomials(k)
        assert sp.expand(got_p.as_expr().subs(sp.Symbol("t", real=True), t) - p) == 0
        assert sp.expand(got_q.as_expr() - q) == 0
    s11, s12, s22 = 1.7, -0.4, 0.6
    from ntksym.dual import derive as d

    general = homogeneous_general(1)(1, 0).subs({d.S11: s11, d.S12: s12, d.S22: s22})
    mine = R.dual_maps(get_activation("relu"), 1).nngp.subs({d.S11: s11, d.S12: s12, d.S22: s22})
    assert float(mine) == pytest.approx(float(general), rel=1e-14)


def _exact(k: int, s11: float, s12: float, s22: float, det: Any) -> Any:
    """The closed form at 80 digits (no cancellation matters there)."""
    p, q = R.arc_cosine_polynomials(k)
    with mpmath.workdps(80):
        m = mpmath.sqrt(mpmath.mpf(s11) * s22)
        t, s = mpmath.mpf(s12) / m, mpmath.sqrt(det) / m
        phi = mpmath.atan2(mpmath.sqrt(det), -mpmath.mpf(s12))

        def ev(poly):
            return sum(mpmath.mpf(int(c.p)) / int(c.q) * t**i for (i,), c in poly.terms())

        return m**k * (ev(p) * s + phi * ev(q)) / (2 * mpmath.pi)


@pytest.mark.parametrize(
    "k", [2, 3, *(pytest.param(k, marks=pytest.mark.exhaustive) for k in (4, 5, 8, 12))]
)
def test_stable_maps_against_quadrature(k):
    """Both maps against ntksym.reference's polar quadrature at 50 digits, <= 1e-13.

    Where the value is below the quadrature's reach (anti-parallel pairs, E ~ 1e-40 next
    to terms of order 1), against the closed form at 80 digits, which the quadrature
    checks elsewhere.
    """
    act = get_activation("rectified_monomial", k=k)
    maps = stable_numeric(R.rectified_monomial(k))
    for s11, s22 in VARIANCES:
        for rho in RHOS:
            s12, det = _pair(s11, s22, rho)
            got = maps(np.float64(s11), np.float64(s12), np.float64(s22), np.float64(float(det)))
            for n, value in ((k, got[0]), (k - 1, got[1] / k**2)):
                exact = _exact(n, s11, s12, s22, det)
                assert float(value) == pytest.approx(float(exact), rel=1e-13, abs=0)
            if rho > -0.95:
                for deriv, value in ((False, got[0]), (True, got[1])):
                    ref = reference.dual_quadrature(act, s11, s12, s22, dps=50, derivative=deriv)
                    assert float(value) == pytest.approx(float(ref), rel=1e-13, abs=0)


def test_zero_variance():
    """A zero variance pins u at 0, where max(0, u)^k = 0: every map is 0, the det exact."""
    lm = R.rectified_monomial(3)
    maps = stable_numeric(lm)
    nngp, ntk = maps(np.float64(0.0), np.float64(0.0), np.float64(2.0), np.float64(0.0))
    assert nngp == 0 and ntk == 0


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_kernels_against_reference(depth):
    """Whole NNGP and NTK (generated NumPy module) against ntksym.reference, with bias."""
    rng = np.random.default_rng(13)
    X = rng.standard_normal((4, 3))
    X[1] = X[0] * (1 + 1e-9)
    X[2] = -0.5 * X[0]
    X[3] = 0.0
    k = ntksym.kernel("max(u,0)**2", depth, bias_std=0.3, backend="numpy")
    got = k(X, get=("nngp", "ntk"))
    want = reference.kernel("max(u,0)**2", X, depth=depth, bias_std=0.3)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=0)


def test_scaled_member_runs_generated_closed_form():
    spec = codegen.kernel_spec("3*relu(u)**3")
    assert spec.kind == "stable"
    assert codegen.kernel_spec("max(u,0)**2").kind == "stable"
    X = np.array([[1.0, 0.2], [-0.4, 0.9], [0.3, -1.1]])
    got = ntksym.kernel("3*relu(u)**3", 3, bias_std=0.1, backend="numpy")(X)
    want = reference.kernel("3*max(u,0)**3", X, depth=3, bias_std=0.1)[1]
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=0)


def test_stax_rectified_monomial():
    from ntksym import stax

    X = np.array([[1.0, 0.2], [-0.4, 0.9]])
    for degree, same in ((0, "step"), (1, "relu"), (2, "max(u,0)**2")):
        net = stax.serial(stax.Dense(8, 1.2, 0.1), stax.RectifiedMonomial(degree), stax.Dense(1))
        ref = stax.serial(stax.Dense(8, 1.2, 0.1), stax.Elementwise(same), stax.Dense(1))
        np.testing.assert_array_equal(net.kernel_fn(X, get="nngp"), ref.kernel_fn(X, get="nngp"))
    with pytest.raises(ntksym.errors.InputError, match="RectifiedMonomial degree"):
        stax.RectifiedMonomial(-1)


def test_beyond_the_largest_degree_is_integrated():
    act = get_activation("rectified_monomial", k=R.MAX_DEGREE + 1)
    assert codegen.kernel_spec(act).kind == "quadrature"
