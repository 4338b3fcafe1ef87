"""ntksym.predict.gp_inference and max_learning_rate against independent computations.

References: the closed-form Gaussian-process posterior written with NumPy's LU solve and an
explicit inverse; gradient_descent_mse at t = infinity (eigendecomposition, not Cholesky);
gradient descent on the linearised model, iterated, on either side of the stated rate; and,
optionally, neural-tangents' own functions run in a subprocess of its virtual environment.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import ntksym
from ntksym.errors import InputError
from ntksym.predict import Gaussian, gp_inference, gradient_descent_mse, max_learning_rate

RNG = np.random.default_rng(7)
X, XT = RNG.standard_normal((14, 4)), RNG.standard_normal((5, 4))
Y = RNG.standard_normal((14, 2))
KERN = ntksym.kernel("erf", depth=3, bias_std=0.3)
BOTH = ("nngp", "ntk")


def _kernels():
    return KERN(X, get=BOTH), KERN(XT, X, get=BOTH), KERN(XT, get=BOTH)


@pytest.mark.parametrize("absolute", [False, True])
def test_nngp_posterior_is_the_closed_form(absolute: bool) -> None:
    dd, td, tt = _kernels()
    reg = 1e-3
    scale = reg if absolute else reg * np.trace(dd.nngp) / len(X)
    A = dd.nngp + scale * np.eye(len(X))
    post = gp_inference(dd, Y, reg, diag_reg_absolute=absolute)("nngp", td, tt)
    assert isinstance(post, Gaussian)
    np.testing.assert_allclose(post.mean, td.nngp @ np.linalg.solve(A, Y), rtol=1e-10, atol=0)
    cov = tt.nngp - td.nngp @ np.linalg.inv(A) @ td.nngp.T
    np.testing.assert_allclose(post.covariance, cov, atol=1e-10 * np.abs(tt.nngp).max())
    # a plain matrix is taken as the NNGP
    mean = gp_inference(dd.nngp, Y[:, 0], reg, diag_reg_absolute=absolute)("nngp", td.nngp)
    np.testing.assert_allclose(mean, post.mean[:, 0], rtol=1e-12, atol=1e-14)


def test_ntk_posterior_is_gradient_flow_at_infinity() -> None:
    dd, td, tt = _kernels()
    post = gp_inference(dd, Y, 1e-4)("ntk", td, tt)
    flow = gradient_descent_mse(KERN, X, Y, ridge=1e-4)(XT, np.inf, "ntk", compute_cov=True)
    np.testing.assert_allclose(post.mean, flow.mean, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(post.covariance, flow.covariance, atol=1e-9)
    # and the explicit formula of Lee et al. (2019) eq. (16), with an inverse
    T = np.linalg.inv(dd.ntk + 1e-4 * np.trace(dd.ntk) / len(X) * np.eye(len(X)))
    A = T @ td.ntk.T
    cov = tt.nngp + A.T @ dd.nngp @ A - td.nngp @ A - (td.nngp @ A).T
    np.testing.assert_allclose(post.covariance, cov, atol=1e-9)


def test_training_set_and_tuple_get() -> None:
    dd, td, tt = _kernels()
    fn = gp_inference(dd, Y, 0.0)
    both = fn(BOTH)
    np.testing.assert_array_equal(both["ntk"], Y)
    train = fn("nngp", None, True)
    np.testing.assert_array_equal(train.covariance, np.zeros((14, 14)))
    means = fn(("ntk", "nngp"), td)
    assert set(means) == {"ntk", "nngp"} and means["ntk"].shape == (5, 2)


def test_bad_arguments_are_refused() -> None:
    dd, td, tt = _kernels()
    twice = np.vstack([X, X[:1]])
    with pytest.raises(InputError, match="not positive definite.*diag_reg"):
        gp_inference(KERN(twice, get=BOTH), np.zeros(15))("nngp", KERN(XT, twice, get=BOTH))
    with pytest.raises(InputError, match="needs the train-train NTK"):
        gp_inference(dd.nngp, Y)("ntk", td.nngp)
    with pytest.raises(InputError, match="get must be"):
        gp_inference(dd, Y)("ntkgp", td)
    with pytest.raises(InputError, match="diag_reg"):
        gp_inference(dd, Y, -1.0)
    with pytest.raises(InputError, match="rows"):
        gp_inference(dd, Y[:3])
    with pytest.raises(InputError, match="square"):
        max_learning_rate(np.ones((2, 3)))
    with pytest.raises(InputError, match="y_train_size"):
        max_learning_rate(dd.ntk, 0)


def _residual_after(eta: float, theta: np.ndarray, m: int, steps: int) -> float:
    """|f_k - Y| after k steps of gradient descent on the mean loss (linearised network)."""
    r = np.ones(theta.shape[0])  # f_0 - Y
    step = np.eye(theta.shape[0]) - (eta / m) * theta
    for _ in range(steps):
        r = step @ r
    return float(np.linalg.norm(r))


def test_max_learning_rate_separates_convergence_from_divergence() -> None:
    theta = KERN(X)
    for m in (None, Y.size):
        lr = max_learning_rate(theta, m)
        size = len(X) if m is None else m
        assert _residual_after(0.98 * lr, theta, size, 2000) < 1.0
        assert _residual_after(1.02 * lr, theta, size, 2000) > 1e3
    # sum loss: 2 / lambda_max, the mean loss's rate over m
    assert max_learning_rate(theta, 1) == pytest.approx(2 / np.linalg.eigvalsh(theta)[-1])


#: neural-tangents' interpreter (a separate virtual environment; the test is skipped without)
NT_PYTHON = Path(os.environ.get("NTKSYM_NT_PYTHON", "/tmp/nt-venv/bin/python"))

_PEER = """
import collections, json, sys, numpy as np, jax
jax.config.update("jax_enable_x64", True)
from neural_tangents import predict
d = np.load(sys.argv[1])
Kernel = collections.namedtuple("Kernel", "nngp ntk")
dd, td, tt = (Kernel(d[p + "nngp"], d[p + "ntk"]) for p in ("dd_", "td_", "tt_"))
fn = predict.gp_inference(dd, d["y"], diag_reg=1e-3)
out = {g: [np.asarray(v).tolist() for v in fn(g, td, tt)] for g in ("nngp", "ntk")}
try:  # (0.6.5 calls scipy's eigvalsh(eigvals=...), which newer SciPy no longer takes)
    out["lr"] = float(predict.max_learning_rate(d["dd_ntk"], y_train_size=int(d["y"].size)))
except TypeError:
    out["lr"] = None
print(json.dumps(out))
"""


@pytest.mark.optional
def test_agrees_with_neural_tangents(tmp_path: Path) -> None:
    if not NT_PYTHON.exists():
        pytest.skip(f"neural-tangents' Python not found at {NT_PYTHON} (NTKSYM_NT_PYTHON)")
    dd, td, tt = _kernels()
    arrays = {
        f"{p}_{g}": getattr(k, g) for p, k in (("dd", dd), ("td", td), ("tt", tt)) for g in BOTH
    }
    np.savez(tmp_path / "k.npz", y=Y, **arrays)
    (tmp_path / "peer.py").write_text(_PEER)
    proc = subprocess.run(
        [str(NT_PYTHON), str(tmp_path / "peer.py"), str(tmp_path / "k.npz")],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    assert proc.returncode == 0, proc.stderr
    theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    ours = gp_inference(dd, Y, 1e-3)
    for g in BOTH:
        mean, cov = ours(g, td, tt)
        np.testing.assert_allclose(mean, theirs[g][0], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(cov, theirs[g][1], atol=1e-10)
    if theirs["lr"] is not None:
        assert max_learning_rate(dd.ntk, Y.size) == pytest.approx(theirs["lr"], rel=1e-10)
