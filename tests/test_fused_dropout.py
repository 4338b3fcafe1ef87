"""``Dropout(rate)`` in ``"train"`` mode in the generated fused kernel of a described network.

Dropout multiplies both variances by ``1 / rate``; the covariance and NTK of an example
paired with itself (the diagonal of ``K(X, X)``: one mask) too, while every other pair,
twins and ``K(X1, X2)``'s pairs included, keeps its own (independent masks), as in
neural-tangents' ``stax.Dropout`` and the layer path (:mod:`ntksym.kernels.layer_maps`).
Checked against the float64 layer path and the mpmath referee on the adversarial inputs of
``benchmarks/bench_arch_accuracy.py``, through tiles, and with planted errors in the
generated step (the module run as plain Python: nothing compiled) that the checks catch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import arch_adversarial, python_module

from ntksym import stax
from ntksym.codegen import architecture
from ntksym.codegen.arch_program import lower
from ntksym.kernels.tiles import gram_to_file


def chain(depth: int):
    """``(Dense, Relu, Dropout(0.8)) * depth, Dense``: the row "Dropout(0.8) train" of
    ``benchmarks/bench_arch_accuracy.py``."""
    layers = [stax.Dense(8, 1.2, 0.2), stax.Relu(), stax.Dropout(0.8)] * depth
    return stax.serial(*layers, stax.Dense(1, 0.9, 0.1))


def rel(a, r):
    return np.max(np.abs(a - r) / np.abs(r))


def _assert_fused_matches(net, X, Y, layers_tol, referee_y=True):
    """K(X, X) and K(X, Y) of the fused kernel against the layer path and mpmath (20 digits;
    K(X, Y) only with ``referee_y``), NNGP and NTK; exact symmetry; NNGP alone equal to
    the NNGP of both, bit for bit."""
    for x2 in (None, Y):
        fused = net.kernel_fn(X, x2, backend="fused")
        layers = net.kernel_fn(X, x2, backend="layers")
        for ours, lay in zip(fused, layers, strict=True):
            assert rel(ours, lay) < layers_tol
        if x2 is None or referee_y:
            (ref,) = stax.reference_kernels(net, X, x2, dps=20)
            for ours, r in zip(fused, ref, strict=True):
                assert rel(ours, r) < 1e-13
        np.testing.assert_array_equal(net.kernel_fn(X, x2, get="nngp", backend="fused"), fused.nngp)
        if x2 is None:
            np.testing.assert_array_equal(fused.nngp, fused.nngp.T)
            np.testing.assert_array_equal(fused.ntk, fused.ntk.T)


def test_depth_five_on_adversarial_inputs():
    # measured: 1.0e-15 (NNGP), 1.1e-15 (NTK) off the layer path, 9.8e-16 off mpmath
    # (K(X, Y) vs mpmath: 8.3e-16; in the exhaustive test below, for CI time)
    X = arch_adversarial()
    _assert_fused_matches(chain(5), X, X[4:9], 4e-15, referee_y=False)


@pytest.mark.exhaustive  # (1, 20: a module of its own each, 11-14 s of CPU to compile)
@pytest.mark.parametrize("depth", [1, 5, 20])
def test_depths_one_five_twenty_against_both_referees(depth):
    # depth 1, layer path: within 4e-15 but on the anti-parallel pair (-x, 1e3 x), where
    # the fused ReLU step is 1.9e-14 off it with or without the Dropout (mpmath: 2.0e-14,
    # the layer path 7.8e-16; docs/performance.md, session 12 dropfused)
    X = arch_adversarial()
    _assert_fused_matches(chain(depth), X, X[4:9], 2.5e-14 if depth == 1 else 4e-15)


def test_only_an_example_with_itself_is_scaled():
    """By hand, not by the Dropout map of either evaluator: the last Dropout before
    ``Dense(w, b)`` leaves the NNGP of the network without it everywhere but on K(X, X)'s
    diagonal, where ``K - b^2`` is ``1 / rate`` times that network's."""
    X = arch_adversarial()
    net = chain(5)
    layers = net.description.layers
    without = stax.serial(*layers[:-2], layers[-1])  # (the last Dropout left out)
    drop = net.kernel_fn(X, get="nngp", backend="fused")
    ref = without.kernel_fn(X, get="nngp", backend="layers")
    off = ~np.eye(len(X), dtype=bool)
    assert rel(drop[off], ref[off]) < 4e-15
    b2 = 0.1**2
    np.testing.assert_allclose(np.diag(drop) - b2, (np.diag(ref) - b2) / 0.8, rtol=4e-15)
    # K(X1, X2): no pair is one example with itself; x given in both is a pair of twins
    cross = net.kernel_fn(X[:2], X[:2], get="nngp", backend="fused")  # (x and its twin)
    assert rel(cross, np.full((2, 2), drop[0, 1])) < 4e-15
    assert drop[0, 0] > 1.2 * drop[0, 1]


def test_tiles_hold_the_numbers_of_one_call(tmp_path: Path):
    """Diagonal tiles (K(A, A)) have the self pairs, tiles off the diagonal (K(A, B)) none.

    Within ulps, not bit for bit: a chunk of a row runs without carried determinants when
    all its pairs allow it, and the tiles cut the rows into other chunks."""
    X, Y = arch_adversarial(), arch_adversarial()[::-1][:7]
    net = chain(5)
    one = net.kernel_fn(X, backend="fused")
    out = gram_to_file(
        X, None, tmp_path / "K.npy", network=net, backend="fused", get="both", tile=3
    )
    tiled = np.load(out)
    assert rel(tiled[0], one.nngp) < 4e-15 and rel(tiled[1], one.ntk) < 4e-15
    np.testing.assert_array_equal(tiled[1], tiled[1].T)
    cross = gram_to_file(X, Y, tmp_path / "C.npy", network=net, backend="fused", tile=4)
    assert rel(np.load(cross), net.kernel_fn(X, Y, get="ntk", backend="fused")) < 4e-15


def test_lowering_and_the_table():
    net = chain(2)
    assert architecture.supported(net.description) == ""
    prog = lower(net.description)
    kinds = [s.kind for s in prog.steps]
    assert kinds == ["input_dense", "act", "dropout", "dense", "act", "dropout", "dense"]
    drop = prog.steps[2]
    assert drop.src == (1,) and drop.w2 == 1.0 / 0.8
    assert prog.det_known[2]  # carried through the Dropout (ReLU carries it)


# ------------------------------------------------------------------------- planted errors
#: The first Dropout's output is read by ReLU, whose map depends on the determinant
#: (twins' and near-parallel pairs': its cross term and CO).
PLANTED_NET = chain(2)

#: A planted error in ``_drop``: (the code, its replacement, the calls that must catch it:
#: K(X, X) and/or K(X, X[:5]); only the latter marks twins as one Gaussian, CO, since its
#: twins are found by comparing rows, K(X, X)'s by their determinant).
PLANTS = {
    "cross pairs scaled too": ("g = f if own else 1.0", "g = f", ("xx", "xy")),
    "self pair not scaled": ("g = f if own else 1.0", "g = 1.0", ("xx",)),
    "determinant's cross term dropped": ("_sel(own, 0.0, cross)", "0.0", ("xx", "xy")),
    "twins kept as one Gaussian": ("if not (own or plain):", "if False:", ("xy",)),
}


def _worst(compute, X, x2):
    K, T = compute(X, x2)
    lay = PLANTED_NET.kernel_fn(X, x2, backend="layers")
    return max(rel(K, lay.nngp), rel(T, lay.ntk))


@pytest.fixture(scope="module")
def planted_source():
    return architecture.fused_source(lower(PLANTED_NET.description))


def test_the_unplanted_module_as_python_matches(planted_source):
    X = arch_adversarial()
    compute = python_module(planted_source)["_compute"]
    assert _worst(compute, X, None) < 4e-15
    assert _worst(compute, X, X[:5]) < 4e-15


@pytest.mark.parametrize("plant", list(PLANTS))
def test_a_planted_error_is_caught(planted_source, plant):
    old, new, catch = PLANTS[plant]
    assert planted_source.count(old) == 1
    compute = python_module(planted_source.replace(old, new))["_compute"]
    X = arch_adversarial()
    worst = {"xx": _worst(compute, X, None), "xy": _worst(compute, X, X[:5])}
    assert all(worst[c] > 1e-3 for c in catch)
