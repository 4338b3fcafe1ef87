"""The vectorised erf and erfc of the runtime (:mod:`ntksym.codegen.runtime.numpy_erf`).

Three independent checks: the error against mpmath at 40 digits, in ulps of the exact value,
over a seeded sample and the points where the method changes; the tables fitted again from
scratch with mpmath; and a planted error in a copy of a table, which the accuracy check must
catch.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from conftest import ERF_ULPS, ERFC_ULPS
from hypothesis import given, settings
from hypothesis import strategies as st

from ntksym.activations.expr import lambdify_numpy, np_erf, np_erfc
from ntksym.activations.parser import parse_expression
from ntksym.codegen.runtime import numpy_erf

#: Where the method changes (interval ends), and the edges of erf = +-1 and of underflow.
EDGES = [0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 5.85, 5.9, 6.0, 26.5, 27.0, 27.4, 27.5]


def _sample(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    edges = np.array(EDGES)
    near = np.concatenate([np.nextafter(edges, 0.0), edges, np.nextafter(edges, 30.0)])
    x = np.concatenate(
        [
            rng.uniform(0.0, 7.0, 4000),
            rng.uniform(0.0, 1.2, 1000),
            rng.uniform(6.0, 27.5, 500),
            10.0 ** rng.uniform(-300.0, 0.0, 300),
            near,
        ]
    )
    return np.concatenate([x, -x])


def _ulps(got: np.ndarray, exact: list, floor: float = 0.0) -> np.ndarray:
    """|got - exact| in units of the last place of exact (0 where both are below floor)."""
    out = np.empty(len(exact))
    for i, (g, e) in enumerate(zip(got, exact, strict=True)):
        if abs(e) <= floor:
            out[i] = 0.0 if abs(g) <= 2 * floor else np.inf
            continue
        out[i] = float(abs(mpmath.mpf(float(g)) - e) / math.ulp(float(e)))
    return out


@pytest.fixture(scope="module")
def sample() -> tuple[np.ndarray, list, list]:
    x = _sample()
    with mpmath.workdps(40):
        return x, [mpmath.erf(mpmath.mpf(v)) for v in x], [mpmath.erfc(mpmath.mpf(v)) for v in x]


def test_erf_within_an_ulp_of_mpmath(sample: tuple) -> None:
    x, exact, _ = sample
    err = _ulps(numpy_erf.erf(x), exact)
    assert err.max() <= ERF_ULPS, (err.max(), x[err.argmax()])


def test_erfc_within_a_few_ulps_of_mpmath(sample: tuple) -> None:
    x, _, exact = sample
    err = _ulps(numpy_erf.erfc(x), exact, floor=1e-300)  # (subnormal results: absolute)
    assert err.max() <= ERFC_ULPS, (err.max(), x[err.argmax()])


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=-8.0, max_value=8.0, allow_subnormal=False))
def test_erf_agrees_with_the_c_library(v: float) -> None:
    # math.erf is within an ulp too, so the two differ by at most two
    got = float(numpy_erf.erf(np.array([v]))[0])
    assert abs(got - math.erf(v)) <= 2 * math.ulp(math.erf(v)) + 1e-320


def test_special_values_and_shapes() -> None:
    assert np.isnan(numpy_erf.erf(np.nan)) and np.isnan(numpy_erf.erfc(np.nan))
    assert numpy_erf.erf(np.inf) == 1.0 and numpy_erf.erf(-np.inf) == -1.0
    assert numpy_erf.erfc(np.inf) == 0.0 and numpy_erf.erfc(-np.inf) == 2.0
    assert math.copysign(1.0, numpy_erf.erf(-0.0)) == -1.0  # erf(-0) = -0
    assert numpy_erf.erfc(0.0) == 1.0 and numpy_erf.erfc(40.0) == 0.0
    assert numpy_erf.erf(np.zeros((0, 3))).shape == (0, 3)
    assert numpy_erf.erf(np.ones((2, 3, 4))).shape == (2, 3, 4)
    assert isinstance(numpy_erf.erf(0.5), float) and numpy_erf.erf(0.5) == math.erf(0.5)
    assert numpy_erf.erf([1, 2]).dtype == np.float64  # integers and lists are floats
    # more than one block of 65536, not contiguous
    x = np.linspace(-7.0, 7.0, 3 * 70001).reshape(3, -1)[:, ::2]
    want = np.vectorize(math.erf)(x)
    assert np.max(np.abs(numpy_erf.erf(x) - want)) <= 2.3e-16


def test_expressions_evaluate_erf_by_the_runtime() -> None:
    f = lambdify_numpy(parse_expression("erf(u) + erfc(2*u)"))
    x = np.linspace(-3.0, 3.0, 7)
    np.testing.assert_array_equal(f(x), numpy_erf.erf(x) + numpy_erf.erfc(2 * x))
    assert np_erf(0.25) == numpy_erf.erf(0.25) and np_erfc(3.0) == numpy_erf.erfc(3.0)


# ---------------------------------------------------------------------- the tables
def _fit(f, a: mpmath.mpf, b: mpmath.mpf, degree: int) -> list[float]:
    """Monomial coefficients in s in [-1, 1] of f's interpolant at Chebyshev nodes."""
    c, h = (a + b) / 2, (b - a) / 2
    nodes = [
        mpmath.cos(mpmath.pi * (k + mpmath.mpf(1) / 2) / (degree + 1)) for k in range(degree + 1)
    ]
    vandermonde = mpmath.matrix([[s**j for j in range(degree + 1)] for s in nodes])
    co = mpmath.lu_solve(vandermonde, mpmath.matrix([f(c + h * s) for s in nodes]))
    return [float(co[j]) for j in range(degree + 1)]


def _head(t: mpmath.mpf) -> mpmath.mpf:  # R(t) = erf(x) / x - 1 at t = x^2
    x = mpmath.sqrt(t)
    return mpmath.erf(x) / x - 1


def _scaled(x: mpmath.mpf) -> mpmath.mpf:  # g(x) = erfc(x) exp(x^2)
    return mpmath.erfc(x) * mpmath.exp(x * x)


def _tail(s: mpmath.mpf) -> mpmath.mpf:  # T(s) = x g(x) at s = 1 / x^2
    x = 1 / mpmath.sqrt(s)
    return x * _scaled(x)


def test_tables_are_the_chebyshev_interpolants() -> None:
    mp = mpmath.mpf
    with mpmath.workdps(60):
        tables = {
            "R": (numpy_erf._ERF_R, _fit(_head, mp(0), mp(1), 15)),
            "T": (numpy_erf._ERFC_T, _fit(_tail, mp(0), mp(1) / 36, 11)),
        }
        ends = [(mp(1) / 2, mp(1))] + [(mp(k), mp(k + 1)) for k in range(1, 6)]
        for i, (a, b) in enumerate(ends):
            tables[f"G{i}"] = (tuple(numpy_erf._ERFC_G[i]), _fit(_scaled, a, b, 17))
    for name, (table, fitted) in tables.items():
        np.testing.assert_allclose(table, fitted, rtol=1e-14, atol=0, err_msg=name)


@pytest.mark.parametrize(("row", "col", "function", "exact"), [(1, 2, "erf", 1), (2, 6, "erfc", 2)])
def test_a_planted_error_in_a_table_is_caught(
    sample: tuple, monkeypatch: pytest.MonkeyPatch, row: int, col: int, function: str, exact: int
) -> None:
    planted = numpy_erf._ERFC_G.copy()
    planted[row, col] *= 1.0 + 1e-9  # one coefficient, off in its tenth digit
    monkeypatch.setattr(numpy_erf, "_ERFC_G", planted)
    got = getattr(numpy_erf, function)(sample[0])
    bound = ERF_ULPS if function == "erf" else ERFC_ULPS
    assert _ulps(got, sample[exact], floor=1e-300).max() > bound
