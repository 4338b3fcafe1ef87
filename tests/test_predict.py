"""ntksym.predict: infinite-width gradient-flow predictions."""

import sys
from collections import namedtuple
from pathlib import Path

import mpmath
import numpy as np
import pytest

import ntksym
from ntksym.derive.loader import package_derivations_dir
from ntksym.errors import InputError
from ntksym.predict import Gaussian, gradient_descent_mse

ROOT = Path(__file__).resolve().parents[1]

RNG = np.random.default_rng(1234)
X = RNG.standard_normal((9, 3))
Y = RNG.standard_normal((9, 2))
XT = RNG.standard_normal((4, 3))
KERN = ntksym.kernel("relu", 3, 0.3)
ETA = 0.4


@pytest.fixture(scope="module")
def pred():
    return gradient_descent_mse(KERN, X, Y, ETA)


def _mp_expm(M: np.ndarray) -> np.ndarray:
    with mpmath.workdps(40):
        E = mpmath.expm(mpmath.matrix(M.tolist()))
        return np.array(E.tolist(), dtype=float)


def test_t0_mean_is_zero(pred):
    assert np.all(pred(XT, 0.0) == 0)
    assert pred(XT, 0.0).shape == (4, 2)


def test_t_inf_is_kernel_regression(pred):
    th = KERN(X, get="ntk")
    ref = KERN(XT, X, get="ntk") @ np.linalg.solve(th, Y)
    np.testing.assert_allclose(pred(XT, np.inf), ref, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(pred(XT, None), ref, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(pred(X, np.inf), Y, rtol=1e-8, atol=1e-9)
    k = KERN(X, get="nngp")
    ref_nngp = KERN(XT, X, get="nngp") @ np.linalg.solve(k, Y)
    np.testing.assert_allclose(pred(XT, np.inf, get="nngp"), ref_nngp, rtol=1e-9, atol=1e-10)


def test_train_derivative_is_the_ode(pred):
    th = KERN(X, get="ntk")
    h = 1e-4
    for t in (0.0, 0.5, 4.0):
        if t == 0:  # second-order one-sided difference
            d = (-3 * pred(X, 0.0) + 4 * pred(X, h) - pred(X, 2 * h)) / (2 * h)
        else:
            d = (pred(X, t + h) - pred(X, t - h)) / (2 * h)
        rhs = -ETA * th @ (pred(X, t) - Y)
        np.testing.assert_allclose(d, rhs, rtol=1e-6, atol=1e-7)


def test_eigen_path_matches_mpmath_expm(pred):
    th = KERN(X, get="ntk")
    tx = KERN(XT, X, get="ntk")
    ts = np.array([0.01, 0.7, 5.0])
    got = pred(XT, ts)
    assert got.shape == (3, 4, 2)
    for i, t in enumerate(ts):
        E = _mp_expm(-ETA * th * t)
        ref = tx @ np.linalg.solve(th, (np.eye(len(X)) - E) @ Y)
        np.testing.assert_allclose(got[i], ref, rtol=1e-8, atol=1e-10)


def test_small_time_keeps_digits():
    # (1 - e^{-eta lam t}) / lam ~ eta t: at t = 1e-12 the mean is eta t Theta(x,X) Y
    p = gradient_descent_mse(KERN, X, Y, ETA)
    t = 1e-12
    ref = ETA * t * KERN(XT, X, get="ntk") @ Y
    np.testing.assert_allclose(p(XT, t), ref, rtol=1e-9)


def test_covariance_identities(pred):
    nngp_tt = KERN(XT, get="nngp")
    g0 = pred(XT, 0.0, compute_cov=True)
    assert isinstance(g0, Gaussian)
    np.testing.assert_allclose(g0.covariance, nngp_tt, atol=1e-12)  # t = 0: the prior
    # NTK covariance at X_test = X_train: e^{-eta Th t} K e^{-eta Th t}
    th, K = KERN(X, get="ntk"), KERN(X, get="nngp")
    for t in (0.3, 2.0):
        E = _mp_expm(-ETA * th * t)
        np.testing.assert_allclose(pred(X, t, compute_cov=True).covariance, E @ K @ E, atol=1e-9)
    # NNGP at t = inf is the GP posterior
    kx = KERN(XT, X, get="nngp")
    post = nngp_tt - kx @ np.linalg.solve(K, kx.T)
    np.testing.assert_allclose(pred(XT, np.inf, "nngp", True).covariance, post, atol=1e-9)
    c = pred(XT, np.array([0.1, 1.0, np.inf]), compute_cov=True).covariance
    assert c.shape == (3, 4, 4)
    for ci in c:
        assert np.linalg.eigvalsh(ci).min() > -1e-9


def test_ridge_matches_explicit_regulariser():
    th = KERN(X, get="ntk")
    r = 0.05
    p = gradient_descent_mse(KERN, X, Y, ETA, ridge=r)
    reg = th + r * np.trace(th) / len(X) * np.eye(len(X))
    ref = KERN(XT, X, get="ntk") @ np.linalg.solve(reg, Y)
    np.testing.assert_allclose(p(XT, np.inf), ref, rtol=1e-10)
    pa = gradient_descent_mse(KERN, X, Y, ETA, ridge=r, diag_reg_absolute=True)
    ref = KERN(XT, X, get="ntk") @ np.linalg.solve(th + r * np.eye(len(X)), Y)
    np.testing.assert_allclose(pa(XT, np.inf), ref, rtol=1e-10)


def test_1d_targets_and_default_test_points():
    p = gradient_descent_mse(KERN, X, Y[:, 0], ETA)
    assert p(XT, 1.0).shape == (4,)
    np.testing.assert_allclose(p(None, np.inf), Y[:, 0], atol=1e-8)


Pair = namedtuple("Pair", "nngp ntk")


def _fixed(ntk, nngp=None):
    nngp = ntk if nngp is None else nngp

    def k(X1, X2=None, get=("nngp", "ntk")):
        i = X1[:, 0].astype(int)
        j = i if X2 is None else X2[:, 0].astype(int)
        return Pair(nngp[np.ix_(i, j)], ntk[np.ix_(i, j)])

    return k


def test_singular_and_non_psd_kernels():
    idx = np.arange(3, dtype=float)[:, None]
    v = np.array([1.0, 2.0, 3.0])
    singular = np.outer(v, v)
    p = gradient_descent_mse(_fixed(singular), idx, [1.0, 0.0, 0.0])
    assert np.all(np.isfinite(p(idx, 2.0)))  # finite t is fine
    with pytest.raises(InputError, match=r"singular \(smallest eigenvalue.*ridge"):
        p(idx, np.inf)
    ok = gradient_descent_mse(_fixed(singular), idx, [1.0, 0.0, 0.0], ridge=1e-3)
    assert np.all(np.isfinite(ok(idx, np.inf)))
    bad = np.diag([1.0, 1.0, -0.5])
    q = gradient_descent_mse(_fixed(bad), idx, [1.0, 0.0, 0.0])
    with pytest.raises(
        InputError,
        match=r"not positive semi-definite: smallest eigenvalue "
        r"-5\.000e-01.*ridge",
    ):
        q(idx, 1.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(X_train=X, Y_train=Y[:5]), "Y_train has 5 rows but X_train has 9"),
        (dict(X_train=X, Y_train=np.full_like(Y, np.nan)), "NaN"),
        (dict(X_train=np.where(X > 1, np.nan, X), Y_train=Y), "NaN or infinity"),
        (dict(X_train=X[:, 0], Y_train=Y), "2-D"),
        (dict(X_train=X, Y_train=Y, learning_rate=0.0), "learning_rate"),
        (dict(X_train=X, Y_train=Y, learning_rate=float("nan")), "learning_rate"),
        (dict(X_train=X, Y_train=Y, ridge=-1.0), "ridge"),
        (dict(X_train=X, Y_train=Y[:, :, None]), r"shape \(N,\) or \(N, k\)"),
    ],
)
def test_bad_construction(kwargs, match):
    with pytest.raises(InputError, match=match):
        gradient_descent_mse(KERN, **kwargs)


def test_bad_calls(pred):
    with pytest.raises(InputError, match="t must be >= 0"):
        pred(XT, -1.0)
    with pytest.raises(InputError, match="NaN"):
        pred(XT, [1.0, np.nan])
    with pytest.raises(InputError, match="get must be"):
        pred(XT, 1.0, get="both")
    with pytest.raises(InputError, match="features"):
        pred(XT[:, :2], 1.0)
    with pytest.raises(InputError, match="kernel must be"):
        gradient_descent_mse("relu", X, Y)


def test_derivation_verifies():
    from ntksym.derive.loader import load_derivation

    deriv = load_derivation(package_derivations_dir() / "linearised.py")
    results = deriv.run()
    assert {r.label: r.verdict for r in results} == {
        "1": "assumed",
        **{str(i): "verified" for i in range(2, 8)},
    }


def test_derivation_checks_can_fail(monkeypatch):
    from ntksym.derive.loader import load_derivation

    mod_deriv = load_derivation(package_derivations_dir() / "linearised.py")
    mod = sys.modules["ntksym.derivations.linearised"]
    # a wrong sign in the exponential: the ODE check must fail
    orig = mod._rotation_kernel

    def wrong():
        theta, expo, inv, lam = orig()
        return theta, expo.subs(mod.eta, -mod.eta), inv, lam

    monkeypatch.setattr(mod, "_rotation_kernel", wrong)
    verdict = mod.d4({})
    assert verdict.status == "failed" and "ODE" in verdict.detail
    assert mod_deriv.name == "linearised"


def test_mean_loss_is_the_ode_with_eta_over_m():
    # neural-tangents' mean loss ||f - Y||^2 / (2 m), m = Y.size: df/dt = -(eta/m) Theta (f - Y),
    # integrated here by RK4 from the mean initial output 0
    rng = np.random.default_rng(5)
    X, Y = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    k = ntksym.kernel("erf", depth=2, bias_std=0.2)
    theta = k(X, get="ntk")
    rate = 0.7 / Y.size

    def rhs(f):
        return -rate * theta @ (f - Y)

    f, t, steps = np.zeros_like(Y), 3.0, 3000
    h = t / steps
    for _ in range(steps):
        k1 = rhs(f)
        k2 = rhs(f + h / 2 * k1)
        k3 = rhs(f + h / 2 * k2)
        k4 = rhs(f + h * k3)
        f = f + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    pred = gradient_descent_mse(k, X, Y, learning_rate=0.7, loss="mean")
    np.testing.assert_allclose(pred(X, t=t), f, rtol=1e-10, atol=1e-12)
    with pytest.raises(InputError, match="loss must be"):
        gradient_descent_mse(k, X, Y, loss="average")
