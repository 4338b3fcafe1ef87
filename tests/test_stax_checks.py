"""ntksym.stax checked three ways: kernel_fn vs the mpmath referee, the finite network's
empirical NTK vs finite differences, and kernel_fn vs Monte Carlo over finite networks."""

import numpy as np
import pytest

from ntksym import stax
from ntksym.architecture import description
from ntksym.empirical import architecture as finite
from ntksym.errors import InputError

RNG = np.random.default_rng(7)
X3 = RNG.standard_normal((3, 4))
X2 = X3[:2]

FAST_ACTS = [
    stax.Relu(),
    stax.LeakyRelu(0.1),
    stax.ABRelu(-0.4, 1.3),
    stax.Abs(),
    stax.Sign(),
    stax.Monomial(3),
    stax.Erf(1.2, 0.7, 0.1),
]
SMOOTH_ACTS = [
    stax.Sigmoid_like(),
    stax.Gelu(),
    stax.Gelu(approximate=True),
    stax.Sin(1.1, 0.8, 0.3),
    stax.Cos(0.9, 1.2, 0.2),
    stax.Exp(0.5, 0.4),
    stax.Gaussian(1.3, -0.6),
    stax.Rbf(0.7),
    stax.Elementwise("tanh(u)"),
]


def residual(width, p="ntk", depth=2):
    block = stax.serial(
        stax.FanOut(2),
        stax.parallel(
            stax.serial(stax.Relu(), stax.Dense(width, 1.2, 0.1, parameterization=p)),
            stax.Identity(),
        ),
        stax.FanInSum(),
        stax.LayerNorm(),
    )
    return stax.serial(
        stax.Dense(width, 1.1, None, parameterization=p),
        stax.repeat(block, depth),
        stax.Erf(),
        stax.Dense(16, 0.9),
    )


def mixed(width, p="standard"):
    return stax.serial(
        stax.Dense(width, 1.3, 0.2, parameterization=p),
        stax.Erf(1.2, 0.7, 0.1),
        stax.Dense(width, 1.1, 0.3, parameterization=p),
        stax.LeakyRelu(0.2),
        stax.Dense(width, 0.8, None, parameterization=p),
        stax.Sign(),
        stax.Dense(16, 1.5, 0.2, parameterization=p),
    )


ARCHS = {
    "residual-ntk": residual(64),
    "residual-standard": residual(64, "standard"),
    "mixed-standard": mixed(64),
    "mixed-ntk": mixed(64, "ntk"),
}


def check_against_reference(net, X, tol=1e-12):
    ours = net.kernel_fn(X, backend="layers")
    (ref,) = stax.reference_kernels(net.description, X, dps=20)
    for a, r in zip(ours, ref, strict=True):
        scale = np.max(np.abs(r))
        assert np.max(np.abs(a - r)) <= tol * scale, (np.max(np.abs(a - r)) / scale, str(net))


# --------------------------------------------------------------------------- mpmath referee
@pytest.mark.parametrize("act", FAST_ACTS, ids=str)
def test_each_fast_activation_matches_the_mpmath_reference(act):
    check_against_reference(stax.serial(stax.Dense(8, 1.2, 0.3), act, stax.Dense(1, 0.9, 0.1)), X3)


@pytest.mark.slow
@pytest.mark.parametrize("act", SMOOTH_ACTS, ids=str)
def test_each_smooth_activation_matches_the_mpmath_reference(act):
    check_against_reference(stax.serial(stax.Dense(8, 1.2, 0.3), act, stax.Dense(1, 0.9, 0.1)), X3)


@pytest.mark.parametrize("name", ["residual-ntk", "mixed-standard"])
def test_architectures_match_the_mpmath_reference(name):
    check_against_reference(ARCHS[name], X2)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["residual-standard", "mixed-ntk"])
def test_more_architectures_match_the_mpmath_reference(name):
    check_against_reference(ARCHS[name], X3)


def test_reference_sees_a_wrong_layer_map():
    """The referee is independent: a kernel with a perturbed Dense map fails the check."""
    good = stax.serial(stax.Dense(8, 1.2, 0.3), stax.Relu(), stax.Dense(1, 0.9, 0.1))
    bad = stax.serial(stax.Dense(8, 1.2, 0.3), stax.Relu(), stax.Dense(1, 0.9, 0.1 + 1e-6))
    (ref,) = stax.reference_kernels(good.description, X3, dps=20)
    ours = bad.kernel_fn(X3, backend="layers")
    assert np.max(np.abs(ours.nngp - ref[0])) > 1e-12 * np.max(np.abs(ref[0]))


def adversarial_inputs():
    """Near-parallel (1e-8), anti-parallel, rescaled, twin, zero, tiny and huge inputs."""
    x, d, y, z = np.random.default_rng(5).standard_normal((4, 6))
    return np.vstack(
        [x, x + 1e-8 * d, -x + 1e-7 * d, 1e3 * x, x * (1 + 1e-9), np.zeros(6), 1e-6 * y, 1e6 * z]
    )


RELU_BLOCK = stax.serial(
    stax.FanOut(2),
    stax.parallel(stax.serial(stax.Relu(), stax.Dense(8, 1.2, 0.1)), stax.Identity()),
    stax.FanInSum(),
    stax.LayerNorm(),
)
ADVERSARIAL = {
    "residual": stax.serial(
        stax.Dense(8, 1.1, 0.2), stax.repeat(RELU_BLOCK, 3), stax.Relu(), stax.Dense(1)
    ),
    "relu-standard": stax.serial(
        *([stax.Dense(8, 1.3, 0.2, parameterization="standard"), stax.Relu()] * 5),
        stax.Dense(1, 1.0, 0.1, parameterization="standard"),
    ),
    "relu-family-mixed": stax.serial(
        stax.Dense(8, 1.3, 0.2),
        stax.Relu(),
        stax.Dense(8, 0.9, 0.5),
        stax.LeakyRelu(0.1),
        stax.Dense(8, 1.6, 0.05),
        stax.Abs(),
        stax.Dense(8, 1.1, 0.3),
        stax.ABRelu(-0.4, 1.3),
        stax.Dense(1, 1.2, 0.1),
    ),
}


@pytest.mark.parametrize(
    "name",
    [
        "residual",
        pytest.param("relu-standard", marks=pytest.mark.slow),
        pytest.param("relu-family-mixed", marks=pytest.mark.slow),
    ],
)
def test_adversarial_inputs_keep_full_precision(name):
    """Each entry within 1e-13 of mpmath: the determinant is carried through Dense layers,
    piecewise-linear activations and sums (by subtraction, ReLU NTKs of near-parallel pairs
    lose ~1e-8 after a few layers)."""
    net, X = ADVERSARIAL[name], adversarial_inputs()
    ours = net.kernel_fn(X, backend="layers")
    (ref,) = stax.reference_kernels(net.description, X, dps=30)
    for a, r in zip(ours, ref, strict=True):
        assert np.max(np.abs(a - r) / np.abs(r)) < 1e-13


# --------------------------------------------------------------------------- finite network
def _flat(params):
    out = []
    if isinstance(params, np.ndarray):
        return [params]
    if params is None:
        return []
    for p in params:
        out += _flat(p)
    return out


@pytest.mark.parametrize("name", list(ARCHS))
def test_empirical_ntk_matches_finite_differences(name):
    """The reverse-mode empirical NTK against central differences over every parameter."""
    net = ARCHS[name].description
    narrow = {"residual-ntk": residual(5), "residual-standard": residual(5, "standard")}
    net = narrow.get(name, stax.serial(*[_narrow(layer) for layer in net.layers])).description
    x = X2
    _, params = finite.init(net, np.random.default_rng(3), x.shape)
    nngp, ntk = finite.empirical_kernels(net, params, x)
    f0 = finite.apply(net, params, x)
    np.testing.assert_allclose(nngp, f0 @ f0.T / f0.shape[1], rtol=1e-14)
    jac = []
    for arr in _flat(params):
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            h = 1e-6 * max(1.0, abs(old))
            arr[idx] = old + h
            up = finite.apply(net, params, x)
            arr[idx] = old - h
            down = finite.apply(net, params, x)
            arr[idx] = old
            jac.append((up - down) / (2 * h))
    J = np.stack(jac)  # (P, N, K)
    fd = np.einsum("pik,pjk->ij", J, J) / J.shape[2]
    np.testing.assert_allclose(ntk, fd, rtol=1e-6, atol=1e-8 * np.abs(fd).max())


def _narrow(layer):
    if isinstance(layer, description.Dense):
        width = 3 if layer.out_dim == 16 else 5
        return description.Dense(width, layer.w_std, layer.b_std, layer.parameterization)
    return layer


def test_init_and_apply_shapes_and_errors():
    init_fn, apply_fn, _ = ARCHS["residual-ntk"]
    shape, params = init_fn(0, (-1, 4))
    assert shape == (-1, 16)
    assert apply_fn(params, X3).shape == (3, 16)
    _, again = init_fn(np.random.default_rng(0), (3, 4))
    np.testing.assert_array_equal(apply_fn(again, X3), apply_fn(params, X3))
    _, key = init_fn(np.array([0, 42], dtype=np.uint32), (3, 4))  # a JAX-style key
    assert apply_fn(key, X3).shape == (3, 16)
    with pytest.raises(InputError, match="rng must be"):
        init_fn("seed", (3, 4))
    with pytest.raises(InputError, match="input shape"):
        init_fn(0, (4,))
    with pytest.raises(InputError, match="takes \\(params, inputs\\) and rng= only"):
        apply_fn(params, X3, mode="train")


# --------------------------------------------------------------------------- Monte Carlo
def check_monte_carlo(net, n_samples, z=4.5):
    X = RNG.standard_normal((4, 5))
    exact = net.kernel_fn(X)
    mc = stax.monte_carlo(net, X, n_samples, seed=11)
    for name in ("nngp", "ntk"):
        mean, sem = getattr(mc, name), getattr(mc, f"{name}_sem")
        kernel = getattr(exact, name)
        # entries that do not fluctuate (Sign's variance is 1 at any width) must be exact
        dev = np.abs(mean - kernel) / np.maximum(sem, 1e-12 * np.max(np.abs(kernel)))
        assert dev.max() < z, (name, dev.max(), str(net))
        # the check has power: the error bars are a few percent of the kernel
        assert np.median(sem) < 0.05 * np.max(np.abs(getattr(exact, name))), name


@pytest.mark.parametrize("name", list(ARCHS))
def test_kernel_fn_matches_monte_carlo(name):
    check_monte_carlo(ARCHS[name], 120)
