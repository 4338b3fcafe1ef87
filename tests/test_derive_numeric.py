"""Monte-Carlo evidence for the limit steps: the rate fit and checks that can fail."""

import importlib
from pathlib import Path

import numpy as np
import pytest

from ntksym.derive import numeric as num
from ntksym.derive.rules import apply_rule
from ntksym.derive.symbols import l

ROOT = Path(__file__).resolve().parents[1]
seed = importlib.import_module("ntksym.derivations.seed")


@pytest.fixture(scope="module")
def env():
    out: dict = {}
    for step in seed.DERIVATION.steps:
        out[step.label] = step.derive(out) if step.derive is not None else step.printed
        if step.label == "12.2":
            return out
    raise AssertionError("no step 12.2")


def test_fit_rate_recovers_a_power_law():
    rng = np.random.default_rng(0)
    widths = [64, 128, 256, 512]
    # distances C n^-1/2 with 5 % multiplicative noise, 200 draws per width
    d = [0.8 * n**-0.5 * (1 + 0.05 * rng.standard_normal(200)) for n in widths]
    fit = num.fit_rate(widths, d)
    assert abs(fit.slope + 0.5) < 3 * fit.slope_stderr + 1e-3
    assert fit.slope_stderr < 0.01 and fit.consistent()
    slow = num.fit_rate(
        widths, [0.8 * n**-0.3 * (1 + 0.05 * rng.standard_normal(200)) for n in widths]
    )
    assert not slow.consistent()
    assert "+-" in fit.describe() and "3 s.e." in fit.describe()


def test_nngp_limit_check_passes_and_can_fail(env):
    s1 = env["10"].args[-1]
    nxt = apply_rule("gaussian_process", env["12"].rhs, seed.C_l)
    fit, detail = num.nngp_monte_carlo(s1, nxt, l, 2, widths=(64, 256, 1024), n_samples=24)
    assert fit.consistent(), detail
    assert "rate -0.5" in detail or "rate -0.4" in detail
    # a limit 10 % too large: the distance stalls near 0.1 and the rate check rejects it
    bad, detail = num.nngp_monte_carlo(s1, 1.1 * nxt, l, 2, widths=(64, 256, 1024), n_samples=24)
    assert not bad.consistent(), detail
