"""Shared test inputs, the one tolerance table, and the seed derivation run once per session.

Tests import the plain helpers (``from conftest import TOL, gaussian_inputs, adversarial``)
and request the fixtures by name.
"""

from __future__ import annotations

import math
import os
import random
from fractions import Fraction

import numpy as np
import pytest

from ntksym import testing

# A kernel's first call on a fresh Numba cache is answered by its NumPy module while Numba
# compiles in a background thread; the two can differ in the last bit, so the tests (which
# compare results exactly and measure nothing) wait for Numba. tests/test_hardening.py
# covers the background path itself in a subprocess.
os.environ.setdefault("NTKSYM_BACKGROUND_COMPILE", "0")

#: The one tolerance table, shared with users (ntksym.testing.TOL).
TOL = testing.TOL


def gaussian_inputs(n: int = 4, d: int = 3, seed: int = 0) -> np.ndarray:
    """``n`` standard normal inputs of dimension ``d`` (seeded)."""
    return np.random.default_rng(seed).standard_normal((n, d))


def adversarial(seed: int = 0) -> np.ndarray:
    """Eight inputs that break naive kernels: near-(anti-)parallel pairs, norms 1e-6..1e6, zero."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(8, 5))
    X[1] = X[0] * (1 + 1e-8 * rng.normal(size=5))  # near-parallel
    X[2] = -X[0] * (1 + 1e-8 * rng.normal(size=5))  # near anti-parallel
    X[3] *= 1e6
    X[4] = 0.0  # zero vector
    X[5] *= 1e-6
    X[6] = X[3] * (1 + 1e-8 * rng.normal(size=5))  # near-parallel, large norm
    X[7] = X[5] * (1 + 1e-8 * rng.normal(size=5))  # near-parallel, small norm
    return X


def arch_adversarial() -> np.ndarray:
    """The inputs of ``benchmarks/bench_arch_accuracy.py``: ``x``, its twin, ``x (1 + 1e-9)``,
    ``x + 1e-8 d``, ``-x + 1e-7 d``, ``-x``, ``1e3 x``, zero, ``1e-6 y``, ``1e6 z`` (d = 6)."""
    x, d, y, z = np.random.default_rng(5).standard_normal((4, 6))
    return np.vstack(
        [x, x.copy(), x * (1 + 1e-9), x + 1e-8 * d, -x + 1e-7 * d, -x, 1e3 * x, np.zeros(6),
         1e-6 * y, 1e6 * z]
    )  # fmt: skip


def _exact_fma(a: float, b: float, c: float) -> float:
    """``a b + c`` rounded once, as LLVM's ``fma`` in the compiled modules."""
    if not (math.isfinite(a) and math.isfinite(b) and math.isfinite(c)):
        return a * b + c
    return float(Fraction(a) * Fraction(b) + Fraction(c))


def python_module(source: str) -> dict:
    """A generated module's source run as plain Python: the ``@numba`` decorators dropped,
    so nothing is compiled, and its Numba intrinsic ``_fma`` (which has no Python body)
    replaced by the exact fused multiply-add. Returns the module's namespace."""
    namespace: dict = {}
    exec("\n".join(x for x in source.splitlines() if not x.startswith("@numba")), namespace)
    namespace["_fma"] = _exact_fma
    return namespace


def count_coefficients(monkeypatch: pytest.MonkeyPatch, module: object) -> list[int]:
    """Record how many variances each call of ``module._coefficients`` (the Mehler series'
    Hermite coefficients, ``codegen/runtime/numpy_mehler.py`` or a generated module's copy)
    integrates; the calls still run. Returns the list the sizes are appended to."""
    sizes: list[int] = []
    real = module._coefficients  # type: ignore[attr-defined]

    def counting(S: np.ndarray, f: object, kmax: int) -> object:
        sizes.append(S.size)
        return real(S, f, kmax)

    monkeypatch.setattr(module, "_coefficients", counting)
    return sizes


@pytest.fixture(autouse=True)
def _seed_global_random_state():
    """Seed the global generators too, so that no test depends on the order tests run in."""
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002 - the legacy global state, for any library that uses it


@pytest.fixture(scope="session")
def seed_quick_results() -> dict:
    """The seed derivation's quick run (label -> StepResult), computed once per session."""
    from ntksym.derivations import seed

    return {r.label: r for r in seed.DERIVATION.run(quick=True)}


def abs_sin_dual(s11: float, s12: float, s22: float, derivative: bool, dps: int = 40) -> float:
    """E[s(u) s(v)] (or of s') for s = abs(u) + sin(u), in closed form (mpmath, ``dps``).

    E[|u| |v|] = (2/pi) sqrt(s11 s22) (sqrt(1 - rho^2) + rho asin(rho)) and E[sign sign] =
    (2/pi) asin(rho) (the arc-cosine kernels of degree 1 and 0, Cho & Saul 2009);
    E[sin u sin v] = exp(-(s11 + s22)/2) sinh(s12), E[cos u cos v] the same with cosh
    (characteristic function of a Gaussian); the cross terms E[|u| sin v], E[sign(u) cos v]
    vanish, since (u, v) and (-u, -v) have one law and each term is odd under it. The
    inputs are taken exactly, det = s11 s22 - s12^2 formed in mpmath.
    """
    import mpmath

    with mpmath.workdps(dps):
        a11, a12, a22 = (mpmath.mpf(x) for x in (s11, s12, s22))
        rho = a12 / mpmath.sqrt(a11 * a22)
        damp = mpmath.exp(-(a11 + a22) / 2)
        if derivative:
            return float(2 / mpmath.pi * mpmath.asin(rho) + damp * mpmath.cosh(a12))
        root = mpmath.sqrt((a11 * a22 - a12 * a12) / (a11 * a22))
        sqrt_prod = mpmath.sqrt(a11 * a22)
        return float(
            2 / mpmath.pi * sqrt_prod * (root + rho * mpmath.asin(rho)) + damp * mpmath.sinh(a12)
        )


#: The runtime's vectorised erf and erfc against mpmath, in ulps of the exact value (the
#: C library's, on the same points: 0.87 and 3.2).
ERF_ULPS = 1.0
ERFC_ULPS = 4.0


# Monte Carlo over finite networks: the shared criteria of the width-rate tests.
#: Family-wise false-alarm probability of a z-score check over all the entries it tests.
MC_FALSE_ALARM = 1e-3
#: A fitted rate is compatible with -1/2 when within this many of its standard errors ...
RATE_SIGMAS = 3.0
#: ... plus this model error of the pure power law ``C n^(-1/2)`` (its ``1 + O(n^(-1/2))``
#: correction: below ~0.01 in slope over n = 64..2048, measured in tests/test_empirical.py).
RATE_ALLOWANCE = 0.02
#: A rate fit is informative (able to fail) only with a slope error below this.
RATE_INFORMATIVE = 0.1


def t_bound(n_tests: int, n_seeds: int, alpha: float = MC_FALSE_ALARM) -> float:
    """Bonferroni bound on ``|mean - limit| / sem`` over ``n_tests`` entries, each a mean of
    ``n_seeds`` draws: the two-sided Student-t quantile (``n_seeds - 1`` degrees of freedom,
    since ``sem`` is estimated) at level ``alpha / n_tests``."""
    import mpmath

    nu, level = n_seeds - 1, alpha / n_tests

    def tail(t: float) -> float:  # P(|T| > t) = I_{nu/(nu+t^2)}(nu/2, 1/2)
        return float(mpmath.betainc(nu / 2, 0.5, 0, nu / (nu + t * t), regularized=True))

    lo, hi = 0.0, 100.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if tail(mid) > level else (lo, mid)
    return hi


def rate_compatible(slope: float, slope_stderr: float) -> bool:
    """Whether a fitted exponent is -1/2 within :data:`RATE_SIGMAS` standard errors plus
    :data:`RATE_ALLOWANCE`, and the fit informative (:data:`RATE_INFORMATIVE`)."""
    informative = slope_stderr < RATE_INFORMATIVE
    return informative and abs(slope + 0.5) <= RATE_SIGMAS * slope_stderr + RATE_ALLOWANCE
