"""One input twice at huge variances, in the homogeneous kernels.

``sin(u) + u`` keeps a variance near ``S = 1e8`` at norm 1e4. Its map is
``exp(-(S11 + S22 - 2 S12)/2)`` for the pair, which must read the pair's distance from the
carried determinant and root gap (0 for one input twice), not from three rounded variances
(an ulp of 1e8 in the exponent: 5.5e-9 of the NTK at norm 1e4, 5.0e-7 at 1e5, before
session 25); and the next determinant, formed directly as ``N11 N22 - S12'^2`` for this
map, must stay 0 for the twin instead of the rounding of two numbers near 1e16.
"""

from __future__ import annotations

import numpy as np
import pytest

import ntksym
from ntksym import dual, reference, stax
from ntksym.architecture.description import as_description
from ntksym.codegen import files
from ntksym.codegen.arch_program import lower
from ntksym.codegen.render import render, render_spec
from ntksym.codegen.spec import kernel_spec


def _rel(a: np.ndarray, r: np.ndarray) -> float:
    return float(np.max(np.abs(a - r) / np.maximum(np.abs(r), 1e-6 * np.abs(r).max())))


@pytest.mark.parametrize(
    "backend", ["numpy", pytest.param("numba", marks=pytest.mark.slow)]
)  # (numba: a module compiled for this expression, about 20 s)
@pytest.mark.parametrize("scale", [1e4, 1e5])
def test_twins_at_huge_variances(backend: str, scale: float) -> None:
    """The diagonal, a duplicated row and a twin across ``K(X1, X2)``, within 1e-14."""
    x, y = np.random.default_rng(5).standard_normal((2, 4))
    X = np.stack([scale * x, (scale * x).copy(), 2.0 * y, scale * y])
    k = ntksym.kernel("sin(u) + u", 3, 0.1, 1.2, backend=backend)
    for other in (None, X[:2]):
        got = k(X, other, get=("nngp", "ntk"))
        rn, rt = reference.kernel(
            "sin(u) + u", X, other, depth=3, bias_std=0.1, weight_std=1.2, dps=40
        )
        assert _rel(got.nngp, rn) <= 1e-14
        assert _rel(got.ntk, rt) <= 1e-14


@pytest.mark.parametrize(
    "activation, keeps",
    [("sin(u) + u", True), ("exp", True), ("cos(u) + u", True), ("erf", False),
     ("sin", False), ("relu", False), ("u**3 + u", False)],
)  # fmt: skip
def test_the_twin_rule_is_printed_where_a_map_needs_it(activation: str, keeps: bool) -> None:
    """Only maps that read ``D`` and pass a huge variance on carry the test (relu has its
    own next determinant; erf and sin keep their variances moderate; ``u**3 + u``'s map
    does not read ``D``), and the printed module has it exactly then."""
    rs = render_spec(kernel_spec(activation), "numpy")
    assert rs.keep_twins is keeps
    assert ("(D == 0.0) & (R11 == R22)" in render(activation, "numpy")) is keeps


def _near_pairs(norm: float) -> np.ndarray:
    rng = np.random.default_rng(7)
    x, d = rng.standard_normal((2, 5))
    return norm * np.stack([x, x + 1e-8 * d, -x + 1e-8 * d])


@pytest.mark.parametrize(
    "backend", ["numpy", pytest.param("numba", marks=pytest.mark.slow)]
)  # (numba: a module compiled for this expression, about 20 s)
@pytest.mark.parametrize("norm, depth", [(1e4, 3), (1e4, 10), (1e6, 3)])
def test_near_pairs_after_two_linear_growth_maps(backend: str, norm: float, depth: int) -> None:
    """Pairs 1e-8 apart (and anti-parallel) through ``sin(u) + u`` twice or more: within
    1e-14 of the referee, each entry. The second map reads the next determinant, which
    the module mends where the direct difference cancels (``ntksym.codegen.mend``).
    Measured: 1.8e-16, 1.1e-15 and 3.5e-16 of the NTK (numpy; numba alike); before the
    mend 1e-8 at norm 1e4 and 2.8e-5 at norm 1e6, depth 3 (8.0e-14 before the root gaps
    from double-double variances, session 28)."""
    X = _near_pairs(norm)
    k = ntksym.kernel("sin(u) + u", depth, 0.1, 1.2, backend=backend)
    got = k(X, get=("nngp", "ntk"))
    rn, rt = reference.kernel(
        "sin(u) + u", X, None, depth=depth, bias_std=0.1, weight_std=1.2, dps=40
    )
    assert np.max(np.abs(got.ntk - rt) / np.abs(rt)) <= 1e-14
    assert np.max(np.abs(got.nngp - rn) / np.abs(rn)) <= 1e-14


@pytest.mark.parametrize(
    "backend", ["numpy", pytest.param("numba", marks=pytest.mark.slow)]
)  # (numba: a module compiled for this expression, about 20 s)
def test_near_pairs_deep_at_norm_1e6(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same at norm 1e6, depth 10: within 1e-14 of the referee, each entry (5.1e-15
    and 5.0e-15 measured, session 28). The root gaps after layer 1 come from each input's
    variances in double-double (``runtime/numpy_long.py``, region ``chain``); planted
    below, the carried float64 variances instead (each off by its rounding, ``eps S``)
    miss 1e-13, as the modules did before (2.4e-11 from the rounded roots)."""
    X = _near_pairs(1e6)
    rn, rt = reference.kernel("sin(u) + u", X, None, depth=10, bias_std=0.1, weight_std=1.2, dps=40)
    module = files.load("sin(u) + u", backend)
    for planted in (False, True):
        if planted:
            monkeypatch.setattr(module, "_gaps", lambda *args: None)
        k, t = module.nngp_ntk(X, None, 10, 0.1, 1.2)
        err = max(np.max(np.abs(t - rt) / np.abs(rt)), np.max(np.abs(k - rn) / np.abs(rn)))
        assert (err > 1e-13) if planted else (err <= 1e-14)


def _sin_net(n: int) -> stax.Layer:
    """``n`` layers of ``sin(u) + u``, each with its own weight variance (not homogeneous)."""
    layers: list = []
    for i in range(n):
        layers += [stax.Dense(512, W_std=1.2 + 0.01 * i, b_std=0.1), stax.Elementwise("sin(u) + u")]
    return stax.serial(*layers, stax.Dense(1, W_std=1.2, b_std=0.1))


def test_a_distance_reading_map_after_an_uncarried_determinant_is_guarded() -> None:
    """In the fused program the second ``sin(u) + u`` reads a determinant formed by
    subtraction: its nearly parallel pairs are left to the layer maps (which mend it)."""
    steps = lower(as_description(_sin_net(3))).steps
    assert [s.guard for s in steps if s.kind == "act"] == [False, True, True]


@pytest.mark.parametrize(
    "backend", ["layers", pytest.param("fused", marks=pytest.mark.slow)]
)  # (fused: a module compiled for this network, about 20 s)
@pytest.mark.parametrize("norm, depth, bound", [(1e4, 2, 1e-15), (1e6, 2, 1e-15), (1e6, 10, 1e-14)])
def test_near_pairs_through_a_network(backend: str, norm: float, depth: int, bound: float) -> None:
    """``sin(u) + u`` layers with their own variances, on the layer maps and the fused
    kernel: within ``bound`` of the referee, each entry. Measured (both paths, session 27):
    at most 2.9e-16 for two layers, 4.7e-15 for ten at norm 1e6. Before the mend 1.7e-9 and
    2.0e-5 (fused, two layers); with the mend but the root gap from the rounded roots
    2.6e-14 (two layers) and 7.8e-12 (ten) at norm 1e6."""
    X = _near_pairs(norm)
    _, _, kernel_fn = _sin_net(depth)
    got = kernel_fn(X, None, ("nngp", "ntk"), backend=backend)
    rn, rt = reference.kernel(as_description(_sin_net(depth)), X, None, dps=40)
    assert np.max(np.abs(got.ntk - rt) / np.abs(rt)) <= bound
    assert np.max(np.abs(got.nngp - rn) / np.abs(rn)) <= bound


def test_the_layer_maps_read_the_carried_root_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    """One ``sin(u) + u`` at norm 1e6 on the layer maps, nearly parallel and nearly
    anti-parallel pairs: within 1e-15 of the referee, each entry. Its map reads ``U^2 / 2``
    beside the pair's small gap; taken from the rounded roots (``eps sqrt(S)`` off, the
    layer maps before session 27: planted below) it is 4.3e-14 off."""
    X = _near_pairs(1e6)
    net = _sin_net(1)
    rn, rt = reference.kernel(as_description(net), X, None, dps=40)

    def worst() -> float:
        got = net[2](X, None, ("nngp", "ntk"), backend="layers")
        return max(_entrywise(got.ntk, rt), _entrywise(got.nngp, rn))

    assert worst() <= 1e-15
    evaluate = dual.evaluate

    def without_gap(*args: object, root_gap: object = None, **kwargs: object) -> object:
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(dual, "evaluate", without_gap)
    assert worst() > 1e-14


def _entrywise(a: np.ndarray, r: np.ndarray) -> float:
    return float(np.max(np.abs(a - r) / np.abs(r)))
