"""Inputs that used to give a wrong number, hang or crash: each now gets a clear error,
or the right number.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

import ntksym
from ntksym import reference
from ntksym.activations.checks import MAX_DEGREE, gaussian_growth
from ntksym.errors import ActivationError, InputError, UnsafeExpressionError


@pytest.mark.parametrize(
    "text, match",
    [
        ("(u**64)**64", "u\\*\\*4096"),  # SymPy merges the powers: checked after building
        ("u**64*u**64*u**64", "u\\*\\*192"),
        ("(u+1)**40*(u-1)**40", "degree 80"),
    ],
)
def test_powers_are_capped_after_sympy_combines_them(text, match):
    with pytest.raises(UnsafeExpressionError, match=match):
        ntksym.get_activation(text)


def test_the_largest_allowed_power_still_works():
    assert ntksym.get_activation(f"u**{MAX_DEGREE}").expr.is_polynomial()


@pytest.mark.parametrize(
    "text, match",
    [
        ("sqrt(-1)*u", "complex"),
        ("sqrt(u)", "not real at u = -"),
        ("log(u)", "not real at u = -"),
        ("u**0.5", "not real at u = -"),
        ("1/u", "not finite at u = 0"),
        ("1/(u - 1)", "not finite at u = 1"),
    ],
)
def test_complex_or_undefined_activations_are_refused(text, match):
    with pytest.raises(ActivationError, match=match):
        ntksym.get_activation(text)


@pytest.mark.parametrize("text", ["sqrt(u**2 + 1)", "log(1 + exp(u))", "abs(u)**0.5"])
def test_real_everywhere_is_accepted(text):
    ntksym.get_activation(text)


@pytest.mark.parametrize(
    "text, a",
    [("exp(u**2)", 1.0), ("u*exp(0.3*u**2)", 0.3), ("cosh(u)**2", 0.0), ("relu(u)**3", 0.0)],
)
def test_gaussian_growth(text, a):
    assert gaussian_growth(ntksym.get_activation(text).expr) == pytest.approx(a, abs=1e-6)


def test_infinite_kernel_is_an_error_not_a_number():
    X = np.random.default_rng(0).standard_normal((3, 4))  # first-layer variances ~0.75
    with pytest.raises(InputError, match=r"infinite.*S < 1/\(4\*1\) = 0.25.*layer 2 of 2"):
        ntksym.kernel("exp(u**2)", 2)(X)
    with pytest.raises(InputError, match="infinite"):
        ntksym.kernel("exp(u**2)", 2)(X, get="nngp")


def test_infinite_at_a_deeper_layer_names_that_layer():
    # a = 0.2: bound S < 1.25; small inputs pass layer 2, and the variances then grow
    X = np.full((2, 1), 0.5)
    k = ntksym.kernel("exp(0.2*u**2)", 6, bias_std=0.5, weight_std=1.0)
    with pytest.raises(InputError, match=r"Sigma\^\((\d)\).*layer \d of 6") as info:
        k(X)
    assert "Sigma^(1)" not in str(info.value)


def test_finite_side_of_the_bound_is_right():
    X = np.array([[0.6, -0.2], [0.1, 0.9]])
    got = ntksym.kernel("exp(0.1*u**2)", 2, bias_std=0.2)(X, get=("nngp", "ntk"))
    with mpmath.workdps(30):
        want_nngp, want_ntk = reference.kernel("exp(0.1*u**2)", X, depth=2, bias_std=0.2)
    np.testing.assert_allclose(got.nngp, np.array(want_nngp, dtype=float), rtol=1e-12)
    np.testing.assert_allclose(got.ntk, np.array(want_ntk, dtype=float), rtol=1e-12)


def test_get_names_each_kernel_at_most_once():
    X = np.eye(2)
    with pytest.raises(InputError, match="twice"):
        ntksym.kernel("relu", 2)(X, get=("ntk", "ntk"))
    with pytest.raises(InputError, match="get must be"):
        ntksym.kernel("relu", 2)(X, get=("ntk", 3))


def test_a_depth_that_cannot_be_afforded_is_refused_before_any_work():
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(InputError, match=r"depth 1000000000 with 2 input rows needs .* GiB"):
        ntksym.kernel("relu", depth=10**9)(np.eye(2))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB


def test_work_that_would_take_days_is_refused_saying_how_long():
    from ntksym.kernels.finite import check_cost

    with pytest.raises(InputError, match="would take about .* days"):
        check_cost(10_000_000, None, 10)
    check_cost(8000, None, 10)  # the benchmark size passes


@pytest.mark.parametrize(
    "text, name",
    [
        ("relu(u)", "relu"),
        ("max(0, u)", "relu"),
        ("max(u, 0)", "relu"),
        ("u*heaviside(u)", "relu"),
        ("0.5*(u + abs(u))", "relu"),
        ("max(u, 0.2*u)", "leaky_relu(0.2)"),
        ("max(u,0) + 0.1*min(u,0)", "leaky_relu(0.1)"),
        ("max(u, -u)", "abs"),
        ("min(u,0) + max(u,0)", "identity"),
        ("tanh(u)", "tanh"),
        ("erf(u)", "erf"),
        ("exp(-u**2/2)", "gaussian"),
    ],
)
def test_typed_activations_are_recognised(text, name):
    assert ntksym.get_activation(text).name == name


@pytest.mark.parametrize("text", ["max(u, 0) - 1", "max(u, 1)", "tanh(u) + max(u, 0)"])
def test_other_expressions_are_left_alone(text):
    assert ntksym.get_activation(text).registered_base is None


def test_a_recognised_expression_runs_the_named_kernel():
    X = np.random.default_rng(3).standard_normal((20, 5))
    typed = ntksym.kernel("max(0, u)", 3, bias_std=0.1)(X, get=("nngp", "ntk"))
    named = ntksym.kernel("relu", 3, bias_std=0.1)(X, get=("nngp", "ntk"))
    np.testing.assert_array_equal(typed.ntk, named.ntk)
    np.testing.assert_array_equal(typed.nngp, named.nngp)


@pytest.mark.slow
def test_first_compilation_is_announced_once(tmp_path):
    """A fresh Numba cache: the first process says it compiles; the next one is silent."""
    import os
    import subprocess
    import sys

    pytest.importorskip("numba")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    code = "import numpy as np, ntksym; ntksym.kernel('erf', 3)(np.eye(3))"
    runs = [
        subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        for _ in range(2)
    ]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr[-2000:]
    assert "compiling the erf kernel for this machine" in runs[0].stderr
    assert "compiling" not in runs[1].stderr
