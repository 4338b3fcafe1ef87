"""ntksym.sklearn: the NTK and NNGP as scikit-learn kernels, in scikit-learn's estimators."""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
from conftest import gaussian_inputs

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_diabetes  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.gaussian_process import GaussianProcessRegressor  # noqa: E402
from sklearn.gaussian_process.kernels import ConstantKernel, WhiteKernel  # noqa: E402
from sklearn.kernel_ridge import KernelRidge  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.svm import SVR  # noqa: E402

import ntksym  # noqa: E402
from ntksym.errors import InputError  # noqa: E402
from ntksym.sklearn import NNGP, NTK  # noqa: E402


def numeric_gradient(kernel, X, h=1e-6):
    """Central differences of k(X) in the kernel's log-hyperparameters (scikit-learn's theta)."""
    theta = kernel.theta.copy()
    cols = []
    for i in range(theta.size):
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        cols.append((kernel.clone_with_theta(up)(X) - kernel.clone_with_theta(down)(X)) / (2 * h))
    return np.stack(cols, axis=-1)


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    X, y = X[:120], y[:120]
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std()


def test_import_ntksym_does_not_import_sklearn():
    code = "import sys, ntksym; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_sklearn_is_one_clear_line():
    code = "import sys; sys.modules['sklearn'] = None; import ntksym.sklearn"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last == "ImportError: ntksym.sklearn needs scikit-learn: pip install 'ntksym[sklearn]'"


@pytest.mark.parametrize("cls, get", [(NTK, "ntk"), (NNGP, "nngp")])
def test_values_diag_and_gradient(cls, get):
    X = gaussian_inputs(6, 3, seed=0)
    k = cls("erf", depth=3, bias_std=0.3, weight_std=1.4)
    K = k(X)
    ref = ntksym.kernel("erf", depth=3, bias_std=0.3, weight_std=1.4)(X, get=get)
    np.testing.assert_array_equal(K, ref)
    np.testing.assert_allclose(k.diag(X), np.diag(K), rtol=1e-14)
    K2, dK = k(X, eval_gradient=True)
    np.testing.assert_allclose(K2, K, rtol=1e-14)
    assert dK.shape == (6, 6, 2)
    np.testing.assert_allclose(dK, numeric_gradient(k, X), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(k(X, X[:2]), ref[:, :2], rtol=1e-14)


def test_hyperparameters_theta_and_fixed_bounds():
    k = NTK("relu", depth=3, bias_std=0.1, weight_std=2.0)
    assert [hp.name for hp in k.hyperparameters] == ["bias_std", "weight_std"]
    np.testing.assert_allclose(k.theta, np.log([0.1, 2.0]))
    np.testing.assert_allclose(k.bounds, np.log([[1e-5, 1e2], [1e-2, 1e2]]))
    fixed = NTK("relu", depth=3, bias_std=0.1, weight_std=2.0, weight_std_bounds="fixed")
    X = gaussian_inputs(4, 3, seed=1)
    _, dK = fixed(X, eval_gradient=True)
    _, dK_all = k(X, eval_gradient=True)
    assert dK.shape == (4, 4, 1)
    np.testing.assert_array_equal(dK[..., 0], dK_all[..., 0])
    assert fixed.theta.shape == (1,)
    assert not k.is_stationary()


def test_clone_params_pickle_repr():
    k = NTK("leaky_relu", depth=4, bias_std=0.2)
    c = clone(k)
    assert c == k and c is not k
    assert pickle.loads(pickle.dumps(k)) == k
    assert k.get_params()["depth"] == 4
    k2 = clone(k).set_params(depth=2, activation="erf")
    assert (k2.depth, k2.activation) == (2, "erf")
    assert repr(k) == "NTK(activation='leaky_relu', depth=4, bias_std=0.2, weight_std=1)"
    X = gaussian_inputs(3, 2, seed=2)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(k))(X), k(X))


def test_composition_gradients():
    X = gaussian_inputs(5, 3, seed=3)
    k = ConstantKernel(2.0) * NTK("relu", depth=3, bias_std=0.5) + WhiteKernel(0.1)
    K, dK = k(X, eval_gradient=True)
    assert dK.shape == (5, 5, 4)
    np.testing.assert_allclose(dK, numeric_gradient(k, X), rtol=1e-7, atol=1e-9)


def test_errors():
    X = gaussian_inputs(3, 2, seed=4)
    with pytest.raises(ValueError, match="Y is None"):
        NTK()(X, X, eval_gradient=True)
    with pytest.raises(InputError, match="bias_std must be > 0 to be fitted"):
        NTK(bias_std=0.0)(X, eval_gradient=True)
    _, dK = NTK(bias_std=0.0, bias_std_bounds="fixed")(X, eval_gradient=True)
    assert dK.shape == (3, 3, 1)
    with pytest.raises(InputError, match="depth"):
        NTK(depth=0)(X)
    with pytest.raises(InputError, match="Dirac delta"):
        NTK("step")(X, eval_gradient=True)


def test_gp_fit_improves_marginal_likelihood_and_gradient_is_exact(diabetes):
    X, y = diabetes
    # (no ConstantKernel factor: for relu it would duplicate the overall scale of the NTK,
    # which is homogeneous in (bias_std, weight_std))
    kernel = NTK("relu", depth=3) + WhiteKernel()
    gp = GaussianProcessRegressor(kernel=kernel, random_state=0).fit(X, y)
    start = gp.log_marginal_likelihood(gp.kernel.theta)
    assert gp.log_marginal_likelihood_value_ > start + 10
    # scikit-learn's own check: the analytic gradient of the log marginal likelihood
    # against its finite differences, at the optimum and at the start
    for theta in (gp.kernel_.theta, gp.kernel.theta + 0.3):
        _, grad = gp.log_marginal_likelihood(theta, eval_gradient=True)
        h = 1e-6
        fd = [
            (
                gp.log_marginal_likelihood(theta + h * e, clone_kernel=True)
                - gp.log_marginal_likelihood(theta - h * e, clone_kernel=True)
            )
            / (2 * h)
            for e in np.eye(theta.size)
        ]
        np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-5)


#: L-BFGS-B run to convergence: scipy's default stop (relative decrease of the objective
#: below 2.2e-9, i.e. 3e-7 on a log likelihood of 146) left the finite-difference fit with a
#: gradient of 7e-3 where the curvature is 31 to 55: 2e-4 from the optimum in log(weight_std).
_CONVERGED = {"ftol": 1e-14, "gtol": 1e-9}


def test_gp_fit_agrees_with_finite_difference_optimisation(diabetes, monkeypatch):
    """Fits with the kernel's gradient and with finite differences reach the same optimum.

    Both optimisers run to convergence (``_CONVERGED``; with scipy's default stop the two
    fits ended 2e-4 to 3.4e-4 apart in weight_std, wherever their paths happened to stop:
    the cause of the earlier failures, not the gradient). What the likelihood identifies
    is compared: weight_std and the noise level (measured 2e-7 and 2e-8 apart, curvature 31
    to 55 in log space), the likelihood and the predictions. ``bias_std`` is not: the
    likelihood changes by 5e-9 when log(bias_std) moves by 0.01 (curvature 1e-6), so one fit
    ends at its lower bound 1e-5 and the other near 5e-5, and the likelihood still differs
    by up to 7e-7 along that direction (measured 2.9e-7).
    """
    # one objective throughout: no NumPy stand-in answering while Numba compiles
    monkeypatch.setenv("NTKSYM_BACKGROUND_COMPILE", "0")
    from scipy.optimize import minimize

    X, y = diabetes
    kernel = NNGP("erf", depth=2) + WhiteKernel()

    def optimizer(gradient: bool):
        def run(obj_func, initial_theta, bounds):
            fun = obj_func if gradient else (lambda t: obj_func(t, eval_gradient=False))
            res = minimize(fun, initial_theta, method="L-BFGS-B", jac=gradient, bounds=bounds,
                           options=_CONVERGED)  # fmt: skip
            return res.x, res.fun

        return run

    with warnings.catch_warnings():  # (bias_std at its lower bound: the flat direction)
        warnings.simplefilter("ignore", ConvergenceWarning)
        exact = GaussianProcessRegressor(kernel=kernel, optimizer=optimizer(True)).fit(X, y)
        approx = GaussianProcessRegressor(kernel=kernel, optimizer=optimizer(False)).fit(X, y)
    lml = exact.log_marginal_likelihood_value_, approx.log_marginal_likelihood_value_
    assert lml[0] >= lml[1] - 1e-6 and abs(lml[0] - lml[1]) < 1e-6
    fitted = [(f.kernel_.k1.weight_std, f.kernel_.k2.noise_level) for f in (exact, approx)]
    np.testing.assert_allclose(fitted[0], fitted[1], rtol=1e-5)
    np.testing.assert_allclose(exact.predict(X), approx.predict(X), rtol=0, atol=1e-5)


def test_kernel_ridge_with_callable_and_precomputed(diabetes):
    X, y = diabetes
    X, y = X[:40], y[:40]
    k = ntksym.kernel("relu", depth=3, bias_std=0.1)
    callable_fit = KernelRidge(kernel=k, alpha=0.1).fit(X, y)
    pre = KernelRidge(kernel="precomputed", alpha=0.1).fit(k(X), y)
    np.testing.assert_allclose(callable_fit.predict(X[:5]), pre.predict(k(X[:5], X)), rtol=1e-10)
    assert k(X[0], X[1]) == pytest.approx(k(X[:1], X[1:2])[0, 0], rel=1e-15)
    with pytest.raises(InputError, match="two 1-D vectors"):
        k(X[0], X[:2])


def test_svr_grid_search_and_pipeline(diabetes):
    X, y = diabetes
    k = ntksym.kernel("relu", depth=3, bias_std=0.1)
    svr = SVR(kernel=k).fit(X, y)
    svr_pre = SVR(kernel="precomputed").fit(k(X), y)
    np.testing.assert_allclose(svr.predict(X[:5]), svr_pre.predict(k(X[:5], X)), rtol=1e-8)
    grid = GridSearchCV(
        GaussianProcessRegressor(kernel=NTK() + WhiteKernel(), optimizer=None),
        {"kernel__k1__depth": [1, 3], "kernel__k1__activation": ["relu", "erf"]},
        cv=3,
    ).fit(X, y)
    assert grid.best_params_["kernel__k1__depth"] in (1, 3)
    pipe = make_pipeline(StandardScaler(), GaussianProcessRegressor(kernel=NNGP() + WhiteKernel()))
    assert pipe.fit(X, y).score(X, y) > 0.3
