"""Dual kernels: closed forms certified against independent mpmath references.

References (all independent of the SymPy derivations in ntksym.dual.derive):

* piecewise-homogeneous activations (relu, leaky_relu, abs, identity, step,
  sign, monomials): ``ntksym.reference.dual_quadrature`` (whitened polar
  coordinates, exact radial integral, tanh-sinh angular quadrature; step/sign
  derivative maps are the Gaussian density at the origin by definition);
* gelu: ``ntksym.reference.dual_quadrature`` (iterated 1-D tanh-sinh
  quadrature), and the derivation's intermediate steps (E[sigma'' sigma''],
  the boundary values at s12 = 0) against mpmath quadratures of their own;
* erf and the Gaussian bump: 1-D tanh-sinh quadrature over z1 of
  sigma(u) * E[sigma(v) | z1], where the conditional expectation comes from a
  classical 1-D Gaussian convolution identity that is itself checked here by
  1-D quadrature;
* exp, sin, cos and polynomials: 2-D Gauss-Hermite in mpmath (nodes refined by
  Newton at high precision), at two orders whose agreement is asserted; exact
  for polynomials.
"""

from __future__ import annotations

import functools
import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from conftest import TOL
from mpmath import mp, mpf

from ntksym import dual
from ntksym.activations import get_activation, u
from ntksym.errors import ActivationError, InputError, NoClosedFormError

DPS = 30
#: closed form at high precision vs reference: ~1e-25 relative (tied to DPS).
CF_RTOL = 10.0 ** -(DPS - 5)
#: float64 evaluate vs the certified closed form at high precision.
F64_RTOL = 4e-15

ACTS = {
    "relu": get_activation("relu"),
    "leaky_relu(0.1)": get_activation("leaky_relu", slope=0.1),
    "leaky_relu(-0.5)": get_activation("leaky_relu", slope=-0.5),
    "abs": get_activation("abs"),
    "identity": get_activation("identity"),
    "step": get_activation("step"),
    "sign": get_activation("sign"),
    "monomial(3)": get_activation("monomial", k=3),
    "poly": get_activation("u**3 + 0.5*u - 2"),
    "erf": get_activation("erf"),
    "gaussian": get_activation("gaussian"),
    "exp": get_activation("exp"),
    "sin": get_activation("sin"),
    "cos": get_activation("cos"),
    "gelu": get_activation("gelu"),
}
HOMOGENEOUS = [
    "relu",
    "leaky_relu(0.1)",
    "leaky_relu(-0.5)",
    "abs",
    "identity",
    "step",
    "sign",
    "monomial(3)",
]
CONDITIONAL = ["erf", "gaussian"]
HERMITE = ["exp", "sin", "cos", "poly"]
QUADRATURE = ["gelu"]

RHOS = [-1 + 1e-12, -0.7, 0.0, 0.3, 1 - 1e-12]
WIDE_VARS = [(1.0, 1.0), (1e-8, 1e-8), (1e8, 1e8), (1e-8, 1e8), (2.5, 0.3)]
MODERATE_VARS = [(1.0, 1.0), (1e-8, 1e-8), (0.5, 2.0), (1.7, 0.9)]


def cov(s11: float, s22: float, rho: float) -> tuple[float, float, float]:
    return s11, rho * math.sqrt(s11 * s22), s22


def grid(variances, rhos=RHOS):
    return [cov(a, b, r) for (a, b), r in itertools.product(variances, rhos)]


def singular(c) -> bool:
    """Exactly |rho| = 1 (det = 0) for the float inputs c = (s11, s12, s22)."""
    return Fraction(c[0]) * Fraction(c[2]) - Fraction(c[1]) ** 2 <= 0


def rel(a, b):
    return abs(a - b) / abs(b) if b != 0 else abs(a)


# ------------------------------------------------------------ high-precision closed form
@functools.cache
def _mp_closed(name: str, derivative: bool):
    maps = dual.closed_form(ACTS[name])
    expr = maps.ntk if derivative else maps.nngp
    return sp.lambdify((dual.S11, dual.S12, dual.S22), expr, modules="mpmath")


def closed_mp(name: str, c, derivative: bool = False):
    with mp.workdps(DPS + 30):
        return +_mp_closed(name, derivative)(*(mpf(x) for x in c))


# --------------------------------------------------------------------------- references
def ref_homogeneous(name, c, derivative):
    """ntksym.reference.dual_quadrature at DPS + 10 digits (any activation it handles)."""
    from ntksym.reference import dual_quadrature

    with mp.workdps(DPS + 10):
        return dual_quadrature(ACTS[name], *c, dps=DPS + 10, derivative=derivative)


def _erf_cond(m, d):
    return mp.erf(m / mp.sqrt(1 + 2 * d * d))


def _derf_cond(m, d):
    g = 1 + 2 * d * d
    return 2 / mp.sqrt(mp.pi) * mp.exp(-m * m / g) / mp.sqrt(g)


def _gauss_cond(m, d):
    g = 1 + d * d
    return mp.exp(-m * m / (2 * g)) / mp.sqrt(g)


def _dgauss_cond(m, d):
    g = 1 + d * d
    return -m * mp.exp(-m * m / (2 * g)) / g**1.5


# name -> (f, E[f(m + d Z)]) for the nngp map and the ntk map
CONDITIONAL_RULES = {
    ("erf", False): (mp.erf, _erf_cond),
    ("erf", True): (lambda x: 2 / mp.sqrt(mp.pi) * mp.exp(-x * x), _derf_cond),
    ("gaussian", False): (lambda x: mp.exp(-x * x / 2), _gauss_cond),
    ("gaussian", True): (lambda x: -x * mp.exp(-x * x / 2), _dgauss_cond),
}


def ref_conditional(name, c, derivative):
    f, cond = CONDITIONAL_RULES[(name, derivative)]
    with mp.workdps(DPS + 15):
        s11, s12, s22 = (mpf(x) for x in c)
        det = max(s11 * s22 - s12 * s12, mpf(0))
        a = mp.sqrt(s11)
        cc, d = s12 / a, mp.sqrt(det / s11)
        w = 1 / mp.sqrt(2 * mp.pi)
        # Split at 0 and at the scales where f(a z1) and the conditional change.
        pts = sorted({mpf(0), *(s / a for s in (-1, 1)), *(s / abs(cc) for s in (-1, 1) if cc)})
        pts = [p for p in pts if abs(p) < 40]
        val = mp.quad(
            lambda z: f(a * z) * cond(cc * z, d) * mp.exp(-z * z / 2), [-mp.inf, *pts, mp.inf]
        )
        return +(val * w)


@functools.cache
def _hermite(n: int, dps: int):
    """Probabilists' Gauss-Hermite nodes/weights (weights sum to 1) at dps digits."""
    x0, _ = np.polynomial.hermite_e.hermegauss(n)
    nodes, weights = [], []
    with mp.workdps(dps + 10):
        for x in x0:
            x = mpf(float(x))
            for _ in range(100):
                p0, p1 = mpf(1), x
                for k in range(1, n):
                    p0, p1 = p1, x * p1 - k * p0
                step = p1 / (n * p0)  # He_n / He_n', He_n' = n He_{n-1}
                x -= step
                if abs(step) < mpf(10) ** -(dps + 8):
                    break
            p0, p1 = mpf(1), x
            for k in range(1, n):
                p0, p1 = p1, x * p1 - k * p0
            nodes.append(x)
            weights.append(mp.factorial(n) / (n * n * p0 * p0))
    return nodes, weights


def ref_hermite(f, c, n: int, dps: int = DPS + 10):
    nodes, weights = _hermite(n, dps)
    with mp.workdps(dps):
        s11, s12, s22 = (mpf(x) for x in c)
        det = max(s11 * s22 - s12 * s12, mpf(0))
        a = mp.sqrt(s11)
        cc, d = s12 / a, mp.sqrt(det / s11)
        total = mpf(0)
        for x, wx in zip(nodes, weights, strict=True):
            inner = mp.fsum(wy * f(cc * x + d * y) for y, wy in zip(nodes, weights, strict=True))
            total += wx * f(a * x) * inner
        return total


def mp_function(name: str, derivative: bool):
    act = ACTS[name]
    return act.mpmath_derivative if derivative else act.mpmath


def reference(name, c, derivative):
    if name in HOMOGENEOUS or name in QUADRATURE:
        return ref_homogeneous(name, c, derivative)
    if name in CONDITIONAL:
        return ref_conditional(name, c, derivative)
    f = mp_function(name, derivative)
    lo, hi = ref_hermite(f, c, 60), ref_hermite(f, c, 90)
    assert rel(lo, hi) < CF_RTOL / 100 or abs(lo - hi) < mpf(10) ** -(DPS + 5), (name, c)
    return hi


#: gelu's reference (iterated tanh-sinh) takes 20-60 s a point at variance 1e8 for generic rho
#: (and at s11 = 1e-8, s22 = 1e8), so the grid stops at 1e4 for s22 there and keeps 1e8 only
#: near rho = +-1, where it takes ~1-6 s.
GELU_GRID = grid([(1.0, 1.0), (1e-8, 1e-8), (2.5, 0.3), (1e-8, 1e4), (1e2, 1e2)]) + grid(
    [(1e8, 1e8)], [-1 + 1e-12, 1 - 1e-12]
)


def grid_for(name, variances=None):
    if name == "gelu" and variances is None:
        return GELU_GRID
    if name in HERMITE:
        return grid(variances or MODERATE_VARS)
    return grid(variances or WIDE_VARS)


def certify(name, points):
    worst = mpf(0)
    for derivative in (False, True):
        for c in points:
            if derivative and name in ("step", "sign") and singular(c):
                continue
            got, want = closed_mp(name, c, derivative), reference(name, c, derivative)
            err = rel(got, want)
            scale = abs(want) if want != 0 else 1
            assert err < CF_RTOL or abs(got - want) < CF_RTOL * 1e-10 * scale, (
                name,
                derivative,
                c,
                got,
                want,
            )
            worst = max(worst, err)
    return worst


# --------------------------------------------------------------------------- registry
def test_closed_form_names_and_errors():
    names = dual.closed_form_names()
    for n in ("relu", "leaky_relu", "abs", "step", "sign", "identity", "monomial", "erf"):
        assert n in names
    for n in ("exp", "sin", "cos", "gaussian"):
        assert dual.has_closed_form(n)
    assert not dual.has_closed_form("tanh")
    with pytest.raises(NoClosedFormError, match=r"tanh.*relu"):
        dual.closed_form("tanh")
    assert dual.closed_form("relu") is dual.closed_form("relu")  # cached


@pytest.mark.parametrize("name", sorted(ACTS))
def test_every_closed_form_is_derived_and_cited(name):
    m = dual.closed_form(ACTS[name])
    assert m.derived and m.method.startswith("derived:") and m.source
    assert m.nngp.free_symbols <= {dual.S11, dual.S12, dual.S22}
    assert m.ntk is not None and m.ntk.free_symbols <= {dual.S11, dual.S12, dual.S22}


def test_relu_matches_cho_saul_and_step_kernels():
    s11, s12, s22 = dual.S11, dual.S12, dual.S22
    n = sp.sqrt(s11) * sp.sqrt(s22)
    theta = sp.acos(s12 / n)
    relu = dual.closed_form("relu")
    cited = (sp.sqrt(s11 * s22 - s12**2) + (sp.pi - theta) * s12) / (2 * sp.pi)
    assert sp.simplify(relu.nngp - cited) == 0
    assert sp.simplify(relu.ntk - (sp.pi - theta) / (2 * sp.pi)) == 0
    density = 1 / (2 * sp.pi * sp.sqrt(s11 * s22 - s12**2))
    assert sp.simplify(dual.closed_form("step").ntk - density) == 0
    assert sp.simplify(dual.closed_form("sign").ntk - 4 * density) == 0
    sign_diff = dual.closed_form("sign").nngp - 2 * sp.asin(s12 / n) / sp.pi
    assert sp.simplify(sign_diff.rewrite(sp.asin)) == 0
    erf = dual.closed_form("erf")
    d = (1 + 2 * s11) * (1 + 2 * s22) - 4 * s12**2
    assert sp.simplify(erf.ntk - 4 / (sp.pi * sp.sqrt(d))) == 0
    assert dual.closed_form("identity").nngp == s12


def _matchings(items):
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for i in range(len(rest)):
        for m in _matchings(rest[:i] + rest[i + 1 :]):
            yield [(first, rest[i]), *m]


@pytest.mark.parametrize("j,k", [(j, k) for j in range(6) for k in range(6)])
def test_isserlis_counts_match_brute_force_pairings(j, k):
    from ntksym.dual.derive import isserlis_moment

    cov_of = {
        ("u", "u"): dual.S11,
        ("v", "v"): dual.S22,
        ("u", "v"): dual.S12,
        ("v", "u"): dual.S12,
    }
    items = [("u", i) for i in range(j)] + [("v", i) for i in range(k)]
    brute = sum(
        (sp.Mul(*(cov_of[(a[0], b[0])] for a, b in m)) for m in _matchings(items)), sp.Integer(0)
    )
    assert sp.expand(isserlis_moment(j, k) - brute) == 0


@pytest.mark.parametrize("name", sorted(set(ACTS) - {"step", "sign"}))
def test_price_theorem_symbolic(name):
    """d/ds12 of the nngp map equals the ntk map (Price 1958)."""
    m = dual.closed_form(ACTS[name])
    diff = sp.diff(m.nngp, dual.S12) - m.ntk
    if sp.simplify(diff) != 0:
        # acos forms: confirm at exact rational points to 50 digits.
        for c in [(1, sp.Rational(1, 3), 2), (sp.Rational(7, 5), -1, 3)]:
            val = diff.subs(dict(zip((dual.S11, dual.S12, dual.S22), c, strict=True)))
            assert abs(sp.N(val, 50)) < 1e-45, (name, c)


def test_user_polynomial_and_mgf_expressions_get_closed_forms():
    m = dual.closed_form("u**3 + 0.5*u")
    assert m.method == "derived: Isserlis"
    s11, s12, s22 = dual.S11, dual.S12, dual.S22
    want = 9 * s11 * s22 * s12 + 6 * s12**3 + sp.Rational(3, 2) * (s11 + s22) * s12 + s12 / 4
    assert sp.simplify(m.nngp - want) == 0
    m2 = dual.closed_form("sin(2*u)")
    assert m2.method == "derived: Gaussian MGF"
    c = (0.8, 0.3, 1.1)
    f = get_activation("sin(2*u)")
    fn = sp.lambdify((s11, s12, s22), m2.nngp, modules="mpmath")
    with mp.workdps(DPS + 10):
        ref = ref_hermite(f.mpmath, c, 60)
        got = fn(*(mpf(x) for x in c))
        assert rel(got, ref) < CF_RTOL
    nngp, ntk = dual.evaluate("sin(2*u)", *c)
    assert abs(float(nngp) - float(ref)) < 1e-14


def test_conditional_identities_by_1d_quadrature():
    with mp.workdps(40):
        for (name, der), (f, cond) in CONDITIONAL_RULES.items():
            for m, d in [(mpf("0.3"), mpf("0.7")), (mpf(-2), mpf("1e-3")), (mpf(5), mpf(40))]:
                pts = sorted(p for p in {mpf(0), -m / d} if abs(p) < 40)
                q = mp.quad(
                    lambda z, m=m, d=d, f=f: f(m + d * z) * mp.exp(-z * z / 2),
                    [-mp.inf, *pts, mp.inf],
                )
                q /= mp.sqrt(2 * mp.pi)
                assert rel(cond(m, d), q) < 1e-32, (name, der, m, d)


# --------------------------------------------------------------------------- certification
QUICK = {
    "relu": [cov(1.0, 1.0, 0.3), cov(1e8, 1e8, 1 - 1e-12), cov(1e-8, 1e8, -1 + 1e-12)],
    "leaky_relu(0.1)": [cov(2.5, 0.3, -0.7)],
    "abs": [cov(1.0, 1.0, 0.0)],
    "identity": [cov(1.0, 2.0, 0.3)],
    "step": [cov(1.0, 1.0, 1 - 1e-12)],
    "sign": [cov(1e-8, 1e-8, -0.7)],
    "monomial(3)": [cov(2.5, 0.3, 0.3)],
    "poly": [cov(1.7, 0.9, -0.7)],
    "erf": [cov(1.0, 1.0, 0.3), cov(1e8, 1e8, -1 + 1e-12)],
    "gaussian": [cov(1e-8, 1e8, 0.3)],
    "exp": [cov(0.5, 2.0, 1 - 1e-12)],
    "sin": [cov(1.0, 1.0, -0.7)],
    "cos": [cov(1.7, 0.9, 0.3)],
    "gelu": [cov(1e8, 1e8, -1 + 1e-12)],
}


@pytest.mark.parametrize("name", sorted(QUICK))
def test_closed_forms_certified_quick(name):
    certify(name, QUICK[name])


#: GELU's full grid takes 440 s of CPU (its tanh-sinh reference, ~18 s a value); CI
#: certifies two regimes (unequal variances with rho < 0; tiny against large, nearly
#: parallel) beside the quick test's point, and the whole grid runs with -m exhaustive.
GELU_CI = [cov(2.5, 0.3, -0.7), cov(1e-8, 1e4, 1 - 1e-12)]


@pytest.mark.slow
def test_gelu_certified_in_each_regime():
    certify("gelu", GELU_CI)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [n if n != "gelu" else pytest.param(n, marks=pytest.mark.exhaustive) for n in sorted(ACTS)],
)
def test_closed_forms_certified_full_grid(name):
    worst = certify(name, grid_for(name))
    print(f"{name}: worst closed-form relative error vs mpmath reference {float(worst):.2e}")


# --------------------------------------------------------------------------- float64
def _leaky_condition(name, c, derivative):
    """Sum of |terms| / |value| for leaky ReLU, whose maps cross zero (inherent cancellation)."""
    a, b = 1.0, float(ACTS[name].params[0][1])
    with mp.workdps(40):
        s11, s12, s22 = (mpf(x) for x in c)
        det = max(s11 * s22 - s12 * s12, mpf(0))
        theta = mp.atan2(mp.sqrt(det), s12)
        if derivative:
            terms = [a * b, (a - b) ** 2 * (mp.pi - theta) / (2 * mp.pi)]
        else:
            k = (mp.sqrt(det) + (mp.pi - theta) * s12) / (2 * mp.pi)
            terms = [a * b * s12, (a - b) ** 2 * k]
        value = abs(sum(terms))
        return max(mpf(1), sum(abs(t) for t in terms) / value) if value else mp.inf


F64_POINTS = grid(WIDE_VARS, RHOS + [0.5, -1e-9]) + [
    (x, sgn * x, x)
    for x in (1e-8, 1.0, 1e8)
    for sgn in (-1.0, 1.0)  # exactly |rho| = 1
]


def _f64_errors(name):
    worst = 0.0
    nngp, ntk = dual.evaluate(ACTS[name], *(np.array(x) for x in zip(*F64_POINTS, strict=True)))
    for i, c in enumerate(F64_POINTS):
        for derivative, got in ((False, nngp[i]), (True, ntk[i])):
            if derivative and name in ("step", "sign") and singular(c):
                assert got == np.inf
                continue
            want = closed_mp(name, c, derivative)
            scale = math.sqrt(c[0] * c[2]) if not derivative else 1.0
            if abs(want) < 1e-30 * scale:  # exact zero (relu at rho = -1): want is rounding noise
                assert abs(got) < 1e-15 * scale, (name, derivative, c, got)
                continue
            if name in ("exp", "sin", "cos") and max(c) > 1e3:
                # exp overflows; sin/cos values are exp(-O(1e8)) except near rho = 1.
                if abs(want) > mpf("1e-300") and abs(want) < mpf("1e300"):
                    pass
                else:
                    continue
            err = float(rel(mpf(float(got)), want))
            if name.startswith("leaky"):
                err /= float(_leaky_condition(name, c, derivative))
            assert err < F64_RTOL, (name, derivative, c, float(got), want, err)
            worst = max(worst, err)
    return worst


@pytest.mark.parametrize("name", ["relu", "erf", "sign", "gelu"])
def test_evaluate_float64_quick(name):
    _f64_errors(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ACTS))
def test_evaluate_float64_full(name):
    worst = _f64_errors(name)
    print(f"{name}: worst float64 relative error {worst:.2e}")


def test_evaluate_stable_near_parallel():
    # rho rounds to 1 - eps: arccos would lose half the digits; arctan2 + exact det does not.
    s = np.array([1e-8, 1.0, 1e8])
    nngp, ntk = dual.evaluate("relu", s, s * (1 - 2**-52), s)
    for i, x in enumerate(s):
        want = closed_mp("relu", (x, x * (1 - 2**-52), x), True)
        assert rel(mpf(float(ntk[i])), want) < 1e-14
    # exactly parallel: theta = 0, no NaN
    nngp, ntk = dual.evaluate("relu", 2.0, 2.0, 2.0)
    assert nngp == pytest.approx(1.0, rel=1e-15) and ntk == 0.5


def test_evaluate_accepts_det_and_broadcasts():
    s11 = np.array([[1.0], [2.0]])
    s22 = np.array([1.0, 3.0, 0.5])
    s12 = 0.3 * np.sqrt(s11 * s22)
    a = dual.evaluate("erf", s11, s12, s22)
    b = dual.evaluate("erf", s11, s12, s22, det=s11 * s22 * (1 - 0.09))
    assert a[0].shape == (2, 3) and a[1].shape == (2, 3)
    np.testing.assert_allclose(a[0], b[0], rtol=TOL.map)
    np.testing.assert_allclose(a[1], b[1], rtol=TOL.map)


@pytest.mark.parametrize(
    "args,match",
    [
        ((-1.0, 0.0, 1.0), "s11"),
        ((1.0, 0.0, -1e-3), "s22"),
        ((1.0, 1.5, 1.0), "covariance"),
        ((1.0, np.nan, 1.0), "NaN"),
        ((np.inf, 0.0, 1.0), "s11"),
        (("a", 0.0, 1.0), "real numbers"),
    ],
)
def test_evaluate_rejects_bad_input(args, match):
    with pytest.raises(InputError, match=match):
        dual.evaluate("relu", *args)
    with pytest.raises(InputError):
        dual.gauss_hermite("tanh", *args)
    with pytest.raises(InputError):  # (the adaptive rule, which keeps the variances as given)
        dual.trapezoid("tanh", *args)


def test_rounding_level_excess_is_clipped():
    s = 3.0
    nngp, ntk = dual.evaluate("relu", s, s * (1 + 2**-52), s)
    assert np.isfinite(nngp) and np.isfinite(ntk)
    with pytest.raises(InputError, match="covariance"):
        dual.evaluate("relu", 1.0, 0.5, 1.0, det=-0.1)


def test_delta_derivative_refused_by_gauss_hermite():
    with pytest.raises(ActivationError, match="Dirac delta"):
        dual.gauss_hermite("step", 1.0, 0.2, 1.0, derivative=True)
    # but the closed form knows E[delta delta]
    _, ntk = dual.evaluate("step", 1.0, 0.0, 1.0)
    assert ntk == pytest.approx(1 / (2 * np.pi), rel=1e-15)


# --------------------------------------------------------------------------- Gauss-Hermite
GH_NAMES = ["tanh", "sigmoid", "softplus", "silu"]
#: (covariance, tolerance) for float64 64-point Gauss-Hermite vs mpmath. These
#: activations are analytic only in a strip around the real axis (tanh and its
#: derivative have poles at u = i pi/2, sigmoid/softplus/silu at u = i pi), so
#: Gauss-Hermite converges geometrically at a rate set by the strip half-width
#: in z = u / sqrt(s), tau = pi / (2 sqrt(s)) for tanh: the wider the variance,
#: the slower. Measured worst (see the report in ntksym.dual's docstring):
#: ~5e-9 at s <= 2 for generic rho, but 2.4e-6 (nngp) and 6.9e-5 (ntk) for tanh
#: at s = 2 with rho = 1 - 1e-12, where the integrand collapses onto the line
#: u = v and sech^4 has double poles. Tolerances are a few times those values.
GH_CASES = [
    (cov(1.0, 1.0, 0.3), 2e-8),
    (cov(0.5, 2.0, -0.7), 2e-8),
    (cov(2.0, 2.0, 1 - 1e-12), 2e-4),
]


def trapezoid_reference(f, c, h, half_width=11, dps=25):
    """2-D trapezoidal rule in mpmath over the whitened Gaussian.

    For integrands analytic in a strip of half-width tau the error is
    O(exp(-2 pi tau / h)) (~1e-20 at tau = 1.1, h = 0.15), independent of
    Gauss-Hermite's node placement; truncation at |z| <= 11 costs e^-60.
    """
    with mp.workdps(dps):
        h = mpf(h)
        k = int(half_width / h) + 1
        xs = [i * h for i in range(-k, k + 1)]
        ws = [h * mp.exp(-x * x / 2) / mp.sqrt(2 * mp.pi) for x in xs]
        s11, s12, s22 = (mpf(x) for x in c)
        det = max(s11 * s22 - s12 * s12, mpf(0))
        a = mp.sqrt(s11)
        cc, d = s12 / a, mp.sqrt(det / s11)
        total = mpf(0)
        for x, wx in zip(xs, ws, strict=True):
            inner = mp.fsum(wy * f(cc * x + d * y) for y, wy in zip(xs, ws, strict=True))
            total += wx * f(a * x) * inner
        return total


def _gh_reference(name, c, derivative, check=False):
    act = get_activation(name)
    f = act.mpmath_derivative if derivative else act.mpmath
    ref = trapezoid_reference(f, c, 0.12)
    if check:
        other = trapezoid_reference(f, c, 0.15)
        assert rel(other, ref) < 1e-15, (name, c, other, ref)
    return ref


def gh_errors(name, cases, check=False):
    worst = 0.0
    for derivative in (False, True):
        pts = [c for c, _ in cases]
        got = dual.gauss_hermite(
            name, *(np.array(x) for x in zip(*pts, strict=True)), derivative=derivative
        )
        for i, (c, tol) in enumerate(cases):
            err = float(rel(mpf(float(got[i])), _gh_reference(name, c, derivative, check)))
            assert err < tol, (name, derivative, c, err)
            worst = max(worst, err)
    return worst


def test_gauss_hermite_vs_mpmath_quick():
    gh_errors("tanh", GH_CASES[:1])


@pytest.mark.slow
@pytest.mark.parametrize("name", GH_NAMES)
def test_gauss_hermite_vs_mpmath_full(name):
    worst = gh_errors(name, GH_CASES, check=True)
    print(f"{name}: Gauss-Hermite(64) worst relative error {worst:.2e}")


@pytest.mark.slow
def test_hermite_reference_agrees_with_nested_tanh_sinh():
    c = (1.0, 0.5, 2.0)
    with mp.workdps(20):
        s11, s12, s22 = (mpf(x) for x in c)
        a = mp.sqrt(s11)
        cc, d = s12 / a, mp.sqrt((s11 * s22 - s12 * s12) / s11)

        def inner(z1):
            return mp.quad(
                lambda z2: mp.tanh(cc * z1 + d * z2) * mp.exp(-z2 * z2 / 2), [-mp.inf, 0, mp.inf]
            )

        nested = mp.quad(
            lambda z: mp.tanh(a * z) * mp.exp(-z * z / 2) * inner(z), [-mp.inf, 0, mp.inf]
        )
        nested /= 2 * mp.pi
    assert rel(_gh_reference("tanh", c, False), nested) < 1e-17


def test_evaluate_falls_back_to_gauss_hermite():
    c = (1.0, 0.3, 1.0)
    nngp, ntk = dual.evaluate("tanh", *c)
    assert nngp == dual.gauss_hermite("tanh", *c)
    assert ntk == dual.gauss_hermite("tanh", *c, derivative=True)
    # a polynomial closed form agrees with Gauss-Hermite (exact for polynomials)
    nngp, ntk = dual.evaluate(u**3 + u / 2 - 2, *c)
    assert nngp == pytest.approx(float(dual.gauss_hermite(u**3 + u / 2 - 2, *c)), rel=1e-13)


@pytest.mark.parametrize("name", ["relu", "leaky_relu(0.1)", "abs", "step", "sign", "erf", "gelu"])
def test_zero_variance_matches_reference(name):
    for c in [(0.0, 0.0, 2.0), (3.0, 0.0, 0.0), (0.0, 0.0, 0.0)]:
        nngp, ntk = dual.evaluate(ACTS[name], *c)
        want = ref_homogeneous(name, c, False) if name != "erf" else mpf(0)
        assert abs(float(nngp) - float(want)) < 1e-15, (name, c, nngp, want)
        if name in ("step", "sign"):
            assert ntk == np.inf
        elif name != "erf":
            want = ref_homogeneous(name, c, True)
            assert abs(float(ntk) - float(want)) < 1e-15, (name, c, ntk, want)


# --------------------------------------------------------------------------- gelu
def _gelu_steps():
    from ntksym.dual import derive as d

    act = ACTS["gelu"]
    second = sp.diff(act.derivative, u)
    inner = d.exp_quadratic_expectation(second, second)
    return act, second, inner


def test_gelu_second_derivative_and_mgf_step():
    """sigma'' = (2 - u^2) phi(u); E[sigma'' sigma''] (MGF) against mpmath Gauss-Hermite."""
    act, second, inner = _gelu_steps()
    phi = sp.exp(-(u**2) / 2) / sp.sqrt(2 * sp.pi)
    assert sp.simplify(second - (2 - u**2) * phi) == 0
    # d ntk / d s12 is the MGF expectation, exactly
    m = dual.closed_form("gelu")
    assert sp.simplify(sp.diff(m.ntk, dual.S12) - inner) == 0
    f = sp.lambdify(u, second, modules="mpmath")
    g = sp.lambdify((dual.S11, dual.S12, dual.S22), inner, modules="mpmath")
    for c in [(0.5, -0.6, 2.0)]:
        lo, hi = ref_hermite(f, c, 60), ref_hermite(f, c, 90)
        assert rel(lo, hi) < 1e-24  # the entire integrand: Gauss-Hermite converges fast
        with mp.workdps(DPS + 10):
            assert rel(g(*(mpf(x) for x in c)), hi) < 1e-23, c


def test_gelu_boundary_values_by_1d_quadrature():
    """At s12 = 0: nngp = E[sigma(u)] E[sigma(v)], ntk = E[sigma'(u)] E[sigma'(v)]."""
    act = ACTS["gelu"]
    m = dual.closed_form("gelu")
    nngp0 = sp.lambdify((dual.S11, dual.S22), m.nngp.subs(dual.S12, 0), modules="mpmath")
    ntk0 = sp.lambdify((dual.S11, dual.S22), m.ntk.subs(dual.S12, 0), modules="mpmath")
    with mp.workdps(DPS + 10):

        def mean(f, s):
            val = mp.quad(lambda z: f(mp.sqrt(s) * z) * mp.exp(-z * z / 2), [-mp.inf, 0, mp.inf])
            return val / mp.sqrt(2 * mp.pi)

        for s1, s2 in [(mpf(1), mpf(2)), (mpf("1e-3"), mpf(30))]:
            want = mean(act.mpmath, s1) * mean(act.mpmath, s2)
            assert rel(nngp0(s1, s2), want) < 1e-30
            want = mean(act.mpmath_derivative, s1) * mean(act.mpmath_derivative, s2)
            assert rel(ntk0(s1, s2), want) < 1e-30


def test_gelu_published_structure():
    """The derived maps have the arcsine structure of Tsuchida et al. (AAAI 2021)."""
    m = dual.closed_form("gelu")
    assert m.derived and m.method == "derived: Price's theorem + ansatz integration"
    assert "Tsuchida" in m.source and "2021" in m.source
    s11, s12, s22 = dual.S11, dual.S12, dual.S22
    asin = sp.asin(s12 / (sp.sqrt(s11 + 1) * sp.sqrt(s22 + 1)))
    # linear in the arcsine: nngp = s12 asin / (2 pi) + (arcsine-free), ntk = asin/(2 pi) + ...
    assert sp.simplify(m.nngp.coeff(asin) - s12 / (2 * sp.pi)) == 0
    assert sp.simplify(m.ntk.coeff(asin) - 1 / (2 * sp.pi)) == 0
    # large-variance limit: GELU tends to ReLU, so does its nngp map (scaled by s)
    s, rho = sp.symbols("s rho", positive=True)
    scaled = m.nngp.subs({s11: s, s22: s, s12: rho * s}) / s
    relu = dual.closed_form("relu").nngp.subs({s11: 1, s22: 1, s12: rho})
    lim = sp.limit(scaled.subs(rho, sp.Rational(1, 3)), s, sp.oo)
    assert abs(sp.N(lim - relu.subs(rho, sp.Rational(1, 3)), 50)) < 1e-45


def test_arcsine_ansatz_integrator():
    from ntksym.dual import derive as d

    c = 1 + dual.S11
    # int 1/root = asin; int asin = s12 asin + root; int s12/root^3 = 1/root
    for integrand, want in [
        (1 / d.ROOT, d.ASIN),
        (d.ASIN, dual.S12 * d.ASIN + d.ROOT),
        (dual.S12 / d.ROOT**3, 1 / d.ROOT),
    ]:
        got = d.arcsine_ansatz_integrate(integrand, c, root_powers=(-3, -1, 1))
        assert sp.simplify(got - want) == 0, (integrand, got)
        # and in function form, d/ds12 of the result is the integrand
        fg = d.arcsine_functions(got, c)
        fi = d.arcsine_functions(integrand, c)
        assert sp.simplify(sp.diff(fg, dual.S12) - fi) == 0
    # 1/(s12 root) integrates to a logarithm: outside the ansatz, refused
    with pytest.raises(RuntimeError, match="no solution"):
        d.arcsine_ansatz_integrate(1 / (dual.S12 * d.ROOT), c, root_powers=(-3, -1, 1))


def _gelu_term_scale(c, derivative):
    """Sum of |terms| of the SymPy closed form at c (mpmath): the scale of rounding."""
    m = dual.closed_form("gelu")
    expr = m.ntk if derivative else m.nngp
    with mp.workdps(DPS):
        vals = {dual.S11: mpf(c[0]), dual.S12: mpf(c[1]), dual.S22: mpf(c[2])}
        return sum(abs(sp.N(t.subs(vals), 30)) for t in sp.Add.make_args(expr))


def test_gelu_float64_random_covariances():
    """evaluate() vs the 50-digit closed form on seeded random covariances.

    Error relative to the value, or to the sum of the closed form's term magnitudes
    where the map crosses zero (negative rho: inherent cancellation).
    """
    rng = np.random.default_rng(2021)
    s11 = 10.0 ** rng.uniform(-8, 8, 60)
    s22 = 10.0 ** rng.uniform(-8, 8, 60)
    rho = np.concatenate([rng.uniform(-1, 1, 50), 1 - 10.0 ** -rng.uniform(6, 15, 5)])
    rho = np.concatenate([rho, -1 + 10.0 ** -rng.uniform(6, 15, 5)])
    s12 = rho * np.sqrt(s11) * np.sqrt(s22)
    nngp, ntk = dual.evaluate("gelu", s11, s12, s22)
    worst = 0.0
    for i in range(len(s11)):
        c = (float(s11[i]), float(s12[i]), float(s22[i]))
        for derivative, got in ((False, nngp[i]), (True, ntk[i])):
            want = closed_mp("gelu", c, derivative)
            err = abs(mpf(float(got)) - want) / max(abs(want), mpf(0))
            if err > 4e-15:
                err = abs(mpf(float(got)) - want) / _gelu_term_scale(c, derivative)
            assert err < 4e-15, (c, derivative, float(got), want)
            worst = max(worst, float(err))


@pytest.mark.parametrize(
    "gap,match",
    [
        (np.zeros(3), "broadcast"),
        (np.array([[0.0, np.nan]]), "NaN"),
        (np.array([[0.0, 0.5]]), "sqrt\\(s11\\) - sqrt\\(s22\\)"),
        ("a", "broadcast"),
    ],
)
def test_evaluate_rejects_a_bad_root_gap(gap, match):
    """The root gap the layer maps pass must be the roots' difference, of the right shape."""
    s11, s22 = np.array([[4.0, 4.0]]), np.array([[4.0, 1.0]])
    with pytest.raises(InputError, match=match):
        dual.evaluate("sin(u) + u", s11, 0.5 * np.ones((1, 2)), s22, root_gap=gap)


def test_evaluate_reads_a_given_root_gap():
    """One Gaussian twice at variance 1e12 through ``sin(u) + u``: the root gap given as 0
    is what the rounded roots give; given as 1e-3 (1e-9 of the roots, within what the
    check allows) the map reads it as ``U^2 / 2``, and the NTK map moves."""
    s = 1e12
    exact = dual.evaluate("sin(u) + u", s, s, s, det=0.0, root_gap=0.0)
    moved = dual.evaluate("sin(u) + u", s, s, s, det=0.0, root_gap=1e-3)
    assert exact[1] == dual.evaluate("sin(u) + u", s, s, s, det=0.0)[1]
    assert abs(moved[1] - exact[1]) > 1e-8 * abs(exact[1])
