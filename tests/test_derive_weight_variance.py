import importlib
from pathlib import Path

import pytest
import sympy as sp

from ntksym.derive.numeric import DerivedRecursion, compare_with_reference, parts_from
from ntksym.derive.symbols import GaussE, L, sigmadot

ROOT = Path(__file__).resolve().parents[1]
wv = importlib.import_module("ntksym.derivations.weight_variance")


@pytest.fixture(scope="module")
def env_results():
    env: dict = {}
    from ntksym.derive.core import run_step

    results = {s.label: run_step(s, env, extra=False) for s in wv.DERIVATION.steps}
    return env, results


def test_every_step_verified(env_results):
    _, results = env_results
    assert {lab: r.verdict for lab, r in results.items()} == {lab: "verified" for lab in results}


def test_derived_recursion_matches_reference_with_weight_scale(env_results):
    env, _ = env_results
    parts = parts_from(env, **wv.LABELS)
    for sw, beta_ in ((1.7, 0.3), (0.6, 0.0)):
        worst = compare_with_reference(
            parts, "relu", depth=3, bias_std=beta_, weight_std_value=sw, dps=30
        )
        assert worst < 1e-20
    worst = compare_with_reference(
        parts, "erf", depth=2, bias_std=0.2, weight_std_value=1.3, dps=20
    )
    assert worst < 1e-12


def test_reference_comparison_detects_a_missing_weight_variance(env_results):
    env, _ = env_results
    parts = parts_from(env, **wv.LABELS)
    u, v = sp.symbols("u v", real=True)
    wrong = DerivedRecursion(
        parts.sigma1, parts.sigma_next, GaussE(sigmadot(u) * sigmadot(v), u, v, L), parts.theta_next
    )
    assert compare_with_reference(wrong, "relu", depth=3, bias_std=0.3, weight_std_value=1.7) > 1e-3
    # with sigma_w = 1 the same mistake is invisible: the check is only as good as its data
    assert (
        compare_with_reference(wrong, "relu", depth=3, bias_std=0.3, weight_std_value=1.0) < 1e-20
    )


def test_sigma1_has_the_weight_variance(env_results):
    env, _ = env_results
    s1 = env["1"].args[-1]
    assert s1.has(wv.sw) and s1.has(wv.beta)
    assert sp.expand(env["Sigmadot(L+1)"] / wv.sw**2).has(GaussE)


@pytest.mark.slow
def test_full_run_with_monte_carlo():
    res = {r.label: r for r in wv.DERIVATION.run()}
    assert all(r.verdict == "verified" for r in res.values())
    assert "monte-carlo" in res["8"].detail
