"""Generated kernels of activations without a closed form (adaptive quadrature) vs mpmath.

The fast tests compare with 30-digit references stored in ``data/quadrature_reference.json``
(written by ``data/make_quadrature_reference.py`` from :mod:`ntksym.reference`); the slow ones
recompute some of them.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from conftest import TOL

import ntksym
from ntksym import dual, reference
from ntksym.activations import get_activation
from ntksym.codegen import kernel_spec, load, render
from ntksym.codegen.files import package_generated_dir
from ntksym.codegen.spec import reflection

DATA = json.loads((Path(__file__).parent / "data" / "quadrature_reference.json").read_text())
BACKENDS = ["numba", "numpy"]
SMOOTH = ["tanh", "sigmoid", "softplus", "silu"]
# Worst errors measured (both backends): layer maps 1.3e-15 (relative; against the
# Cauchy-Schwarz bound where E[sigma sigma] vanishes), diagonal 4.4e-16; Gram matrices
# 1.7e-13 relative, at entries of ~1e-4 left by cancellation (-0.0903 + 0.09: the last
# layer alone multiplies the rounding error of its input by ~350), 2.5e-15 elsewhere but
# for one silu entry (1.9e-14). The bounds are about three times those.
PAIR_BOUND = 4e-15
DIAG_BOUND = 1.5e-15
KERNEL_BOUND = 5e-13


def _pairs(m, backend: str, a1, a2, s12, det):
    """(E[sigma sigma], E[sigma' sigma']) of a module's layer map at the given covariances."""
    z = np.zeros_like(a1)
    if backend == "numpy":
        e, ed, _ = m._pair(a1 * a1, a2 * a2, s12, det, z, z, 0.0, 0.0, a1, a2, z, z)
        return e, ed
    out = [
        m._pair(x * x, y * y, s, d, 0.0, 0.0, 0.0, 0.0, x, y, 0.0, 0.0)[:2]
        for x, y, s, d in zip(a1, a2, s12, det, strict=True)
    ]
    return np.array(out).T


def _diag(m, backend: str, S):
    return m._diag(S) if backend == "numpy" else np.array([m._diag(s) for s in S])


def _rel(got, ref, scale=None):
    """|got - ref| / |ref|, or / scale where |ref| < 1e-3 scale (the error where ref = 0)."""
    den = np.abs(ref)
    if scale is not None:
        den = np.where(den < 1e-3 * scale, scale, den)
    err = np.abs(got - ref)
    return np.where(den > 0, err / np.where(den > 0, den, 1.0), err)


# ----------------------------------------------------------------------------- identities
def test_reflection_identities():
    assert reflection(get_activation("tanh").expr) == (-1.0, 0.0, 0.0)
    assert reflection(get_activation("sigmoid").expr) == (-1.0, 1.0, 0.0)
    assert reflection(get_activation("softplus").expr) == (1.0, 0.0, -1.0)
    assert reflection(get_activation("silu").expr) == (1.0, 0.0, -1.0)
    assert reflection(get_activation("u*tanh(u)").expr) == (1.0, 0.0, 0.0)
    assert reflection(get_activation("tanh(u) + 0.1*u**2").expr) is None
    assert reflection(get_activation("sin(u) + tanh(u - 1)").expr) is None
    assert reflection(get_activation("relu(u) + tanh(u)").expr) is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_quadrature_modules_need_only_numpy_and_numba(backend):
    allowed = {"math", "numbers", "numpy"} | ({"numba"} if backend == "numba" else set())
    for text in (
        render("sigmoid", backend),
        render("tanh(u) + 0.1*u**2", backend),
        (package_generated_dir() / f"tanh_{backend}.py").read_text(),
    ):
        imported = set()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported.add((node.module or "").split(".")[0])
        assert imported <= allowed, imported


# ----------------------------------------------------------------------------- layer maps
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", SMOOTH)
def test_pair_map_vs_reference(name, backend):
    """Variances ~1e-6..1e3, correlations -1, -(1 - 1e-8), ..., 1 - 1e-8, 1 (30 digits)."""
    m = load(name, backend)
    rows = np.array([r[1:] for r in DATA["pairs"] if r[0] == name])
    a1, a2, s12, det, e_ref, ed_ref = rows.T
    e, ed = _pairs(m, backend, a1, a2, s12, det)
    # E[sigma sigma] vanishes at rho = 0 for tanh: there the error is measured against
    # the Cauchy-Schwarz bound sqrt(E[sigma(u)^2] E[sigma(v)^2])
    cs = np.sqrt(_diag(m, backend, a1 * a1) * _diag(m, backend, a2 * a2))
    worst = max(_rel(e, e_ref, cs).max(), _rel(ed, ed_ref).max())
    assert worst <= PAIR_BOUND, worst


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", SMOOTH)
def test_diag_vs_reference(name, backend):
    m = load(name, backend)
    a, want = np.array([r[1:] for r in DATA["diag"] if r[0] == name]).T
    worst = _rel(_diag(m, backend, a * a), want).max()
    assert worst <= DIAG_BOUND, worst


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_variance(backend):
    """u = 0 (a zero input without bias): E[sigma(0) sigma(v)] = sigma(0) E[sigma(v)]."""
    m = load("sigmoid", backend)
    S22 = np.array([1e-6, 0.7, 900.0])
    z = np.zeros(3)
    if backend == "numpy":
        e, ed, _ = m._pair(z, S22, z, z, z, z, 0.0, 0.0, z, np.sqrt(S22), z, z)
    else:
        e, ed = np.array(
            [
                m._pair(0.0, s, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, np.sqrt(s), 0.0, 0.0)[:2]
                for s in S22
            ]
        ).T
    np.testing.assert_allclose(e, 0.25, rtol=1e-15)  # sigmoid(0) E[sigmoid(v)] = 1/2 * 1/2
    _, want = dual.trapezoid("sigmoid", 0.0, 0.0, S22)
    np.testing.assert_allclose(ed, want, rtol=TOL.map)
    # both variances zero
    if backend == "numpy":
        e, ed, _ = m._pair(z, z, z, z, z, z, 0.0, 0.0, z, z, z, z)
    else:
        e, ed = m._pair(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)[:2]
    np.testing.assert_array_equal(e, 0.25)
    np.testing.assert_array_equal(ed, 1 / 16)


@pytest.mark.parametrize("backend", BACKENDS)
def test_without_reflection_identity(backend):
    """An activation without sigma(-u) = s sigma(u) + affine takes the general rule."""
    name = "tanh(u) + 0.1*u**2"
    assert kernel_spec(name).reflection is None
    m = load(name, backend)
    rng = np.random.default_rng(3)
    a1 = np.exp(rng.uniform(-3, 3, 12))
    a2 = np.exp(rng.uniform(-3, 3, 12))
    rho = np.concatenate([rng.uniform(-1, 1, 10), [1.0, -1.0]])
    s12 = rho * a1 * a2
    det = np.maximum((a1 * a2) ** 2 - s12**2, 0.0)
    e, ed = _pairs(m, backend, a1, a2, s12, det)
    want, want_d = dual.trapezoid(name, a1 * a1, s12, a2 * a2, det=det)
    np.testing.assert_allclose(e, want, rtol=TOL.kernel)
    np.testing.assert_allclose(ed, want_d, rtol=TOL.kernel)


@contextlib.contextmanager
def _rendered(spec, backend: str, name: str):
    """The module of ``spec`` rendered into a temporary file and imported as ``name``."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"{name}.py"
        path.write_text(render(spec, backend))
        mod_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[name] = module
        try:
            mod_spec.loader.exec_module(module)
            yield module
        finally:
            del sys.modules[name]


def test_reflected_and_general_rules_agree():
    """The same activation with and without the reflection identity (Numba)."""
    spec = dataclasses.replace(kernel_spec("softplus"), reflection=None)
    with _rendered(spec, "numba", "softplus_general_numba") as general:
        X = np.random.default_rng(4).normal(size=(6, 3)) * [[0.5], [1.0], [2], [4], [8], [1]]
        K1, T1 = general.nngp_ntk(X, None, 3, 0.2, 1.1)
    K2, T2 = load("softplus", "numba").nngp_ntk(X, None, 3, 0.2, 1.1)
    np.testing.assert_allclose(K1, K2, rtol=TOL.map)
    np.testing.assert_allclose(T1, T2, rtol=TOL.map)


@pytest.mark.parametrize(
    "name, backend",
    [
        ("tanh", "numpy"),
        ("tanh(u) + 0.1*u**2", "numpy"),  # (no reflection: the general rule)
        # (compiles a module: minutes on a loaded machine; tests/test_hardening.py checks
        # the committed Numba module's NNGP against its nngp_ntk in CI)
        pytest.param("tanh", "numba", marks=pytest.mark.exhaustive),
    ],
)
def test_the_nngp_alone_never_evaluates_the_derivative(name, backend):
    """nngp() runs sigma's integrals alone (separate passes, own convergence tests).

    The module rendered with sigma' = NaN gives the NNGP of the real module's nngp_ntk bit
    for bit: sigma' is not evaluated, and does not decide when sigma's rules stop. A zero
    input without bias takes the u = 0 branch.
    """
    rng = np.random.default_rng(8)
    X = rng.normal(size=(7, 3)) * np.exp(rng.uniform(-3, 3, (7, 1)))
    X[4] = 0.0
    X[5] = -2.0 * X[1]
    cases = [(X, None, 4, 0.2, 1.3), (X, X[:5] * 1.7 + 0.01, 3, 0.0, 0.9)]
    m = load(name, backend)
    spec = dataclasses.replace(kernel_spec(name), dact_form=sp.nan)
    with _rendered(spec, backend, f"nan_derivative_{backend}") as nan:
        for args in cases:
            K, T = m.nngp_ntk(*args)
            assert np.isfinite(T).all()
            assert np.array_equal(nan.nngp(*args), K)
            assert np.array_equal(m.nngp(*args), K)


# ----------------------------------------------------------------------------- Gram matrices
CASES = sorted({tuple(r[:3]) for r in DATA["kernels"]})


def _kernel_refs(case):
    ref = {}
    for r in DATA["kernels"]:
        if tuple(r[:3]) == case:
            ref[r[3], r[4]] = ref[r[4], r[3]] = (r[5], r[6])
    return ref


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-b{c[1]}-w{c[2]}")
def test_gram_vs_reference(case, backend):
    """Near-parallel, anti-parallel, zero, norms 1e-3..30, exactly parallel; depths 1..5."""
    name, b, w = case
    X = np.array(DATA["X"])
    ref = _kernel_refs(case)
    m = load(name, backend)
    worst = 0.0
    for depth in range(1, 6):
        for X1, X2, rows, cols in (
            (X, None, range(9), range(9)),
            (X[:5], X[3:], range(5), range(3, 9)),
        ):
            K, T = m.nngp_ntk(X1, X2, depth, b, w)
            Kr = np.array([[ref[i, j][0][depth - 1] for j in cols] for i in rows])
            Tr = np.array([[ref[i, j][1][depth - 1] for j in cols] for i in rows])
            worst = max(worst, _rel(K, Kr).max(), _rel(T, Tr).max())
    assert worst <= KERNEL_BOUND, worst


def test_numba_and_numpy_agree():
    rng = np.random.default_rng(5)
    X1, X2 = rng.normal(size=(12, 4)), 3 * rng.normal(size=(7, 4))
    for name in ("tanh", "silu"):
        a, b = load(name, "numba"), load(name, "numpy")
        for args in [(X1, None, 4, 0.2, 1.3), (X1, X2, 3, 0.0, 0.9)]:
            for Ka, Kb in zip(a.nngp_ntk(*args), b.nngp_ntk(*args), strict=True):
                np.testing.assert_allclose(Ka, Kb, rtol=TOL.kernel)


def test_auto_routes_smooth_activations_to_the_generated_module():
    X = np.random.default_rng(6).normal(size=(5, 3))
    for name in ("sigmoid", "tanh(2*u) + 0.1*u"):
        k = ntksym.kernel(name, depth=3, bias_std=0.2)
        got = k(X, get=("nngp", "ntk"))
        want = k.replace(backend="dual")(X, get=("nngp", "ntk"))
        np.testing.assert_allclose(got.nngp, want.nngp, rtol=TOL.kernel)
        np.testing.assert_allclose(got.ntk, want.ntk, rtol=TOL.kernel)
        # a Gauss-Hermite degree keeps the dual path
        gh = k.replace(degree=4)(X)
        assert not np.allclose(gh, got.ntk, rtol=1e-12, atol=0)


# ----------------------------------------------------------------------------- slow: live referee
@pytest.mark.slow
@pytest.mark.parametrize("name", ["tanh", "softplus"])
def test_stored_references_are_reproduced(name):
    """Recompute some stored entries with ntksym.reference (checks the data file)."""
    rows = [r for r in DATA["pairs"] if r[0] == name][::27]  # (every 9th: 80 s of CPU)
    for _, a1, a2, s12, _, e, ed in rows:
        assert float(reference.dual(name, a1 * a1, s12, a2 * a2, dps=30)) == e
        assert float(reference.dual(name, a1 * a1, s12, a2 * a2, dps=30, derivative=True)) == ed


@pytest.mark.exhaustive  # (540 s of CPU in CI, 2026-12-04; the stored references above
# and test_gram_vs_reference check the same modules against mpmath in CI)
def test_tanh_gram_vs_live_reference():
    """A fresh adversarial set, against reference.kernel computed here (about 9 minutes)."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=4)
    X = np.array(
        [
            x,
            x * (1 + 1e-8 * rng.normal(size=4)),
            -3 * x,
            np.zeros(4),
            10 * rng.normal(size=4),
            1e-3 * rng.normal(size=4),
        ]
    )
    for depth, b, w in ((2, 0.2, 1.5), (4, 0.05, 2.5)):
        Kr, Tr = reference.kernel("tanh", X, depth=depth, bias_std=b, weight_std=w, dps=30)
        for backend in BACKENDS:
            K, T = load("tanh", backend).nngp_ntk(X, None, depth, b, w)
            assert max(_rel(K, Kr).max(), _rel(T, Tr).max()) <= KERNEL_BOUND, backend


def test_a_small_first_call_is_answered_by_the_numpy_quadrature(monkeypatch):
    """Numba's cache lacks the tanh kernel: a call of at most BACKGROUND_WORK_QUADRATURE
    entry-layers gets the NumPy module (a compiling thread is prepared), a larger one waits."""
    from ntksym.kernels import dispatch

    numba_module = load("tanh", "numba")
    monkeypatch.setenv(dispatch.BACKGROUND_ENV, "1")
    monkeypatch.setattr(dispatch, "_COMPILERS", {})  # (no thread is started here)
    monkeypatch.setattr(dispatch, "_index_missing", lambda module, entry: True)
    act = get_activation("tanh")
    big = dispatch.BACKGROUND_WORK_QUADRATURE + 1
    assert dispatch.background_module(act, numba_module, big) is None
    stand_in = dispatch.background_module(act, numba_module, big - 1)
    assert stand_in is not None and stand_in.BACKEND == "numpy"
    assert stand_in.ACTIVATION == numba_module.ACTIVATION
    assert list(dispatch._COMPILERS) == [numba_module.__name__]


def test_the_quadrature_stand_in_is_timed_on_the_inputs_before_it_serves(monkeypatch):
    """Above PROBE_WORK_QUADRATURE the NumPy quadrature serves only if a sample says it beats
    waiting for Numba: nearly parallel inputs (no Mehler series) cost ~70 us per entry-layer."""
    from ntksym.kernels import dispatch

    numba_module = load("tanh", "numba")
    monkeypatch.setenv(dispatch.BACKGROUND_ENV, "1")
    monkeypatch.setattr(dispatch, "_COMPILERS", {})  # (no thread is started here)
    monkeypatch.setattr(dispatch, "_index_missing", lambda module, entry: True)
    act = get_activation("tanh")
    work = dispatch.BACKGROUND_WORK_QUADRATURE
    wait = dispatch.QUADRATURE_COMPILE_SECONDS + dispatch.QUADRATURE_NUMBA_SECONDS * work
    seen = []

    def probe(rate):
        def run(module):
            seen.append(module.BACKEND)
            return rate

        return run

    assert dispatch.background_module(act, numba_module, work, probe(2 * wait / work)) is None
    fast = dispatch.background_module(act, numba_module, work, probe(wait / work / 2))
    assert fast is not None and fast.BACKEND == "numpy"
    assert seen == ["numpy", "numpy"]  # (the probe times the stand-in itself)
    small = dispatch.PROBE_WORK_QUADRATURE
    assert dispatch.background_module(act, numba_module, small, probe(1.0)) is not None
    assert len(seen) == 2  # (small calls are not probed)
    # where the series takes most entries, NumPy answers any size, and nothing compiles
    monkeypatch.setattr(dispatch, "_COMPILERS", {})
    huge = 1000 * dispatch.BACKGROUND_WORK_QUADRATURE
    rate = dispatch.QUADRATURE_NUMBA_SECONDS / 4
    assert dispatch.background_module(act, numba_module, huge, probe(rate)).BACKEND == "numpy"
    assert dispatch._COMPILERS == {}
    monkeypatch.setenv(dispatch.BACKGROUND_ENV, "0")  # (which makes every call take Numba)
    assert dispatch.background_module(act, numba_module, huge, probe(rate)) is None


def test_the_probe_sees_nearly_parallel_inputs_cost_more():
    """The kernel's probe on its own inputs: the rate for nearly parallel rows of large
    variance (about 9 at the first layer: the series declines them, even at degree 256) is
    well above the rate for independent rows."""
    rng = np.random.default_rng(3)
    k = ntksym.kernel("tanh", 3, bias_std=0.1)
    numpy_module = load("tanh", "numpy")
    independent = rng.standard_normal((64, 20))
    parallel = 3.0 * (rng.standard_normal(20) + 0.02 * rng.standard_normal((64, 20)))
    rate_independent = min(k._probe(independent, None)(numpy_module) for _ in range(3))
    rate_parallel = min(k._probe(parallel, None)(numpy_module) for _ in range(3))
    assert rate_parallel > 5 * rate_independent


def test_the_numpy_quadrature_answers_before_numba_is_imported(monkeypatch):
    """Where the probe says the series takes most entries, numpy_first gives the NumPy module
    and the call never asks for Numba (whose import is ~0.5 s of a first call); where it says
    otherwise, numpy_first declines and the usual dispatch decides."""
    from ntksym.kernels import dispatch

    monkeypatch.setenv(dispatch.BACKGROUND_ENV, "1")
    act = get_activation("tanh")
    work = 2 * dispatch.PROBE_WORK_QUADRATURE
    fast = dispatch.QUADRATURE_NUMBA_SECONDS / 4
    assert dispatch.numpy_first(act, work, lambda m: fast).BACKEND == "numpy"
    assert dispatch.numpy_first(act, work, lambda m: 4 * fast) is None  # (slow: Numba decides)
    assert dispatch.numpy_first(act, dispatch.PROBE_WORK_QUADRATURE, lambda m: fast) is None
    assert dispatch.numpy_first(get_activation("relu"), work, lambda m: fast) is None
    monkeypatch.setenv(dispatch.BACKGROUND_ENV, "0")
    assert dispatch.numpy_first(act, work, lambda m: fast) is None

    # a whole call of independent rows: Numba is never loaded, the answer is the NumPy module's
    def no_numba(*args, **kwargs):
        raise AssertionError("Numba was asked for")

    monkeypatch.setenv(dispatch.BACKGROUND_ENV, "1")
    monkeypatch.setattr(dispatch, "_numba_available", no_numba)
    X = np.random.default_rng(8).standard_normal((150, 20))
    k = ntksym.kernel("tanh", 3, bias_std=0.1)
    got = k(X, get=("nngp", "ntk"))
    want = load("tanh", "numpy").nngp_ntk(X, None, 3, 0.1)
    assert np.array_equal(got.nngp, want[0]) and np.array_equal(got.ntk, want[1])
