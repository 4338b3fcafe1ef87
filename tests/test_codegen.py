"""Generated Gram kernels: printers, layer maps, accuracy, freshness, files, errors."""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
from pathlib import Path

import mpmath
import numpy as np
import pytest
import sympy as sp
from conftest import TOL, adversarial

from ntksym import dual, reference
from ntksym.activations import get_activation
from ntksym.cli import codegen as codegen_command
from ntksym.codegen import GeneratedFileError, generate, kernel_spec, load, render, write_generated
from ntksym.codegen.files import is_intact, package_generated_dir
from ntksym.codegen.printers import printer_for
from ntksym.codegen.spec import COMMITTED, RHO, _check_free
from ntksym.dual.stable import B2, N11, N22, S11, S12, S22, W2, D, U
from ntksym.errors import ActivationError, InputError

GEN = package_generated_dir()


def _module(act: str, backend: str):
    return load(act, backend)


# ----------------------------------------------------------------------------- printers
def test_numba_printer_text():
    x = sp.Symbol("x")
    pr = printer_for("numba")
    assert pr.doprint(sp.Min(1, sp.Max(-1, x))) == "min(1, max(-1, x))"
    assert pr.doprint(sp.acos(x)) == "math.acos(x)"
    assert pr.doprint(sp.atan2(x, 2)) == "math.atan2(x, 2)"
    assert pr.doprint(sp.Piecewise((x, x > 0), (-x, True))) == "((x) if (x > 0) else (-x))"


def test_numpy_printer_text():
    x = sp.Symbol("x")
    pr = printer_for("numpy")
    assert pr.doprint(sp.Max(0, x)) == "numpy.maximum(0, x)"
    y, z = sp.symbols("y z")
    assert pr.doprint(sp.Max(x, y, z)) == "numpy.maximum(x, numpy.maximum(y, z))"
    assert pr.doprint(sp.erf(x)) == "_erf(x)"
    want = "numpy.where(numpy.greater(x, 0), x, -x)"
    assert pr.doprint(sp.Piecewise((x, x > 0), (-x, True))) == want


def test_generated_numba_has_no_reduce():
    text = render("relu", "numba")
    assert "functools" not in text and "@numba.njit(parallel=True" in text
    assert "cache=True" in text


# ----------------------------------------------------------------------------- layer maps
STABLE = ["relu", "leaky_relu", "abs", "identity", "erf", "step", "sign", "exp", "sin", "cos",
          "gaussian", "gelu"]  # fmt: skip


@pytest.mark.parametrize("name", STABLE)
def test_stable_layer_map_equals_dual_closed_form(name):
    """The hand-arranged maps equal ntksym.dual's derived closed forms (mpmath, 30 digits)."""
    spec = kernel_spec(name)
    maps = dual.closed_form(name)
    rng = np.random.default_rng(1)
    with mpmath.workdps(30):
        for _ in range(6):
            s11, s22 = rng.uniform(0.2, 3.0, size=2)
            rho = rng.uniform(-0.999, 0.999)
            s12 = rho * np.sqrt(s11 * s22)
            sub_d = {
                dual.S11: sp.Float(s11, 30),
                dual.S22: sp.Float(s22, 30),
                dual.S12: sp.Float(s12, 30),
            }
            det = sp.Float(s11, 30) * sp.Float(s22, 30) - sp.Float(s12, 30) ** 2
            sub = {
                S11: sp.Float(s11, 30),
                S22: sp.Float(s22, 30),
                S12: sp.Float(s12, 30),
                D: det,
                U: sp.sqrt(sp.Float(s11, 30)) - sp.sqrt(sp.Float(s22, 30)),
            }
            want = sp.N(maps.nngp.subs(sub_d), 25)
            got = sp.N(spec.nngp.subs(sub), 25)
            assert abs(got - want) <= 1e-20 * (1 + abs(want))
            if spec.ntk is not None:
                want = sp.N(maps.ntk.subs(sub_d), 25)
                got = sp.N(spec.ntk.subs(sub), 25)
                assert abs(got - want) <= 1e-20 * (1 + abs(want))


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "abs", "identity", "step", "sign"])
def test_stable_next_determinant_is_exact(name):
    """det expression == N11 N22 - (W2 E + B2)^2 with N = W2 E[sigma^2] + B2 (exact values)."""
    spec = kernel_spec(name)
    rng = np.random.default_rng(2)
    (S,) = spec.diag.free_symbols or {sp.Symbol("S")}  # (positive, or nonnegative: step, sign)
    for k in range(7):
        s11, s22, w2, b2 = (sp.Rational(int(v * 1000), 1000) for v in rng.uniform(0.2, 3, 4))
        rho = sp.Rational(int(rng.uniform(-0.99, 0.99) * 1000), 1000)
        if k >= 4 and spec.diag.has(sp.Piecewise):  # zero variances: u = 0 (or v, or both)
            s11, s22 = [(0, s22), (s11, 0), (0, 0)][k - 4]
        s12 = rho * sp.sqrt(s11 * s22)
        n11 = w2 * spec.diag.subs(S, s11) + b2
        n22 = w2 * spec.diag.subs(S, s22) + b2
        sub = {
            S11: s11,
            S22: s22,
            S12: s12,
            D: s11 * s22 - s12**2,
            N11: n11,
            N22: n22,
            W2: w2,
            B2: b2,
        }
        e = spec.nngp.subs(sub)
        want = sp.N(n11 * n22 - (w2 * e + b2) ** 2, 30)
        got = sp.N(spec.det.subs(sub), 30)
        assert abs(got - want) <= 1e-25 * (1 + abs(want)), (got, want)


def test_free_symbol_check():
    with pytest.raises(ActivationError, match="not arguments"):
        _check_free("bad", [S11 + sp.Symbol("q")], (S11, S12, S22))
    # a sum of families with no stable map of its own: SymPy's closed form in rho
    assert kernel_spec("erf(u) + u").kind == "closed" and RHO in kernel_spec("erf(u) + u").inputs
    assert kernel_spec("u**3").kind == "stable"  # (polynomials: dual/families/polynomial_det.py)
    assert kernel_spec("tanh").kind == "quadrature"


# ----------------------------------------------------------------------------- accuracy
@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("name", ["relu", "erf"])
def test_accuracy_vs_mpmath_reference(name, backend):
    m = _module(name, backend)
    X = adversarial()
    worst = 0.0
    cases = [(1, 0.3, 1.2), (2, 0.0, 1.0), (3, 0.3, 1.2), (8, 0.1, 1.4), (20, 0.0, 1.0)]
    for depth, b, w in cases:
        K, T = m.nngp_ntk(X, None, depth, b, w)
        Kr, Tr = reference.kernel(name, X, depth=depth, bias_std=b, weight_std=w, dps=50)
        nz = Kr != 0
        assert np.array_equal(K[~nz], Kr[~nz])
        worst = max(worst, np.max(np.abs(K - Kr)[nz] / np.abs(Kr[nz])))
        nz = Tr != 0
        worst = max(worst, np.max(np.abs(T - Tr)[nz] / np.abs(Tr[nz])))
        assert np.array_equal(K, K.T) and np.array_equal(T, T.T)
    assert worst <= 1e-13, worst


@pytest.mark.parametrize("name", ["leaky_relu", "abs", "identity", "step", "sign"])
def test_other_closed_forms_vs_reference(name):
    m = _module(name, "numpy")
    X = adversarial(3)[[0, 1, 3, 4, 6]]
    X2 = adversarial(4)[[0, 2, 5]]
    for depth, b, w in [(2, 0.3, 1.2), (6, 0.2, 1.1)]:
        Kr, Tr = reference.kernel(name, X, X2, depth=depth, bias_std=b, weight_std=w)
        K = m.nngp(X, X2, depth, b, w)
        assert np.max(np.abs(K - Kr) / np.abs(Kr)) <= 1e-13
        if m.HAS_NTK:
            T = m.ntk(X, X2, depth, b, w)
            assert np.max(np.abs(T - Tr) / np.abs(Tr)) <= 1e-13


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("name", ["exp", "sin", "cos", "gaussian", "gelu"])
def test_smooth_closed_forms_vs_reference(name, backend):
    """Stable maps of the smooth activations: near-parallel, anti-parallel, zero, small and
    large norms (kept where exp's kernel stays inside float64)."""
    m = _module(name, backend)
    X = adversarial(5)[[0, 1, 2, 4, 5, 7]]
    X = np.vstack([X, 3.0 * X[:1]]) * (0.2 if name == "exp" else 1.0)
    worst = 0.0
    cases = [(1, 0.3, 1.2), (3, 0.2, 1.0), (3, 0.0, 0.7), (5, 0.1, 0.9)]
    for depth, b, w in cases[:3] if name == "exp" else cases:  # exp(exp(...)) overflows
        K, T = m.nngp_ntk(X, None, depth, b, w)
        Kr, Tr = reference.kernel(name, X, depth=depth, bias_std=b, weight_std=w, dps=40)
        for got, ref in ((K, Kr), (T, Tr)):
            # (a zero-variance input makes some entries exactly 0, which the 40-digit
            # reference returns as ~1e-60: relative error measured above 1e-30)
            worst = max(worst, np.max(np.abs(got - ref) / np.maximum(np.abs(ref), 1e-30)))
    assert worst <= 1e-13, worst


def _gelu_points() -> list[tuple[float, float, float]]:
    """(S11, S22, S12) in float64: near-parallel, parallel, anti-parallel, 1e-8 .. 1e12."""
    pts = []
    for s in (1e-8, 1e-3, 0.7, 30.0, 1e4, 1e8, 1e12):
        for ratio in (1.0, 1 + 3e-9, 1e-3, 1e3):
            m = s * np.sqrt(ratio)
            for rho in (1.0, 1 - 1e-15, 1 - 1e-9, 0.5, -0.3, -1 + 1e-12, -1.0):
                pts.append((s, s * ratio, rho * m))
    return pts


def _gelu_mp_truth(a, b, c, w2, b2):
    """E, E' and the next determinant from ntksym.dual's closed form, in mpmath."""
    e = reference.dual("gelu", a, c, b, dps=45)
    ed = reference.dual("gelu", a, c, b, dps=45, derivative=True)
    n11 = w2 * reference.dual("gelu", a, a, a, dps=45) + b2
    n22 = w2 * reference.dual("gelu", b, b, b, dps=45) + b2
    return e, ed, n11, n22, n11 * n22 - (w2 * e + b2) ** 2


def test_gelu_layer_map_identities(monkeypatch):
    """stable.gelu's rearranged maps and next determinant equal the closed form (50 digits).

    The series of ``x - sin x`` and ``sin x - x cos x`` are swapped for the functions
    themselves here (they are checked on their own below), so the comparison is of the
    algebra only, with exact inputs: ``N11 N22 - (W2 E + B2)^2`` with ``N`` from the
    diagonal map, against ``det`` of the layer map.
    """
    from ntksym.dual.families import gelu

    monkeypatch.setattr(gelu, "x_minus_sin", lambda x: x - sp.sin(x))
    monkeypatch.setattr(gelu, "h_series", lambda x: sp.sin(x) - x * sp.cos(x))
    lm = gelu.gelu()
    args = (S11, S22, S12, D, N11, N22, W2, B2)
    f = [sp.lambdify(args, x, modules="mpmath") for x in (lm.nngp, lm.ntk, lm.det)]
    with mpmath.workdps(50):
        for s11, s22, s12 in _gelu_points():
            a, b, c = (mpmath.mpf(v) for v in (s11, s22, s12))
            det = a * b - c * c
            if det < 0:  # a rounded rho = +-1
                continue
            for w2, b2 in ((mpmath.mpf(1), mpmath.mpf(0)), (mpmath.mpf(1.7), mpmath.mpf(0.25))):
                e, ed, n11, n22, want = _gelu_mp_truth(a, b, c, w2, b2)
                x = (a, b, c, det, n11, n22, w2, b2)
                assert abs(f[0](*x) - e) <= 1e-30 * abs(e), (s11, s22, s12)
                assert abs(f[1](*x) - ed) <= 1e-30 * abs(ed), (s11, s22, s12)
                assert abs(f[2](*x) - want) <= 1e-30 * (1 + n11 + n22 + want), (s11, s22, s12)


def test_gelu_series_helpers():
    from ntksym.dual.families.gelu import x_minus_sin
    from ntksym.dual.stable import h_series

    x = sp.Symbol("x")
    xms, h = sp.lambdify(x, x_minus_sin(x), "mpmath"), sp.lambdify(x, h_series(x), "mpmath")
    with mpmath.workdps(60):
        for v in np.linspace(1e-3, 3.1, 200):
            t = mpmath.mpf(v)
            assert abs(xms(t) / (t - mpmath.sin(t)) - 1) <= 1e-17
            if v < 1:
                assert abs(h(t) / (mpmath.sin(t) - t * mpmath.cos(t)) - 1) <= 1e-17


def test_gelu_layer_map_float64_vs_mpmath():
    """stable.gelu in float64 against the closed form of ntksym.dual in mpmath (45 digits).

    The maps to 1e-14 relative (away from the zero crossing of E for anti-correlated
    pairs), and the next determinant to 8 eps relative to
    ``q = 1 + N11 + N22 + det``, the only way it enters the next layer. The direct form
    ``N11 N22 - S12'^2`` errs by ``eps N11 N22``, ~1e-4 of ``q`` at variance 1e12.
    """
    spec = kernel_spec("gelu")
    args = (S11, S22, S12, D, N11, N22, W2, B2)
    f64 = [sp.lambdify(args, x, modules="numpy") for x in (spec.nngp, spec.ntk, spec.det)]
    worst = 0.0
    with mpmath.workdps(45):
        for s11, s22, s12 in _gelu_points():
            a, b, c = (mpmath.mpf(v) for v in (s11, s22, s12))
            det = a * b - c * c
            if det < 0:
                continue
            for w2, b2 in ((1.0, 0.0), (1.7, 0.25)):
                e, ed, n11, n22, want = _gelu_mp_truth(a, b, c, mpmath.mpf(w2), mpmath.mpf(b2))
                with np.errstate(all="ignore"):
                    got = [float(g(s11, s22, s12, float(det), float(n11), float(n22), w2, b2))
                           for g in f64]  # fmt: skip
                # (E changes sign for S12 < 0 near D ~ 1.7 (1 + S11 + S22), where no
                # evaluation is accurate in relative terms: the problem is ill-conditioned)
                if s12 > 0 or not (1 + a + b) / 4 < det < 4 * (1 + a + b):
                    assert abs(got[0] - e) <= 1e-14 * abs(e), (s11, s22, s12)
                    assert abs(got[1] - ed) <= 1e-14 * abs(ed), (s11, s22, s12)
                worst = max(worst, float(abs(got[2] - want) / (1 + n11 + n22 + want)))
    assert worst <= 8 * np.finfo(float).eps, worst


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_gelu_large_norms_vs_reference(backend):
    """GELU at norms 1e3 and 1e6: near-parallel, anti-parallel, cross-norm and zero rows.

    GELU is ReLU-like there; before the stable next determinant (stable._gelu_det) the
    NTK of near-parallel pairs at norm 1e6 was off by ~1e-11, and anti-parallel pairs'
    NNGP by ~1e-10 (their first terms cancelled).
    """
    m = _module("gelu", backend)
    rng = np.random.default_rng(7)
    x = rng.normal(size=6)
    rows = []
    for s in (1e3, 1e6):
        rows += [s * x, s * x * (1 + 1e-8 * rng.normal(size=6)), -s * x]
    X = np.array(rows + [np.zeros(6)])
    worst = 0.0
    for depth, b, w in [(2, 0.0, 1.0), (3, 0.5, 1.0), (7, 0.5, 1.0), (12, 0.0, 1.0), (5, 0.2, 1.2)]:
        Xd = X if b > 0 else X[:-1]
        K, T = m.nngp_ntk(Xd, None, depth, b, w)
        Kr, Tr = reference.kernel("gelu", Xd, depth=depth, bias_std=b, weight_std=w, dps=40)
        for got, ref in ((K, Kr), (T, Tr)):
            scale = np.sqrt(np.outer(np.diag(ref), np.diag(ref)))
            ok = np.abs(ref) >= 1e-10 * scale
            worst = max(worst, np.max(np.abs(got - ref)[ok] / np.abs(ref[ok])))
    assert worst <= 1e-13, worst


@pytest.mark.parametrize("name", ["relu", "erf"])
def test_numba_and_numpy_agree(name):
    rng = np.random.default_rng(5)
    X1, X2 = rng.normal(size=(30, 7)), rng.normal(size=(20, 7))
    a, b = _module(name, "numba"), _module(name, "numpy")
    for args in [(X1, None, 4, 0.2, 1.3), (X1, X2, 3, 0.0, 0.9)]:
        Ka, Ta = a.nngp_ntk(*args)
        Kb, Tb = b.nngp_ntk(*args)
        # (atol: an entry W2*E + B2 near zero is a cancellation of the problem itself, and
        # the Numba kernel forms it with one fused multiply-add, NumPy with two roundings)
        np.testing.assert_allclose(Ka, Kb, rtol=TOL.map, atol=1e-15 * np.abs(Kb).max())
        np.testing.assert_allclose(Ta, Tb, rtol=TOL.map, atol=1e-15 * np.abs(Tb).max())


def test_nngp_only_modules_refuse_ntk():
    m = _module("step", "numpy")
    assert not m.HAS_NTK
    with pytest.raises(NotImplementedError, match="Dirac delta"):
        m.ntk(np.ones((2, 2)), None, 2, 0.1, 1.0)


# ----------------------------------------------------------------------------- freshness
@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("name", COMMITTED)
def test_committed_modules_are_fresh(name, backend):
    spec = kernel_spec(name)
    path = GEN / f"{spec.slug}_{backend}.py"
    assert path.read_text(encoding="utf-8") == render(name, backend), (
        f"{path} is stale: run ntksym codegen {name} --backend {backend} -o {GEN}"
    )


# ----------------------------------------------------------------------------- files
def test_atomic_write_noop_refuse_and_force(tmp_path):
    p = generate("relu", "numpy", tmp_path)
    text = p.read_text()
    assert is_intact(text) and text.startswith("# Generated by ntksym from template")
    mtime = p.stat().st_mtime_ns
    assert write_generated(p, text) is False and p.stat().st_mtime_ns == mtime
    p.write_text(text.replace("def nngp(", "def nngp_edited("))
    with pytest.raises(GeneratedFileError, match="edited by hand"):
        generate("relu", "numpy", tmp_path)
    generate("relu", "numpy", tmp_path, force=True)
    assert p.read_text() == text
    other = tmp_path / "erf_numpy.py"
    other.write_text("x = 1\n")
    with pytest.raises(GeneratedFileError, match="not a file generated"):
        generate("erf", "numpy", tmp_path)
    assert [q.name for q in tmp_path.iterdir() if q.name.startswith(".")] == []


def _generate_in(out_dir: str) -> str:
    return str(generate("erf", "numba", out_dir))


def test_concurrent_generation(tmp_path):
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        paths = pool.map(_generate_in, [str(tmp_path)] * 4)
    assert len(set(paths)) == 1
    assert Path(paths[0]).read_text() == render("erf", "numba")
    assert sorted(q.name for q in tmp_path.iterdir()) == ["erf_numba.py"]


def test_load_uses_committed_copy_or_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NTKSYM_CACHE_DIR", str(tmp_path))
    m = load("relu", "numpy")
    assert Path(m.__file__).resolve() == (GEN / "relu_numpy.py").resolve()
    act = get_activation("leaky_relu", slope=0.2)
    m2 = load(act, "numpy")
    assert Path(m2.__file__).parent == tmp_path / "kernels"
    K = m2.nngp(np.eye(3), None, 3, 0.1, 1.0)
    Kr, _ = reference.kernel(act, np.eye(3), depth=3, bias_std=0.1, weight_std=1.0)
    np.testing.assert_allclose(K, Kr, rtol=TOL.map)


def test_generated_module_does_not_import_ntksym():
    for path in GEN.glob("*.py"):
        text = path.read_text()
        assert "import ntksym" not in text and "from ntksym" not in text


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((np.ones(3), None, 2, 0.1, 1.0), "2-D"),
        ((np.array([[1.0, np.nan]]), None, 2, 0.1, 1.0), "finite"),
        ((np.ones((2, 3)), np.ones((2, 4)), 2, 0.1, 1.0), "same number of features"),
        ((np.ones((2, 3)), None, 0, 0.1, 1.0), "depth must be >= 1"),
        ((np.ones((2, 3)), None, True, 0.1, 1.0), "depth must be an integer"),
        ((np.ones((2, 3)), None, 2.0, 0.1, 1.0), "depth must be an integer"),
        ((np.ones((2, 3)), None, 2, -0.1, 1.0), "bias_std must be finite and >= 0"),
        ((np.ones((2, 3)), None, 2, 0.1, float("inf")), "weight_std"),
        (("abc", None, 2, 0.1, 1.0), "2-D array"),
        ((np.array([["a"]]), None, 2, 0.1, 1.0), "real numbers"),
        ((np.ones((2, 0)), None, 2, 0.1, 1.0), "no features"),
    ],
)
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_generated_module_input_errors(args, match, backend):
    m = _module("relu", backend)
    with pytest.raises(ValueError, match=match):
        m.nngp_ntk(*args)


def test_overflow_is_an_error():
    m = _module("relu", "numpy")
    with pytest.raises(ValueError, match="overflowed"):
        m.nngp(np.full((2, 2), 1e200), None, 2, 0.0, 1.0)


def test_bad_backend_and_activation():
    with pytest.raises(InputError, match="numba, numpy"):
        render("relu", "cuda")
    with pytest.raises(ActivationError):
        render("no_such_thing(", "numpy")


def test_command(tmp_path, capsys):
    import argparse

    parser = argparse.ArgumentParser()
    codegen_command.configure(parser)
    args = parser.parse_args(["erf", "--backend", "numpy", "-o", str(tmp_path)])
    assert codegen_command.run(args) == 0
    assert (tmp_path / "erf_numpy.py").is_file()
    (tmp_path / "erf_numpy.py").write_text((tmp_path / "erf_numpy.py").read_text() + "# x\n")
    with pytest.raises(GeneratedFileError, match="--force"):  # reported by ntksym.cli.main
        codegen_command.run(args)
    args = parser.parse_args(["erf", "--backend", "numpy", "-o", str(tmp_path), "--force"])
    assert codegen_command.run(args) == 0
    assert os.path.getsize(tmp_path / "erf_numpy.py") > 0
    _ = importlib  # keep the import used by helpers above


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("name", ["relu", "erf"])
def test_near_parallel_pairs_with_very_different_norms(name, backend):
    """x' = s x (1 + 1e-8 noise) with s far from 1: e = x' - x is then not small, and
    |x|^2 |e|^2 - (x.e)^2 cancels catastrophically (it gave relative errors ~1e6); the
    kernels switch to unit vectors there."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=6)
    X1 = np.array([1e6 * x, x, 1e-3 * x])
    noise = 1 + 1e-8 * rng.normal(size=(3, 6))
    X2 = np.array([1e-6 * x, 1e3 * x, -1e3 * x]) * noise
    m = _module(name, backend)
    for depth, b in [(2, 0.0), (4, 0.3), (9, 0.0)]:
        K, T = m.nngp_ntk(X1, X2, depth, b, 1.0)
        Kr, Tr = reference.kernel(name, X1, X2, depth=depth, bias_std=b, dps=50)
        assert np.max(np.abs(K - Kr) / np.abs(Kr)) <= 1e-13
        assert np.max(np.abs(T - Tr) / np.abs(Tr)) <= 1e-13


# ----------------------------------------------------------------------------- S12 > 0 variant
def test_positive_variant_drops_branches_and_quadrants():
    from ntksym.codegen.sign_variants import positive_variant
    from ntksym.dual.stable import Atan2Q

    spec = kernel_spec("relu")
    pos = positive_variant(spec.nngp)
    assert not pos.has(sp.Piecewise) and not pos.has(sp.atan2) and pos.has(Atan2Q)
    # a map that SymPy cannot decide stays as it was
    x = sp.Symbol("x", real=True)
    assert positive_variant(sp.atan2(x, S12)) == sp.atan2(x, S12)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("name", ["relu", "leaky_relu", "abs", "identity", "erf", "step", "sign"])
def test_positive_variant_matches_general_map(name, backend):
    """_pair_pos == _pair_any for S12 > 0, to a few ulps (the kernel switches between them)."""
    m = _module(name, backend)
    rng = np.random.default_rng(7)
    n = 400
    s11, s22 = 10.0 ** rng.uniform(-3, 3, size=(2, n))
    rho = np.concatenate([rng.uniform(1e-6, 1, n // 2), 1 - 10.0 ** rng.uniform(-16, -1, n // 2)])
    s12 = rho * np.sqrt(s11 * s22)
    det = s11 * s22 * (1 - rho) * (1 + rho)
    w2, b2 = 1.3, 0.04
    n11 = w2 * np.array([m._diag(v) for v in s11]) + b2
    n22 = w2 * np.array([m._diag(v) for v in s22]) + b2
    for k in range(n):
        args = (
            s11[k],
            s22[k],
            s12[k],
            det[k],
            n11[k],
            n22[k],
            w2,
            b2,
            np.sqrt(s11[k]),
            np.sqrt(s22[k]),
            np.sqrt(n11[k]),
            np.sqrt(n22[k]),
        )
        a = np.array(m._pair_any(*args), dtype=float)
        b = np.array(m._pair_pos(*args), dtype=float)
        scale = np.array([np.sqrt(n11[k] * n22[k]), 1.0, n11[k] * n22[k]])
        np.testing.assert_array_less(np.abs(a - b)[:2], 1e-14 * scale[:2] + 1e-300)
        # the determinant enters the next layer through sqrt(D), the sine of the angle
        # times sqrt(N11 N22): that angle agrees to rounding
        assert abs(np.sqrt(a[2]) - np.sqrt(b[2])) <= 1e-15 * np.sqrt(scale[2]), (k, a, b)


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "abs", "identity", "gelu", "sin", "cos"])
def test_negative_variant_matches_general_map(name):
    """_pair_neg == _pair_any for S12 <= 0 to a few ulps (a row with both signs takes
    _pair_neg where S12 <= 0), on the axis S12 = 0, near anti-parallel pairs and at a zero
    variance (S12 = D = 0: no NaN); non-finite exactly where the general map is."""
    m = _module(name, "numba")
    assert hasattr(m, "_pair_neg")
    rng = np.random.default_rng(8)
    n = 400
    s11, s22 = 10.0 ** rng.uniform(-3, 3, size=(2, n))
    rho = -np.concatenate([rng.uniform(0, 1, n // 2), 1 - 10.0 ** rng.uniform(-16, -1, n // 2)])
    rho[:5] = 0.0
    s12 = rho * np.sqrt(s11 * s22)
    det = s11 * s22 * (1 - rho) * (1 + rho)
    s11[-1], s12[-1], det[-1] = 0.0, 0.0, 0.0
    w2, b2 = 1.3, 0.04
    for k in range(n):
        n11, n22 = w2 * m._diag(s11[k]) + b2, w2 * m._diag(s22[k]) + b2
        args = (s11[k], s22[k], s12[k], det[k], n11, n22, w2, b2,
                np.sqrt(s11[k]), np.sqrt(s22[k]), np.sqrt(n11), np.sqrt(n22))  # fmt: skip
        args += (np.sqrt(s11[k]) - np.sqrt(s22[k]),) if m._GAP else ()  # (the root gap U)
        a = np.array(m._pair_any(*args), dtype=float)
        b = np.array(m._pair_neg(*args), dtype=float)
        fin = np.isfinite(a)  # (exp's maps overflow at the largest variances)
        assert (np.isfinite(b) == fin).all(), (k, a, b)
        if not fin.all():
            continue
        # at a zero variance E[sigma' sigma'] is a convention (the general map's _atan2
        # gives 0 or 1/2 by the sign of S12's zero, the variant 0); it multiplies an NTK
        # that is 0 there, so only the other outputs are compared
        scale = np.array([np.sqrt(n11 * n22), 1.0 if k < n - 1 else np.inf])
        np.testing.assert_array_less(np.abs(a - b)[:2], 1e-14 * scale + 1e-300)
        assert abs(np.sqrt(a[2]) - np.sqrt(b[2])) <= 1e-15 * np.sqrt(n11 * n22), (k, a, b)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("name", ["step", "sign"])
def test_rescaled_copies_keep_their_tiny_angle(name, backend):
    """x and s*x (rounded) meet at an angle ~1e-17 that step/sign layers blow up to O(1)
    (theta' ~ sqrt(theta)): the first determinant must be right relative to itself."""
    m = _module(name, backend)
    x = np.random.default_rng(0).standard_normal(16)
    X1, X2 = np.array([x, 1e3 * x]), np.array([1e-3 * x, 7.0 * x, x])
    for depth in (5, 9):
        K = m.nngp(X1, X2, depth, 0.0, 1.0)
        Kr, _ = reference.kernel(name, X1, X2, depth=depth, dps=40, ntk=False)
        assert np.max(np.abs(K - Kr) / np.abs(Kr)) <= 1e-13


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("name", ["sin", "cos"])
@pytest.mark.parametrize("norm", [1e5, 1e6])
def test_sin_cos_twins_at_large_norm(name, backend, norm):
    """Twins (the same vector in X1 and X2: Gram entry and norms rounded differently) and
    near-parallel pairs at norms up to 1e6: exp(-|u - v|^2/2) must come from the carried
    determinant, not S11 + S22 - 2 S12, and the variances' root gap sqrt(S11) - sqrt(S22)
    of layer 1 from the inputs, not from the two rounded variances (1e-12 at norm 1e6)."""
    m = _module(name, backend)
    rng = np.random.default_rng(1)
    x = norm * rng.standard_normal(16)
    near = [x * (1 + s * rng.standard_normal(16)) for s in (1e-8, 1e-9, 1e-10)]
    X1, X2 = np.array([x, *near]), np.array([x, -x, *near[:1]])
    for depth, b, other in ((1, 0.2, X2), (3, 0.5, X2), (3, 0.0, None), (2, 0.5, None)):
        K, T = m.nngp_ntk(X1, other, depth, b, 1.0)
        Kr, Tr = reference.kernel(name, X1, other, depth=depth, bias_std=b, dps=40)
        assert np.max(np.abs(K - Kr) / np.abs(Kr)) <= 1e-13
        assert np.max(np.abs(T - Tr) / np.abs(Tr)) <= 1e-13


@pytest.mark.slow  # compiles every Numba module (about 10 s each without a cache)
@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("name", COMMITTED)
def test_every_committed_module_runs(name, backend):
    """Each committed module imports and computes (a missing helper broke tanh's once)."""
    m = _module(name, backend)
    X = np.random.default_rng(2).normal(size=(5, 3)) * 0.5
    K = m.nngp(X, X[:2], 3, 0.1, 1.0)
    assert K.shape == (5, 2) and np.isfinite(K).all()
    if m.HAS_NTK:
        assert np.isfinite(m.ntk(X, None, 2, 0.1, 1.0)).all()
