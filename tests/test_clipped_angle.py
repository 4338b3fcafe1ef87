"""Typed sums whose SymPy closed form reads the angle through the clipped correlation.

``relu(u) + 0.1 erf(u)`` has a closed form (``kind == "closed"``, ``rho`` clipped) whose
cross terms read ``acos(rho)`` and ``sqrt(S11 S22 (1 - rho^2))``. Near ``|rho| = 1`` the
rounding of ``rho`` costs ``sqrt(eps)`` there: a pair of one input twice has ``acos(rho)``
about 1.5e-8. Before session 28 the fused module of a network of such layers had its NTK
2.6e-5 off on the diagonal at depth 10 (1.9e-9 at depth 2), and ``ntksym.kernel`` (the
``"dual"`` path, determinants by subtraction) 5.7e-9 off for a pair 1e-8 apart. Now the
fused program refuses such a map (the layer maps compute the network) and
``backend="auto"`` computes a kinked activation without a module by the layer maps from
depth 3 on.
"""

from __future__ import annotations

import numpy as np
import pytest

import ntksym
from ntksym import reference, stax
from ntksym.architecture.description import as_description
from ntksym.codegen.arch_program import reads_clipped_angle
from ntksym.codegen.spec import kernel_spec
from ntksym.errors import InputError

SUM = "relu(u) + 0.1*erf(u)"


def _rel(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.abs(got - want) / np.abs(want)))


def _inputs(norm: float) -> np.ndarray:
    rng = np.random.default_rng(7)
    x, d = rng.standard_normal((2, 5))
    return norm * np.stack([x, x + 1e-8 * d, -x + 1e-8 * d, 2 * x + d])


@pytest.mark.parametrize(
    "activation, reads",
    [(SUM, True), ("abs(u) + erf(u)", True), ("u**2 + relu(u)", True),
     ("erf(u) + u", False), ("erf(u) + 0.3*exp(u)", False), ("gelu", False), ("relu", False)],
)  # fmt: skip
def test_which_closed_forms_read_the_clipped_angle(activation: str, reads: bool) -> None:
    """Sums with a kinked term read ``acos(rho)``; smooth sums and the stable families do not."""
    assert reads_clipped_angle(kernel_spec(activation)) is reads


def _sum_net(depth: int) -> stax.Layer:
    layers: list = []
    for i in range(depth - 1):
        layers += [stax.Dense(512, W_std=1.2 + 0.01 * i, b_std=0.1), stax.Elementwise(SUM)]
    return stax.serial(*layers, stax.Dense(1, W_std=1.2, b_std=0.1))


def test_a_network_of_such_layers_is_not_fused_and_is_accurate() -> None:
    """``backend="fused"`` says why it does not cover the network; ``auto`` (the layer
    maps) is within 1e-14 of the referee at twins, near and anti-parallel pairs."""
    net = _sum_net(4)
    X = _inputs(1.0)
    with pytest.raises(InputError, match="reads the angle through the clipped correlation"):
        net[2](X, None, ("nngp", "ntk"), backend="fused")
    got = net[2](X, None, ("nngp", "ntk"))
    rn, rt = reference.kernel(as_description(net), X, None, dps=40)
    assert max(_rel(got.ntk, rt), _rel(got.nngp, rn)) <= 1e-14  # (4.6e-16 measured)


@pytest.mark.parametrize("norm, depth", [(1.0, 10), (1e6, 3)])
def test_the_homogeneous_kernel_carries_the_determinant(norm: float, depth: int) -> None:
    """``ntksym.kernel`` of the sum: within 1e-14 of the referee at every entry (1.1e-15 and
    5.5e-16 measured); the ``"dual"`` path it took before, determinants by subtraction,
    is asked for explicitly and misses 1e-10 (5.7e-9 and 2.7e-9)."""
    X = _inputs(norm)
    rn, rt = reference.kernel(SUM, X, None, depth=depth, bias_std=0.1, weight_std=1.2, dps=40)
    for backend, ok in (("auto", True), ("dual", False)):
        got = ntksym.kernel(SUM, depth, 0.1, 1.2, backend=backend)(X, get=("nngp", "ntk"))
        err = max(_rel(got.ntk, rt), _rel(got.nngp, rn))
        assert (err <= 1e-14) if ok else (err > 1e-10)
