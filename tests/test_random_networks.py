"""Networks nobody prepared: drawn at random from the fully connected grammar.

Each seed draws a network of Dense layers (either parameterization, with or without a
bias), activations (closed forms, ``Sign``, a sum of families, a polynomial), Dropout,
LayerNorm and blocks of two or three branches (the Identity among them or not, summed or
concatenated, nested once), with or without a first Dense layer. Most draws break a rule
of the description (two activations in a row, an activation on the inputs, ...); what is
asked of every draw is that each evaluator either accepts it or says why with an
``InputError``, and of the accepted ones that they are right: every step of the notes
verified, the kernels on both paths within 1e-13 of the referee on hostile inputs.
"""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest

from ntksym import stax
from ntksym.errors import InputError
from ntksym.notes.network import network_derivation, units

WIDTH = 4
_ACTS = (
    stax.Relu,
    stax.Erf,
    lambda: stax.LeakyRelu(0.2),
    stax.Abs,
    stax.Gelu,
    stax.Sign,
    lambda: stax.Sin(1.0, 0.8, 0.3),
    lambda: stax.Elementwise("sin(u) + u"),
    lambda: stax.Monomial(3),
)


def _dense(rng: random.Random) -> stax.Layer:
    return stax.Dense(
        WIDTH,
        W_std=round(rng.uniform(0.6, 1.5), 2),
        b_std=rng.choice([None, 0.1, 0.3]),
        parameterization="standard" if rng.random() < 0.25 else "ntk",
    )


def _layer(rng: random.Random, depth: int) -> list[stax.Layer]:
    r = rng.random()
    if r < 0.35:
        return [rng.choice(_ACTS)(), _dense(rng)]
    if r < 0.45:
        return [rng.choice(_ACTS)(), stax.Dropout(0.8), _dense(rng)]
    if r < 0.55:
        return [stax.LayerNorm()]
    if r < 0.65:
        return [_dense(rng)]
    if depth < 2:
        return [_block(rng, depth + 1)]
    return [rng.choice(_ACTS)(), _dense(rng)]


def _branch(rng: random.Random, depth: int) -> stax.Layer:
    if rng.random() < 0.3:
        return stax.Identity()
    parts = [layer for _ in range(rng.randint(1, 3)) for layer in _layer(rng, depth)]
    if rng.random() < 0.85:
        parts.append(_dense(rng))
    return stax.serial(*parts)


def _block(rng: random.Random, depth: int) -> stax.Layer:
    n = rng.randint(2, 3)
    fan = stax.FanInConcat() if rng.random() < 0.2 else stax.FanInSum()
    return stax.serial(stax.FanOut(n), stax.parallel(*[_branch(rng, depth) for _ in range(n)]), fan)


def network(seed: int) -> stax.Layer:
    """The network of ``seed``."""
    rng = random.Random(seed)
    parts = [] if rng.random() < 0.2 else [_dense(rng)]
    parts += [layer for _ in range(rng.randint(1, 3)) for layer in _layer(rng, 0)]
    if rng.random() < 0.8:
        parts += [rng.choice(_ACTS[:5])(), stax.Dense(1)]
    return stax.serial(*parts)


def _hostile() -> np.ndarray:
    """A pair 1e-8 apart, a near anti-parallel one, a large norm, zero, a small norm."""
    rng = np.random.default_rng(5)
    x, d, y = rng.standard_normal((3, WIDTH))
    return np.stack([x, x + 1e-8 * d, -x + 1e-7 * d, 30 * x, np.zeros(WIDTH), 1e-3 * y, y])


def _kernels(net: stax.Layer, X: np.ndarray, backend: str):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        return net.kernel_fn(X, backend=backend)


def _accepted_by_the_kernels(seed: int) -> bool:
    """Whether the layer maps accept seed's network (else they say why)."""
    net = network(seed)
    X = np.random.default_rng(seed).standard_normal((3, WIDTH))
    try:
        k = _kernels(net, X, "layers")
    except InputError:
        return False  # (a rule of the description: the notes refuse it too)
    assert np.all(np.isfinite(k.ntk)) and np.array_equal(k.ntk, k.ntk.T)
    return True


@pytest.mark.parametrize("seed", range(40))
def test_every_evaluator_accepts_a_network_or_says_why(seed: int) -> None:
    if _accepted_by_the_kernels(seed):
        units(network(seed))  # (every network the kernels accept, the notes read)


def test_the_notes_read_every_network_the_kernels_accept() -> None:
    """Over 200 seeds (about half accepted): no network the kernels accept is refused.

    Before session 18 the notes refused 1 in 8 of them (Sign before a standard Dense layer
    or a Dropout, LayerNorm first or last in a branch, a concatenation of the Identity).
    """
    refused = []
    for seed in range(40, 240):
        if _accepted_by_the_kernels(seed):
            try:
                units(network(seed))
            except InputError as exc:
                refused.append((seed, str(exc)[:120]))
    assert not refused, refused


# networks the notes refused before session 18, now read: Sign before a standard Dense
# layer and after a Dropout, a pre-LayerNorm branch, a branch ending in a LayerNorm, a
# concatenation of the Identity alone (each derivation a few seconds)
NEWLY_READ = (30, 62, 98, 124, 210, 282)


@pytest.mark.parametrize("seed", NEWLY_READ)
def test_networks_newly_read_are_verified(seed: int) -> None:
    results = network_derivation(network(seed)).run()
    assert all(r.verdict == "verified" for r in results), [
        (r.label, r.detail.plain()) for r in results if r.verdict != "verified"
    ]


# seeds whose networks every evaluator accepts: sin(u) + u before LeakyRelu and before Abs
# (the fused kernel's guard), a branch starting with a standard Dense layer; and, slower
# (about 5 minutes each: run with -m exhaustive), nested blocks with Sign, LayerNorm and a
# concatenation, Dropout before standard layers in branches, and a concatenation that
# holds the Identity twice. The referee evaluates each dual map by its closed form in
# mpmath for the first (a second or less; every activation of the grammar has one, each
# certified against quadrature in test_dual.py) and by quadrature for the thorough ones
# (about a minute per network even for the first three)
ACCEPTED = (6, 58, 92)
THOROUGH = (10, 12, 41)


def test_the_accepted_seeds_are_still_accepted() -> None:
    for seed in ACCEPTED + THOROUGH:
        units(network(seed))


@pytest.mark.parametrize(
    "seed",
    [*(pytest.param(s, marks=pytest.mark.slow) for s in ACCEPTED)]
    + [pytest.param(s, marks=pytest.mark.exhaustive) for s in THOROUGH],
)
def test_accepted_networks_are_verified_and_accurate(seed: int) -> None:
    net = network(seed)
    results = network_derivation(net).run()
    assert all(r.verdict == "verified" for r in results), [
        (r.label, r.detail.plain()) for r in results if r.verdict != "verified"
    ]
    X = _hostile()
    fast = seed in ACCEPTED  # (confirmed at 60 digits: 40 can lose some, test_kinked_det)
    method = "closed_form" if fast else "quadrature"
    ((rn, rt),) = stax.reference_kernels(net, X, dps=40, method=method, confirm=fast)
    for backend in ("layers", "fused"):
        got = _kernels(net, X, backend)
        for name, r in (("nngp", rn), ("ntk", rt)):
            a = getattr(got, name)
            scale = np.max(np.abs(r))
            # relative error; absolute (of the scale) on entries below 1e-6 of it
            err = np.abs(a - r) / np.maximum(np.abs(r), 1e-6 * scale)
            assert np.max(err) <= 1e-13, (backend, name, float(np.max(err)))
