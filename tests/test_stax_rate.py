"""Finite networks approach ``kernel_fn`` at rate ``width^(-1/2)``, architecture by architecture.

For each family (a residual network, LayerNorm, the standard parameterization with width
multipliers, Dropout in train mode, a chain mixing relu, erf and gelu with different
variances, and residual blocks with LayerNorm) networks are drawn at several widths ``n``
and each draw's empirical NNGP (``f f^T / K`` over ``K = n`` output units: with a fixed
``K`` it would not shrink) and empirical NTK (of one output unit, exact by reverse mode)
is compared with ``kernel_fn`` of the same description, widths included (at these few
inputs ``"auto"`` runs the float64 layer maps; tests/test_fused.py holds the fused module
to them). Two criteria, both from the draws' own scatter:

- at every width the mean over draws is within a Bonferroni Student-t bound
  (``conftest.t_bound``) of the kernel, entry by entry, in units of its standard error;
- the mean relative Frobenius distance of one draw from the kernel, fitted as ``C n^slope``
  by weighted least squares (``ntksym.stats.fit_power_law``, error bars from the scatter),
  has ``slope`` compatible with -1/2 (``conftest.rate_compatible``): the fluctuations are
  averages over ``n`` weakly dependent units (Jacot et al. 2018; Lee et al. 2019; for the
  standard parameterization Sohl-Dickstein et al. 2020).

Each check can fail: the same draws against a kernel with one planted error (a wrong bias
variance, Dropout rate or layer, the standard NTK computed for the wrong widths) fail it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from conftest import rate_compatible, t_bound

from ntksym import stax
from ntksym.empirical.architecture import empirical_kernels
from ntksym.stats import LineFit, fit_power_law

X = np.random.default_rng(3).standard_normal((8, 4))
KINDS = ("nngp", "ntk")
#: CI: four widths over a factor 8, 32 draws each (about 0.5-1 s of CPU per network).
QUICK = ((32, 64, 128, 256), 32)
#: Not in CI: widths over a factor 64, 64 draws each.
THOROUGH = ((32, 128, 512, 2048), 64)

Make = Callable[[int, int], stax.Layer]


# --------------------------------------------------------------------------- architectures
def residual(n: int, k: int, *, b_std: float = 0.2) -> stax.Layer:
    """Residual ReLU blocks ``x + Dense(relu(x))`` (FanOut, parallel, Identity, FanInSum)."""
    branch = stax.serial(stax.Relu(), stax.Dense(n, 1.3, b_std))
    block = stax.serial(stax.FanOut(2), stax.parallel(branch, stax.Identity()), stax.FanInSum())
    return stax.serial(
        stax.Dense(n, 1.1, 0.1), stax.repeat(block, 2), stax.Relu(), stax.Dense(k, 0.9, 0.1)
    )


def layer_norm(n: int, k: int, *, norm: bool = True) -> stax.Layer:
    """Dense, LayerNorm, relu, Dense, LayerNorm, erf, Dense (``norm=False``: no LayerNorm)."""
    ln = [stax.LayerNorm()] if norm else []
    return stax.serial(
        stax.Dense(n, 1.2, 0.3), *ln, stax.Relu(),
        stax.Dense(n, 0.9, 0.1), *ln, stax.Erf(),
        stax.Dense(k, 1.1, 0.2),
    )  # fmt: skip


def standard(n: int, k: int, *, factor: int = 2) -> stax.Layer:
    """Standard parameterization, hidden widths ``2 n`` (``n`` times the width multiplier
    ``s_out = 2``, which the next layer's ``s_in = 2`` takes back) and ``factor * n``: its
    NTK depends on both."""
    p = "standard"
    return stax.serial(
        stax.Dense(n, 1.2, 0.3, parameterization=p, s=(1, 2)), stax.Relu(),
        stax.Dense(factor * n, 1.1, 0.2, parameterization=p, s=(2, 1)), stax.Erf(),
        stax.Dense(k, 0.9, 0.1, parameterization=p),
    )  # fmt: skip


def dropout(n: int, k: int, *, rate: float = 0.5) -> stax.Layer:
    """Two Dropout layers in train mode (keep 0.7 after relu, ``rate`` after erf)."""
    return stax.serial(
        stax.Dense(n, 1.2, 0.1), stax.Relu(), stax.Dropout(0.7),
        stax.Dense(n, 1.1, 0.2), stax.Erf(), stax.Dropout(rate),
        stax.Dense(k, 0.9, 0.1),
    )  # fmt: skip


def mixed(n: int, k: int, *, b_std: float = 0.4) -> stax.Layer:
    """relu, erf(1.2 x + 0.1) * 0.7 and gelu layers, each Dense with its own variances."""
    return stax.serial(
        stax.Dense(n, 1.3, 0.2), stax.Relu(),
        stax.Dense(n, 0.8, b_std), stax.Erf(1.2, 0.7, 0.1),
        stax.Dense(n, 1.5, 0.1), stax.Gelu(),
        stax.Dense(k, 1.1, 0.3),
    )  # fmt: skip


def residual_layer_norm(n: int, k: int, *, norm: bool = True) -> stax.Layer:
    """Two residual blocks each followed by LayerNorm, then erf (the first rate test's)."""
    branch = stax.serial(stax.Relu(), stax.Dense(n, 1.2, 0.1))
    ln = [stax.LayerNorm()] if norm else []
    block = stax.serial(
        stax.FanOut(2), stax.parallel(branch, stax.Identity()), stax.FanInSum(), *ln
    )
    return stax.serial(stax.Dense(n, 1.1), stax.repeat(block, 2), stax.Erf(), stax.Dense(k, 0.9))


ARCHS: dict[str, Make] = {
    "residual": residual,
    "layer-norm": layer_norm,
    "standard": standard,
    "dropout-train": dropout,
    "mixed": mixed,
    "residual-layer-norm": residual_layer_norm,
}

#: The same architecture with one planted error in the kernel it is checked against, and
#: whether the error is gross enough for the rate alone to see it (the distance stalls).
PLANTED: dict[str, tuple[Make, bool]] = {
    "residual": (functools.partial(residual, b_std=0.3), False),  # branch bias 0.3, drawn 0.2
    "layer-norm": (functools.partial(layer_norm, norm=False), True),  # LayerNorm left out
    "standard": (functools.partial(standard, factor=1), True),  # widths (2n, n), drawn (2n, 2n)
    "dropout-train": (functools.partial(dropout, rate=0.6), False),  # keep 0.6, drawn 0.5
    "mixed": (functools.partial(mixed, b_std=0.5), False),  # bias std 0.5, drawn 0.4
    "residual-layer-norm": (functools.partial(residual_layer_norm, norm=False), True),
}


# --------------------------------------------------------------------------- the study
@functools.cache
def draws(name: str, widths: tuple[int, ...], n_seeds: int, seed: int = 0) -> dict:
    """``{kind: [(n_seeds, N, N) samples per width]}`` of the finite networks of ``name``.

    The NNGP sample is ``f f^T / n`` of a network with ``n`` outputs; the NTK sample is the
    NTK of its first output unit (the same parameters with the last Dense layer cut to one
    unit, which is a draw of the one-output network). Dropout masks are drawn per sample.
    """
    rng = np.random.default_rng(seed)
    out: dict = {kind: [] for kind in KINDS}
    for n in widths:
        wide, one = ARCHS[name](n, n), ARCHS[name](n, 1)
        samples: dict = {kind: [] for kind in KINDS}
        for _ in range(n_seeds):
            _, params = wide.init_fn(rng, X.shape)
            f = wide.apply_fn(params, X, rng=rng)
            samples["nngp"].append(f @ f.T / f.shape[1])
            W, b = params[-1]
            cut = (*params[:-1], (W[:, :1], None if b is None else b[:, :1]))
            samples["ntk"].append(empirical_kernels(one.description, cut, X, rng)[1])
        for kind in KINDS:
            out[kind].append(np.stack(samples[kind]))
    return out


@dataclass(frozen=True)
class Verdict:
    """One kernel's Monte Carlo check: worst z-score per width, its bound, and the rate fit."""

    z: tuple[float, ...]
    bound: float
    distance: tuple[float, ...]
    fit: LineFit

    @property
    def means_agree(self) -> bool:
        return max(self.z) < self.bound

    @property
    def rate_agrees(self) -> bool:
        return rate_compatible(self.fit.slope, self.fit.slope_stderr)


def verdicts(name: str, make: Make, widths: tuple[int, ...], n_seeds: int) -> dict[str, Verdict]:
    """Each kernel's verdict for the draws of ``name`` against the kernels of ``make``."""
    sampled = draws(name, widths, n_seeds)
    upper = np.triu_indices(len(X))
    bound = t_bound(len(KINDS) * len(widths) * len(upper[0]), n_seeds)
    result = {}
    for kind in KINDS:
        zs, mean_d, sem_d = [], [], []
        for n, s in zip(widths, sampled[kind], strict=True):
            limit = make(n, n if kind == "nngp" else 1).kernel_fn(X, get=kind)
            sem = s.std(axis=0, ddof=1) / np.sqrt(n_seeds)
            # an entry that does not fluctuate must be exact (to rounding)
            floor = 1e-12 * np.max(np.abs(limit))
            zs.append(
                float(np.max((np.abs(s.mean(axis=0) - limit) / np.maximum(sem, floor))[upper]))
            )
            d = np.linalg.norm(s - limit, axis=(1, 2)) / np.linalg.norm(limit)
            mean_d.append(d.mean())
            sem_d.append(d.std(ddof=1) / np.sqrt(n_seeds))
        fit = fit_power_law(np.asarray(widths, float), np.asarray(mean_d), np.asarray(sem_d))
        result[kind] = Verdict(tuple(zs), bound, tuple(mean_d), fit)
    return result


def describe(v: Verdict) -> str:
    return (
        f"max z per width {np.round(v.z, 2)} (bound {v.bound:.2f}); distances "
        f"{np.round(v.distance, 4)}; slope {v.fit.slope:.3f} +- {v.fit.slope_stderr:.3f} "
        f"(chi2/dof {v.fit.chi2_dof:.2f})"
    )


# --------------------------------------------------------------------------- tests
@pytest.mark.parametrize("name", list(ARCHS))
def test_monte_carlo_approaches_the_kernel_at_rate_inverse_square_root_of_width(name):
    for kind, v in verdicts(name, ARCHS[name], *QUICK).items():
        assert v.means_agree, (name, kind, describe(v))
        assert v.rate_agrees, (name, kind, describe(v))
        assert np.all(np.diff(v.distance) < 0), (name, kind, describe(v))


@pytest.mark.parametrize("name", list(PLANTED))
def test_a_planted_error_in_the_kernel_is_caught(name):
    """The same draws (cached) against a kernel with one planted error fail the check: the
    means at some width (every planted error), and the rate too for the gross ones."""
    make, gross = PLANTED[name]
    found = verdicts(name, make, *QUICK)
    assert not all(v.means_agree for v in found.values()), (name, describe(found["ntk"]))
    if gross:
        assert not all(v.rate_agrees for v in found.values()), (name, describe(found["ntk"]))


@pytest.mark.exhaustive
@pytest.mark.parametrize("name", list(ARCHS))
def test_rate_over_a_factor_64_in_width(name):
    for kind, v in verdicts(name, ARCHS[name], *THOROUGH).items():
        assert v.means_agree, (name, kind, describe(v))
        assert v.rate_agrees, (name, kind, describe(v))
