"""The runtime modules of the generated kernels (``ntksym.codegen.runtime``), called directly.

Their regions are copied verbatim into every generated module; here they run on their
own, with the stand-in activations of each runtime module (erf, erf + 1, the identity),
against independent references: libm's atan2, closed forms evaluated by mpmath, and
exact rational arithmetic (``fractions.Fraction``).
"""

from __future__ import annotations

import importlib
import importlib.resources
import inspect
import math
import pathlib
import re
from fractions import Fraction

import jinja2
import mpmath
import numba
import numpy as np
import pytest
from conftest import TOL

from ntksym.codegen import kernel_spec, render
from ntksym.codegen.files import package_generated_dir
from ntksym.codegen.render import module_key, render_spec, template_sources
from ntksym.codegen.runtime import (
    RUNTIME_FILES,
    module_api,
    numba_atan2,
    numba_driver,
    numba_fused,
    numba_mirror,
    numba_quadrature,
    numpy_fused,
    numpy_mend,
    numpy_quadrature,
    parse_regions,
    read_region,
    runtime_sources,
)
from ntksym.codegen.runtime.quadrature_rule import RULE
from ntksym.errors import InputError

render_module = importlib.import_module("ntksym.codegen.render")
TEMPLATES = {k: v for k, v in template_sources().items() if k.endswith(".jinja")}
# the fused modules of described networks have a template of their own
_ARCH = importlib.resources.files("ntksym.codegen").joinpath("arch_templates")
TEMPLATES |= {
    f.name: f.read_text(encoding="utf-8") for f in _ARCH.iterdir() if f.name.endswith(".jinja")
}
INCLUDE = re.compile(r'\{% include "runtime/(\w+\.py)#(\w+)" %\}')


@pytest.fixture(autouse=True)
def _mp_digits():
    """40 digits for the mpmath references (restored after each test)."""
    with mpmath.workdps(40):
        yield


# ----------------------------------------------------------------------------- regions
def test_parse_regions_markers_and_rename():
    text = (
        "x = 1\n# region a\ndef f():\n    # region b rename _g_two=_g\n"
        "    return _g_two(_g_two_x)\n    # endregion b\n# endregion a\n"
    )
    with pytest.raises(InputError, match="region 'b' opens inside 'a'"):
        parse_regions(text)
    regions = parse_regions(text.replace("# endregion a\n", "").replace("# region a\n", ""))
    assert regions == {"b": "    return _g(_g_two_x)\n"}  # whole words only


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("# region a\nx = 1\n", "never closed"),
        ("x = 1\n# endregion a\n", "without its 'region'"),
        ("# region a\n# endregion b\n", "without its 'region'"),
        ("# region a\n# endregion a\n# region a\n# endregion a\n", "defined twice"),
    ],
)
def test_parse_regions_errors(text, match):
    with pytest.raises(InputError, match=match):
        parse_regions(text, "f.py")


def test_read_region_errors_name_what_exists():
    with pytest.raises(InputError, match="unknown runtime file 'nope.py'; choose one of"):
        read_region("nope.py", "core")
    with pytest.raises(InputError, match="has no region 'nope'; it has core, maps"):
        read_region("numba_quadrature.py", "nope")


def test_every_region_is_included_and_every_include_exists():
    included = {m for text in TEMPLATES.values() for m in INCLUDE.findall(text)}
    defined = {(f, r) for f in RUNTIME_FILES for r in parse_regions(runtime_sources()[f], f)}
    assert included == defined
    # and the list of runtime files (which the module key hashes) is complete
    files = pathlib.Path(numba_atan2.__file__).parent.glob("*.py")
    assert sorted(f.name for f in files if f.name != "__init__.py") == sorted(RUNTIME_FILES)


def test_loader_copies_regions_verbatim():
    env = render_module._environment()
    for f, r in sorted({m for t in TEMPLATES.values() for m in INCLUDE.findall(t)}):
        assert env.get_template(f"runtime/{f}#{r}").render() == read_region(f, r)
    # what a generated module holds: e.g. the quadrature of tanh (an odd activation)
    text = (package_generated_dir() / "tanh_numba.py").read_text()
    assert read_region("numba_quadrature.py", "outer_reflect") in text
    assert "def _outer(a, b, c, ntk):" in text and "_outer_reflect" not in text


def test_loader_never_reads_region_code_as_jinja(monkeypatch):
    code = 'x = {"a": {"b": 1}}  # {{ not a variable }} {% if %} {# #}\n'
    monkeypatch.setattr(render_module, "read_region", lambda name, region: code)
    env = jinja2.Environment(loader=render_module.RuntimeLoader(), trim_blocks=True)
    assert env.get_template("runtime/any.py#any").render() == code
    with pytest.raises(jinja2.TemplateNotFound):
        env.get_template("kernel_numba.py.jinja")
    monkeypatch.setattr(render_module, "read_region", lambda name, region: "{% endraw %}")
    with pytest.raises(InputError, match="contains 'endraw'"):
        env.get_template("runtime/other.py#any")


def test_module_key_covers_runtime_files(monkeypatch):
    sources = template_sources()
    assert {f"runtime/{f}" for f in RUNTIME_FILES} < set(sources)
    assert {"kernel_numba.py.jinja", "kernel_numpy.py.jinja", "_layer.py.jinja"} < set(sources)
    spec = kernel_spec("relu")
    render_module._templates_digest.cache_clear()  # (the files as they are now)
    before = module_key(spec, "numba")
    edited = dict(sources)
    edited["runtime/numba_atan2.py"] += "\n# an edit\n"
    monkeypatch.setattr(render_module, "template_sources", lambda: edited)
    render_module._templates_digest.cache_clear()
    try:
        after = module_key(spec, "numba")
    finally:
        monkeypatch.undo()
        render_module._templates_digest.cache_clear()
    assert after != before and module_key(spec, "numba") == before


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_quadrature_pair_signature_matches_the_spec(backend):
    mod = numba_quadrature if backend == "numba" else numpy_quadrature
    fn = getattr(mod._pair, "py_func", mod._pair)
    *params, last = inspect.signature(fn).parameters  # (and ntk: whether to compute the NTK)
    args = ", ".join(params)
    assert last == "ntk" and render_spec(kernel_spec("tanh"), backend).pair_args == args
    assert f"def _pair({args}, ntk=True):" in render("tanh", backend)


# ----------------------------------------------------------------------------- atan2
@numba.njit(error_model="numpy")
def _run_atan2(y, x, quadrant, out):
    for k in range(y.shape[0]):
        if quadrant:
            out[k] = numba_atan2._atan2q(y[k], x[k])
        else:
            out[k] = numba_atan2._atan2(y[k], x[k])


def _ulp(got, ref):
    exact = got == ref
    return np.where(exact, 0.0, np.abs(got - ref) / np.spacing(np.abs(ref)))


def _atan2_grid():
    rng = np.random.default_rng(1)
    th = np.linspace(-np.pi, np.pi, 20_001)
    r = 10.0 ** rng.uniform(-300, 300, th.size)
    with np.errstate(over="ignore"):
        ratios = 10.0 ** np.linspace(-330, 330, 1321)  # 0, subnormals, huge, inf
    ys, xs = [r * np.sin(th)], [r * np.cos(th)]
    for sy in (1.0, -1.0):
        for sx in (1.0, -1.0):
            ys += [sy * ratios, sy * np.ones_like(ratios)]
            xs += [sx * np.ones_like(ratios), sx * ratios]
    huge = np.array([1e308, -1e308, 1.7976931348623157e308, -3.0])  # (within 2 ulp, not exact)
    ys.append(np.repeat(huge, 4))
    xs.append(np.tile(huge, 4))
    special = [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1.0, -1.0]
    special += [1.7976931348623157e308, -1.7976931348623157e308, math.inf, -math.inf]
    pairs = np.array([(a, b) for a in special for b in special])
    return np.concatenate(ys + [pairs[:, 0]]), np.concatenate(xs + [pairs[:, 1]]), len(pairs)


def test_atan2_against_libm_with_signed_zeros_inf_huge_subnormal():
    y, x, n_special = _atan2_grid()
    got = np.empty_like(y)
    _run_atan2(y, x, False, got)
    ref = np.array([math.atan2(a, b) for a, b in zip(y.tolist(), x.tolist(), strict=True)])
    assert np.array_equal(np.signbit(got), np.signbit(ref))  # -0.0, -pi, ...
    assert _ulp(got, ref).max() <= 2.0
    assert np.array_equal(got[-n_special:], ref[-n_special:])  # edge cases exact
    out = np.empty(3)
    _run_atan2(np.array([math.nan, 1.0, math.nan]), np.array([1.0, math.nan, math.nan]), False, out)
    assert np.isnan(out).all()


def test_atan2q_is_the_first_quadrant_of_atan2():
    y, x, _ = _atan2_grid()
    keep = (y >= 0) & (x > 0) & ~np.signbit(y) & np.isfinite(y) & np.isfinite(x)
    y, x = y[keep], x[keep]
    got, full = np.empty_like(y), np.empty_like(y)
    _run_atan2(y, x, True, got)
    _run_atan2(y, x, False, full)
    ref = np.array([math.atan2(a, b) for a, b in zip(y.tolist(), x.tolist(), strict=True)])
    assert _ulp(got, ref).max() <= 2.0 and np.array_equal(got, full)


def test_atan_poly_against_mpmath():
    u = np.linspace(-0.41421356237309503, 0.41421356237309503, 2001)
    got = np.array([numba_atan2._atan_poly(v) for v in u])
    with mpmath.workdps(40):
        ref = np.array([float(mpmath.atan(mpmath.mpf(v))) for v in u])
    assert _ulp(got, ref).max() <= 1.0


# ----------------------------------------------------------------------------- quadrature
def _erf_maps(s11, s22, s12):
    """E[erf u erf v] and E[erf' u erf' v] for (u, v) ~ N(0, [[s11, s12], [s12, s22]]) (mpf)."""
    s11, s22, s12 = (mpmath.mpf(v) for v in (s11, s22, s12))
    p = (1 + 2 * s11) * (1 + 2 * s22)
    e = 2 / mpmath.pi * mpmath.asin(2 * s12 / mpmath.sqrt(p))
    return e, 4 / mpmath.pi / mpmath.sqrt(p - 4 * s12 * s12)


def _outer_refs(a, b, c, shift):
    """References for u = a z1, v = b z1 + c z2 and sigma = erf + shift, from the exact a, b, c.

    Returns E[sigma sigma], E[sigma' sigma'] and the Cauchy-Schwarz bound of the first
    (the scale of its error where it vanishes).
    """
    a, b, c = (mpmath.mpf(v) for v in (a, b, c))
    s11, s22 = a * a, b * b + c * c
    e, ed = _erf_maps(s11, s22, a * b)
    bound = mpmath.sqrt(
        (_erf_maps(s11, s11, s11)[0] + shift) * (_erf_maps(s22, s22, s22)[0] + shift)
    )
    return float(e + shift), float(ed), float(bound)


def _cases():
    """(a, b, c) of u = a z1, v = b z1 + c z2 over scales 1e-3..1e3 and all correlations."""
    out = []
    for sa in (1e-3, 0.3, 1.0, 4.0, 1e3):
        for sb in (1e-3, 1.0, 30.0):
            for rho in (-1.0, -0.999, -0.5, 0.0, 0.3, 0.9999, 1.0):
                out.append((sa, sb * rho, sb * math.sqrt(1 - rho * rho)))
    return out


def _rel(got, ref, floor):
    return abs(got - ref) / max(abs(ref), floor)


@pytest.mark.parametrize("variant", ["_outer_reflect", "_outer_plain"])
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_outer_against_closed_form(backend, variant):
    cases = np.array(_cases())
    if backend == "numba":  # sigma = erf
        fn = getattr(numba_quadrature, variant)
        got, shift = np.array([fn(a, b, c, True) for a, b, c in cases]), 0
        for (a, b, c), (e, _) in zip(cases, got, strict=True):
            assert fn(a, b, c, False) == (e, 0.0)  # (the NNGP alone: the same bits)
    else:  # sigma = erf + 1: E[sigma sigma] = E[erf erf] + 1, E[sigma' sigma'] as for erf
        fn = getattr(numpy_quadrature, variant)
        got, shift = np.array([fn(*cases.T, 0), fn(*cases.T, 1)]).T, 1
    worst = 0.0
    for (a, b, c), (e, ed) in zip(cases, got, strict=True):
        ref, ref_d, bound = _outer_refs(a, b, c, shift)
        worst = max(worst, _rel(e, ref, bound), _rel(ed, ref_d, 0.0))
    assert worst < TOL.map  # measured: 5.8e-16


def test_numba_pair_and_diag_against_closed_form():
    for s11, s22, rho in [(1.0, 2.0, 0.5), (1e-4, 1e2, -0.99), (0.0, 2.0, 0.0), (0.0, 0.0, 0.0)]:
        s12 = rho * math.sqrt(s11 * s22)
        d = s11 * s22 - s12 * s12
        r11, r22 = math.sqrt(s11), math.sqrt(s22)
        n11, n22, w2, b2 = 1.5, 2.5, 1.3, 0.1
        args = (s11, s22, s12, d, n11, n22, w2, b2, r11, r22, 0.0, 0.0)
        e, ed, dn = numba_quadrature._pair(*args)
        assert numba_quadrature._pair(*args, False) == (e, 0.0, dn)  # (the NNGP alone)
        re_, red = (float(v) for v in _erf_maps(s11, s22, s12))
        assert abs(e - re_) <= TOL.map * max(abs(re_), 1e-3) and _rel(ed, red, 0.0) < TOL.map
        assert dn == n11 * n22 - (w2 * e + b2) ** 2
    for s in [0.0, 1e-6, 1e-2, 1.0, 7.0, 1e3]:
        ref = float(2 / mpmath.pi * mpmath.asin(2 * mpmath.mpf(s) / (1 + 2 * mpmath.mpf(s))))
        assert _rel(numba_quadrature._diag(s), ref, 1e-300) < TOL.map
        assert _rel(numpy_quadrature._diag(np.array([s]))[0], ref + 1.0, 0.0) < TOL.map


def test_numpy_pair_broadcasts_and_handles_zero_variance():
    s11 = np.array([[1.0], [0.0], [0.0]])
    s22 = np.array([[2.0, 0.0]])
    s12 = np.zeros((3, 2))
    args = (s11, s22, s12, s11 * s22, 1.0, 1.0, 1.0, 0.0, np.sqrt(s11), np.sqrt(s22), 0.0, 0.0)
    e, ed, _ = numpy_quadrature._pair(*args)
    e_alone, none, _ = numpy_quadrature._pair(*args, ntk=False)
    assert e.shape == (3, 2) and none is None and np.array_equal(e_alone, e)
    # u = 0 exactly: E[sigma(0) sigma(v)] = sigma(0) E[sigma(v)] = 1, and sigma'(0) E[sigma'(v)]
    assert np.allclose(e[1:], 1.0, rtol=TOL.map)
    dv = 2 / math.sqrt(math.pi)
    assert np.allclose(ed[1:], [[dv * dv / math.sqrt(5.0), dv * dv]] * 2, rtol=TOL.map)
    assert (
        abs(e[0, 0] - 1.0) < TOL.map
        and _rel(ed[0, 0], float(_erf_maps(1.0, 2.0, 0.0)[1]), 0) < TOL.map
    )


def test_expect_one_dimensional_rule_against_closed_form():
    """E[sigma(m + c z)] and E[sigma'(m + c z)]: within rounding of the largest such integral.

    (The rule's contract: the integrals of one pair share a table and a rounding floor, the
    largest integral of |sigma| and |sigma'| so far; values far below it, such as
    E[erf'(25 + z)] ~ 1e-91, are exact only relative to that floor.)
    """
    ms = np.array([-30.0, -3.0, -0.5, 0.0, 0.2, 2.0, 25.0])
    for c in (1e-3, 0.1, 1.0, 10.0, 1e3):
        v = 1 + 2 * c * c
        erf = [mpmath.erf(m / mpmath.sqrt(v)) for m in ms]
        ref0 = np.array([float(e) for e in erf])
        ref0p = np.array([float(e + 1) for e in erf])  # numpy_quadrature's sigma = erf + 1
        ref1 = np.array(
            [float(2 / mpmath.sqrt(mpmath.pi * v) * mpmath.exp(-m * m / v)) for m in ms]
        )
        scale, kap, lo, hi, ZT, WT, st = numba_quadrature._inner(c, -RULE.Z, RULE.Z)
        got = []
        for m in ms:
            z0 = 0.0 if kap == 0.0 else min(RULE.Z, max(-RULE.Z, -m / c))
            args = (m, c, z0, scale, kap, lo, hi, ZT, WT, st)
            got.append(numba_quadrature._expect(*args, True, True))
            assert numba_quadrature._expect(*args, True, False) == (got[-1][0], 0.0)
        got = np.array(got)
        # (largest integral of |sigma| here: E|erf(25 + c z)| ~ 1, E|erf + 1| ~ 2; sigma' > 0)
        assert np.abs(got[:, 0] - ref0).max() <= TOL.map
        assert np.abs(got[:, 1] - ref1).max() <= TOL.map * ref1.max()
        grp = np.zeros(ms.size, dtype=np.int64)
        e0, e1 = (numpy_quadrature._expect(ms, np.full(ms.size, c), grp, 1, d)[0] for d in (0, 1))
        assert np.abs(e0 - ref0p).max() <= 2 * TOL.map
        assert np.abs(e1 - ref1).max() <= TOL.map * ref1.max()


def test_span_covers_the_range_and_two_sum_is_exact():
    for scale in (RULE.R, 1.0, 1e-3):
        kap = numba_quadrature._rule(scale)
        for z0 in (-RULE.Z, 0.0, 2.5):
            lo, hi = numba_quadrature._span(z0, scale, kap)
            assert numba_quadrature._node(lo * RULE.H0, z0, scale, kap)[0] <= -RULE.Z + 1e-12
            assert numba_quadrature._node(hi * RULE.H0, z0, scale, kap)[0] >= RULE.Z - 1e-12
    rng = np.random.default_rng(2)
    for s, x in rng.normal(size=(200, 2)) * 10.0 ** rng.integers(-20, 20, (200, 2)):
        t, err = numba_quadrature._add(s, 0.0, x)
        assert Fraction(t) + Fraction(err) == Fraction(s) + Fraction(x)


# ----------------------------------------------------------------------------- determinant
def _near_pairs(seed=3):
    """Near-parallel and near-antiparallel pairs at norms 1e-60..1e60.

    Angles 1e-3..1e-13, and rescaled copies (eps = 0: the angle is the rounding of the
    rescaling, ~1e-16, where the second projection of _det_near matters).
    """
    rng = np.random.default_rng(seed)
    x1, x2 = [], []
    for scale in (1e-60, 1e-3, 1.0, 1e60):
        for eps in (1e-3, 1e-8, 1e-13, 0.0):
            for ratio in (1.0, 0.7, 3.0, -1.0, 1.0000001) if eps else (0.7, 3.0, 1.0000001):
                x = rng.normal(size=6) * scale
                x1.append(x)
                x2.append(ratio * x * (1 + eps * rng.normal(size=6)))
    return np.array(x1), np.array(x2)


def _exact_det(x, y, c, b2):
    xx = sum(Fraction(v) ** 2 for v in x)
    yy = sum(Fraction(v) ** 2 for v in y)
    xy = sum(Fraction(a) * Fraction(b) for a, b in zip(x, y, strict=True))
    c, b2 = Fraction(c), Fraction(b2)
    return (c * xx + b2) * (c * yy + b2) - (c * xy + b2) ** 2


def test_det_near_against_exact_arithmetic():
    X1, X2 = _near_pairs()
    G = np.einsum("ij,ij->i", X1, X2)
    worst = worst_dn = 0.0
    for c, b2 in [(0.5, 0.1), (2.0, 0.0), (1e-4, 3.0)]:
        for i in range(X1.shape[0]):
            a, b = np.linalg.norm(X1[i]), np.linalg.norm(X2[i])
            d, dn = numba_fused._det_near(G[i], a, b, X1, i, X2, i, c, b2)
            ref = _exact_det(X1[i], X2[i], c, b2)
            worst = max(worst, abs(Fraction(d) - ref) / ref)
            na = mpmath.sqrt(mpmath.fsum(mpmath.mpf(v) ** 2 for v in X1[i]))
            nb = mpmath.sqrt(mpmath.fsum(mpmath.mpf(v) ** 2 for v in X2[i]))
            worst_dn = max(worst_dn, float(abs(dn - (na - nb)) / max(abs(na - nb), na * 1e-300)))
    assert float(worst) < TOL.map and worst_dn < TOL.map  # measured: 9.2e-16, 7.9e-16 (naive: 2e11)


def test_numpy_first_layer_against_exact_arithmetic():
    X1, X2 = _near_pairs()
    X2 = np.concatenate([X2, np.random.default_rng(4).normal(size=(5, 6))])  # and far pairs
    G = X1 @ X2.T
    sq1, sq2 = np.einsum("ij,ij->i", X1, X1), np.einsum("ij,ij->i", X2, X2)
    c, b2 = 0.5, 0.1
    s12, D = numpy_fused._first_layer(X1, X2, G, sq1, sq2, -1, c, b2)
    assert np.array_equal(s12, c * G + b2)
    for i in range(X1.shape[0]):
        for j in (i, X1.shape[0] + i % 5):
            ref = _exact_det(X1[i], X2[j], c, b2)
            assert float(abs(Fraction(D[i, j]) - ref) / ref) < TOL.map, (i, j)
    # a block of rows of K(X, X): each row's pair with itself has D = 0 exactly
    _, D = numpy_fused._first_layer(X2[2:5], X2, X2[2:5] @ X2.T, sq2[2:5], sq2, 2, c, b2)
    own = np.zeros(D.shape, dtype=bool)
    own[[0, 1, 2], [2, 3, 4]] = True
    assert (D[own] == 0.0).all() and (D[~own] > 0.0).all()


# ----------------------------------------------------------------------------- row loops
def _identity_kernel(X1, X2, depth, b2, w2):
    """Gram matrices of the identity activation: each layer is linear in the last."""
    K = w2 / X1.shape[1] * (X1 @ X2.T) + b2
    T = K.copy()
    for _ in range(1, depth):
        K = w2 * K + b2
        T = T * w2 + K
    return K, T


@pytest.mark.parametrize("mod", [numba_driver, numpy_fused], ids=["numba", "numpy"])
@pytest.mark.parametrize("n", [1, 13, 300])
def test_compute_against_the_identity_kernel(mod, n):
    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, 4))
    X[n // 2] = X[0] * (1 + 1e-9)  # a near pair
    Y = rng.normal(size=(max(n // 3, 1), 4))
    for depth, b2, w2 in [(1, 0.0, 1.0), (3, 0.2, 1.7)]:
        K, T, bad_k, bad_t = mod._compute(X.copy(), None, depth, b2, w2)
        Kr, Tr = _identity_kernel(X, X, depth, b2, w2)
        assert np.array_equal(K, K.T) and np.array_equal(T, T.T)
        assert np.allclose(K, Kr, rtol=TOL.kernel, atol=TOL.kernel) and np.allclose(
            T, Tr, rtol=TOL.kernel
        )
        assert not bad_k and not bad_t
        K, T, _, _ = mod._compute(X, Y, depth, b2, w2)
        Kr, Tr = _identity_kernel(X, Y, depth, b2, w2)
        assert np.allclose(K, Kr, rtol=TOL.kernel, atol=TOL.kernel) and np.allclose(
            T, Tr, rtol=TOL.kernel
        )
    with np.errstate(over="ignore", invalid="ignore"):
        K, T, bad_k, bad_t = mod._compute(X * 1e200, None, 2, 0.0, 1.0)
    assert bad_k and bad_t  # overflow is reported, not hidden


def test_numba_chain_steps():
    sq = np.array([0.0, 1.0, 4.0, 1e10])
    V, R, N, Q = (np.empty(4) for _ in range(4))
    numba_fused._chain_first(sq, 0.5, 0.25, V, R)
    assert np.array_equal(V, 0.5 * sq + 0.25) and np.array_equal(R, np.sqrt(V))
    numba_fused._chain_next(V, 1.5, 0.25, N, Q)
    assert np.array_equal(N, 1.5 * V + 0.25) and np.array_equal(Q, np.sqrt(N))  # E[u^2] = S


@pytest.mark.parametrize("mod", [numba_driver, numpy_fused], ids=["numba", "numpy"])
def test_nngp_alone_is_the_same_nngp_without_the_ntk(mod):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(21, 3))
    Y = rng.normal(size=(5, 3))
    for X2 in (None, Y):
        K, T, _, _ = mod._compute(X.copy(), X2, 4, 0.1, 1.3)
        K1, T1, bad_k, bad_t = mod._compute(X.copy(), X2, 4, 0.1, 1.3, False)
        assert T1 is None and not bad_k and not bad_t and T is not None
        assert np.array_equal(K1, K)


@pytest.mark.parametrize("depth", [1, 2, 7])
def test_numba_blocks_of_rows_do_not_change_entries(depth):
    """_fused in blocks of 1, 3 or 8 rows: each entry is computed by the same operations."""
    rng = np.random.default_rng(depth)
    X, Y = rng.normal(size=(19, 3)), rng.normal(size=(6, 3))
    G = X @ Y.T
    sq1, sq2 = np.einsum("ij,ij->i", X, X), np.einsum("ij,ij->i", Y, Y)
    out = []
    for rows in (1, 3, 8):
        K, T = G.copy(), np.empty_like(G)
        args = (np.sqrt(sq1), np.sqrt(sq2), sq1, sq2, X, Y, 0.4, depth, 1.2, 0.3, K, T, True)
        numba_driver._fused(K, *args, rows, (np.zeros((0, 0)),) * 4)
        out.append((K, T))
    assert all(np.array_equal(k, out[0][0]) and np.array_equal(t, out[0][1]) for k, t in out)


def test_numpy_mirror():
    rng = np.random.default_rng(5)
    for n in (1, 5, 256, 600):
        A = rng.normal(size=(n, n))
        K = np.triu(A) + np.tril(np.full((n, n), np.nan), -1)
        numpy_fused._mirror(K)
        assert np.array_equal(K, np.triu(A) + np.triu(A, 1).T)


@pytest.mark.parametrize("ntk", [True, False])
def test_numba_mirror(ntk: bool):
    """Bands of 64 rows in alternating order fill both lower triangles (T's only with
    ntk), leave the upper ones as they are, whatever N is against the band and tile size."""
    rng = np.random.default_rng(6)
    for n in (1, 63, 64, 65, 200, 333):
        A, B = rng.normal(size=(n, n)), rng.normal(size=(n, n))
        nan = np.tril(np.full((n, n), np.nan), -1)
        K, T = np.triu(A) + nan, np.triu(B) + nan
        numba_mirror.mirror_all(K, T, ntk)
        assert np.array_equal(K, np.triu(A) + np.triu(A, 1).T)
        want = np.triu(B) + np.triu(B, 1).T if ntk else np.triu(B) + nan
        assert np.array_equal(T, want, equal_nan=True)


# ----------------------------------------------------------------------------- entry points
@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((None, None, 2, 0.0, 1.0), "X1 must be a 2-D array of real numbers, got NoneType"),
        ((np.ones(3), None, 2, 0.0, 1.0), r"X1 must be 2-D with shape \(N, features\)"),
        ((np.ones((2, 3)), np.ones((2, 2)), 2, 0.0, 1.0), "got 3 and 2"),
        ((np.array([[1.0, np.inf]]), None, 2, 0.0, 1.0), r"X1 must be finite; entry \(0, 1\)"),
        ((np.ones((2, 3)), None, 1.5, 0.0, 1.0), "depth must be an integer >= 1"),
        ((np.ones((2, 3)), None, 2, "0", 1.0), "bias_std must be a real number"),
        ((np.ones((2, 3)), None, 2, 0.0, -1.0), "weight_std must be finite and >= 0"),
    ],
)
def test_check_args_names_the_argument_and_what_is_allowed(args, match):
    with pytest.raises(ValueError, match=match):
        module_api._check_args(*args)


def test_entry_points_convert_and_compute():
    X = np.arange(12, dtype=np.int32).reshape(4, 3)
    X1, X2, depth, b, w = module_api._check_args(X, None, np.int64(3), 1, np.float32(0.5))
    assert X1.dtype == np.float64 and X1.flags.c_contiguous and np.array_equal(X1, X)
    assert (X2, depth, b, w) == (None, 3, 1.0, 0.5) and type(depth) is int
    K, T = _identity_kernel(X1, X1, 3, 0.01, 2.0)
    got_k, got_t = module_api.nngp_ntk(X, None, 3, 0.1, math.sqrt(2.0))
    assert np.allclose(got_k, K, rtol=TOL.rounding) and np.allclose(got_t, T, rtol=TOL.rounding)
    assert np.array_equal(module_api.nngp(X, X, 3, 0.1, math.sqrt(2.0)), got_k)
    assert np.array_equal(module_api.ntk(X, None, 3, 0.1, math.sqrt(2.0)), got_t)
    with pytest.raises(ValueError, match="the NNGP overflowed float64"), np.errstate(over="ignore"):
        module_api.nngp(X * 1e200, None, 2)


def test_mend_gathered_takes_each_branch_across_blocks():
    """The shared mend evaluator: gamma = D / (sqrt(S11 S22) + |S12|) (0 where that sum is
    0), the branch by the sign of S12, blocks of 4096 joined in order, a constant form
    broadcast. Against the same quantities formed directly."""
    rng = np.random.default_rng(11)
    n = 9000  # (three blocks)
    s11, s22 = rng.uniform(0.5, 2.0, n), rng.uniform(0.5, 2.0, n)
    s12 = rng.uniform(-1.0, 1.0, n) * np.sqrt(s11 * s22)
    s12[:3] = 0.0
    s11[0] = s22[0] = 0.0
    d, u = s11 * s22 - s12**2, np.sqrt(s11) - np.sqrt(s22)
    forms = (lambda r, u_, g, w2, b2: w2 * g + b2 * r + u_, lambda r, u_, g, w2, b2: -7.0)
    got = numpy_mend.mend_gathered(s11, s22, s12, d, u, forms, 2.0, 3.0)
    m = np.sqrt(s11) * np.sqrt(s22) + np.abs(s12)
    gamma = np.divide(d, m, out=np.zeros(n), where=m > 0)
    want = np.where(s12 > 0, 2.0 * gamma + 3.0 * np.sqrt(s22) + u, -7.0)
    assert np.array_equal(got, want) and (s12 > 0).sum() not in (0, n)
