"""ntksym.stax: the description, the combinators' errors, and kernel_fn against ntksym.kernel."""

import numpy as np
import pytest

import ntksym
from ntksym import stax
from ntksym.errors import ActivationError, InputError, NTKSymError
from ntksym.kernels.architecture import homogeneous

RNG = np.random.default_rng(20261203)
X = RNG.standard_normal((5, 4))
Y = RNG.standard_normal((3, 4))


def relu_net(depth, w=1.3, b=0.2, width=64):
    layers = [stax.Dense(width, w, b)]
    for _ in range(depth - 1):
        layers += [stax.Relu(), stax.Dense(width, w, b)]
    return stax.serial(*layers)


def rel(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


# --------------------------------------------------------------------------- description
def test_description_is_immutable_hashable_and_printable():
    a, b = relu_net(3), relu_net(3)
    assert a == b and hash(a) == hash(b) and a.description == b.description
    assert a != relu_net(3, w=1.4)
    assert {a: 1}[b] == 1
    with pytest.raises(AttributeError):
        a.description.layers = ()
    assert str(a).startswith(
        "serial(Dense(64, W_std=1.3, b_std=0.2, parameterization='ntk'), Relu()"
    )
    init_fn, apply_fn, kernel_fn = a  # unpacks as neural-tangents' triple
    assert kernel_fn.net is a.description


def test_repeat_equals_serial():
    block = stax.serial(stax.Relu(), stax.Dense(32, 1.1, 0.4))
    a = stax.serial(stax.Dense(32, 1.1, 0.4), stax.repeat(block, 3))
    b = stax.serial(stax.Dense(32, 1.1, 0.4), *[block] * 3)
    ka, kb = a.kernel_fn(X, backend="layers"), b.kernel_fn(X, backend="layers")
    np.testing.assert_array_equal(ka.ntk, kb.ntk)
    assert homogeneous(a.description) is not None


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: stax.Dense(0), "out_dim must be an integer >= 1"),
        (lambda: stax.Dense(3, W_std=-1.0), "W_std must be a finite real number >= 0"),
        (lambda: stax.Dense(3, b_std=float("nan")), "b_std must be a finite real"),
        (lambda: stax.Dense(3, parameterization="mup"), "parameterization must be one of"),
        (lambda: stax.FanOut(0), "FanOut num must be an integer >= 1"),
        (lambda: stax.LayerNorm(axis=0), "axis must be -1"),
        (lambda: stax.Gaussian(1.0, 0.5), "Gaussian b must be < 0"),
        (lambda: stax.Monomial(-1), "Monomial degree"),
        (lambda: stax.Elementwise(3), "expression string"),
        (lambda: stax.serial(stax.Dense(3), "relu"), "takes layers of ntksym.stax"),
        (lambda: stax.repeat(stax.Relu(), -1), "repeat n must be an integer >= 0"),
        (lambda: stax.Dense(3, 1.0, 0.1, "standard"), "pass parameterization='standard' by"),
        (lambda: stax.Dense(3, batch_axis=1), "batch_axis must be 0"),
        (lambda: stax.Dense(3, channel_axis=0), "channel_axis must be -1"),
        (lambda: stax.LayerNorm(batch_axis=2), "batch_axis must be 0"),
        (lambda: stax.LayerNorm(axis=(0, 1)), "axis must be -1"),
    ],
)
def test_bad_layers_are_refused_with_a_clear_error(make, match):
    with pytest.raises(InputError, match=match):
        make()


def test_neural_tangents_argument_order_and_axes():
    """Dense and LayerNorm take neural-tangents 0.6.5's arguments in its order."""
    by_position = stax.Dense(8, 1.3, 0.2, 0, -1, "standard", (1, 2))
    by_keyword = stax.Dense(8, W_std=1.3, b_std=0.2, parameterization="standard", s=(1, 2))
    assert by_position == by_keyword
    assert by_position.description.parameterization == "standard"
    assert by_position.description.s == (1, 2)
    assert stax.Dense(8, 1.3, batch_axis=-2, channel_axis=1) == stax.Dense(8, 1.3)
    assert stax.LayerNorm((-1,), 1e-6, 0, -1) == stax.LayerNorm(eps=1e-6)
    assert stax.LayerNorm(axis=[1]) == stax.LayerNorm(axis=-1)


def test_unsafe_expression_is_refused():
    with pytest.raises(ActivationError):
        stax.Elementwise("__import__('os').system('true')")


def test_activation_with_jump_and_slope_is_refused():
    with pytest.raises(ActivationError, match="Dirac delta and a nonzero regular part"):
        stax.Elementwise("u + sign(u)")


@pytest.mark.parametrize(
    "net, match",
    [
        (stax.serial(stax.Relu(), stax.Dense(3)), "must follow a Dense layer"),
        (stax.serial(stax.LayerNorm(), stax.Dense(3)), "Gaussian inputs only"),
        (stax.serial(stax.Dense(3), stax.FanInSum()), "needs several branches"),
        (
            stax.serial(stax.Dense(3), stax.FanOut(2), stax.parallel(stax.Dense(3))),
            "parallel with 1 branches needs 1 inputs",
        ),
        (
            stax.serial(stax.Dense(3), stax.FanOut(2), stax.Relu()),
            "takes one input, but the network carries 2 branches",
        ),
        (
            stax.serial(
                stax.Dense(3),
                stax.FanOut(2),
                stax.parallel(stax.Dense(4), stax.Dense(5)),
                stax.FanInSum(),
            ),
            "one width",
        ),
        (
            stax.serial(
                stax.Dense(3),
                stax.FanOut(2),
                stax.parallel(stax.Relu(), stax.Identity()),
                stax.FanInSum(),
            ),
            "centred Gaussian branches only",
        ),
        (
            stax.serial(stax.Dense(3), stax.FanOut(2), stax.FanInSum()),
            "same Gaussian field",
        ),
    ],
)
def test_ill_formed_networks_are_refused(net, match):
    with pytest.raises(InputError, match=match):
        net.kernel_fn(X)


def test_bad_kernel_fn_arguments():
    k = relu_net(2).kernel_fn
    with pytest.raises(InputError, match="get must be"):
        k(X, get="cov")
    with pytest.raises(InputError, match="backend must be one of"):
        k(X, backend="gpu")
    with pytest.raises(InputError, match=r"got keyword arguments \['diagonal_batch'\]"):
        k(X, None, "ntk", diagonal_batch=True)  # a neural-tangents keyword
    with pytest.raises(InputError, match="same number of features"):
        k(X, X[:, :3])
    with pytest.raises(NTKSymError):
        k(np.array([[np.nan, 1.0, 1.0, 1.0]]))


# --------------------------------------------------------------------------- against ntksym.kernel
@pytest.mark.parametrize("act_name, act", [("relu", stax.Relu()), ("erf", stax.Erf())])
@pytest.mark.parametrize("depth", [1, 2, 4])
def test_homogeneous_layer_maps_agree_with_ntksym_kernel(act_name, act, depth):
    layers = [stax.Dense(16, 1.4, 0.3)]
    for _ in range(depth - 1):
        layers += [act, stax.Dense(16, 1.4, 0.3)]
    net = stax.serial(*layers)
    hom = homogeneous(net.description)
    assert hom is not None and hom[1:] == (depth, 0.3, 1.4)
    ref = ntksym.kernel(act_name, depth, 0.3, 1.4)
    for x2 in (None, Y):
        ours = net.kernel_fn(X, x2, backend="layers")
        theirs = ref(X, x2, get=("nngp", "ntk"))
        dual = ntksym.kernel(act_name, depth, 0.3, 1.4, backend="dual")(X, x2, get=("nngp", "ntk"))
        for a, b, c in zip(ours, theirs, dual, strict=True):
            assert rel(a, b) < 8e-16 * depth
            if x2 is not None:  # the "dual" path misses some coincident pairs of K(X, X)
                assert rel(a, c) < 8e-16 * depth
        fast = net.kernel_fn(X, x2)  # dispatched to the generated module
        np.testing.assert_array_equal(fast.ntk, theirs.ntk)


def test_dispatch_only_for_the_homogeneous_network():
    assert (
        homogeneous(stax.serial(stax.Dense(8, 1.0, 0.1), stax.Relu(), stax.Dense(1)).description)
        is None
    )
    std = stax.serial(
        stax.Dense(8, parameterization="standard"),
        stax.Relu(),
        stax.Dense(1, parameterization="standard"),
    )
    assert homogeneous(std.description) is None
    sign = stax.serial(stax.Dense(8), stax.Sign(), stax.Dense(8))
    assert homogeneous(sign.description) is None  # neural-tangents' Sign zeroes the NTK


def test_get_forms_and_exact_symmetry():
    net = stax.serial(
        stax.Dense(8, 1.2, 0.1), stax.Gelu(), stax.Dense(8, 0.8), stax.Erf(), stax.Dense(1)
    )
    both = net.kernel_fn(X)
    assert isinstance(both, ntksym.Kernels)
    np.testing.assert_array_equal(net.kernel_fn(X, get="ntk"), both.ntk)
    np.testing.assert_array_equal(net.kernel_fn(X, get=("ntk",)).ntk, both.ntk)
    np.testing.assert_array_equal(net.kernel_fn(X, get=None).nngp, both.nngp)
    np.testing.assert_array_equal(both.ntk, both.ntk.T)
    np.testing.assert_array_equal(both.nngp, both.nngp.T)
    cross = net.kernel_fn(X, X)
    np.testing.assert_allclose(cross.ntk, both.ntk, rtol=1e-15, atol=0)


def test_branches_at_the_output_give_one_result_each():
    net = stax.serial(
        stax.Dense(8, 1.0, 0.2), stax.FanOut(2), stax.parallel(stax.Relu(), stax.Erf())
    )
    out = net.kernel_fn(X, get="nngp")
    assert isinstance(out, list) and len(out) == 2
    relu = stax.serial(stax.Dense(8, 1.0, 0.2), stax.Relu()).kernel_fn(X, get="nngp")
    np.testing.assert_array_equal(out[0], relu)


# ------------------------------------------------------------------ kernel-level identities
def test_standard_and_ntk_parameterizations_share_the_nngp():
    def net(p):
        return stax.serial(
            stax.Dense(50, 1.3, 0.2, parameterization=p),
            stax.Relu(),
            stax.Dense(7, 0.9, 0.5, parameterization=p),
        )

    ntk_p, std_p = net("ntk").kernel_fn(X), net("standard").kernel_fn(X)
    np.testing.assert_allclose(std_p.nngp, ntk_p.nngp, rtol=1e-15)
    # one hidden layer by hand: Theta_std = n0 Sigma0 w2^2 Sdot + 1 + n1 K1 + 1
    n0 = X.shape[1]
    sigma0 = X @ X.T / n0
    s1 = 1.3**2 * sigma0 + 0.2**2
    d1 = np.sqrt(np.diag(s1))
    rho = np.clip(s1 / np.outer(d1, d1), -1, 1)
    theta = np.arccos(rho)
    np.fill_diagonal(theta, 0.0)  # arccos(rho) with rho rounded near 1 is only sqrt(eps) accurate
    e = np.outer(d1, d1) * (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / (2 * np.pi)
    edot = (np.pi - theta) / (2 * np.pi)
    expected = (n0 * sigma0 + 1.0) * 0.9**2 * edot + 50 * e + 1.0
    np.testing.assert_allclose(std_p.ntk, expected, rtol=1e-12)


def test_layer_norm_makes_the_diagonal_one():
    net = stax.serial(
        stax.Dense(8, 2.0, 0.5), stax.Relu(), stax.Dense(8, 1.7, 0.3), stax.LayerNorm(eps=0.0)
    )
    k = net.kernel_fn(X)
    np.testing.assert_allclose(np.diag(k.nngp), 1.0, rtol=1e-15)
    ku = stax.serial(*net.description.layers[:-1]).kernel_fn(X)  # descriptions compose too
    s = np.sqrt(np.diag(ku.nngp))
    np.testing.assert_allclose(k.ntk, ku.ntk / np.outer(s, s), rtol=1e-14)


def test_sign_restarts_the_ntk():
    net = stax.serial(stax.Dense(8, 1.0, 0.3), stax.Sign(), stax.Dense(8, 1.5, 0.2))
    k = net.kernel_fn(X)
    np.testing.assert_allclose(k.ntk, k.nngp, rtol=1e-15)  # Theta = 0 * w^2 + Sigma


def test_near_parallel_inputs_keep_their_digits_through_the_first_layer():
    x = RNG.standard_normal((1, 6))
    pair = np.vstack([x, x * (1 + 1e-9)])
    net = stax.serial(stax.Dense(4, 1.0, 0.0), stax.Relu(), stax.Dense(1))
    k = net.kernel_fn(pair, backend="layers")
    ref = ntksym.kernel("relu", 2, 0.0, 1.0)(pair, get=("nngp", "ntk"))
    assert rel(k.ntk, ref.ntk) < 1e-15


def test_default_erf_is_the_registered_erf():
    """``Erf()`` is erf itself (its committed kernel); other parameters are the affine erf."""
    assert stax.Erf().description.activation.name == "erf"
    scaled = stax.Erf(a=2.0).description.activation
    assert scaled.registered_base == "affine" and dict(scaled.params)["a"] == 2.0
