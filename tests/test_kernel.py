"""ntksym.kernel against the mpmath referee, neural-tangents (optional) and its own invariants."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TOL, gaussian_inputs
from hypothesis import given, settings
from hypothesis import strategies as st

import ntksym
from ntksym import reference
from ntksym.errors import ActivationError, InputError

CASES = [
    ("relu", 3, 0.1, 1.0),
    ("relu", 1, 0.0, 1.0),
    ("erf", 4, 0.2, 1.3),
    ("identity", 3, 0.5, 0.9),
    ("abs", 2, 0.0, 1.0),
    ("tanh", 3, 0.1, 1.0),
    ("sin", 2, 0.3, 1.0),
]


@pytest.mark.parametrize(("name", "depth", "b", "w"), CASES)
def test_matches_mpmath_reference(name: str, depth: int, b: float, w: float) -> None:
    X1, X2 = gaussian_inputs(3, seed=1), gaussian_inputs(2, seed=2)
    k = ntksym.kernel(name, depth=depth, bias_std=b, weight_std=w)
    got = k(X1, X2, get=("nngp", "ntk"))
    ref_nngp, ref_ntk = reference.kernel(name, X1, X2, depth=depth, bias_std=b, weight_std=w)
    # closed forms and the adaptive quadrature (tanh) evaluate to ~1e-15
    np.testing.assert_allclose(got.nngp, ref_nngp, rtol=TOL.kernel, atol=0)
    np.testing.assert_allclose(got.ntk, ref_ntk, rtol=TOL.kernel, atol=0)


def test_identity_network_is_linear_regression_kernel() -> None:
    """With sigma(u) = u: Sigma^(l) = w^(2(l-1)) Sigma^(1) + b^2 sum_{j<l-1} w^(2j), exact."""
    X = gaussian_inputs(5)
    w, b, L = 1.1, 0.3, 4
    s = w**2 * X @ X.T / X.shape[1] + b**2
    sigmas = [s]
    for _ in range(L - 1):
        sigmas.append(w**2 * sigmas[-1] + b**2)
    theta = sum(sigmas[k] * w ** (2 * (L - 1 - k)) for k in range(L))
    K = ntksym.kernel("identity", depth=L, bias_std=b, weight_std=w)(X, get=("nngp", "ntk"))
    np.testing.assert_allclose(K.nngp, sigmas[-1], rtol=TOL.map)
    np.testing.assert_allclose(K.ntk, theta, rtol=TOL.map)


def test_symmetric_call_equals_explicit_pair() -> None:
    X = gaussian_inputs(6)
    k = ntksym.kernel("erf", depth=3, bias_std=0.1)
    K = k(X)
    np.testing.assert_array_equal(K, K.T)
    np.testing.assert_allclose(K, k(X, X), rtol=TOL.map)


def test_near_parallel_and_diagonal_pairs_stay_finite_and_close() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 8))
    X2 = np.vstack([x, x * (1 + 1e-9 * rng.standard_normal(8)), -x, 1e-6 * x, 1e6 * x])
    k = ntksym.kernel("relu", depth=4, bias_std=0.0)
    got = k(x, X2, get=("nngp", "ntk"))
    ref_nngp, ref_ntk = reference.kernel("relu", x, X2, depth=4, bias_std=0.0)
    assert np.all(np.isfinite(got.ntk))
    # relu routes to the generated kernel, which carries S11*S22 - S12^2 through the layers
    # without cancellation (the plain "dual" path loses ~1e-8 here).
    np.testing.assert_allclose(got.nngp, ref_nngp, rtol=TOL.kernel)
    np.testing.assert_allclose(got.ntk, ref_ntk, rtol=TOL.kernel)


@pytest.mark.parametrize("name", ["relu", "abs", "erf"])
def test_dual_path_pairs_each_input_with_itself_exactly(name: str) -> None:
    """K(X, X) on the dual path: an input's pair with itself is one Gaussian at every layer
    (the first layer takes the squared norms from the Gram diagonal, not a second dot
    product that rounds differently; that lost ~1e-8 on relu's and abs's diagonal)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 7)) * np.array([[1e-3], [1], [10], [1], [3], [1e2]])
    got = ntksym.kernel(name, depth=4, bias_std=0.1, backend="dual")(X, get=("nngp", "ntk"))
    for g, want in zip(got, reference.kernel(name, X, depth=4, bias_std=0.1), strict=True):
        np.testing.assert_allclose(np.diag(g), np.diag(want), rtol=TOL.kernel, atol=0)
        np.testing.assert_allclose(g, want, rtol=TOL.kernel, atol=0)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    st.sampled_from(["relu", "erf", "abs", "cos", "gelu"]),
    st.integers(1, 5),
    st.floats(0, 1),
    st.integers(0, 2**16),
)
def test_gram_matrices_are_positive_semidefinite(
    name: str, depth: int, b: float, seed: int
) -> None:
    X = np.random.default_rng(seed).standard_normal((7, 3))
    K = ntksym.kernel(name, depth=depth, bias_std=b)(X, get=("nngp", "ntk"))
    for M in K:
        eig = np.linalg.eigvalsh(M)
        assert eig.min() >= -1e-12 * max(1.0, eig.max())


def test_get_options_and_result_types() -> None:
    X = gaussian_inputs()
    k = ntksym.kernel("relu", depth=2)
    both = k(X, get=("nngp", "ntk"))
    assert both._fields == ("nngp", "ntk")
    only = k(X, get=("nngp",))
    assert only._fields == ("nngp",)
    np.testing.assert_array_equal(only.nngp, k(X, get="nngp"))
    with pytest.raises(InputError, match="get must be"):
        k(X, get="ntk2")


@pytest.mark.parametrize(
    ("X1", "X2", "match"),
    [
        (np.zeros(3), None, "2-D"),
        (np.zeros((0, 3)), None, "at least one"),
        (np.array([[1.0, np.nan]]), None, "NaN or infinity"),
        (np.array([[1.0, np.inf]]), None, "NaN or infinity"),
        (np.array([["a", "b"]]), None, "real numbers"),
        (np.array([[1 + 1j]]), None, "real numbers"),
        (np.ones((2, 3)), np.ones((2, 4)), "same number of features"),
    ],
)
def test_bad_inputs_are_named(X1: np.ndarray, X2: np.ndarray | None, match: str) -> None:
    with pytest.raises(InputError, match=match):
        ntksym.kernel("relu", depth=2)(X1, X2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"depth": 0}, "at least 1"),
        ({"depth": 2.5}, "positive integer"),
        ({"depth": True}, "positive integer"),
        ({"bias_std": -1.0}, ">= 0"),
        ({"weight_std": float("nan")}, "finite"),
        ({"degree": 1}, "degree"),
    ],
)
def test_bad_parameters_are_named(kwargs: dict, match: str) -> None:
    args = {"depth": 2} | kwargs
    with pytest.raises(InputError, match=match):
        ntksym.kernel("relu", **args)


def test_unknown_activation_is_named() -> None:
    with pytest.raises(ActivationError, match="unknown"):
        ntksym.kernel("relu6", depth=2)


def test_step_ntk_on_coincident_inputs_is_refused_not_inf() -> None:
    X = gaussian_inputs(3)
    k = ntksym.kernel("step", depth=3, bias_std=0.1)
    assert np.all(np.isfinite(k(X, get="nngp")))
    with pytest.raises(InputError, match="infinite or undefined"):
        k(X, get="ntk")


def test_float32_and_integer_inputs_are_computed_in_float64() -> None:
    X = np.arange(6).reshape(3, 2)
    k = ntksym.kernel("relu", depth=2)
    K = k(X)
    assert K.dtype == np.float64
    np.testing.assert_allclose(k(X.astype(np.float32)), K, rtol=1e-15)


@pytest.mark.optional
@pytest.mark.parametrize(("name", "depth", "b", "w"), [("relu", 3, 0.1, 1.0), ("erf", 4, 0.2, 1.3)])
def test_matches_neural_tangents(name: str, depth: int, b: float, w: float) -> None:
    pytest.importorskip("neural_tangents")
    import jax

    jax.config.update("jax_enable_x64", True)
    from neural_tangents import stax

    act = {"relu": stax.Relu(), "erf": stax.Erf()}[name]
    layers = []
    for _ in range(depth - 1):
        layers += [stax.Dense(64, W_std=w, b_std=b, parameterization="ntk"), act]
    layers.append(stax.Dense(1, W_std=w, b_std=b, parameterization="ntk"))
    _, _, kernel_fn = stax.serial(*layers)
    X1, X2 = gaussian_inputs(4, seed=5), gaussian_inputs(3, seed=6)
    nt = kernel_fn(X1, X2, ("nngp", "ntk"))
    ours = ntksym.kernel(name, depth=depth, bias_std=b, weight_std=w)(X1, X2, get=("nngp", "ntk"))
    np.testing.assert_allclose(ours.nngp, np.asarray(nt.nngp), rtol=1e-10)
    np.testing.assert_allclose(ours.ntk, np.asarray(nt.ntk), rtol=1e-10)


# ----------------------------------------------------------------------------- backends
@pytest.mark.parametrize("name", ["relu", "erf", "abs", "leaky_relu"])
def test_backends_agree_and_match_reference(name: str) -> None:
    X1, X2 = gaussian_inputs(4, d=5, seed=11), gaussian_inputs(3, d=5, seed=12)
    ref_nngp, ref_ntk = reference.kernel(name, X1, X2, depth=3, bias_std=0.2)
    for backend in ("auto", "numba", "numpy", "dual"):
        got = ntksym.kernel(name, depth=3, bias_std=0.2, backend=backend)(X1, X2, ("nngp", "ntk"))
        np.testing.assert_allclose(got.nngp, ref_nngp, rtol=TOL.kernel, err_msg=backend)
        np.testing.assert_allclose(got.ntk, ref_ntk, rtol=TOL.kernel, err_msg=backend)


def test_auto_backend_uses_generated_module_and_symmetric_result_is_exact() -> None:
    from ntksym.kernels import dispatch

    k = ntksym.kernel("relu", depth=4, bias_std=0.1)
    module = dispatch.generated_module(k.activation, "auto")
    assert module is not None and module.ACTIVATION == "relu"
    X = gaussian_inputs(7, d=4, seed=13)
    K = k(X, get=("nngp", "ntk"))
    np.testing.assert_array_equal(K.ntk, K.ntk.T)
    np.testing.assert_array_equal(K.ntk, module.ntk(X, None, 4, 0.1, 1.0))
    # tanh has no closed form: its generated module integrates by quadrature; auto takes it
    # unless a Gauss-Hermite degree is asked for; an activation with a kink is refused
    tanh = ntksym.kernel("tanh", depth=2).activation
    module = dispatch.generated_module(tanh, "auto")
    assert module is not None and module.ACTIVATION == "tanh"
    assert dispatch.generated_module(tanh, "auto", quadrature=False) is None
    K = ntksym.kernel("tanh", depth=3, bias_std=0.1)(X)
    np.testing.assert_array_equal(K, module.ntk(X, None, 3, 0.1, 1.0))
    np.testing.assert_allclose(K, ntksym.kernel("tanh", 3, 0.1, backend="dual")(X), rtol=TOL.kernel)
    kinked = ntksym.kernel("relu(u) + tanh(u)", depth=2).activation
    assert dispatch.generated_module(kinked, "auto") is None
    with pytest.raises(InputError, match="smooth activation"):
        ntksym.kernel("relu(u) + tanh(u)", depth=2, backend="numba")(X)


def test_numpy_fallback_warns_once_without_numba(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from ntksym.kernels import dispatch

    real_import = builtins.__import__

    def no_numba(name, *args, **kwargs):  # noqa: ANN001, ANN202
        if name == "numba" or name.startswith("numba."):
            raise ImportError("no numba here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_numba)
    monkeypatch.setattr(dispatch, "_WARNED_NO_NUMBA", False)
    monkeypatch.setattr(dispatch, "_MODULES", {})
    monkeypatch.setattr(
        dispatch.importlib, "import_module", lambda n: no_numba(n) if n == "numba" else None
    )
    X = gaussian_inputs(3)
    k = ntksym.kernel("erf", depth=3, bias_std=0.1)
    with pytest.warns(RuntimeWarning, match="Numba is not installed") as rec:
        K = k(X)
        k(X)
    assert len([w for w in rec if "Numba" in str(w.message)]) == 1
    assert dispatch._MODULES[("erf", dispatch.sp_key(k.activation), "numpy")][0].BACKEND == "numpy"
    ref = reference.kernel("erf", X, None, depth=3, bias_std=0.1)[1]
    np.testing.assert_allclose(K, ref, rtol=TOL.kernel)


@pytest.mark.slow  # the mpmath reference takes ~1 min here
def test_tanh_quadrature_converges_for_large_variances() -> None:
    """Gauss-Hermite (degree 64) is off by ~0.8 (relative) here; the adaptive trapezoid is not."""
    X = 3 * gaussian_inputs(2, d=3, seed=14)
    k = ntksym.kernel("tanh", depth=3, bias_std=0.1, weight_std=2.0)
    got = k(X, get=("nngp", "ntk"))
    ref = reference.kernel("tanh", X, None, depth=3, bias_std=0.1, weight_std=2.0)
    np.testing.assert_allclose(got.nngp, ref[0], rtol=TOL.kernel)
    np.testing.assert_allclose(got.ntk, ref[1], rtol=TOL.kernel)
    gh = k.replace(degree=64)(X, get="ntk")
    assert np.max(np.abs(gh / ref[1] - 1)) > 1e-3


def test_bad_backend_is_named() -> None:
    with pytest.raises(InputError, match="backend must be one of"):
        ntksym.kernel("relu", depth=2, backend="cuda")
