"""The Mehler series of the generated NumPy quadrature modules (runtime/numpy_mehler.py).

The series answers an entry only where its error bound holds; elsewhere the adaptive 2-D
rule does. These tests compare the series with that rule (an independent algorithm, itself
checked against mpmath in test_codegen_quadrature.py), show that the series is really used
at moderate correlations, and plant wrong coefficients to see the checks catch them.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import count_coefficients

from ntksym.codegen import load

SMOOTH = ["tanh", "sigmoid", "softplus", "silu"]
GELU_TANH = "0.5*u*(1 + tanh(0.7978845608028654*(u + 0.044715*u**3)))"
# Series against the adaptive rule, relative to max(|E|, 0.2 sqrt(E[f(u)^2] E[f(v)^2]))
# (the floor: the runtime's _SFLOOR): the series' own bound asks 1e-14 (_STOL); measured
# worst 2e-15 (both rules' rounding).
SERIES_BOUND = 1e-14
FLOOR = 0.2


def _grid():
    """Variances 1e-4..1e4 (pairs) and correlations up to 1 - 1e-12, with exact determinants."""
    rng = np.random.default_rng(7)
    s1 = 10.0 ** rng.uniform(-4, 4, 300)
    s2 = s1 * 10.0 ** rng.uniform(-1, 1, 300)
    near = rng.choice([-1, 1], 60) * (1 - 10.0 ** rng.uniform(-12, -1, 60))
    rho = np.concatenate([rng.uniform(-0.9, 0.9, 240), near])
    s12 = rho * np.sqrt(s1 * s2)
    det = s1 * s2 * (1 - rho) * (1 + rho)  # (within rounding of s12; both rules get the same)
    return s1, s2, s12, det


def _compare(m, d):
    s1, s2, s12, det = _grid()
    r1, r2 = np.sqrt(s1), np.sqrt(s2)
    P, ok = m._series(s1, s2, s12, det, r1, r2, lambda v: m._fn(d, v), None)
    ref = m._outer(r1, s12 / r1, np.sqrt(det / s1), d)  # the adaptive rule alone
    if d == 0:
        cs = np.sqrt(m._diag(s1) * m._diag(s2))
        den = np.maximum(np.abs(ref), FLOOR * cs)
    else:
        den = np.abs(ref)
    return np.abs(P - ref) / den, ok, np.abs(s12 / (r1 * r2)), s1, s2


@pytest.mark.parametrize("d", [0, 1])
@pytest.mark.parametrize("name", SMOOTH)
def test_series_agrees_with_the_adaptive_rule(name, d):
    m = load(name, "numpy")
    m._MEMO.clear()
    err, ok, arho, s1, s2 = _compare(m, d)
    assert err[ok].max() <= SERIES_BOUND, err[ok].max()
    # used where it should be: moderate variances and correlations
    moderate = (arho <= 0.5) & (np.maximum(s1, s2) <= 10.0)
    # (measured: all of them, silu's small E[sigma sigma] near its zero included)
    assert ok[moderate].mean() >= 0.95, ok[moderate].mean()
    # near |rho| = 1 the longer series (degree up to _KMAX) serves moderate variances; at
    # large ones (kink-like at the Gaussian's scale) its bound sends the entries to the rule
    near = arho > 1 - 1e-6
    assert ok[near & (np.maximum(s1, s2) <= 1.0)].all()
    assert not ok[near & (np.minimum(s1, s2) >= 100.0)].any()


@pytest.mark.parametrize("name", ["silu", GELU_TANH])
def test_near_a_zero_of_the_covariance_the_series_serves_at_the_scales_rounding(name):
    """SiLU and GELU's tanh form have a mean of the order of their spread, so E[f(u) f(v)]
    crosses 0 at a negative correlation. There the series is held to 2e-15 of the scale
    sqrt(E[f(u)^2] E[f(v)^2]) (its rounding terms alone are several eps of it), and
    serves the entries that the adaptive rule took before at about 80 us each (a 27x
    slower GELU-tanh network, docs/performance.md, session 30). Against mpmath at 30
    digits: within 2e-15 of the scale, the adaptive rule's own error of the same order."""
    from ntksym import reference

    m = load(name, "numpy")
    m._MEMO.clear()
    s1 = np.array([0.5, 1.0, 1.0, 2.0, 1.5, 0.8])
    s2 = np.array([0.5, 1.0, 1.3, 1.5, 1.5, 1.0])
    rho = np.array([-0.25, -0.3, -0.33, -0.36, -0.4, -0.45])
    s12 = rho * np.sqrt(s1 * s2)
    det = s1 * s2 * (1 - rho) * (1 + rho)
    r1, r2 = np.sqrt(s1), np.sqrt(s2)
    P, ok = m._series(s1, s2, s12, det, r1, r2, lambda v: m._fn(0, v), None)
    cs = np.sqrt(m._diag(s1) * m._diag(s2))
    ref = np.array([float(reference.dual(name, *c, dps=30)) for c in zip(s1, s12, s2, strict=True)])
    assert ok.all(), ok
    assert (np.abs(ref) < FLOOR * cs).sum() >= 4  # (near the zero: the floor applies)
    assert np.max(np.abs(P - ref) / cs) <= SERIES_BOUND * FLOOR
    rule = m._outer(r1, s12 / r1, np.sqrt(det / s1), 0)
    assert np.max(np.abs(rule - ref) / cs) <= SERIES_BOUND * FLOOR


def test_a_planted_wrong_coefficient_is_seen(monkeypatch):
    """Lowered, the comparison fails; raised, Bessel's inequality rejects the series where
    the tail is small (else the comparison fails)."""
    m = load("tanh", "numpy")
    coefficients = m._coefficients

    def planted(delta):
        def wrong(S, f, kmax):
            a, E, err, ok, tail = coefficients(S, f, kmax)
            a = a.copy()
            a[:, 1] += delta * np.sqrt(E)
            return a, E, err, ok, tail

        return wrong

    m._MEMO.clear()
    monkeypatch.setattr(m, "_coefficients", planted(-1e-9))
    err, ok, *_ = _compare(m, 0)
    assert ok.sum() > 100 and err[ok].max() > 100 * SERIES_BOUND
    m._MEMO.clear()
    monkeypatch.setattr(m, "_coefficients", planted(+1e-6))
    err, ok, _, s1, s2 = _compare(m, 0)
    # rejected where the true tail is smaller than the planted mass (small variances);
    # elsewhere the comparison sees it
    assert not ok[np.maximum(s1, s2) <= 0.1].any()
    assert ((~ok) | (err > 100 * SERIES_BOUND)).all()
    m._MEMO.clear()


def test_the_layer_map_is_right_with_series_and_rule_together():
    """_pair (series where it may, rule elsewhere) against the rule alone, NNGP bit-stable."""
    m = load("softplus", "numpy")
    s1, s2, s12, det = _grid()
    r1, r2 = np.sqrt(s1), np.sqrt(s2)
    z = np.zeros_like(s1)
    e, ed, _ = m._pair(s1, s2, s12, det, z, z, 0.0, 0.0, r1, r2, z, z)
    e1, none, _ = m._pair(s1, s2, s12, det, z, z, 0.0, 0.0, r1, r2, z, z, ntk=False)
    assert none is None and np.array_equal(e, e1)
    for got, d in ((e, 0), (ed, 1)):
        ref = m._outer(r1, s12 / r1, np.sqrt(det / s1), d)
        np.testing.assert_allclose(got, ref, rtol=SERIES_BOUND, atol=0)


@pytest.mark.parametrize("name", ["tanh", "relu"])
def test_symmetric_blocks_of_the_upper_triangle_agree_with_the_general_path(name):
    """K(X, X) computes blocks of the upper triangle (the rows' series coefficients are the
    columns', the twins' determinant is 0 at every layer); K(X, X') with X' a copy of X runs
    every entry the general way. 300 rows (two blocks) with near-parallel, twin, scaled and
    antiparallel rows: the two agree to 1e-14 of sqrt(K_ii K_jj) (measured 6e-15: the pairs
    (x_i, x_i') of K(X, X') take the series, within its bound of 1e-14, where K(X, X) takes
    E[sigma^2]), and K(X, X) is symmetric."""
    rng = np.random.default_rng(12)
    X = rng.standard_normal((300, 6))
    X[1::7] = X[::7][: X[1::7].shape[0]] + 1e-7 * rng.standard_normal((43, 6))  # near twins
    X[2::7] = X[::7][: X[2::7].shape[0]]  # exact twins
    X[3::7] = -3.0 * X[::7][: X[3::7].shape[0]]
    m = load(name, "numpy")
    if hasattr(m, "_MEMO"):
        m._MEMO.clear()
    for got, want in zip(m.nngp_ntk(X, None, 3, 0.1), m.nngp_ntk(X, X.copy(), 3, 0.1), strict=True):
        assert np.array_equal(got, got.T)
        scale = np.sqrt(np.outer(np.diag(want), np.diag(want)))
        assert np.max(np.abs(got - want) / scale) <= SERIES_BOUND


def test_the_columns_coefficients_are_kept_for_large_n(monkeypatch):
    """Blocks of rows ask for the same columns' expansion again: it is taken once, also for
    more than 4096 columns (the old limit of the memo, above which every block of a
    described network's layer path took it anew: 5x the time at N = 6000), and a second
    query of the same variances returns the same values."""
    m = load("tanh", "numpy")
    m._MEMO.clear()
    calls = count_coefficients(monkeypatch, m)
    cols = np.random.default_rng(3).uniform(0.5, 2.0, (1, 6000))
    f = lambda v: m._fn(0, v)  # noqa: E731
    first = m._expansion(cols, f, ("test", 0), 48)
    again = m._expansion(cols.copy(), f, ("test", 0), 48)
    assert calls == [6000]
    for x, y in zip(first, again, strict=True):
        assert np.array_equal(x, y)
    m._MEMO.clear()
