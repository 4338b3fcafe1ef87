"""Inputs that used to give a wrong number, hang or crash: each now gets a clear error,
or the right number.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import mpmath
import numpy as np
import pytest

import ntksym
from ntksym import reference
from ntksym.activations.checks import MAX_DEGREE, gaussian_growth
from ntksym.codegen import render
from ntksym.codegen.files import package_generated_dir
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
        # poles between the probes: quadrature gave finite kernels for these (session 24)
        ("tan(u)", "not finite at u = 1.57079632679"),
        ("1/(u - 0.5)", "not finite at u = 0.5 "),
        ("1/(u - 0.5)**2", "not finite at u = 0.5 "),
        ("u + 1/(u**2 - 2)", "not finite at u = -?1.41421356237"),
        ("log(abs(u - 0.3))", "not finite at u = 0.3 "),
        ("abs(u - 0.3)**(-0.25)", "not finite at u = 0.3 "),
        ("exp(1/(u - 0.2))", "not finite at u = 0.2 "),
    ],
)
def test_complex_or_undefined_activations_are_refused(text, match):
    with pytest.raises(ActivationError, match=match):
        ntksym.get_activation(text)


@pytest.mark.parametrize(
    "text",
    [
        "sqrt(u**2 + 1)",
        "log(1 + exp(u))",
        "abs(u)**0.5",
        "1/(2 + sin(u))",  # (a base SymPy cannot prove positive: scanned, no zero)
        "u/(1 + abs(u))",
        "exp(-u**2)/(1.5 + cos(3*u))",
        "sigmoid(u)",
    ],
)
def test_real_everywhere_is_accepted(text):
    ntksym.get_activation(text)


@pytest.mark.parametrize(
    "text, a",
    [("exp(u**2)", 1.0), ("u*exp(0.3*u**2)", 0.3), ("cosh(u)**2", 0.0), ("relu(u)**3", 0.0)],
)
def test_gaussian_growth(text, a):
    assert gaussian_growth(ntksym.get_activation(text).expr) == pytest.approx(a, abs=1e-6)


@pytest.mark.parametrize("text", ["exp(u**4)", "exp(exp(u))", "exp(exp(exp(u)))", "2**exp(u)"])
def test_faster_than_any_gaussian_is_infinite_at_once(text):
    """Super-Gaussian growth: infinite for every variance; read without evaluating exp(exp(1e4))
    (which took minutes in mpmath), so the refusal is immediate."""
    assert gaussian_growth(ntksym.get_activation(text).expr) == float("inf")
    with pytest.raises(InputError, match=r"faster than every exp\(a u\^2\).*every S > 0") as err:
        ntksym.kernel(text, 2)(np.eye(2))
    assert "inf" not in str(err.value).replace("infinite", "")


@pytest.mark.parametrize("text", ["exp(-exp(u))", "tanh(exp(u))", "exp(-exp(-u))*u"])
def test_double_exponentials_that_stay_small_are_finite(text):
    assert gaussian_growth(ntksym.get_activation(text).expr) == 0.0


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


def test_a_huge_depth_runs_in_bounded_memory():
    """The generated modules keep the variances of two layers, not of every layer."""
    import resource

    k = ntksym.kernel("relu", depth=200_000, weight_std=2**0.5)
    k(np.eye(2), get="nngp")  # (compiled, warm)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    K = k(np.eye(2), get=("nngp", "ntk"))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 20_000  # KiB
    # ReLU with weight_std^2 = 2 and bias 0 keeps the diagonal at 2 |x|^2 / n0 = 1, and its
    # NTK grows by 1 a layer
    np.testing.assert_allclose(np.diag(K.nngp), 1.0, rtol=1e-9)
    np.testing.assert_allclose(np.diag(K.ntk), 200_000, rtol=1e-9)


def test_a_depth_that_cannot_finish_is_refused_before_any_work_saying_how_long():
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(InputError, match=r"4 entries at depth 10+ would take about .* years"):
        ntksym.kernel("relu", depth=10**15)(np.eye(2))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB


def test_work_that_would_take_days_is_refused_saying_how_long():
    from ntksym.kernels.finite import check_cost

    with pytest.raises(InputError, match="would take about .* days"):
        check_cost(10_000_000, None, 10)
    with pytest.raises(InputError, match="would take about .* years"):
        check_cost(2, None, 10**15)
    check_cost(8000, None, 10)  # the benchmark size passes
    check_cost(2, None, 10**9)  # a few rows at a billion layers: minutes, O(N) memory


@pytest.mark.parametrize("backend", ["numba", "numpy", "dual"])
@pytest.mark.parametrize("act", ["step", "sign"])
def test_a_zero_variance_is_a_point_mass_at_zero(act, backend):
    """u = 0 exactly (a zero input, no bias): sigma(0) with H(0) = 1/2, as the reference."""
    X = np.array([[0.0, 0.0], [1.0, 0.5], [-0.3, 0.2], [0.0, 0.0]])
    Y = np.array([[0.0, 0.0], [0.7, -0.1]])
    for depth, w in [(2, 1.0), (3, 1.3), (4, 0.8)]:
        k = ntksym.kernel(act, depth, bias_std=0.0, weight_std=w, backend=backend)
        for X2 in (None, Y):
            got = k(X, X2, get="nngp")
            want, _ = reference.kernel(act, X, X2, depth=depth, weight_std=w, ntk=False)
            np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("act", ["relu", "gelu", "tanh"])
def test_the_nngp_alone_is_the_nngp_of_both(act, backend):
    """get="nngp" skips the NTK (array and derivative map): the NNGP is the same, bit for bit.

    Whatever compiled the Numba functions first: see
    :func:`test_the_nngp_alone_does_not_depend_on_what_compiled_first`.
    """
    X = np.random.default_rng(2).standard_normal((30, 4))
    k = ntksym.kernel(act, 3, bias_std=0.2, backend=backend)
    both = k(X, get=("nngp", "ntk"))
    assert np.array_equal(k(X, get="nngp"), both.nngp)
    assert np.array_equal(k(X, X[:7], get="nngp"), k(X, X[:7], get=("nngp", "ntk")).nngp)


_NJIT = re.compile(r"^@numba\.njit\((.*)\)$", re.M)


def test_every_compiled_function_says_its_fast_math():
    """No generated Numba function leaves ``fastmath`` to Numba (or is inlined in Numba's IR).

    Numba compiles a function that does not set ``fastmath`` with the flags of the function
    whose compilation compiled it first, and keeps that in its disk cache; ``_layer``
    contracts multiply-adds. The quadrature's ``_pair`` then had FMAs or not depending on
    whether a kernel call or a direct call compiled it first, and the NNGP alone differed
    from the NNGP with the NTK by up to 7.5e-15 with a warm cache.
    """
    sources = {p.name: p.read_text() for p in package_generated_dir().glob("*_numba.py")}
    sources["sigmoid (rendered)"] = render("sigmoid", "numba")
    assert len(sources) > 5
    for name, text in sources.items():
        options = _NJIT.findall(text)
        assert options, name
        loose = [o for o in options if "fastmath=" not in o and 'inline="always"' not in o]
        assert not loose, (name, loose)


_COMPILE_PAIR_FIRST = """
import numpy as np
import ntksym
from ntksym.generated import tanh_numba as m
m._pair(1.0, 1.0, 0.5, 0.75, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0)  # (compiled first)
X = np.random.default_rng(2).standard_normal((30, 4))
k = ntksym.kernel("tanh", 3, bias_std=0.2, backend="numba")
print(int(np.sum(k(X, get="nngp") != k(X, get=("nngp", "ntk")).nngp)))
"""


@pytest.mark.exhaustive  # (compiles the tanh module afresh: about a minute of CPU)
def test_the_nngp_alone_does_not_depend_on_what_compiled_first(tmp_path):
    """A fresh Numba cache, ``_pair`` compiled first by a direct call (as tests do), then the
    kernels: before ``fastmath`` was explicit, 65 of the 900 NNGP entries differed (CI runs
    the cheap guard, :func:`test_every_compiled_function_says_its_fast_math`)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), NTKSYM_CACHE_DIR=str(tmp_path))
    src = str(pathlib.Path(ntksym.__file__).parents[1])
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", _COMPILE_PAIR_FIRST], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1] == "0", proc.stdout


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


@pytest.mark.slow
def test_a_first_call_is_answered_by_numpy_while_numba_compiles(tmp_path):
    """A fresh Numba cache: the first small call comes from the generated NumPy module, and the
    Numba kernel, compiled in the background meanwhile, then gives the same matrix to rounding."""
    import os
    import subprocess
    import sys

    pytest.importorskip("numba")
    code = (
        "import threading, numpy as np, ntksym\n"
        "from ntksym.codegen import load\n"
        "X = np.random.default_rng(0).standard_normal((300, 5))\n"
        "k = ntksym.kernel('relu', 3, bias_std=0.1)\n"
        "first = k(X)\n"
        "assert np.array_equal(first, load('relu', 'numpy').ntk(X, None, 3, 0.1)), 'not NumPy'\n"
        "[t.join() for t in threading.enumerate() if t.name.startswith('ntksym-compile')]\n"
        "later = k(X)\n"
        "assert np.array_equal(later, load('relu', 'numba').ntk(X, None, 3, 0.1)), 'not Numba'\n"
        "print(np.max(np.abs(first - later) / np.abs(later)))\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    env.pop("NTKSYM_BACKGROUND_COMPILE", None)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "compiling the relu kernel for this machine in the background" in r.stderr
    assert float(r.stdout) < 1e-13
    env["NTKSYM_BACKGROUND_COMPILE"] = "0"  # and the switch turns it off
    r = subprocess.run(
        [sys.executable, "-c", "import numpy as np, ntksym; ntksym.kernel('erf', 2)(np.eye(3))"],
        env={**env, "NUMBA_CACHE_DIR": str(tmp_path / "other")},
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and "in the background" not in r.stderr
    assert "compiling the erf kernel for this machine (once" in r.stderr


def test_numba_backend_without_numba_is_a_clear_error(monkeypatch):
    """Asking for Numba where it does not import names the fix; 'auto' falls back to NumPy."""
    import sys

    from ntksym.kernels import dispatch

    monkeypatch.setitem(sys.modules, "numba", None)  # makes `import numba` raise ImportError
    monkeypatch.setattr(dispatch, "_WARNED_NO_NUMBA", False)
    X = np.random.default_rng(0).standard_normal((3, 2))
    with pytest.raises(InputError, match=r"backend='numba' needs Numba.*pip install numba"):
        ntksym.kernel("erf", depth=2, backend="numba")(X)
    with pytest.warns(RuntimeWarning, match="Numba is not installed"):
        auto = ntksym.kernel("erf", depth=2, backend="auto")(X)
    numpy = ntksym.kernel("erf", depth=2, backend="numpy")(X)
    np.testing.assert_allclose(auto, numpy, rtol=1e-14)
