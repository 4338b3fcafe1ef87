"""``stax.FanInConcat``: the branches concatenated along the features (neural-tangents').

Checked three ways, as every layer type (``docs/architectures.md``): the float64 layer maps
against the mpmath referee on adversarial inputs (the generated fused kernel in
``test_fused.py``, whose network holds a concatenation; here its lowering); Monte
Carlo over finite networks with error bars (and a planted wrong weight, the plain mean of
branches of unequal widths, that the same draws reject); neural-tangents' own
``FanInConcat`` (optional). Bad input is refused with errors naming the rule.
"""

import numpy as np
import pytest

from ntksym import stax
from ntksym.architecture import description as d
from ntksym.architecture import recursion
from ntksym.codegen.arch_program import Unsupported, lower
from ntksym.errors import InputError

RNG = np.random.default_rng(1405)
X = RNG.standard_normal((4, 5))


def branches(s, wide=48, narrow=16, act=None):
    """Dense, then two branches of unequal widths and scales concatenated, then Dense.

    ``s`` is either stax module; ``act`` (one of ``s``'s activations) ends each branch.
    """
    act = act or s.Relu
    return s.serial(
        s.Dense(wide, 1.1, 0.2),
        act(),
        s.FanOut(2),
        s.parallel(
            s.serial(s.Dense(wide, 0.6, 0.1), act()),
            s.serial(s.Dense(narrow, 2.0, 0.5), act()),
        ),
        s.FanInConcat(),
        s.Dense(8, 1.2, 0.1),
    )


def standard_after_concat(s, width=32):
    """A concatenation that includes the inputs, then a standard-parameterization Dense
    (its NTK counts the concatenated width ``n0 + width``)."""
    return s.serial(
        s.FanOut(3),
        s.parallel(
            s.Identity(),
            s.serial(s.Dense(width, 1.3, 0.2), s.LeakyRelu(0.2)),
            s.serial(s.Dense(width // 2, 0.8), s.Relu()),
        ),
        s.FanInConcat(axis=1),
        s.Dense(width, 1.1, 0.3, parameterization="standard"),
        s.Relu(),
        s.Dense(1, 0.9, 0.1, parameterization="standard"),
    )


def nested(s, width=24):
    """A concatenation of concatenations, one of them of two copies of a branch."""
    inner = s.serial(s.FanOut(2), s.parallel(s.Identity(), s.Identity()), s.FanInConcat())
    return s.serial(
        s.Dense(width, 1.2, 0.3),
        s.Abs(),
        s.FanOut(2),
        s.parallel(
            s.serial(s.Dense(width, 0.9), s.Relu(), inner),
            s.serial(s.Dense(width // 3, 1.4, 0.2), s.ABRelu(-0.3, 1.1)),
        ),
        s.FanInConcat(),
        s.Dense(1, 1.0, 0.1),
    )


def adversarial_inputs():
    """Near-parallel (1e-8), anti-parallel, rescaled, twin, zero, tiny and huge inputs."""
    x, dd, y, z = np.random.default_rng(5).standard_normal((4, 5))
    return np.vstack(
        [x, x + 1e-8 * dd, -x + 1e-7 * dd, 1e3 * x, x * (1 + 1e-9), np.zeros(5), 1e-6 * y, 1e6 * z]
    )


def rel(a, r):
    return np.max(np.abs(a - r) / np.abs(r))


# --------------------------------------------------------------------------- the record
def test_description_is_hashable_printable_and_checks_its_axis():
    assert d.FanInConcat(1) == d.FanInConcat(-1) == d.FanInConcat()
    assert hash(d.FanInConcat(1)) == hash(d.FanInConcat())
    assert str(stax.FanInConcat(1).description) == "FanInConcat(axis=-1)"
    assert hash(branches(stax).description) == hash(branches(stax).description)
    for axis in (0, -2, 2, True, 1.0, "features"):
        with pytest.raises(InputError, match="axis must be -1"):
            stax.FanInConcat(axis)


def test_recursion_prints_the_width_weighted_mean():
    text = recursion(branches(stax), 5).text()
    assert "Sigmabar[4] = (48 Sigmabar[2] + 16 Sigmabar[3]) / 64" in text
    assert "Thetabar[4] = (48 Thetabar[2] + 16 Thetabar[3]) / 64" in text
    equal = recursion(branches(stax, 16, 16), 5).text()
    assert "Sigmabar[4] = (Sigmabar[2] + Sigmabar[3]) / 2" in equal
    tex = recursion(branches(stax), 5).latex()
    assert r"\frac{48\,\bar{\Sigma}^{(2)} + 16\,\bar{\Sigma}^{(3)}}{64}" in tex


# --------------------------------------------------------------------------- mpmath
def test_lowering_scales_each_branch_then_sums():
    """The fused program: one scale step per branch (c = 48/64, 16/64), then their sum.

    The fused kernel's numbers for a concatenation are checked in ``test_fused.py``, whose
    network (one Numba compile for that file) holds a FanInConcat of unequal widths.
    """
    prog = lower(branches(stax).description)
    kinds = [s.kind for s in prog.steps]
    branches_end = ["input_dense", "act", "dense", "act", "dense", "act"]
    assert kinds == branches_end + ["dense", "dense", "sum", "dense"]
    wide, narrow, total = prog.steps[6], prog.steps[7], prog.steps[8]
    assert (wide.src, wide.w2, narrow.src, narrow.w2) == ((3,), 0.75, (5,), 0.25)
    for scale in (wide, narrow):
        assert scale.standard and scale.width == 0.0 and scale.b2 == 0.0 and not scale.bias
    assert total.src == (6, 7) and prog.output == 9


def test_layer_maps_match_mpmath_on_adversarial_pairs():
    """Near-parallel (1e-8), anti-parallel, zero, tiny and huge pairs <= 1e-13."""
    net = branches(stax)
    X8 = adversarial_inputs()
    X1, X2 = X8[[0, 5, 7]], X8[[1, 2, 6]]
    (ref,) = stax.reference_kernels(net.description, X1, X2, dps=30)
    for ours, r in zip(net.kernel_fn(X1, X2, backend="layers"), ref, strict=True):
        assert rel(ours, r) < 1e-13


@pytest.mark.parametrize("make", [standard_after_concat, nested], ids=lambda f: f.__name__)
def test_layer_maps_match_mpmath(make):
    net = make(stax)
    ours = net.kernel_fn(X[:2], backend="layers")
    (ref,) = stax.reference_kernels(net.description, X[:2], dps=20)
    for a, r in zip(ours, ref, strict=True):
        assert rel(a, r) < 1e-13


def test_two_copies_of_a_branch_are_the_branch_itself():
    """``[x, x]`` has the kernel of ``x``; a standard Dense after it counts ``2 n0`` inputs."""
    copies = stax.serial(
        stax.FanOut(2), stax.parallel(stax.Identity(), stax.Identity()), stax.FanInConcat()
    )
    dense = stax.Dense(4, 1.3, 0.2, parameterization="standard")
    a = stax.serial(copies, dense).kernel_fn(X)
    b = dense.kernel_fn(X)
    np.testing.assert_array_equal(a.nngp, b.nngp)
    np.testing.assert_allclose(a.ntk - 1.0, 2 * (b.ntk - 1.0), rtol=1e-15, atol=1e-15)


def test_a_wrong_weight_is_caught_by_the_referee(monkeypatch):
    """Planted error: the plain mean instead of the width-weighted one, on the layer path."""
    from ntksym.kernels import layer_maps

    net = branches(stax)
    (ref,) = stax.reference_kernels(net.description, X[:2], dps=20)
    right = net.kernel_fn(X[:2], backend="layers")
    assert max(rel(a, r) for a, r in zip(right, ref, strict=True)) < 1e-13
    monkeypatch.setattr(layer_maps, "concat_weights", lambda w: [1 / len(w)] * len(w))
    wrong = net.kernel_fn(X[:2], backend="layers")
    assert max(rel(a, r) for a, r in zip(wrong, ref, strict=True)) > 1e-2


# --------------------------------------------------------------------------- Monte Carlo
def _deviations(mc, kernels):
    out = {}
    for kind in ("nngp", "ntk"):
        mean, sem, k = getattr(mc, kind), getattr(mc, f"{kind}_sem"), getattr(kernels, kind)
        out[kind] = (np.max(np.abs(mean - k) / sem), np.median(sem) / np.max(np.abs(k)))
    return out


def test_matches_monte_carlo_and_rejects_the_plain_mean():
    """Finite networks of widths 48 and 16 against the width-weighted kernel (z < 4.5),
    and the same draws against the plain mean (the infinite network of widths 16 and 16:
    a planted wrong weight) rejected."""
    net = branches(stax)
    mc = stax.monte_carlo(net, X, 120, seed=3)
    for kind, (z, spread) in _deviations(mc, net.kernel_fn(X)).items():
        assert z < 4.5, (kind, z)
        assert spread < 0.05, (kind, spread)  # the check has power
    plain_mean = branches(stax, 16, 16).kernel_fn(X)  # the same map with equal weights
    worst = max(z for z, _ in _deviations(mc, plain_mean).values())
    assert worst > 4.5, worst


def test_finite_network_concatenates_and_its_ntk_is_the_jacobians():
    net = standard_after_concat(stax)
    shape, params = net.init_fn(0, (-1, 5))
    assert shape == (-1, 1)
    inner = stax.serial(
        stax.FanOut(3),
        stax.parallel(
            stax.Identity(),
            stax.serial(stax.Dense(32, 1.3, 0.2), stax.LeakyRelu(0.2)),
            stax.serial(stax.Dense(16, 0.8), stax.Relu()),
        ),
        stax.FanInConcat(),
    )
    y = inner.apply_fn(params[:3], X)
    assert y.shape == (4, 5 + 32 + 16)
    np.testing.assert_array_equal(y[:, :5], X)
    from ntksym import Network

    finite = Network(net.description, 5, seed=2)
    np.testing.assert_allclose(finite.ntk(X), finite.ntk_jacobian(X), rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "after, what",
    [(stax.Relu(), "Relu"), (stax.LayerNorm(), "LayerNorm"), (stax.Erf(), "Erf")],
)
def test_an_activation_or_layer_norm_right_after_it_is_refused(after, what):
    net = stax.serial(
        stax.Dense(4),
        stax.FanOut(2),
        stax.parallel(stax.Dense(4), stax.Dense(2)),
        stax.FanInConcat(),
        after,
        stax.Dense(1),
    )
    with pytest.raises(InputError, match=f"{what}.*cannot follow FanInConcat.*Dense layer"):
        net.kernel_fn(X)
    with pytest.raises(InputError, match="cannot follow FanInConcat"):
        stax.reference_kernels(net, X[:2])
    with pytest.raises(Unsupported, match="cannot follow FanInConcat"):
        lower(net.description)


def test_structural_errors_name_the_rule():
    with pytest.raises(InputError, match="FanInConcat needs several branches"):
        stax.serial(stax.Dense(3), stax.FanInConcat()).kernel_fn(X)
    two = stax.parallel(stax.Dense(3), stax.Dense(3))
    with pytest.raises(InputError, match="parallel with 2 branches needs 2 inputs"):
        stax.serial(stax.FanOut(3), two, stax.FanInConcat()).kernel_fn(X)
    with pytest.raises(InputError, match="FanInSum.*cannot follow FanInConcat"):
        cat = stax.serial(stax.FanOut(2), two, stax.FanInConcat())
        stax.serial(stax.FanOut(2), stax.parallel(cat, cat), stax.FanInSum()).kernel_fn(X)
    with pytest.raises(InputError, match="FanInConcat needs a list of input shapes"):
        stax.FanInConcat().init_fn(0, (4, 3))
    with pytest.raises(Unsupported, match="inputs"):
        lower(standard_after_concat(stax).description)


# --------------------------------------------------------------------------- neural-tangents
@pytest.mark.optional
@pytest.mark.parametrize(
    "make", [branches, standard_after_concat, nested], ids=lambda f: f.__name__
)
def test_agrees_with_neural_tangents(make):
    pytest.importorskip("neural_tangents")
    import jax

    jax.config.update("jax_enable_x64", True)
    from neural_tangents import stax as nt_stax

    ours, theirs = make(stax), make(nt_stax)
    X2 = RNG.standard_normal((3, 5))
    for x2 in (None, X2):
        a = ours.kernel_fn(X, x2, get=("nngp", "ntk"))
        b = theirs[2](X, x2, ("nngp", "ntk"))
        for g in ("nngp", "ntk"):
            mine, peer = getattr(a, g), np.asarray(getattr(b, g))
            assert np.max(np.abs(mine - peer)) <= 1e-10 * np.max(np.abs(mine)), g


def test_the_network_notes_refuse_it_naming_what_they_support():
    """The notes do not instantiate ``derivations/fan_in_concat.py`` at a layer (yet)."""
    from ntksym.notes import network_derivation

    net = stax.serial(
        stax.Dense(4), stax.Relu(), stax.FanOut(2), stax.parallel(stax.Dense(3), stax.Dense(2)),
        stax.FanInConcat(), stax.Dense(1),
    )  # fmt: skip
    with pytest.raises(InputError, match="supported: Dense"):
        network_derivation(net)
