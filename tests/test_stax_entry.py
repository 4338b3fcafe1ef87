"""``ntksym.kernel``, ``ntksym.Network`` and ``ntksym.reference.kernel`` take a description."""

import numpy as np
import pytest

import ntksym
from ntksym import reference, stax
from ntksym.errors import InputError
from ntksym.predict import gradient_descent_mse

RNG = np.random.default_rng(17)
X = RNG.standard_normal((5, 3))
Y = RNG.standard_normal((2, 3))

HOMOGENEOUS = stax.serial(
    stax.Dense(16, 1.3, 0.2),
    stax.Relu(),
    stax.Dense(16, 1.3, 0.2),
    stax.Relu(),
    stax.Dense(2, 1.3, 0.2),
)
RESIDUAL = stax.serial(
    stax.Dense(16, 1.1, 0.1),
    stax.FanOut(2),
    stax.parallel(stax.serial(stax.Erf(), stax.Dense(16, 0.9)), stax.Identity()),
    stax.FanInSum(),
    stax.LayerNorm(),
    stax.Dense(2, 1.2, 0.1, parameterization="standard"),
)


def test_kernel_of_a_homogeneous_description_is_the_shorthand():
    k = ntksym.kernel(HOMOGENEOUS)
    assert isinstance(k, ntksym.kernels.DescribedKernel)
    short = ntksym.kernel("relu", 3, 0.2, 1.3)
    for x2 in (None, Y):
        np.testing.assert_array_equal(k(X, x2), short(X, x2))
        np.testing.assert_array_equal(k(X, x2, get="nngp"), short(X, x2, get="nngp"))


@pytest.mark.parametrize("form", ["layer", "triple", "description"])
def test_kernel_takes_every_form_of_a_description(form):
    net = {
        "layer": RESIDUAL,
        "triple": tuple(RESIDUAL),
        "description": RESIDUAL.description,
    }[form]
    k = ntksym.kernel(net)
    both = k(X, Y, get=("nngp", "ntk"))
    ref = RESIDUAL.kernel_fn(X, Y)
    np.testing.assert_array_equal(both.nngp, ref.nngp)
    np.testing.assert_array_equal(k(X, Y), ref.ntk)
    assert k(X[0], Y[1]) == ref.ntk[0, 1]  # scikit-learn's one-pair form
    assert k(X, get=("ntk",)).ntk.shape == (5, 5)
    assert ntksym.kernel(net) == k and hash(ntksym.kernel(net)) == hash(k)


def test_described_kernel_drives_predictions():
    train = RNG.standard_normal((6, 3))
    target = np.sin(train[:, :1])
    predict = gradient_descent_mse(ntksym.kernel(RESIDUAL), train, target)
    assert predict(X, t=None).shape == (5, 1)
    np.testing.assert_allclose(predict(train, t=None), target, atol=1e-6)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: ntksym.kernel(RESIDUAL, 3), "takes only backend="),
        (lambda: ntksym.kernel(RESIDUAL, bias_std=0.1), "takes only backend="),
        (lambda: ntksym.kernel(RESIDUAL, backend="numba"), "backend of a described network"),
        (lambda: ntksym.kernel(stax.serial(stax.Dense(3), stax.FanOut(2))), "2 branches"),
        (lambda: ntksym.kernel(stax.serial(stax.Relu(), stax.Dense(3))), "must follow a Dense"),
    ],
)
def test_kernel_refuses_mismatches(call, match):
    with pytest.raises(InputError, match=match):
        call()


def test_network_of_a_description_matches_the_seed_network():
    """The same weights in ntksym.Network's own (independent) code give the same NTK."""
    ours = ntksym.Network(HOMOGENEOUS, 3, seed=5)
    seed_net = ntksym.Network([3, 16, 16, 2], "relu", bias_std=0.2, weight_std=1.3)
    layers = [p for p in ours.params if p]
    seed_net.weights = [W.T.copy() for W, _ in layers]
    seed_net.biases = [b.ravel().copy() for _, b in layers]
    np.testing.assert_allclose(ours(X), seed_net(X), rtol=1e-13)
    np.testing.assert_allclose(ours.ntk(X, Y), seed_net.ntk(X, Y), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ours.ntk(X), seed_net.ntk(X), rtol=1e-12, atol=1e-14)
    assert ours.ntk(X).shape == (5, 5, 2, 2) and ours.n_outputs == 2


def test_network_of_a_description_with_dropout_and_errors():
    net = stax.serial(stax.Dense(8), stax.Relu(), stax.Dropout(0.5), stax.Dense(2))
    finite = ntksym.Network(net, 3, seed=0)
    a, b = finite.ntk(X, rng=4), finite.ntk(X, rng=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, finite.ntk(X, rng=5))
    assert finite.nngp_empirical(X, Y, rng=1).shape == (5, 2)
    with pytest.raises(InputError, match="give apply_fn an rng"):
        finite(X)
    with pytest.raises(InputError, match="input dimension"):
        ntksym.Network(net, "relu")
    with pytest.raises(InputError, match="input dimension"):
        ntksym.Network(net)
    with pytest.raises(InputError, match="X has 4 features"):
        finite(np.ones((2, 4)), rng=0)
    with pytest.raises(InputError, match="one output"):
        ntksym.Network(stax.serial(stax.Dense(3), stax.FanOut(2)), 3)


def test_reference_kernel_of_a_description():
    net = stax.serial(stax.Dense(8, 1.2, 0.1), stax.LeakyRelu(0.1), stax.Dense(1, 0.9, 0.1))
    nngp, ntk = reference.kernel(net, X[:2], dps=20)
    ((n2, t2),) = stax.reference_kernels(net.description, X[:2], dps=20, method="auto")
    np.testing.assert_array_equal(nngp, n2)
    np.testing.assert_array_equal(ntk, t2)
    ours = ntksym.kernel(net)(X[:2], get=("nngp", "ntk"))
    assert np.max(np.abs(ours.ntk - ntk)) <= 1e-13 * np.max(np.abs(ntk))
    assert np.isnan(reference.kernel(net, X[:2], ntk=False)[1]).all()
    with pytest.raises(InputError, match="do not pass \\['depth'\\]"):
        reference.kernel(net, X[:2], depth=2)
    with pytest.raises(InputError, match="one output"):
        reference.kernel(stax.serial(stax.Dense(3), stax.FanOut(2)), X[:2])
    with pytest.raises(InputError, match="depth must be an integer"):
        reference.kernel("relu", X[:2])


def test_reference_kernels_take_a_layer_its_triple_or_its_description():
    net = stax.serial(stax.Dense(8, 1.2, 0.1), stax.Erf(), stax.Dense(1, 0.9, 0.1))
    want = stax.reference_kernels(net.description, X[:2], dps=20, method="auto")
    for form in (net, tuple(net)):
        got = stax.reference_kernels(form, X[:2], dps=20, method="auto")
        for (a, b), (c, d) in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, c)
            np.testing.assert_array_equal(b, d)
    with pytest.raises(InputError, match="reference_kernels takes a network of ntksym.stax"):
        stax.reference_kernels("relu", X[:2])
