"""Dropout and the standard parameterization's width multipliers ``Dense(..., s=...)``.

Each is checked against the mpmath referee (including a repeated input, which Dropout
treats as a different example), against Monte Carlo over finite networks with their
random masks, and its finite network's NTK against finite differences; the optional
neural-tangents comparison is in ``tests/test_stax_nt.py``.
"""

import numpy as np
import pytest

from ntksym import stax
from ntksym.empirical import architecture as finite
from ntksym.errors import InputError

RNG = np.random.default_rng(21)
X = RNG.standard_normal((3, 4))
X_TWIN = np.vstack([X, X[:1]])  # row 3 is row 0 again: another example, another mask


def dropout_net(width=64):
    return stax.serial(
        stax.Dense(width, 1.2, 0.1),
        stax.Relu(),
        stax.Dropout(0.7),
        stax.Dense(width, 1.1, 0.2),
        stax.LeakyRelu(0.2),
        stax.Dropout(0.5),
        stax.Dense(8, 0.9),
    )


def multiplier_net(width=64):
    return stax.serial(
        stax.Dense(width, 1.2, 0.1, parameterization="standard", s=(1, 3)),
        stax.Relu(),
        stax.Dense(width, 1.1, 0.2, parameterization="standard", s=(3, 2)),
        stax.Relu(),
        stax.Dense(8, 0.9, None, parameterization="standard", s=(2, 1)),
    )


NETS = {"dropout": dropout_net, "multipliers": multiplier_net}


@pytest.mark.parametrize("name", list(NETS))
def test_matches_the_mpmath_reference(name):
    net = NETS[name]()
    for x1, x2 in ((X_TWIN, None), (X, X_TWIN)):
        ours = net.kernel_fn(x1, x2, backend="layers")
        (ref,) = stax.reference_kernels(net.description, x1, x2, dps=20)
        for a, r in zip(ours, ref, strict=True):
            assert np.max(np.abs(a - r)) <= 1e-13 * np.max(np.abs(r))


def test_dropout_scales_only_an_example_paired_with_itself():
    """Independent of both evaluators: the last Dropout's effect on K(X, X) by hand."""
    head = stax.serial(*dropout_net().description.layers[:-2])
    full = stax.serial(head, stax.Dropout(0.5))
    k_head = head.kernel_fn(X_TWIN, get="nngp")
    k_full = full.kernel_fn(X_TWIN, get="nngp")
    expected = k_head + np.diag(np.diag(k_head))  # 1/rate = 2 on the diagonal only
    np.testing.assert_allclose(k_full, expected, rtol=1e-15)
    assert k_full[0, 3] == k_head[0, 3]  # the twin: same input, another mask
    cross = full.kernel_fn(X, X, get="nngp")  # X2 given: every pair two examples
    np.testing.assert_array_equal(cross, head.kernel_fn(X, X, get="nngp"))
    test_mode = stax.serial(head, stax.Dropout(0.5, mode="test"))
    np.testing.assert_array_equal(test_mode.kernel_fn(X_TWIN, get="nngp"), k_head)


def test_width_multipliers_change_only_the_ntk_width():
    """s = (s_in, s_out) with matching neighbours gives the s = (1, 1) kernels."""
    plain = stax.serial(
        stax.Dense(64, 1.2, 0.1, parameterization="standard"),
        stax.Relu(),
        stax.Dense(64, 1.1, 0.2, parameterization="standard"),
        stax.Relu(),
        stax.Dense(8, 0.9, None, parameterization="standard"),
    )
    a, b = plain.kernel_fn(X), multiplier_net().kernel_fn(X)
    np.testing.assert_allclose(b.nngp, a.nngp, rtol=1e-15)
    np.testing.assert_allclose(b.ntk, a.ntk, rtol=1e-14)
    odd = stax.serial(stax.Dense(64, 1.2, 0.1, parameterization="standard", s=(1, 3)), stax.Relu())
    odd = stax.serial(odd, stax.Dense(8, 1.0, None, parameterization="standard", s=(2, 1)))
    base = stax.serial(stax.Dense(64, 1.2, 0.1, parameterization="standard"), stax.Relu())
    k = stax.serial(base, stax.Dense(8, 1.0, None, parameterization="standard")).kernel_fn(X)
    nngp_relu = base.kernel_fn(X, get="nngp")
    # the last layer counts 64 * 3 / 2 inputs instead of 64: NTK += (96 - 64) Sigma_relu
    np.testing.assert_allclose(odd.kernel_fn(X).ntk, k.ntk + 32 * nngp_relu, rtol=1e-14)


@pytest.mark.parametrize("name", list(NETS))
def test_kernel_fn_matches_monte_carlo(name):
    exact = NETS[name]().kernel_fn(X_TWIN)
    mc = stax.monte_carlo(NETS[name](), X_TWIN, 120, seed=4)
    for kind in ("nngp", "ntk"):
        mean, sem = getattr(mc, kind), getattr(mc, f"{kind}_sem")
        kernel = getattr(exact, kind)
        assert np.max(np.abs(mean - kernel) / sem) < 4.5, kind
        assert np.median(sem) < 0.05 * np.max(np.abs(kernel)), kind
    if name == "dropout":  # the masks matter: the twins' kernel is not the diagonal's
        assert exact.nngp[0, 0] > 1.2 * exact.nngp[0, 3]


@pytest.mark.parametrize("name", list(NETS))
def test_empirical_ntk_matches_finite_differences(name):
    net = NETS[name](5).description
    _, params = finite.init(net, np.random.default_rng(3), X.shape)
    _, ntk = finite.empirical_kernels(net, params, X, rng=8)
    flat = [a for layer in params for a in layer if a is not None]  # (W, b) or ()
    jac = []
    for arr in flat:
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + 1e-6
            up = finite.apply(net, params, X, rng=8)  # the same seed: the same masks
            arr[idx] = old - 1e-6
            down = finite.apply(net, params, X, rng=8)
            arr[idx] = old
            jac.append((up - down) / 2e-6)
    J = np.stack(jac)
    fd = np.einsum("pik,pjk->ij", J, J) / J.shape[2]
    np.testing.assert_allclose(ntk, fd, rtol=1e-6, atol=1e-8 * np.abs(fd).max())


def test_finite_dropout_masks_and_shapes():
    init_fn, apply_fn, _ = stax.serial(stax.Dense(6, s=(1, 1)), stax.Dropout(0.25))
    _, params = init_fn(0, X.shape)
    y = apply_fn(params, X, rng=1)
    full = stax.serial(stax.Dense(6)).apply_fn(params[:1], X)
    kept = y != 0
    np.testing.assert_allclose(y[kept], 4 * full[kept], rtol=1e-15)
    assert 0 < kept.sum() < kept.size
    _, wide = stax.Dense(5, 1.0, 0.1, parameterization="standard", s=(1, 3)).init_fn(0, (2, 4))
    assert wide[0].shape == (4, 15) and wide[1].shape == (1, 15)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: stax.Dropout(0.0), "probability of keeping"),
        (lambda: stax.Dropout(1.5), "probability of keeping"),
        (lambda: stax.Dropout(0.5, mode="eval"), "mode must be one of train, test"),
        (lambda: stax.Dense(4, s=(1, 2)), "standard' only"),
        (lambda: stax.Dense(4, parameterization="standard", s=(0, 1)), "s\\[0\\] must be"),
        (lambda: stax.Dense(4, parameterization="standard", s=3), "pair of integers"),
    ],
)
def test_bad_arguments_are_refused(make, match):
    with pytest.raises(InputError, match=match):
        make()


def test_ill_formed_dropout_networks_are_refused():
    with pytest.raises(InputError, match="cannot act on the network inputs"):
        stax.serial(stax.Dropout(0.5), stax.Dense(3)).kernel_fn(X)
    with pytest.raises(InputError, match="must follow a Dense layer"):
        stax.serial(stax.Dense(3), stax.Dropout(0.5), stax.Relu()).kernel_fn(X)
    init_fn, apply_fn, _ = dropout_net(4)
    _, params = init_fn(0, X.shape)
    with pytest.raises(InputError, match="give apply_fn an rng"):
        apply_fn(params, X)


def uneven_multipliers():
    """``s_in`` differing from the previous ``s_out`` (and from 1 at the bottom)."""
    return stax.serial(
        stax.Dense(64, 1.2, 0.1, parameterization="standard", s=(2, 3)),
        stax.Relu(),
        stax.Dense(8, 1.0, 0.2, parameterization="standard", s=(2, 1)),
    )


@pytest.mark.parametrize(
    "name",
    # a generated backend compiles each network it takes (~15 s): one such in the default run
    ["dropout", "uneven", pytest.param("multipliers", marks=pytest.mark.exhaustive)],
)
def test_every_backend_agrees_or_declines(name):
    """A backend that takes these networks (e.g. a generated one) must honour s and Dropout."""
    from ntksym.kernels.architecture import BACKENDS

    net = uneven_multipliers() if name == "uneven" else NETS[name]()
    layers = net.kernel_fn(X_TWIN, backend="layers")
    for backend in BACKENDS:
        try:
            other = net.kernel_fn(X_TWIN, backend=backend)
        except InputError as exc:  # a backend that does not cover the network says so
            assert backend != "auto" and repr(backend) in str(exc), (backend, str(exc))
            continue
        for a, b in zip(other, layers, strict=True):
            assert np.max(np.abs(a - b)) <= 1e-13 * np.max(np.abs(b)), backend
