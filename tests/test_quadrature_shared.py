"""ntksym.dual.trapezoid integrates by the generated modules' rule (one rule, written once)."""

import math

import numpy as np
import pytest

from ntksym import dual, reference
from ntksym.activations import get_activation
from ntksym.codegen.runtime import numpy_quadrature

POINTS = [  # (s11, rho, s22): variances 1e-4..1e4, near-parallel and anti-parallel pairs
    (1.0, 0.3, 2.0),
    (1e-4, -0.7, 1e-4),
    (1e4, 0.5, 30.0),
    (2.0, 1 - 1e-12, 2.0),
    (0.5, -(1 - 1e-9), 0.8),
]


def _covariance(s11, rho, s22):
    s12 = rho * math.sqrt(s11 * s22)
    det = s11 * s22 * (1 - rho) * (1 + rho)  # accurate: (1 - rho) is exact for these rho
    return s11, s12, s22, det


@pytest.mark.parametrize(
    ("name", "points"),
    [
        ("tanh", POINTS[2:4]),
        pytest.param("tanh", POINTS, marks=pytest.mark.exhaustive),
        pytest.param("softplus", POINTS, marks=pytest.mark.exhaustive),
    ],
)
def test_trapezoid_against_mpmath(name, points):
    for s11, rho, s22 in points:
        a, c, b, det = _covariance(s11, rho, s22)
        k, kd = dual.trapezoid(name, a, c, b, det=det)
        for deriv, got in ((False, k), (True, kd)):
            want = reference.dual_quadrature(name, a, c, b, dps=30, derivative=deriv)
            scale = math.sqrt(
                float(reference.dual_quadrature(name, a, a, a, dps=20, derivative=deriv))
                * float(reference.dual_quadrature(name, b, b, b, dps=20, derivative=deriv))
            )
            assert abs(float(got) - float(want)) <= 1e-13 * scale, (name, s11, rho, s22, deriv)


def test_the_rule_is_the_runtime_one():
    """Same numbers as the runtime's own rule bound to the activation (and not the old one)."""
    act = get_activation("tanh")
    s11 = np.array([0.3, 2.0, 50.0])
    s12 = np.array([0.1, -1.5, 49.0])
    s22 = np.array([0.4, 1.3, 50.0])
    det = s11 * s22 - s12**2
    k, kd = dual.trapezoid(act, s11, s12, s22, det=det)
    rule = numpy_quadrature.bound(act.numpy, act.numpy_derivative)
    want_k, want_kd = rule.pair_maps(s11, s12, s22, det)
    np.testing.assert_array_equal(k, want_k)
    np.testing.assert_array_equal(kd, want_kd)


def test_nngp_alone_skips_the_derivative():
    s11, s12, s22 = np.array([1.0, 3.0]), np.array([0.2, -2.0]), np.array([1.5, 2.0])
    k, kd = dual.trapezoid("sigmoid", s11, s12, s22, ntk=False)
    assert kd is None
    both, _ = dual.trapezoid("sigmoid", s11, s12, s22)
    np.testing.assert_allclose(k, both, rtol=1e-15, atol=0)
