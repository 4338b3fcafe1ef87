"""A kinked activation after one that carries no determinant, in the fused kernel.

``sin(u) + u`` (a sum of families) carries no determinant, so the fused kernel forms the
next one by subtraction; a ReLU-type map reading it loses ``~eps / theta`` in the angle of a
nearly parallel pair (2.6e-9 in the NTK of a pair 1e-8 apart, session 16). Such a step is
guarded (``arch_program.Step.guard``): the kernel marks those pairs NaN and
``kernels.architecture`` computes them again by the layer maps, whose residual integral
carries the determinant (``dual.residual``). Everything else stays on the fused kernel.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from ntksym import stax
from ntksym.architecture.description import as_description
from ntksym.codegen.arch_program import lower
from ntksym.codegen.architecture import fused_kernel, supported
from ntksym.errors import InputError


def _net(second: stax.Layer, first: str = "sin(u) + u") -> stax.Layer:
    return stax.serial(
        stax.Dense(16, W_std=1.2, b_std=0.1), stax.Elementwise(first),
        stax.Dense(16, W_std=1.1, b_std=0.2), second, stax.Dense(1, W_std=0.9),
    )  # fmt: skip


def _twins(n: int = 60, seed: int = 3) -> np.ndarray:
    """Random inputs, with a twin at 1e-9, a rescaled copy and a near anti-parallel one."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 6))
    X[1] = X[0] + 1e-9 * rng.standard_normal(6)
    X[2] = X[0] * (1 + 2.0**-30)
    X[3] = -X[0] + 1e-7 * rng.standard_normal(6)
    return X


@pytest.mark.parametrize(
    "second", [stax.Relu(), stax.Abs(), stax.Sign(), stax.RectifiedMonomial(2)], ids=str
)
def test_a_kinked_map_after_an_uncarried_determinant_is_guarded(second: stax.Layer) -> None:
    net = as_description(_net(second))
    assert supported(net) == ""
    assert [s.guard for s in lower(net).steps if s.kind == "act"] == [False, True]
    # a smooth map there reads no angle: nothing guarded
    smooth = lower(as_description(_net(stax.Erf())))
    assert not any(s.guard for s in smooth.steps)
    # a carried determinant (a polynomial) before the ReLU: nothing guarded
    assert not any(s.guard for s in lower(as_description(_net(second, "u**3 - u"))).steps)


def test_the_kernel_marks_only_the_nearly_parallel_pairs() -> None:
    net = as_description(_net(stax.Relu()))
    X = _twins()
    nngp, ntk = fused_kernel(net)(X)
    marked = np.isnan(nngp) | np.isnan(ntk)
    near = {(0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1)}
    assert {tuple(map(int, p)) for p in np.argwhere(marked)} == near
    assert np.all(np.isnan(nngp) == np.isnan(ntk))


@pytest.mark.parametrize("second", [stax.Relu(), stax.Abs()], ids=str)
def test_marked_pairs_are_the_layer_maps(second: stax.Layer) -> None:
    """The whole result: finite, exactly symmetric; the marked entries as the layer maps
    give them (to rounding: their Gram product is formed on another block), the others as
    the unguarded kernel (bit for bit)."""
    net = _net(second)
    X = _twins()
    raw = fused_kernel(as_description(net))(X)
    fused = net.kernel_fn(X, backend="fused")
    layers = net.kernel_fn(X, backend="layers")
    for k, name in enumerate(("nngp", "ntk")):
        got, plain = getattr(fused, name), raw[k]
        assert np.all(np.isfinite(got)) and np.array_equal(got, got.T)
        keep = ~np.isnan(plain)
        np.testing.assert_array_equal(got[keep], plain[keep])
        np.testing.assert_allclose(got[~keep], getattr(layers, name)[~keep], rtol=4e-16)
    # a rectangular call (its Gram product by another BLAS call: a few ulps, which the
    # small entries amplify: [4, 34], 1.3e-3 among entries near 7, is 6.3e-14 off mpmath
    # on the square call and 2.9e-14 on the rectangle) and a single kernel: the same
    # entries, within the accuracy claimed
    rows = net.kernel_fn(X[:5], X, backend="fused")
    np.testing.assert_allclose(rows.ntk, fused.ntk[:5], rtol=1e-13)
    only = net.kernel_fn(X, get="nngp", backend="fused")
    np.testing.assert_array_equal(only, fused.nngp)


@pytest.mark.slow
@pytest.mark.parametrize("second", [stax.Relu(), stax.Abs()], ids=str)
def test_the_guarded_kernel_against_the_referee(second: stax.Layer) -> None:
    """The adversarial set of the architecture benchmark without its norms 1e3 and 1e6
    (where mpmath's quadrature of ``sin`` at variances near 1e6 takes many minutes), and
    the twins above: within 1e-13 of mpmath (the unguarded kernel was 2.6e-9 off)."""
    from conftest import arch_adversarial

    net = _net(second)
    for X in (arch_adversarial()[[0, 1, 2, 3, 4, 5, 7, 8]], _twins(6)):
        got = net.kernel_fn(X, backend="fused")
        ((rn, rt),) = stax.reference_kernels(net, X, dps=40)
        for name, r in (("nngp", rn), ("ntk", rt)):
            err = np.max(np.abs(getattr(got, name) - r) / np.abs(r))
            assert err <= 1e-13, (name, err)


def test_a_marked_pair_that_overflows_is_refused() -> None:
    """An entry marked because it is near, whose layer maps overflow: the clear error of the
    layer maps (no NaN in a result, no NumPy warning from inside a map, no message about
    an internal ``s11``), on both paths."""
    net = _net(stax.Relu(), "exp(u) + u")
    X = 60.0 * _twins(6)
    for backend in ("fused", "layers"):
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            with pytest.raises(InputError, match="infinite or undefined at some of these"):
                net.kernel_fn(X, backend=backend)


@pytest.mark.parametrize("before", [stax.Relu, lambda: stax.LeakyRelu(0.2)])
def test_one_input_twice_at_a_huge_variance_after_a_kinked_map(before) -> None:
    """``sin(u) + u`` after a ReLU at variances near 1e7 (seed 69 of session 24's sweep),
    on both paths, every entry against the referee's closed forms.

    Its map is ``exp(-(S11 + S22 - 2 S12)/2)`` for the pair. Read from three rounded
    variances, the pair of one input with itself saw an ulp of the variance instead of 0
    (3.7e-10 of the fused NTK, 4.8e-8 at 1e5), and the pair 1e-3 apart lost digits on
    both paths (5.2e-12 at the scale 1e3). The map now takes the distance from the
    carried determinant and the root gap (``mgf._finite`` merges a product of
    exponentials even beside a factor of one variable, ``u e^(i u)``)."""
    net = stax.serial(
        stax.Dense(4, 1.0, 0.1), before(), stax.Dense(4, 0.65), stax.Elementwise("sin(u) + u"),
        stax.Dense(4, 1.33, 0.3), stax.Dense(1),
    )  # fmt: skip
    x = np.random.default_rng(5).standard_normal(4)
    for scale in (1e3, 1e4, 1e5):
        X = np.stack([scale * x, scale * x * (1 + 1e-3)])
        ((rn, rt),) = stax.reference_kernels(net, X, dps=30, method="closed_form")
        for backend in ("layers", "fused"):
            got = net.kernel_fn(X, backend=backend)
            for a, r in ((got.nngp, rn), (got.ntk, rt)):
                assert np.max(np.abs(a - r) / np.abs(r)) <= 1e-14, (scale, backend)
