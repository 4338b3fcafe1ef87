"""ntksym.predict against neural-tangents' gradient_descent_mse_ensemble (optional peer)."""

import numpy as np
import pytest

import ntksym
from ntksym.predict import gradient_descent_mse

RNG = np.random.default_rng(1234)
X = RNG.standard_normal((9, 3))
Y = RNG.standard_normal((9, 2))
XT = RNG.standard_normal((4, 3))
KERN = ntksym.kernel("relu", 3, 0.3)
ETA = 0.4


@pytest.mark.optional
def test_agrees_with_neural_tangents():
    pytest.importorskip("neural_tangents")
    import jax

    jax.config.update("jax_enable_x64", True)
    from neural_tangents import predict as ntp
    from neural_tangents import stax

    def dense(n):
        return stax.Dense(n, W_std=1.0, b_std=0.3, parameterization="ntk")

    _, _, kfn = stax.serial(dense(64), stax.Relu(), dense(64), stax.Relu(), dense(1))
    y = Y[:, :1]
    ours = gradient_descent_mse(KERN, X, y, ETA)
    theirs = ntp.gradient_descent_mse_ensemble(kfn, X, y, ETA)
    ts = np.array([0.0, 0.1, 1.0, 10.0, np.inf])
    for g in ("ntk", "nngp"):
        a = ours(XT, ts, g, compute_cov=True)
        b = theirs(ts * y.size, XT, g, compute_cov=True)  # their loss is a mean over y.size
        scale = np.abs(a.mean).max()
        np.testing.assert_allclose(a.mean, np.asarray(b.mean), atol=1e-7 * scale)
        np.testing.assert_allclose(a.covariance, np.asarray(b.covariance), atol=1e-7)
        c = theirs(None, XT, g, compute_cov=True)  # their linear-solve path at t = inf
        np.testing.assert_allclose(a.mean[-1], np.asarray(c.mean), atol=1e-7 * scale)
