"""The legs of the three-way check that the other stax tests leave out (issue 14 audit).

``docs/architectures.md`` ("Every layer type, checked three ways") lists, per layer type,
which test compares it with the mpmath referee, with Monte Carlo over finite networks and
with neural-tangents. This file holds the ones that were missing:

* Monte Carlo for every activation that no Monte-Carlo test ran (the others: Relu,
  LeakyRelu, Erf, Sign in ``test_stax_checks.py``; Dropout in ``test_stax_dropout.py``),
  for two branches that are not a residual block, and for ``Dropout(mode="test")``;
* the mpmath referee for two non-residual branches, and ``Dropout(mode="test")`` as the
  identity;
* the audit's known losses, now passing: ``ABRelu(a, b)`` with ``b != 1`` and ``Abs`` at
  depth 20 (the referee's precision at singular covariances), ``Sin``/``Cos`` with a phase
  and ``Rbf`` at norms 1e3 and 1e6 (were NaN);
* neural-tangents (optional) for ``Rbf``, ``Elementwise`` (its ``ElementwiseNumerical``
  converging to ntksym's kernel as its degree grows), ``Dropout(mode="test")``, default
  ``Sin``/``Cos`` and two non-residual branches.
"""

import numpy as np
import pytest

from ntksym import stax

RNG = np.random.default_rng(14)
X = RNG.standard_normal((4, 5))
X_NT1 = RNG.standard_normal((5, 5))
X_NT2 = RNG.standard_normal((3, 5))

#: activations without a Monte-Carlo test elsewhere: one hidden layer each
MC_ACTS = {
    "ABRelu": stax.ABRelu(-0.4, 1.3),
    "Abs": stax.Abs(),
    "Gelu": stax.Gelu(),
    "Gelu-tanh": stax.Gelu(approximate=True),
    "Sin": stax.Sin(1.1, 0.8, 0.3),
    "Cos": stax.Cos(0.9, 1.2, 0.2),
    "Exp": stax.Exp(0.5, 0.4),
    "Gaussian": stax.Gaussian(1.3, -0.6),
    "Monomial2": stax.Monomial(2),
    "Rbf": stax.Rbf(0.7),
    "Sigmoid_like": stax.Sigmoid_like(),
    "Elementwise-tanh": stax.Elementwise("tanh(u)"),
    "RectifiedMonomial2": stax.RectifiedMonomial(2),
}


def two_branches(s, width=64):
    """Two independent branches that are not a residual block (``s``: either stax)."""
    return s.serial(
        s.Dense(width, 1.1, 0.2),
        s.FanOut(2),
        s.parallel(
            s.serial(s.Relu(), s.Dense(width, 0.9, 0.1)),
            s.serial(s.Erf(), s.Dense(width, 1.3, 0.2)),
        ),
        s.FanInSum(),
        s.Relu(),
        s.Dense(8, 1.0, 0.1),
    )


def dropout_test_mode(s, width=64):
    return s.serial(
        s.Dense(width, 1.2, 0.1),
        s.Relu(),
        s.Dropout(0.6, mode="test"),
        s.Dense(8, 0.9, 0.2),
    )


def deviations(net, n_samples=120, seed=3):
    """``|MC mean - kernel_fn| / sem`` (largest entry), and the median sem / kernel scale."""
    exact = net.kernel_fn(X)
    mc = stax.monte_carlo(net, X, n_samples, seed=seed)
    out = {}
    for kind in ("nngp", "ntk"):
        mean, sem, k = getattr(mc, kind), getattr(mc, f"{kind}_sem"), getattr(exact, kind)
        out[kind] = (np.max(np.abs(mean - k) / sem), np.median(sem) / np.max(np.abs(k)))
    return out


# --------------------------------------------------------------------------- Monte Carlo
@pytest.mark.parametrize("name", list(MC_ACTS))
def test_each_activation_matches_monte_carlo(name):
    net = stax.serial(stax.Dense(64, 1.2, 0.3), MC_ACTS[name], stax.Dense(8, 0.9, 0.1))
    for kind, (z, spread) in deviations(net).items():
        assert z < 4.5, (name, kind, z)
        assert spread < 0.05, (name, kind, spread)  # the check has power


def test_monte_carlo_sees_a_wrong_activation():
    """The same draws against the kernel of a slightly different activation fail."""
    net = stax.serial(stax.Dense(64, 1.2, 0.3), stax.Sin(1.1, 0.8, 0.3), stax.Dense(8, 0.9, 0.1))
    off = stax.serial(stax.Dense(64, 1.2, 0.3), stax.Sin(1.1, 0.9, 0.3), stax.Dense(8, 0.9, 0.1))
    mc = stax.monte_carlo(net, X, 120, seed=3)
    wrong = off.kernel_fn(X)
    assert np.max(np.abs(mc.ntk - wrong.ntk) / mc.ntk_sem) > 4.5


@pytest.mark.parametrize("make", [two_branches, dropout_test_mode], ids=lambda f: f.__name__)
def test_structures_match_monte_carlo(make):
    for kind, (z, spread) in deviations(make(stax)).items():
        assert z < 4.5, (kind, z)
        assert spread < 0.05, (kind, spread)


# --------------------------------------------------------------------------- mpmath
@pytest.mark.slow
def test_two_branches_match_the_mpmath_reference():
    net = two_branches(stax)
    ours = net.kernel_fn(X[:3], backend="layers")
    (ref,) = stax.reference_kernels(net.description, X[:3], dps=20)
    for a, r in zip(ours, ref, strict=True):
        assert np.max(np.abs(a - r) / np.abs(r)) < 1e-13


def test_dropout_in_test_mode_is_the_identity():
    net = dropout_test_mode(stax)
    plain = stax.serial(stax.Dense(64, 1.2, 0.1), stax.Relu(), stax.Dense(8, 0.9, 0.2))
    for a, b in zip(net.kernel_fn(X, backend="layers"), plain.kernel_fn(X), strict=True):
        np.testing.assert_array_equal(a, b)
    (ref,) = stax.reference_kernels(net.description, X[:2], dps=20)
    (ref_plain,) = stax.reference_kernels(plain.description, X[:2], dps=20)
    for r, p in zip(ref, ref_plain, strict=True):
        np.testing.assert_array_equal(r, p)
    _, params = net.init_fn(0, X.shape)
    without = params[:2] + params[3:]  # the Dropout layer has no parameters
    np.testing.assert_array_equal(net.apply_fn(params, X), plain.apply_fn(without, X))


# --------------------------------------------------------------------------- neural-tangents
def nt_cases(s):
    """Networks spelled identically in both libraries."""
    return {
        "rbf": s.serial(s.Dense(64, 1.1, 0.2), s.Rbf(0.7), s.Dense(1, 0.9, 0.1)),
        "sin-cos-defaults": s.serial(
            s.Dense(64, 1.0, 0.1), s.Sin(), s.Dense(64, 1.2, 0.2), s.Cos(), s.Dense(1)
        ),
        "two-branches": two_branches(s),
        "dropout-test-mode": dropout_test_mode(s),
    }


def _nt_stax():
    pytest.importorskip("neural_tangents")
    import jax

    jax.config.update("jax_enable_x64", True)
    from neural_tangents import stax as nt_stax

    return nt_stax


def _compare(ours, theirs, tol):
    worst = 0.0
    for x2 in (None, X_NT2):
        a = ours.kernel_fn(X_NT1, x2, get=("nngp", "ntk"))
        b = theirs[2](X_NT1, x2, ("nngp", "ntk"))
        for g in ("nngp", "ntk"):
            mine, peer = getattr(a, g), np.asarray(getattr(b, g))
            worst = max(worst, np.max(np.abs(mine - peer)) / np.max(np.abs(mine)))
    assert worst <= tol, worst
    return worst


@pytest.mark.optional
@pytest.mark.parametrize("name", list(nt_cases(stax)))
def test_agrees_with_neural_tangents(name):
    nt_stax = _nt_stax()
    _compare(nt_cases(stax)[name], nt_cases(nt_stax)[name], 1e-10)


@pytest.mark.optional
def test_elementwise_agrees_with_neural_tangents_numerical():
    """``Elementwise("tanh(u)")`` against neural-tangents' Gauss-Hermite ``ElementwiseNumerical``.

    neural-tangents integrates with a fixed Gauss-Hermite degree, which converges slowly
    for tanh (poles at +-i pi/2): measured 1.8e-2 at degree 16, 1.2e-5 at 64. ntksym integrates
    adaptively to float64 precision (its mpmath check is in test_stax_checks.py), so
    neural-tangents must approach it as the degree grows.
    """
    nt_stax = _nt_stax()
    import jax.numpy as jnp

    def net(s, act):
        return s.serial(s.Dense(64, 1.2, 0.3), act, s.Dense(1, 0.9, 0.1))

    ours = net(stax, stax.Elementwise("tanh(u)"))
    coarse = _compare(ours, net(nt_stax, nt_stax.ElementwiseNumerical(jnp.tanh, deg=16)), 0.1)
    fine = _compare(ours, net(nt_stax, nt_stax.ElementwiseNumerical(jnp.tanh, deg=64)), 1e-4)
    assert fine < coarse / 4, (coarse, fine)


# --------------------------------------------------------------------------- known losses
def _near_parallel_error(act, depth, scale=1.0):
    """Worst relative error of ``(Dense, act) * depth, Dense`` on ``x`` and ``x (1 + 1e-9)``."""
    x = np.random.default_rng(5).standard_normal(6)
    X = scale * np.vstack([x, x * (1 + 1e-9)])
    net = stax.serial(*[stax.Dense(8, 1.2, 0.3), act] * depth, stax.Dense(1, 0.9, 0.1))
    ours = net.kernel_fn(X, backend="layers")
    (ref,) = stax.reference_kernels(net.description, X, dps=30, method="auto")
    return max(np.max(np.abs(a - r) / np.abs(r)) for a, r in zip(ours, ref, strict=True))


def test_unscaled_leaky_relu_carries_the_determinant():
    assert _near_parallel_error(stax.LeakyRelu(0.3), 5) < 1e-13


def test_scaled_leaky_relu_carries_the_determinant():
    """ABRelu(a, b), b != 1, is b * leaky_relu(a / b) (the ``affine`` family).

    The audit's 3.5e-9 here was the referee's: it evaluated the diagonal (``det == 0``)
    by quadrature of the literal expression (0.4 and 1.3 in binary) and the pairs by the
    closed form of 1.3 * leaky_relu(4/13), 1e-17 apart, which moved the near-parallel
    determinant it recomputes from them by 1e-9 (``reference/duals.py``, ``_lost_digits``).
    """
    assert _near_parallel_error(stax.ABRelu(0.4, 1.3), 5) < 1e-13


@pytest.mark.parametrize(
    "act", [stax.ABRelu(0.4, 1.3), stax.ABRelu(-0.4, 1.3), stax.Abs()], ids=["ab", "ab-neg", "abs"]
)
def test_piecewise_linear_at_depth_20(act):
    """At depth 20 against a referee whose singular points keep the working precision.

    At 30 digits the closed forms' ``acos(rho)`` at ``rho = 1`` was ``sqrt(eps)`` = 1e-23
    off on the diagonal, which made the referee's own near-parallel determinants 1e-4 off
    and its NTK 4.7e-13 (``Abs``): the audit's "loss" was the referee's.
    """
    assert _near_parallel_error(act, 20) < 1e-13


def test_the_referee_keeps_its_precision_on_the_diagonal():
    """The referee's answer does not move when its precision doubles (it did by 4.7e-13)."""
    x = np.random.default_rng(5).standard_normal(6)
    X = np.vstack([x, x * (1 + 1e-9)])
    net = stax.serial(*[stax.Dense(8, 1.2, 0.3), stax.Abs()] * 20, stax.Dense(1, 0.9, 0.1))
    (lo,) = stax.reference_kernels(net.description, X, dps=30, method="auto")
    (hi,) = stax.reference_kernels(net.description, X, dps=60, method="auto")
    for a, b in zip(lo, hi, strict=True):
        assert np.max(np.abs(a - b) / np.abs(b)) < 1e-15


@pytest.mark.parametrize(
    "act",
    [stax.Sin(1.1, 0.8, 0.3), stax.Cos(0.9, 1.2, 0.2), stax.Rbf(0.7)],
    ids=["sin-phase", "cos-phase", "rbf"],
)
def test_phased_sin_at_large_inputs(act):
    """Finite and accurate at input norms 1e3 and 1e6 (was NaN: 0 * inf in SymPy's form)."""
    x = np.random.default_rng(5).standard_normal(6)
    X = np.vstack([x, 1e3 * x, 1e6 * x, x * (1 + 1e-9)])
    net = stax.serial(stax.Dense(8, 1.2, 0.3), act, stax.Dense(8, 0.9, 0.1), act, stax.Dense(1))
    ours = net.kernel_fn(X, backend="layers")
    (ref,) = stax.reference_kernels(net.description, X, dps=30, method="auto")
    for a, r in zip(ours, ref, strict=True):
        assert np.all(np.isfinite(a))
        assert np.max(np.abs(a - r) / np.abs(r)) < 1e-13


# --------------------------------------------------------------------------- fused kernel
def fixed_types_network():
    """ABRelu, Abs, Sin and Cos with a phase, Rbf: the types the audit found losing.

    The piecewise-linear ones first: the phased sines are Gaussian-MGF expressions, whose
    next determinant is formed by subtraction, and a kinked layer after one would read it.
    """
    return stax.serial(
        stax.Dense(8, 1.2, 0.3), stax.ABRelu(0.4, 1.3), stax.Dense(8, 1.1, 0.2), stax.Abs(),
        stax.Dense(8, 0.9, 0.3), stax.Sin(1.1, 0.8, 0.3), stax.Dense(8, 1.2, 0.2),
        stax.Cos(0.9, 1.2, 0.2), stax.Dense(8, 1.0, 0.3), stax.Rbf(0.7), stax.Dense(1, 0.9, 0.1),
    )  # fmt: skip


def adversarial_inputs():
    """As ``benchmarks/bench_arch_accuracy.py``: twins, near- and anti-parallel, 1e-6..1e6."""
    x, d, y, z = np.random.default_rng(5).standard_normal((4, 6))
    return np.vstack(
        [x, x.copy(), x * (1 + 1e-9), x + 1e-8 * d, -x + 1e-7 * d, -x, 1e3 * x, np.zeros(6),
         1e-6 * y, 1e6 * z]
    )  # fmt: skip


def _assert_matches_mpmath(net, backend):
    X = adversarial_inputs()
    (ref,) = stax.reference_kernels(net.description, X, dps=30, method="auto")
    for a, r in zip(net.kernel_fn(X, backend=backend), ref, strict=True):
        assert np.all(np.isfinite(a))
        assert np.max(np.abs(a - r) / np.abs(r)) < 1e-13


@pytest.mark.parametrize("backend", ["layers", pytest.param("fused", marks=pytest.mark.exhaustive)])
def test_fixed_types_match_mpmath_on_adversarial_inputs(backend):
    """Both paths within 1e-13 of mpmath, norms 1e3 and 1e6 included (fused: one module,
    74 s of CPU to compile, measured 4.4e-16)."""
    _assert_matches_mpmath(fixed_types_network(), backend)


@pytest.mark.slow
def test_fused_phased_sines_match_mpmath_on_adversarial_inputs():
    """The generated kernel prints the typed MGF expressions' stable maps (distances from
    the carried determinant): with the closed spec's rho a coincident pair at variance 1e12
    was 6e-5 off."""
    net = stax.serial(
        stax.Dense(8, 1.2, 0.3), stax.Sin(1.1, 0.8, 0.3), stax.Dense(8, 1.0, 0.3),
        stax.Rbf(0.7), stax.Dense(1, 0.9, 0.1),
    )  # fmt: skip
    _assert_matches_mpmath(net, "fused")
