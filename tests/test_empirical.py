"""Tests of ntksym.empirical: exactness of the finite-width NTK and Monte-Carlo evidence.

The infinite-width reference used here is written in this file from the published
closed forms (arc-cosine kernels, Cho & Saul 2009; erf, Williams 1997), independent
of ntksym's own kernel code.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import TOL, gaussian_inputs
from hypothesis import given, settings
from hypothesis import strategies as st

from ntksym.empirical import (
    ConvergenceResult,
    MonteCarloResult,
    Network,
    convergence_study,
    monte_carlo_ntk,
)
from ntksym.errors import ActivationError, InputError


# --------------------------------------------------------------------------- reference
def _dual_relu(s11, s12, s22):
    """E[relu u relu v], E[step u step v] (Cho & Saul 2009, arc-cosine of degree 1 and 0)."""
    norm = np.sqrt(s11 * s22)
    t = np.arccos(np.clip(s12 / norm, -1.0, 1.0))
    return norm / (2 * np.pi) * (np.sin(t) + (np.pi - t) * np.cos(t)), (np.pi - t) / (2 * np.pi)


def _dual_erf(s11, s12, s22):
    """E[erf u erf v], E[erf' u erf' v] (Williams 1997)."""
    d = (1 + 2 * s11) * (1 + 2 * s22)
    return 2 / np.pi * np.arcsin(2 * s12 / np.sqrt(d)), 4 / np.pi / np.sqrt(d - 4 * s12**2)


def _dual_identity(s11, s12, s22):
    return s12, np.ones_like(s12)


DUALS = {"relu": _dual_relu, "erf": _dual_erf, "identity": _dual_identity}


def limit_ntk(activation, X, depth, bias_std=0.0, weight_std=1.0):
    """Infinite-width (NNGP, NTK) of depth L on X (N, n0) by the seed's recursion."""
    sigma = weight_std**2 * (X @ X.T) / X.shape[1] + bias_std**2
    theta = sigma.copy()
    for _ in range(depth - 1):
        diag = np.diag(sigma)
        e, edot = DUALS[activation](diag[:, None], sigma, diag[None, :])
        sigma = weight_std**2 * e + bias_std**2
        theta = theta * weight_std**2 * edot + sigma
    return sigma, theta


# --------------------------------------------------------------------------- exactness
CASES = [
    ([3, 4], "relu", 0.0, 1.0),
    ([3, 5, 2], "relu", 0.4, 1.0),
    ([4, 6, 5, 3], "erf", 0.3, 1.5),
    ([2, 4, 4, 4, 2], "tanh", 0.0, 0.8),
    ([3, 5, 4, 1], "identity", 1.0, 1.2),
    ([2, 3, 3, 3, 3], "relu", 0.7, 1.4),
    ([5, 7, 1], "erf", 0.0, 1.0),
    ([3, 4, 4, 2], "gelu", 0.2, 1.1),
]


@pytest.mark.parametrize("widths, act, b, w", CASES)
def test_ntk_matches_explicit_jacobian(widths, act, b, w):
    # Reverse mode (ntk) against forward mode (jacobian): different algorithms, same numbers.
    net = Network(widths, act, bias_std=b, weight_std=w, seed=11)
    X1, X2 = gaussian_inputs(5, widths[0], 1), gaussian_inputs(4, widths[0], 2)
    for fast, slow in [
        (net.ntk(X1, X2), net.ntk_jacobian(X1, X2)),
        (net.ntk(X1), net.ntk_jacobian(X1)),
        (net.ntk(X1, X2, block_entries=50), net.ntk_jacobian(X1, X2)),  # many tiny blocks
    ]:
        assert fast.shape == slow.shape
        np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-12 * np.abs(slow).max())


def test_jacobian_matches_central_differences():
    # Perturb one parameter in place and difference the output. For tanh all third
    # derivatives are O(1) at these scales, so the truncation error is ~h^2 = 1e-8 and the
    # rounding error ~eps/h ~ 1e-12; 1e-6 leaves a margin of 100.
    net = Network([3, 5, 4, 2], "tanh", bias_std=0.5, weight_std=1.3, seed=3)
    X = gaussian_inputs(3, 3, 4)
    J = net.jacobian(X)
    params = [p for pair in zip(net.weights, net.biases, strict=True) for p in pair]
    rng = np.random.default_rng(5)
    h = 1e-4
    offset = 0
    for p in params:
        flat = p.reshape(-1)
        for idx in rng.choice(flat.size, size=min(3, flat.size), replace=False):
            old = flat[idx]
            flat[idx] = old + h
            up = net(X)
            flat[idx] = old - h
            down = net(X)
            flat[idx] = old
            fd = (up - down) / (2 * h)
            np.testing.assert_allclose(J[:, :, offset + idx], fd, rtol=1e-6, atol=1e-8)
        offset += flat.size
    assert offset == net.n_params == J.shape[2]


@given(
    n0=st.integers(1, 6),
    n1=st.integers(1, 6),
    b=st.floats(0, 3),
    w=st.floats(0, 3),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=40, deadline=None)
def test_depth_one_ntk_is_sigma1_times_identity(n0, n1, b, w, seed):
    # Seed eqs. (17)-(18): for one affine layer Theta(x, x') = (w^2 x.x'/n0 + b^2) I, any seed.
    rng = np.random.default_rng(seed)
    X1, X2 = rng.standard_normal((3, n0)), rng.standard_normal((2, n0))
    net = Network([n0, n1], "relu", bias_std=b, weight_std=w, seed=seed)
    K = net.ntk(X1, X2)
    sigma1 = w**2 * (X1 @ X2.T) / n0 + b**2
    expected = sigma1[:, :, None, None] * np.eye(n1)
    np.testing.assert_allclose(
        K, expected, rtol=TOL.kernel, atol=1e-13 * (1 + np.abs(sigma1).max())
    )
    np.testing.assert_allclose(net.nngp_empirical(X1, X2), sigma1, rtol=TOL.kernel, atol=1e-13)


def test_symmetry():
    net = Network([3, 8, 8, 3], "erf", bias_std=0.2, seed=7)
    X1, X2 = gaussian_inputs(4, 3, 8), gaussian_inputs(5, 3, 9)
    K12, K21 = net.ntk(X1, X2), net.ntk(X2, X1)
    np.testing.assert_allclose(K12, K21.transpose(1, 0, 3, 2), rtol=TOL.kernel, atol=1e-14)
    K11 = net.ntk(X1)
    np.testing.assert_allclose(K11, K11.transpose(1, 0, 3, 2), rtol=TOL.kernel, atol=1e-14)
    # The Gram matrix over (example, output) pairs is positive semi-definite.
    G = K11.transpose(0, 2, 1, 3).reshape(12, 12)
    assert np.linalg.eigvalsh(G).min() > -1e-12 * np.abs(G).max()
    # X2 = None is the same as X2 = X1, up to rounding: NumPy computes A @ A.T (same object)
    # by BLAS syrk and A @ B.T by gemm, which may round differently
    np.testing.assert_allclose(
        K11, net.ntk(X1, X1), rtol=TOL.rounding, atol=TOL.rounding * np.abs(K11).max()
    )


def test_forward_layers_and_call():
    net = Network([2, 3, 4, 1], "relu", bias_std=0.5, weight_std=2.0, seed=0)
    X = gaussian_inputs(5, 2, 0)
    passes = net.forward(X)
    assert len(passes) == 3
    np.testing.assert_array_equal(passes[0].inputs, X)
    for layer, p in enumerate(passes):
        W, b = net.weights[layer], net.biases[layer]
        expected = 2.0 * p.inputs @ W.T / math.sqrt(W.shape[1]) + 0.5 * b
        np.testing.assert_allclose(p.preactivations, expected, rtol=TOL.map, atol=1e-14)
        if layer:
            np.testing.assert_array_equal(p.inputs, np.maximum(passes[layer - 1].preactivations, 0))
    np.testing.assert_array_equal(net(X), passes[-1].preactivations)
    assert net.n_params == (2 + 1) * 3 + (3 + 1) * 4 + (4 + 1) * 1
    # The empirical NNGP is the last layer's formula on the last hidden activations.
    a = passes[-1].inputs
    np.testing.assert_allclose(net.nngp_empirical(X), 4.0 * a @ a.T / 4 + 0.25, rtol=TOL.map)


def test_seeding_is_reproducible():
    a, b, c = Network([3, 4, 2], seed=5), Network([3, 4, 2], seed=5), Network([3, 4, 2], seed=6)
    for x, y in zip(a.weights + a.biases, b.weights + b.biases, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.weights[0], c.weights[0])
    g = np.random.default_rng(5)
    np.testing.assert_array_equal(Network([3, 4, 2], seed=g).weights[0], a.weights[0])


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"widths": [3]}, "at least 2"),
        ({"widths": [3, 0]}, "positive integer"),
        ({"widths": [3, 2.5]}, "positive integer"),
        ({"widths": "34"}, "sequence"),
        ({"widths": [3, 2], "bias_std": -1.0}, "bias_std"),
        ({"widths": [3, 2], "weight_std": float("nan")}, "weight_std"),
        ({"widths": [3, 2], "seed": -3}, "seed"),
    ],
)
def test_bad_network_arguments(kwargs, match):
    with pytest.raises(InputError, match=match):
        Network(**kwargs)


def test_bad_activation():
    with pytest.raises(ActivationError):
        Network([3, 2], "no_such_activation(")


@pytest.mark.parametrize(
    "X, match",
    [
        (np.ones(3), "2-D"),
        (np.ones((2, 4)), "4 features per input, but 3 are expected"),
        (np.array([[1.0, np.nan, 0.0]]), "NaN or infinity .first at row 0, column 1"),
        (np.array([[1.0, np.inf, 0.0]]), "NaN or infinity"),
        (np.ones((2, 3), dtype=complex), "real numbers"),
        (np.array([["a", "b", "c"]]), "real numbers"),
        (np.ones((0, 3)), "at least one input"),
    ],
)
def test_badgaussian_inputs(X, match):
    net = Network([3, 4, 1], "relu")
    with pytest.raises(InputError, match=match):
        net.ntk(X)
    with pytest.raises(InputError, match=match):
        net(X)


def test_dirac_delta_activation_is_refused_for_ntk():
    net = Network([3, 4, 1], "step", seed=0)
    X = gaussian_inputs(2, 3, 0)
    assert net(X).shape == (2, 1)  # the forward pass is fine
    with pytest.raises(ActivationError, match="Dirac delta"):
        net.ntk(X)
    with pytest.raises(ActivationError, match="Dirac delta"):
        net.jacobian(X)


def test_monte_carlo_and_convergence_argument_checks():
    X = gaussian_inputs(3, 2, 0)
    with pytest.raises(InputError, match="n_samples"):
        monte_carlo_ntk(X, None, [2, 4, 1], n_samples=1)
    with pytest.raises(InputError, match="output"):
        monte_carlo_ntk(X, None, [2, 4, 2], output=2)
    with pytest.raises(InputError, match="depth"):
        convergence_study(X, 1, [4, 8], limit=np.eye(3))
    with pytest.raises(InputError, match="distinct"):
        convergence_study(X, 2, [8, 8], limit=np.eye(3))
    with pytest.raises(InputError, match="limit"):
        convergence_study(X, 2, [4, 8], limit=np.eye(2))
    for bad in (np.ones(3), [[1.0, 2.0], [3.0]], np.array([[np.nan, 1.0]])):
        with pytest.raises(InputError, match="X"):
            convergence_study(bad, 2, [4, 8], limit=np.eye(1))


# --------------------------------------------------------------------------- Monte Carlo
@pytest.mark.parametrize(
    "act, b, w",
    [("relu", 0.0, 1.0), ("relu", 0.5, 1.3), ("erf", 0.3, 1.5), ("identity", 0.2, 0.9)],
)
def test_depth_two_mean_is_unbiased(act, b, w):
    # With one hidden layer z^(1) is exactly Gaussian with covariance Sigma^(1) and the
    # output weights are independent of it, so E[Theta_emp] equals Theta_inf at ANY width:
    # no finite-width bias, only noise. 4 standard errors per entry; with 6 independent-ish
    # entries a false alarm has probability ~4e-4.
    X = gaussian_inputs(3, 4, 21)
    res = monte_carlo_ntk(X, None, [4, 32, 1], act, b, w, n_samples=400, seed=1)
    _, theta = limit_ntk(act, X, 2, b, w)
    assert isinstance(res, MonteCarloResult)
    assert res.samples.shape == (400, 3, 3) and res.n_samples == 400 and res.seed == 1
    z = np.abs(res.mean - theta) / res.stderr
    assert z.max() < 4, (res.mean, theta, res.stderr)
    # ... and the check is sharp: the error bars are small on the kernel's scale
    assert res.stderr.max() < 0.03 * np.abs(theta).max()


def test_deeper_mean_is_close_to_limit():
    # Depth 3 has an O(1/n) bias of E[Theta_emp]; at width 512 it is a few 1e-3 relative,
    # well below 4 standard errors here (~1e-2 relative), so the check is noise-limited.
    X = gaussian_inputs(3, 5, 22)
    res = monte_carlo_ntk(X, X[:2], [5, 512, 512, 1], "relu", 0.2, 1.0, n_samples=48, seed=2)
    _, theta = limit_ntk("relu", np.vstack([X]), 3, 0.2, 1.0)
    theta = theta[:, :2]
    assert res.mean.shape == (3, 2)
    z = np.abs(res.mean - theta) / res.stderr
    assert z.max() < 4, (res.mean, theta, res.stderr)


# --------------------------------------------------------------------------- convergence
def _check_rate(res: ConvergenceResult, allowance: float) -> None:
    assert np.all(np.diff(res.mean_distance) < 0), res.mean_distance
    assert abs(res.slope + 0.5) < 3 * res.slope_stderr + allowance, (
        res.slope,
        res.slope_stderr,
        res.mean_distance,
    )
    # the fit must be informative: a slope error much larger than the allowance would make
    # the check vacuous
    assert res.slope_stderr < 0.1


def test_convergence_rate_relu_depth3():
    # distance ~ C n^{-1/2} (1 + O(n^{-1/2})). How big is the correction here? Measured on
    # these inputs with 200 seeds per width over n = 64..2048: slopes -0.497 +- 0.006 and
    # -0.499 +- 0.006 (two root seeds), sqrt(n) * distance flat at 2.75 +- 2 %. So the
    # model error of the pure power law is below ~0.01 in slope; 0.02 allows for it.
    # Twenty inputs in 10 dimensions keep the per-seed spread of the distance small (~20 %).
    X = gaussian_inputs(20, 10, 30)
    _, theta = limit_ntk("relu", X, 3, 0.1, 1.0)
    res = convergence_study(
        X, 3, [64, 128, 256, 512, 1024], "relu", 0.1, 1.0, n_samples=32, seed=3, limit=theta
    )
    _check_rate(res, 0.02)
    np.testing.assert_array_equal(res.limit, theta)
    assert res.widths.tolist() == [64, 128, 256, 512, 1024] and res.n_samples == 32


@pytest.mark.parametrize("wrong", ["scale", "depth"])
def test_wrong_limit_is_detected(wrong):
    # The rate check must be able to fail. Against a limit 10 % too large the distance
    # stalls near 0.1 (measured slope -0.36 +- 0.03), and against the depth-2 limit it
    # does not decrease at all; the same seeds as above.
    X = gaussian_inputs(20, 10, 30)
    _, theta = limit_ntk("relu", X, 3 if wrong == "scale" else 2, 0.1, 1.0)
    bad = 1.1 * theta if wrong == "scale" else theta
    res = convergence_study(
        X, 3, [64, 128, 256, 512, 1024], "relu", 0.1, 1.0, n_samples=32, seed=3, limit=bad
    )
    assert abs(res.slope + 0.5) > 3 * res.slope_stderr + 0.02, (res.slope, res.slope_stderr)


@pytest.mark.slow
@pytest.mark.parametrize(
    "act, b, w", [("relu", 0.1, 1.0), pytest.param("erf", 0.2, 1.4, marks=pytest.mark.exhaustive)]
)
def test_convergence_rate_thorough(act, b, w):
    # Depth 4, two activations, widths up to 2048: same model-error allowance as above.
    X = gaussian_inputs(16, 8, 31)
    _, theta = limit_ntk(act, X, 4, b, w)
    res = convergence_study(
        X, 4, [64, 128, 256, 512, 1024, 2048], act, b, w, n_samples=64, seed=4, limit=theta
    )
    _check_rate(res, 0.02)


def test_convergence_study_default_limit_uses_reference():
    from ntksym import reference

    X = gaussian_inputs(3, 3, 40)
    _, theta = limit_ntk("erf", X, 2, 0.3, 1.2)
    nngp_ref, theta_ref = reference.kernel("erf", X, depth=2, bias_std=0.3, weight_std=1.2)
    np.testing.assert_allclose(theta_ref, theta, rtol=1e-12)
    # the closed forms of this file against the mpmath referee, deeper and with a kink
    sig, th = limit_ntk("relu", X, 4, 0.2, 1.3)
    sig_ref, th_ref = reference.kernel("relu", X, depth=4, bias_std=0.2, weight_std=1.3)
    np.testing.assert_allclose(sig, sig_ref, rtol=1e-12)
    np.testing.assert_allclose(th, th_ref, rtol=1e-12)
    res = convergence_study(X, 2, [16, 64], "erf", 0.3, 1.2, n_samples=4, seed=0)
    np.testing.assert_allclose(res.limit, theta, rtol=1e-12)
