"""The determinant after an activation without a closed form (``ntksym.dual.residual``).

Each check compares ``next_det`` with ``E11 E22 - E12^2`` from mpmath quadratures at 40
digits (``ntksym.reference.dual_quadrature``), at covariances given exactly in mpmath
(``theta`` the input angle; the float64 inputs are their rounded values and the carried
determinant). What matters downstream is the output angle, ``sqrt(D / (E11 E22))``, whose
absolute error a kinked layer passes on to the NTK: the subtraction's is ``~eps / theta'``.
"""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest

from ntksym import dual, stax
from ntksym.activations import get_activation
from ntksym.dual import residual
from ntksym.reference import dual_quadrature


def _case(name: str, s11: float, s22: float, theta: float, sign: int = 1) -> dict[str, float]:
    """``next_det``, the subtraction and the mpmath determinant at one covariance."""
    act = get_activation(name)
    with mp.workdps(60):
        m12 = sign * mp.sqrt(mp.mpf(s11) * s22) * mp.cos(theta)
        mdet = mp.mpf(s11) * s22 * mp.sin(theta) ** 2
    e11, e22 = (dual_quadrature(act, s, s, s, dps=40) for s in (s11, s22))
    e12 = dual_quadrature(act, s11, m12, s22, dps=40)
    with mp.workdps(40):
        ref = e11 * e22 - e12**2
        scale = e11 * e22
    one = np.ones(1)
    s12, det = np.full((1, 1), float(m12)), np.full((1, 1), float(mdet))
    k12 = dual.trapezoid(act, s11 * one[:, None], s12, s22 * one[None, :], det=det, ntk=False)[0]
    k11 = dual.trapezoid(act, s11 * one, s11 * one, s11 * one, det=0 * one, ntk=False)[0]
    k22 = dual.trapezoid(act, s22 * one, s22 * one, s22 * one, det=0 * one, ntk=False)[0]
    got = residual.next_det(act, s11 * one, s22 * one, s12, det, k11, k22, k12)[0, 0]
    sub = float(k11[0] * k22[0] - k12[0, 0] ** 2)

    def angle_error(d: float) -> float:
        with mp.workdps(40):
            return float(abs(mp.sqrt(max(d, 0.0) / scale) - mp.sqrt(ref / scale)))

    return {
        "rel": float(abs(got - ref) / ref),
        "angle": angle_error(got),
        "sub_angle": angle_error(sub),
    }


CASES = [
    ("tanh", 2.25, 2.25, 1e-8, 1),  # twins' angle after a Dense layer
    ("tanh", 2.25, 2.25 * (1 + 2e-9), 1e-8, 1),  # unequal variances
    ("tanh", 2.25, 2.25 * (1 + 1e-6), 1e-5, 1),
    ("tanh", 2.25, 2.25, 3e-3, 1),  # near the threshold NEAR
    ("tanh", 2.25, 2.25 * (1 + 1e-9), 1e-7, -1),  # anti-parallel
    ("tanh", 2000.0, 2000.0 * (1 + 1e-9), 1e-8, 1),  # saturated
    ("tanh", 1e-4, 1e-4 * (1 + 1e-9), 1e-8, 1),  # nearly linear
]


@pytest.mark.parametrize(("name", "s11", "s22", "theta", "sign"), CASES)
def test_next_det_keeps_the_output_angle(
    name: str, s11: float, s22: float, theta: float, sign: int
) -> None:
    r = _case(name, s11, s22, theta, sign)
    assert r["angle"] <= 1e-16
    assert r["rel"] <= max(1e-12, 1e-15 / theta)  # (relative to D: ~4 eps / theta')


GELU_TANH = "0.5*u*(1 + tanh(0.7978845608028654*(u + 0.044715*u**3)))"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["softplus", "silu", "u**3 - u", "sigmoid", GELU_TANH])
def test_next_det_other_activations(name: str) -> None:
    for s11, s22, theta in ((2.25, 2.25 * (1 + 2e-9), 1e-8), (2000.0, 2000.0, 1e-8)):
        r = _case(name, s11, s22, theta)
        assert r["angle"] <= 1e-16, (s11, theta, r)


def test_subtraction_alone_fails_these_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the residual switched off, the first case's angle is off by ~sqrt(eps)."""
    monkeypatch.setattr(residual, "NEAR", 0.0)
    r = _case(*CASES[0])
    assert r["angle"] > 1e-10
    assert r["sub_angle"] > 1e-10


def test_rules_that_disagree_keep_the_subtraction() -> None:
    """``log(1 + u^2)`` at variance 1e-4: ``f`` itself is rounded to ~1e-12 relative (``1 + u^2``),
    so the residual's rules disagree, and the determinant is the subtraction's, as before."""
    act = get_activation("log(1 + u**2)")
    s, theta = 1e-4, 1e-8
    one = np.ones(1)
    s12 = np.full((1, 1), s * np.cos(theta))
    det = np.full((1, 1), s * s * np.sin(theta) ** 2)
    k12 = dual.trapezoid(act, s * one[:, None], s12, s * one[None, :], det=det, ntk=False)[0]
    k11 = dual.trapezoid(act, s * one, s * one, s * one, det=0 * one, ntk=False)[0]
    got = residual.next_det(act, s * one, s * one, s12, det, k11, k11, k12)
    expected = max(float(dual.covariance.careful_det(k11[0], k12[0, 0], k11[0])), 0.0)
    assert got[0, 0] == expected


def test_an_overflowing_network_is_refused_clearly() -> None:
    """``exp(u) tanh(u)`` after a near-parallel pair: finite where ``E[f^2]`` is, else the
    layer path's clear error (no NaN, no warning from the residual's nodes)."""
    from ntksym.errors import InputError

    x = np.random.default_rng(1).standard_normal(6)
    X = np.vstack([x, x * (1 + 1e-9), x + 1e-8 * x[::-1]])
    net = stax.serial(
        stax.Dense(8, W_std=1.0), stax.Elementwise("exp(u)*tanh(u)"), stax.Dense(8), stax.Relu(),
        stax.Dense(1),
    )  # fmt: skip
    with np.errstate(all="raise"):
        k = net[2](X)
    assert np.all(np.isfinite(k.ntk))
    with pytest.raises(InputError, match="infinite"):
        net[2](1e3 * X)


def _net(b_std: float | None):
    return stax.serial(
        stax.Dense(64, W_std=1.5, b_std=0.1),
        stax.Elementwise("tanh(u)"),
        stax.Dense(64, W_std=1.3, b_std=b_std),
        stax.Relu(),
        stax.Dense(1),
    )


@pytest.mark.slow
@pytest.mark.parametrize("b_std", [0.2, None])
def test_relu_after_tanh_against_the_referee(b_std: float | None) -> None:
    """The network that was 3.1e-9 off on its NTK (docs/performance.md, session 15)."""
    import ntksym

    rng = np.random.default_rng(3)
    x, d = rng.standard_normal((2, 6))
    X = np.vstack([x, x * (1 + 1e-9), x + 1e-8 * d, -x + 1e-7 * d])
    net = _net(b_std)
    ref = ntksym.reference.kernel(net, X)
    got = net[2](X)
    for name, r in (("nngp", ref[0]), ("ntk", ref[1])):
        r = np.asarray(r, dtype=float)
        err = np.max(np.abs(getattr(got, name) - r) / np.abs(r))
        assert err <= 1e-13, (name, err)


@pytest.mark.slow
def test_exactly_rescaled_inputs_against_the_referee() -> None:
    """``x`` and ``x (1 + 2^-30)`` exactly (few mantissa bits), no biases: the input
    determinant is exactly 0 and the outputs differ only through the variances. Left to the
    subtraction (as when the integral asked for a positive determinant) the NTK was 2.0e-8
    off."""
    import ntksym

    x = np.array([1.0, 2.0, -3.0, 4.0, 5.0, -6.0]) / 4
    X = np.vstack([x, x * (1 + 2.0**-30), x * (1 + 2.0**-20)])
    net = stax.serial(
        stax.Dense(64, W_std=1.5), stax.Elementwise("tanh(u)"), stax.Dense(64, W_std=1.3),
        stax.Relu(), stax.Dense(1),
    )  # fmt: skip
    ref = ntksym.reference.kernel(net, X)
    got = net.kernel_fn(X)
    for name, r in (("nngp", ref[0]), ("ntk", ref[1])):
        r = np.asarray(r, dtype=float)
        err = np.max(np.abs(getattr(got, name) - r) / np.abs(r))
        assert err <= 1e-13, (name, err)


def test_blocks_of_rows_keep_the_bits_of_the_whole_matrix() -> None:
    """A closed-form activation with no carried determinant (``sin(u) + u``) then ReLU, on
    inputs whose pairs are all nearly parallel (every entry takes the residual's integral):
    each entry is computed from its own pair, so any block of rows gives the same bits."""
    from ntksym.architecture.description import as_description
    from ntksym.kernels.layer_blocks import evaluate_layers

    rng = np.random.default_rng(0)
    X = rng.standard_normal(8) + 1e-6 * rng.standard_normal((90, 8))
    net = as_description(
        stax.serial(
            stax.Dense(16, 1.2, 0.1),
            stax.Elementwise("sin(u) + u"),
            stax.Dense(16, 1.1, 0.2),
            stax.Relu(),
            stax.Dense(1),
        )  # fmt: skip
    )
    whole, _ = evaluate_layers(net, X, None, ("nngp", "ntk"))
    for rows in (1, 7, 64):
        part, _ = evaluate_layers(net, X, None, ("nngp", "ntk"), rows=rows)
        for name in ("nngp", "ntk"):
            np.testing.assert_array_equal(part[0][name], whole[0][name])
