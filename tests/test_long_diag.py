"""The variances' low parts after erf, GELU, sin, ... (``ntksym.codegen.long_diag``).

Each input's variance after an activation whose ``E[sigma(u)^2]`` is not affine gets its
low part from that map in long double (``_long_low`` of
``ntksym.codegen.runtime.numpy_long``); the determinants after erf, GELU and the
Gaussian-MGF family read ``S11 - S22`` through the double-double root gap ``U``. Checked
here: the long-double maps against mpmath at 40 digits, the guard that refuses a map
with a float64 constant, the low part's bound, and networks built to expose the
variances' rounding (a biased Dense layer after the activation, then Signs) against the
referee at 50 digits on both paths, each with its planted error (session 21: 1.1e-13
after erf, 2.6e-13 after GELU, 1.8e-13 after ``Sin(1.0, 0.8, 0.3)``).
"""

import mpmath as mp
import numpy as np
import pytest
import sympy as sp
import test_random_networks as grammar

from ntksym import stax
from ntksym.architecture.description import as_description
from ntksym.codegen import long_diag
from ntksym.codegen.runtime.numpy_long import LONG_DOUBLE, LOW_BOUND, long_low
from ntksym.codegen.spec import S, kernel_spec
from ntksym.kernels import layer_maps, variance_dd

needs_long = pytest.mark.skipif(not LONG_DOUBLE, reason="long double is float64 here")

WITH_MAP = {
    "erf": stax.Erf(),
    "erf-scaled": stax.Erf(1.2, 0.7, 0.1),
    "gelu": stax.Gelu(),
    "sin-phase": stax.Sin(1.0, 0.8, 0.3),
    "cos": stax.Cos(),
    "gaussian": stax.Gaussian(),
    "sigmoid-like": stax.Sigmoid_like(),
    "monomial": stax.Monomial(3),
    "sin-plus-u": stax.Elementwise("sin(u) + u"),
}
WITHOUT_MAP = {
    "relu (affine)": stax.Relu(),
    "abs (affine)": stax.Abs(),
    "sign (Piecewise, variance 1)": stax.Sign(),
    "tanh (no closed form)": stax.Elementwise("tanh(u)"),
}


def _activation(layer):
    return as_description(layer).activation


@needs_long
@pytest.mark.parametrize("name", list(WITH_MAP))
def test_long_diagonal_matches_mpmath(name):
    """At 40 variances 1e-10..1e5, within 2e-18 relative of the 40-digit diagonal map."""
    act = _activation(WITH_MAP[name])
    f = long_diag.long_diag(act)
    assert f is not None
    exact = sp.lambdify(S, kernel_spec(act).diag, "mpmath")
    at = np.logspace(-10, 5, 40).astype(np.longdouble)
    got = np.broadcast_to(f(at), at.shape)
    assert got.dtype == np.longdouble
    with mp.workdps(40):
        for s, g in zip(at, got, strict=True):
            want = exact(mp.mpf(str(s)))
            assert abs(mp.mpf(str(g)) - want) <= 2e-18 * abs(want), (name, s)


@pytest.mark.parametrize("name", list(WITHOUT_MAP))
def test_no_long_diagonal_where_none_is_needed_or_known(name):
    assert long_diag.long_diag_source(_activation(WITHOUT_MAP[name]), "_l0") is None


@needs_long
def test_a_float64_constant_fails_the_check(monkeypatch):
    """Planted: ``pi`` printed as its float64 rounding; the source is refused."""
    act = _activation(stax.Erf())
    long_diag.long_diag_source.cache_clear()
    monkeypatch.setattr(long_diag, "_PI", repr(np.pi))
    try:
        assert long_diag.long_diag_source(act, "_l0") is None
    finally:
        long_diag.long_diag_source.cache_clear()


def test_low_part_is_bounded_and_finite():
    """The low part is ``f(hi + lo) - out`` where that is a rounding correction, else 0."""
    hi = np.array([0.5, 2.0, 3.0, 1e300])
    out = hi.copy()
    lo = np.array([1e-17, -2e-17, 0.0, 0.0])
    got = long_low(lambda s: s, hi, lo, out)
    if LONG_DOUBLE:  # (lo rounded to long double's precision at hi)
        assert np.all(np.abs(got - lo) <= 2.0**-63 * hi)
    else:
        assert not got.any()
    assert not long_low(lambda s: s * (1 + 10 * LOW_BOUND), hi, lo, out).any()
    assert not long_low(lambda s: s * np.inf, hi, lo, out).any()


def _network(act):
    d = stax.Dense
    return stax.serial(
        d(4, b_std=0.1), act, d(4, b_std=0.3), stax.Sign(), d(4), stax.Sign(), d(4), stax.Relu(),
        d(1),
    )  # fmt: skip


SHOWN = {"erf": stax.Erf(), "gelu": stax.Gelu(), "sin-phase": stax.Sin(1.0, 0.8, 0.3)}


def _chain():
    """All three, each after a biased Dense layer, then the Signs (one fused compile)."""
    d = stax.Dense
    return stax.serial(
        d(4, b_std=0.1), stax.Erf(), d(4, b_std=0.3), stax.Gelu(), d(4, b_std=0.2),
        stax.Sin(1.0, 0.8, 0.3), d(4, b_std=0.3), stax.Sign(), d(4), stax.Sign(), d(4),
        stax.Relu(), d(1),
    )  # fmt: skip


@pytest.fixture(scope="module")
def referees():
    X = grammar._hostile()
    out = {}
    for name, net in [(n, _network(a)) for n, a in SHOWN.items()] + [("chain", _chain())]:
        ((nngp, ntk),) = stax.reference_kernels(net, X, dps=50, method="auto")
        out[name] = (net, X, nngp, ntk)
    return out


def _worst(got, nngp, ntk):
    return max(
        float(np.max(np.abs(g - r) / np.abs(r))) for g, r in ((got.nngp, nngp), (got.ntk, ntk))
    )


@needs_long
@pytest.mark.slow
@pytest.mark.parametrize(
    "name, backend", [(n, "layers") for n in SHOWN] + [("chain", "layers"), ("chain", "fused")]
)
def test_variances_after_smooth_activations_keep_their_digits(referees, name, backend):
    """Within 3e-15 of the referee (measured 3.5e-16..1.1e-15; before, on both paths:
    1.1e-13 after erf, 2.6e-13 after GELU, 1.8e-13 (4.6e-13 fused) after sin, the chain
    1.5e-12 (1.4e-12 fused))."""
    net, X, nngp, ntk = referees[name]
    assert _worst(net.kernel_fn(X, backend=backend), nngp, ntk) <= 3e-15


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SHOWN))
def test_without_the_long_maps_or_the_root_gap_the_digits_are_lost(referees, name, monkeypatch):
    """Planted, on the layer maps: the low parts after the activation dropped (measured
    3.8e-14..2.5e-13 off), or the determinants fed the rounded roots' difference
    (5.2e-14..3.0e-13 off)."""
    net, X, nngp, ntk = referees[name]
    with monkeypatch.context() as m:
        m.setattr(variance_dd, "long_diag", lambda act: None)
        assert _worst(net.kernel_fn(X, backend="layers"), nngp, ntk) > 2e-14
    with monkeypatch.context() as m:
        m.setattr(
            layer_maps, "_root_gap", lambda b: np.sqrt(b.s11)[:, None] - np.sqrt(b.s22)[None, :]
        )
        assert _worst(net.kernel_fn(X, backend="layers"), nngp, ntk) > 2e-14


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["layers", "fused"])
def test_erf_then_relu_on_very_unequal_variances(backend):
    """The random grammar's seed 24 (no bias anywhere): the pair ``x + 1e-8 d``, ``1e-3 y``
    (variances 1e6 apart, far from parallel) after erf, then ReLU. Erf's carried
    determinant cancelled there (its ``K1`` by a factor ``y1 / y2``): 4.1e-11 off on the
    layer maps, 2.4e-10 fused, then 1.0e-12 with ``S11 - S22`` from the root gap; far from
    parallel it is now the direct ``g1 g2 - E^2`` (measured 2.6e-15 and 3.9e-15)."""
    net = grammar.network(24)
    X = grammar._hostile()[[0, 1, 2, 3, 5, 6]]  # (ReLU's closed form is undefined at 0)
    ((nngp, ntk),) = stax.reference_kernels(net, X, dps=40, method="closed_form", confirm=True)
    assert _worst(net.kernel_fn(X, backend=backend), nngp, ntk) <= 1e-14
