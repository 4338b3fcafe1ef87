"""The referee on oscillating activations: sin/cos terms get pieces of a few periods.

``abs(u) + sin(u)`` at variance 1e4 oscillates 100 times per standard deviation; mpmath's
Gauss-Legendre pieces between the old split points (0, 2, 4, 8) saw up to 64 periods of
``sin(u) sin(v)`` and its error estimate (extrapolated from its last degrees) made the
referee refuse the derivative map at (1e4, 1 - 1e-12, 1e4) with 1.1e-11 for a value right
to 1e-19. Checked here against closed forms (``conftest.abs_sin_dual``), and the refusal
where the inner integral would need hours.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from conftest import abs_sin_dual

from ntksym import reference
from ntksym.activations import get_activation
from ntksym.reference import ReferenceNotConverged, tanh_sinh
from ntksym.reference.features import oscillation_frequency, split_periods

RHO_EXTREME = 1 - 1e-12


def test_oscillation_frequency_of_sin_and_cos_terms() -> None:
    def freq(text: str, derivative: bool = False) -> float:
        return float(oscillation_frequency(get_activation(text), derivative))

    assert freq("abs(u) + sin(u)") == 1.0
    assert freq("abs(u) + sin(u)", derivative=True) == 1.0  # sign(u) + cos(u)
    assert freq("max(u, 0) + 0.5*cos(3*u + 1)") == 3.0
    assert freq("sin(u/4)*cos(2*u)") == 2.0
    assert freq("relu(u) + 0.1*tanh(u)") == 0.0
    assert freq("sin(u**2) + abs(u)") == 0.0  # (not linear: no period, the estimate decides)


def test_split_periods_cuts_only_inside_the_reach() -> None:
    points = [mpmath.mpf(x) for x in (-22, -8, 0, 1e-6, 2, 22)]
    out = split_periods(points, mpmath.mpf("0.1"), 12)
    assert out[0] == -22 and out[-1] == 22 and set(points) <= set(out)
    assert all(a < b for a, b in zip(out, out[1:], strict=False))
    gaps = [b - a for a, b in zip(out, out[1:], strict=False)]
    inside = [g for a, g in zip(out, gaps, strict=False) if -12 <= a < 12]
    assert max(inside) <= 8 * mpmath.mpf("0.1") * (1 + 1e-12)
    assert gaps[0] == 10 and gaps[-1] == 10  # (beyond the reach: kept)
    assert split_periods(points, 0, 12) == points


def test_period_pieces_resolve_an_oscillating_gaussian_integral() -> None:
    """E[(|100 z| + sin(100 z))^2] = 1e4 + (1 - exp(-2e4)) / 2: with the old split points the
    estimate is 1e-11 (mpmath's extrapolation, pessimistic); cut by period it is at the
    working precision and the value right to it."""
    with mpmath.workdps(35):
        tol = mpmath.mpf(10) ** -23
        feats = [(mpmath.mpf(0), mpmath.mpf(0))]
        exact = 1e4 + (1 - mpmath.exp(-2 * mpmath.mpf(10) ** 4)) / 2
        norm = 1 / mpmath.sqrt(2 * mpmath.pi)

        def f(z: mpmath.mpf) -> mpmath.mpf:
            return (abs(100 * z) + mpmath.sin(100 * z)) ** 2 * mpmath.exp(-z * z / 2) * norm

        errors = {}
        for period in (0, 2 * mpmath.pi / 200):
            pts, method = tanh_sinh._pieces(feats, True, tol, period)  # noqa: SLF001
            value, err = mpmath.quad(f, pts, method=method, error=True)
            assert abs(value - exact) <= max(err, mpmath.mpf(10) ** -25)
            errors[period] = err
        assert errors[0] > 1e-13 and errors[2 * mpmath.pi / 200] < 1e-25


def test_refuses_an_oscillating_kinked_inner_integral_at_once() -> None:
    """At (2e4, 1e4, 2e4) the inner integral over v given u has the kink of |v| in reach and
    122 radians of sin(v) per conditional standard deviation: hours of mpmath, then no
    convergence. Refused before any work, naming why."""
    with pytest.raises(
        ReferenceNotConverged, match="not attempted: E\\[f\\(v\\) \\| u\\] has a kink"
    ):
        reference.dual_quadrature("abs(u) + sin(u)", 2e4, 1e4, 2e4, dps=15)


@pytest.mark.exhaustive  # (10-20 CPU-seconds each: over the CI budget)
@pytest.mark.parametrize("derivative", [False, True])
def test_reference_near_rho_one_at_variance_400(derivative: bool) -> None:
    """The referee against the closed forms near rho = 1 (20 radians per deviation)."""
    s12 = RHO_EXTREME * 400.0
    value, err = reference.dual_quadrature(
        "abs(u) + sin(u)", 400.0, s12, 400.0, dps=15, derivative=derivative, error=True
    )
    want = abs_sin_dual(400.0, s12, 400.0, derivative)
    assert abs(float(value) - want) <= float(err) + 1e-15 * abs(want)
    assert err <= 1e-13 * abs(want)


@pytest.mark.exhaustive  # (over the CI budget)
def test_the_larger_variance_goes_outside() -> None:
    """(1e-2, 0.3, 1e2): with u outside, E[f(v) | u] has sin at 9.5 radians per deviation and
    the kink; with v outside (as the referee now takes it), 0.0095."""
    s12 = 0.3
    value, err = reference.dual_quadrature("abs(u) + sin(u)", 1e-2, s12, 1e2, dps=15, error=True)
    want = abs_sin_dual(1e-2, s12, 1e2, False)
    assert abs(float(value) - want) <= float(err) + 1e-15 * abs(want)


@pytest.mark.exhaustive  # (about 1 CPU-minute per map)
@pytest.mark.parametrize("derivative", [False, True])
@pytest.mark.parametrize(
    "cov", [(1e4, RHO_EXTREME, 1e4), (1e4, -RHO_EXTREME, 1e-4), (1e-4, 0.3, 1e4)]
)
def test_reference_against_closed_forms_at_the_grid(
    cov: tuple[float, float, float], derivative: bool
) -> None:
    s11, rho, s22 = cov
    s12 = rho * np.sqrt(s11 * s22)
    value, err = reference.dual_quadrature(
        "abs(u) + sin(u)", s11, s12, s22, dps=20, derivative=derivative, error=True
    )
    want = abs_sin_dual(s11, s12, s22, derivative)
    assert abs(float(value) - want) <= float(err) + 1e-16 * abs(want)
    assert err <= 1e-15 * abs(want)
