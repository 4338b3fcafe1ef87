"""Activations without a closed form in the fused kernel: the Mehler series per pair.

``tanh``, the sigmoid, SiLU, softplus and GELU's tanh approximation have no closed-form
dual map. A fused module evaluates their series per pair from coefficients taken once
per input (``ntksym.codegen.arch_quad``) and marks NaN what the series' bound does not
certify; ``kernels.architecture`` computes those entries again by the layer maps. The
checks: against the layer maps (every entry), against the mpmath referee (adversarial
inputs), the marked entries, the zero input, twins across ``K(X1, X2)`` after a Dropout,
and a module whose bound is switched off (it must then be wrong where the bound declined).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import arch_adversarial, python_module

from ntksym import stax
from ntksym.architecture.description import as_description
from ntksym.codegen.arch_program import lower
from ntksym.codegen.architecture import fused_kernel, fused_source, supported
from ntksym.errors import InputError


def _net() -> stax.Layer:
    """Every place a step without a closed form can take: first, before a guarded ReLU,
    after a standard Dense layer and before a LayerNorm, inside a residual block, last."""
    block = stax.serial(
        stax.FanOut(2),
        stax.parallel(stax.serial(stax.Elementwise("silu(u)"), stax.Dense(8, 1.2, 0.1)),
                      stax.Identity()),
        stax.FanInSum(),
    )  # fmt: skip
    return stax.serial(
        stax.Dense(8, 1.2, 0.1), stax.Elementwise("tanh(u)"),
        stax.Dense(8, 1.1, 0.2), stax.Relu(),
        stax.Dense(8, 1.3, 0.1, parameterization="standard"), stax.Gelu(approximate=True),
        stax.Dense(8, 1.0, 0.2), stax.LayerNorm(),
        stax.Dense(8, 1.1, 0.1), block, stax.Elementwise("sigmoid(u)"),
        stax.Dense(1, 0.9, 0.1),
    )  # fmt: skip


NET = _net()


def _scaled_error(got: np.ndarray, want: np.ndarray) -> float:
    """Largest error relative to sqrt(K(x, x) K(x', x')) (the NTK crosses zero)."""
    scale = np.sqrt(np.outer(np.diag(want), np.diag(want)))
    return float(np.max(np.abs(got - want) / scale))


@pytest.fixture(scope="module")
def raw_and_final() -> tuple:
    X = np.random.default_rng(7).standard_normal((70, 6))
    raw = fused_kernel(as_description(NET))(X)
    return X, raw, NET.kernel_fn(X, backend="fused"), NET.kernel_fn(X, backend="layers")


def test_the_steps_without_a_closed_form_are_fused() -> None:
    net = as_description(NET)
    assert supported(net) == ""
    prog = lower(net)
    assert [s.kind for s in prog.steps].count("quad") == 4
    assert len(prog.quads) == 4  # (tanh, gelu-tanh, silu, sigmoid)
    # the ReLU after tanh reads a determinant nobody carried: guarded
    assert [s.guard for s in prog.steps if s.kind == "act"] == [True]


def test_only_modules_with_such_steps_compile_the_series() -> None:
    """A module without them has neither the branch nor the functions (compile time)."""
    plain = fused_source(lower(as_description(stax.serial(stax.Dense(4), stax.Relu()))))
    assert "kind == 6" not in plain and "def _quad(" not in plain and "_expansion" not in plain
    with_quad = fused_source(lower(as_description(NET)))
    assert with_quad.count("kind == 6") == 1 and with_quad.count("def _quad(") == 1


def test_they_agree_with_the_layer_maps(raw_and_final: tuple) -> None:
    """Every entry within 1e-14 of the scale; exactly symmetric; nothing left NaN."""
    X, raw, fused, layers = raw_and_final
    for k, name in enumerate(("nngp", "ntk")):
        got = getattr(fused, name)
        assert np.all(np.isfinite(got)) and np.array_equal(got, got.T)
        assert _scaled_error(got, getattr(layers, name)) <= 1e-14, name
        keep = ~np.isnan(raw[k])  # (the Gram product of a copy of X: a few ulps)
        np.testing.assert_allclose(got[keep], raw[k][keep], rtol=1e-15)
    # random inputs: the series certifies all but a few entries
    assert np.isnan(raw[0]).mean() < 0.01


def test_the_nngp_alone_and_a_rectangular_call(raw_and_final: tuple) -> None:
    X, _, fused, _ = raw_and_final
    np.testing.assert_array_equal(NET.kernel_fn(X, get="nngp", backend="fused"), fused.nngp)
    rows = NET.kernel_fn(X[:9], X, backend="fused")
    assert _scaled_error(rows.ntk[:, :9], fused.ntk[:9, :9]) <= 1e-14


def test_uncertified_entries_are_marked_and_computed_again() -> None:
    """Nearly parallel pairs at large variances, where tanh is kink-like at the Gaussian's
    scale: the series of degree 48 cannot certify them; they come from the layer maps."""
    net = stax.serial(stax.Dense(8, 1.0, 0.1), stax.Elementwise("tanh(u)"), stax.Dense(1))
    rng = np.random.default_rng(2)
    x = rng.standard_normal(6)
    X = np.vstack([40.0 * x, 40.0 * x * (1 + 1e-9), rng.standard_normal((4, 6))])
    raw = fused_kernel(as_description(net))(X)
    assert np.isnan(raw[0][0, 1]) and np.isnan(raw[1][0, 1])
    assert not np.isnan(raw[0][2:, 2:]).any()
    got = net.kernel_fn(X, backend="fused")
    want = net.kernel_fn(X, backend="layers")
    for name in ("nngp", "ntk"):
        np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=1e-14)


def test_the_zero_input_without_a_bias_takes_sigma_of_zero() -> None:
    """Variance 0 before the sigmoid: the exact series sigma(0) = 1/2, no NaN."""
    net = stax.serial(stax.Dense(8, 1.3), stax.Elementwise("sigmoid(u)"), stax.Dense(1, 1.0))
    X = np.vstack([np.zeros(5), np.random.default_rng(4).standard_normal((3, 5))])
    raw = fused_kernel(as_description(net))(X)
    assert not np.isnan(raw[0]).any() and not np.isnan(raw[1]).any()
    assert raw[0][0, 0] == 0.25  # E[sigma(0)^2]: W_std^2 = 1, no bias
    got = net.kernel_fn(X, backend="fused")
    want = net.kernel_fn(X, backend="layers")
    for name in ("nngp", "ntk"):
        np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=1e-14, atol=0)


def test_twins_across_a_rectangular_call_after_a_dropout() -> None:
    """An input in both X1 and X2 after a Dropout is no longer one Gaussian twice: a chunk
    run without carried determinants that holds such a pair is run again (arch_quad)."""
    net = stax.serial(
        stax.Dense(8, 1.2, 0.1), stax.Elementwise("tanh(u)"), stax.Dropout(0.7),
        stax.Dense(8, 1.1, 0.2), stax.Elementwise("softplus(u)"), stax.Dense(1),
    )  # fmt: skip
    rng = np.random.default_rng(9)
    X1 = rng.standard_normal((300, 6))
    X2 = np.vstack([X1[5:8], rng.standard_normal((290, 6))])
    got = net.kernel_fn(X1, X2, backend="fused")
    want = net.kernel_fn(X1, X2, backend="layers")
    for name in ("nngp", "ntk"):
        g, w = getattr(got, name), getattr(want, name)
        assert np.max(np.abs(g - w)) <= 1e-14 * np.max(np.abs(w)), name
    # the pair of one example with itself in K(X, X) keeps its mask: the diagonal differs
    sym = net.kernel_fn(X1[:10], backend="fused")
    assert sym.nngp[5, 5] > got.nngp[5, 0]


def _hostile() -> np.ndarray:
    rng = np.random.default_rng(3)
    x = rng.standard_normal(6)
    big = [1e6 * x, 1e6 * x * (1 + 1e-12), -1e6 * x]
    return np.vstack([x, *big, np.zeros(6), 1e-300 * x, rng.standard_normal((6, 6))])


@pytest.mark.parametrize("expr", ["tanh(u)", "softplus(u)"])
def test_huge_tiny_and_zero_inputs_agree_with_the_layer_maps(expr: str) -> None:
    """Norms 1e6 (variances near 1e12: the coefficient rule on its narrowest scale, most
    entries declined), 1e-300 and zero, then a guarded ReLU: the layer maps' values."""
    net = stax.serial(
        stax.Dense(8, 1.2, 0.1), stax.Elementwise(expr), stax.Dense(8, 1.1, 0.1), stax.Relu(),
        stax.Dense(1),
    )  # fmt: skip
    X = _hostile()
    got = net.kernel_fn(X, backend="fused")
    want = net.kernel_fn(X, backend="layers")
    for name in ("nngp", "ntk"):
        assert _scaled_error(getattr(got, name), getattr(want, name)) <= 2e-14, name


@pytest.mark.parametrize("expr", ["sin(u) + erf(u)", "tanh(u) + erf(2*u)", "erfc(2*u)*u"])
def test_activations_calling_erf_are_fused(expr: str) -> None:
    """erf in an activation without a closed form: the fused module's NumPy code of it
    calls ``_erf``, which the module did not define (a NameError from inside it, session
    24's sweep); erfc was printed as ``math.erfc``, which takes no arrays (a TypeError on
    every path). Now the layer maps' values, and the referee's."""
    net = stax.serial(stax.Dense(8, 1.2, 0.1), stax.Elementwise(expr), stax.Dense(1, 0.9))
    X = _hostile()[[0, 4, 6, 7, 8]]
    got = net.kernel_fn(X, backend="fused")
    want = net.kernel_fn(X, backend="layers")
    ((rn, rt),) = stax.reference_kernels(net, X[:3], dps=20)
    for name, ref in (("nngp", rn), ("ntk", rt)):
        assert _scaled_error(getattr(got, name), getattr(want, name)) <= 2e-14, name
        assert _scaled_error(getattr(got, name)[:3, :3], ref) <= 1e-13, name


def test_an_overflowing_series_is_refused_as_on_the_layer_maps() -> None:
    """E[(exp(u) tanh(u))^2] overflows at variances near 1e12: the same clear error."""
    net = stax.serial(stax.Dense(8, 1.2, 0.1), stax.Elementwise("exp(u)*tanh(u)"), stax.Dense(1))
    for backend in ("fused", "layers"):
        with pytest.raises(InputError, match="infinite or undefined at some of these"):
            net.kernel_fn(_hostile(), backend=backend)


@pytest.mark.slow
def test_against_the_referee_on_adversarial_inputs() -> None:
    """The architecture benchmark's inputs (``x``, ``x (1 + 1e-9)``, ``-x + 1e-7 d``,
    ``1e3 x``, zero, ``1e-6 y``) without the norm 1e6, where mpmath integrates tanh at
    variances near 1e12 for minutes: within 1e-13 of mpmath, relative to the scale,
    marked entries included."""
    X = arch_adversarial()[[0, 2, 4, 6, 7, 8]]
    got = NET.kernel_fn(X, backend="fused")
    ((rn, rt),) = stax.reference_kernels(NET, X, dps=30)
    assert _scaled_error(got.nngp, rn) <= 1e-13
    assert _scaled_error(got.ntk, rt) <= 1e-13


def test_the_fused_series_asks_what_the_layer_maps_series_asks() -> None:
    """The fused regions restate the runtime's constants (their Numba globals are copied
    into the generated modules byte for byte): the largest degree, the tolerance and the
    measure's floor must stay those of ``numpy_mehler``, or the fused modules would
    certify entries that the layer maps decline, or the other way round."""
    from ntksym.codegen import arch_quad
    from ntksym.codegen.runtime import numpy_mehler

    assert arch_quad._QKMAX == numpy_mehler._KMAX
    assert arch_quad._QSTOL == numpy_mehler._STOL
    assert arch_quad._QFLOOR == numpy_mehler._SFLOOR


@pytest.mark.slow
def test_without_its_bound_the_series_would_be_wrong() -> None:
    """A planted error: the same module with the bound's tolerance at 1 accepts every
    entry; on the pairs the bound declines it is then far from the layer maps, so the
    bound is what keeps them out."""
    net = stax.serial(stax.Dense(8, 1.0, 0.1), stax.Elementwise("tanh(u)"), stax.Dense(1))
    source = fused_source(lower(as_description(net)))
    assert source.count("_QSTOL = 1e-14") == 1
    loose = python_module(source.replace("_QSTOL = 1e-14", "_QSTOL = 1.0"))
    rng = np.random.default_rng(2)
    x = rng.standard_normal(6)
    X = np.vstack([40.0 * x, 40.0 * x * (1 + 1e-9), 40.0 * x * (1 + 1e-6)])
    strict = fused_kernel(as_description(net))(X)
    declined = np.isnan(strict[0])
    assert declined.any()
    nngp, _ = loose["_compute"](X, None, True)
    want = net.kernel_fn(X, backend="layers").nngp
    assert np.max(np.abs(nngp - want)[declined] / want[declined]) > 1e-10


_SMOOTH = (
    lambda: stax.Elementwise("tanh(u)"),
    lambda: stax.Elementwise("sigmoid(u)"),
    lambda: stax.Gelu(approximate=True),
)


def _random_with_series(count: int) -> list[stax.Layer]:
    """The first ``count`` networks of tests/test_random_networks.py's grammar, with
    activations without a closed form among its activations, that hold such a step and
    that the fused kernel covers."""
    import test_random_networks as grammar

    acts = grammar._ACTS + _SMOOTH
    nets = []
    seed = 0
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(grammar, "_ACTS", acts)
        while len(nets) < count:
            net = grammar.network(seed)
            seed += 1
            desc = as_description(net)
            if supported(desc) == "" and any(s.kind == "quad" for s in lower(desc).steps):
                nets.append(net)
    return nets


@pytest.mark.slow
@pytest.mark.parametrize("k", range(4))
def test_random_networks_with_the_series_agree_with_the_layer_maps(k: int) -> None:
    """Branches, concatenations, LayerNorm, Dropout and the standard parameterization
    around steps without a closed form, on the random grammar's hostile inputs (a pair
    1e-8 apart, a near anti-parallel one, norm 30, zero, norm 1e-3) and random ones.

    Within 1e-12 of the scale: on the first network (31 layers; tanh and gelu-tanh in a
    concatenation, then Sin and Abs) both paths are 4e-13 to 6e-13 of the scale from
    mpmath at the pair 1e-8 apart, 1.5e-13 from each other (session 19)."""
    import test_random_networks as grammar

    net = _random_with_series(4)[k]
    X = np.vstack([grammar._hostile(), np.random.default_rng(k).standard_normal((5, 4))])
    got = net.kernel_fn(X, backend="fused")
    want = net.kernel_fn(X, backend="layers")
    for name in ("nngp", "ntk"):
        g = getattr(got, name)
        assert np.array_equal(g, g.T)
        assert _scaled_error(g, getattr(want, name)) <= 1e-12, (name, k)


def test_the_homogeneous_kernel_of_erfc_against_the_referee() -> None:
    """``ntksym.kernel("erfc(u)", ...)``: its first call (the NumPy module) raised a
    TypeError (``math.erfc`` on an array) before session 24."""
    import ntksym

    X = _hostile()[[0, 4, 6, 7]]
    got = ntksym.kernel("erfc(u)", 2, 0.1, 1.2)(X, get="ntk")
    net = stax.serial(stax.Dense(8, 1.2, 0.1), stax.Elementwise("erfc(u)"), stax.Dense(1, 1.2, 0.1))
    ((_, rt),) = stax.reference_kernels(net, X, dps=20)
    assert _scaled_error(got, rt) <= 1e-13
