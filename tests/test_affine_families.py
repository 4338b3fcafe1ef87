"""Scaled and shifted closed-form activations ``a*f(b*u) + c`` (ntksym.dual.families.affine).

Typed expressions are recognised as the registered ``affine`` activation, and its dual maps
and generated kernels are checked against ``ntksym.reference`` computed by mpmath
quadrature (``method="quadrature"``: never a closed form) at variances 1e-4..1e4 and
``|rho|`` up to ``1 - 1e-12``.
"""

from __future__ import annotations

import functools

import mpmath
import numpy as np
import pytest
import sympy as sp

import ntksym
from ntksym import dual, reference
from ntksym.activations import get_activation, u
from ntksym.codegen import kernel_spec
from ntksym.dual.families import family_of
from ntksym.errors import ActivationError

#: typed expression -> (base, a, b, c) it is recognised as.
RECOGNISED = {
    "2*max(u,0)+0.3*min(u,0)": ("leaky_relu", 2, 1, 0),
    "max(2*u, 0)": ("relu", 2, 1, 0),
    "-0.5*min(u,0)": ("relu", 0.5, -1, 0),
    "abs(3*u)": ("abs", 3, 1, 0),
    "2*u + 1": ("identity", 2, 1, 1),
    "2*erf(0.5*u)": ("erf", 2, 0.5, 0),
    "0.5*erf(u/sqrt(2)) + 0.5": ("erf", 0.5, 2**-0.5, 0.5),
    "(1 + erf(u))/2": ("erf", 0.5, 1, 0.5),
    "exp(-u**2/(2*3))": ("gaussian", 1, 3**-0.5, 0),
    "exp(-0.7*u**2)": ("gaussian", 1, 1.4**0.5, 0),
    "3*sin(2*u) + 1": ("sin", 3, 2, 1),
    "2*cos(3*u)": ("cos", 2, 3, 0),
    "0.5*exp(0.3*u)": ("exp", 0.5, 0.3, 0),
    "2*tanh(3*u)": ("tanh", 2, 3, 0),
    "3*u*(1 + erf(u/sqrt(2)))/2": ("gelu", 3, 1, 0),
    "1.5*u + 1.5*u*erf(u/sqrt(2))": ("gelu", 3, 1, 0),
    "2*heaviside(u)": ("step", 2, 1, 0),
    "3*sign(u) + 0.5": ("sign", 3, 1, 0.5),
}


@pytest.mark.parametrize("typed", sorted(RECOGNISED))
def test_typed_expression_is_recognised_exactly(typed):
    """The recognised activation is the typed function (40 digits at 7 points)."""
    base, a, b, c = RECOGNISED[typed]
    act = get_activation(typed)
    assert act.registered_base == "affine"
    params = dict(act.params)
    assert params["base"] == base
    for key, want in zip("abc", (a, b, c), strict=True):
        assert float(sp.sympify(params[key])) == pytest.approx(want, rel=1e-15)
    typed_expr = ntksym.parse_expression(typed)
    with mpmath.workdps(40):
        for x in ("-2.3", "-0.7", "-1e-3", "0.4", "1.1", "3.9", "0.05"):
            want = sp.lambdify(u, typed_expr, "mpmath")(mpmath.mpf(x))
            got = act.mpmath(mpmath.mpf(x))
            assert abs(got - want) <= mpmath.mpf("1e-14") * (1 + abs(want))


@pytest.mark.parametrize(
    "typed", ["cos(u) + 1", "max(u, 0) + 1", "max(u,0) + 0.1*tanh(u)", "u**2", "tanh(u)**2"]
)
def test_other_expressions_stay_as_typed(typed):
    """A shift of an even function, or a sum of two functions, is not an affine member."""
    assert get_activation(typed).registered_base != "affine"


def test_exact_names_are_unchanged():
    assert get_activation("max(u, 0)").name == "relu"
    assert get_activation("max(u, 0.2*u)").name == "leaky_relu(0.2)"
    assert get_activation("erf(u)").name == "erf"


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"base": None}, "base="),
        ({"base": "affine"}, "other than 'affine'"),
        ({"base": "nope"}, "registered"),
        ({"base": "erf", "a": 0}, "a must not be 0"),
        ({"base": "erf", "b": 0.0}, "b must not be 0"),
        ({"base": "erf", "b": float("inf")}, "b must be finite"),
        ({"base": "relu", "c": 1}, "needs an odd base"),
        ({"base": "erf", "a": sp.I}, "finite real"),
        ({"base": "leaky_relu", "k": 2}, "bad parameters for the base"),
    ],
)
def test_bad_affine_parameters_are_refused(params, match):
    with pytest.raises(ActivationError, match=match):
        get_activation("affine", **params)


def test_affine_activation_is_coherent():
    act = get_activation("affine", base="leaky_relu", slope=0.15, a=2)
    assert act.registered_base == "affine"
    assert family_of(act).name == "affine"
    assert get_activation("2*max(u,0)+0.3*min(u,0)") == act
    assert kernel_spec(act).kind == "stable"
    assert "affine" not in dual.closed_form_names()
    # a base without a closed form: still a valid activation, integrated numerically
    tanh2 = get_activation("2*tanh(3*u)")
    assert not dual.has_closed_form(tanh2)
    assert kernel_spec(tanh2).kind == "quadrature"


# ----------------------------------------------------------------------------- dual maps
VARIANCES = [(1e-4, 1e-4), (1e-4, 1.0), (1.0, 1e4), (1e4, 1e4)]
RHOS = [-(1 - 1e-12), -0.3, 0.5, 1 - 1e-12]
FAST_MAPS = ["2*max(u,0)+0.3*min(u,0)", "-0.5*min(u,0)", "abs(3*u)"]
SMOOTH_MAPS = [
    "2*erf(0.5*u)",
    "0.5*erf(u/sqrt(2)) + 0.5",
    "exp(-u**2/(2*3))",
    "3*u*(1 + erf(u/sqrt(2)))/2",
    "2*u + 1",
]
#: sin and cos oscillate too fast for the mpmath quadrature past moderate variances
WAVE_MAPS = ["3*sin(2*u) + 1", "2*cos(3*u)"]


def _check_maps(typed, variances, rhos, tol=1e-12):
    """Each map within ``tol`` of the quadrature, relative to ``sqrt(E11 E22)`` (the
    Cauchy-Schwarz bound of the pair, which does not vanish where the map crosses zero)."""
    act = get_activation(typed)

    def ref(s11, s12, s22, derivative):
        return reference.dual(act, s11, s12, s22, derivative=derivative, method="quadrature")

    diag = {(s, d): ref(s, s, s, d) for pair in variances for s in pair for d in (False, True)}
    for s11, s22 in variances:
        for rho in rhos:
            s12 = rho * np.sqrt(s11 * s22)
            got = dual.evaluate(act, s11, s12, s22)
            for derivative, g in zip((False, True), got, strict=True):
                want = ref(s11, s12, s22, derivative)
                scale = float(mpmath.sqrt(abs(diag[s11, derivative] * diag[s22, derivative])))
                err = abs(float(g) - float(want)) / scale
                assert err < tol, (typed, s11, s22, rho, derivative, float(g), float(want))


@pytest.mark.parametrize("typed", FAST_MAPS)
def test_dual_maps_match_mpmath_quadrature(typed):
    _check_maps(typed, VARIANCES, RHOS)


#: (1, 1e4) is left out for the smooth maps: near rho = +-1 the mpmath quadrature misses
#: the narrow peak of sigma'(u) sigma'(v) there (it returns 7.7e-47 for the Gaussian bump's
#: derivative map, where the one-dimensional integral that rho = 1 leaves is 5.77e-5).
#: Each mpmath quadrature of a smooth map costs about a second, so the grid keeps the
#: corners that stress the stable forms (both variance extremes, unequal variances, rho at
#: both ends) and one interior correlation: 9 points of the 16 of the kinked maps.
SMOOTH_VARIANCES = [(1e-4, 1.0), (1.0, 1e2), (1e4, 1e4)]
SMOOTH_RHOS = [-(1 - 1e-12), 0.5, 1 - 1e-12]


@pytest.mark.exhaustive
@pytest.mark.parametrize("typed", SMOOTH_MAPS)
def test_smooth_dual_maps_match_mpmath_quadrature(typed):
    _check_maps(typed, SMOOTH_VARIANCES, SMOOTH_RHOS)


@pytest.mark.exhaustive
@pytest.mark.parametrize("typed", WAVE_MAPS)
def test_wave_dual_maps_match_mpmath_quadrature(typed):
    _check_maps(typed, [(1e-4, 1e-4), (1e-4, 1.0), (1.0, 4.0)], RHOS)


def test_sign_nngp_matches_mpmath_quadrature():
    """A shifted odd jump: NNGP only (its derivative is a Dirac delta)."""
    act = get_activation("3*sign(u) + 0.5")
    for (s11, s22), rho in zip(VARIANCES, RHOS, strict=True):
        s12 = rho * np.sqrt(s11 * s22)
        got = dual.evaluate(act, s11, s12, s22)[0]
        ref = reference.dual(act, s11, s12, s22, method="quadrature")
        assert abs(float(got) - float(ref)) < 1e-12 * 9.25


# ----------------------------------------------------------------------------- kernels
def _inputs():
    """Rows at scales 1e-2..1e2 (variances 1e-4..1e4), one nearly parallel pair (1 - rho
    ~ 1e-12 and below), one antiparallel."""
    rng = np.random.default_rng(13)
    x = rng.standard_normal(3)
    near = x * (1 + 1e-7) + 1e-6 * rng.standard_normal(3)
    return np.array([x * 1e-2, x, near, -3 * x, x * 1e2])


@functools.lru_cache(maxsize=16)
def _reference(typed, rows, depth, bias_std, ntk):
    """The mpmath kernel (by quadrature), once for all backends."""
    X = _inputs() if rows is None else _inputs()[list(rows)]
    act = get_activation(typed)
    return reference.kernel(act, X, depth=depth, bias_std=bias_std, method="quadrature", ntk=ntk)


def _check_kernel(typed, backend, rows=None, depth=3, bias_std=0.05, ntk=True, within=None):
    """The kernel on ``rows`` of the inputs against the mpmath reference, computed once on
    the rows ``within`` (a superset; all rows by default) and cut down: a Gram matrix's
    entries depend only on their own pair of rows."""
    within = list(range(len(_inputs()))) if within is None else within
    rows = within if rows is None else rows
    X = _inputs()[rows]
    act = get_activation(typed)
    full = _reference(typed, tuple(within), depth, bias_std, ntk)
    pick = np.ix_([within.index(r) for r in rows], [within.index(r) for r in rows])
    ref = tuple(np.asarray(r)[pick] for r in full)
    k = ntksym.kernel(act, depth=depth, bias_std=bias_std, backend=backend)
    got = k(X, get=("nngp", "ntk") if ntk else "nngp")
    got = (got.nngp, got.ntk) if ntk else (got,)
    for name, g, r in zip(("nngp", "ntk"), got, ref, strict=False):
        scale = np.sqrt(np.abs(np.outer(np.diag(r), np.diag(r))))
        err = np.abs(g - r) / scale
        worst = np.unravel_index(err.argmax(), err.shape)
        assert err.max() < 1e-12, (typed, backend, name, err.max(), worst)


@pytest.mark.parametrize("backend", ["numpy", "dual"])
@pytest.mark.parametrize("typed", FAST_MAPS)
def test_kernel_matches_mpmath(typed, backend):
    # the dual path leaves the nearly parallel pair at ~4e-11 for relu itself (its first
    # layer rounds the determinant); the generated kernels carry it
    rows = None if backend != "dual" else [0, 1, 3, 4]
    _check_kernel(typed, backend, rows)


@pytest.mark.slow
@pytest.mark.parametrize(  # (one compiled module in CI; each takes 20-35 s of CPU)
    "typed",
    [
        t if t == "-0.5*min(u,0)" else pytest.param(t, marks=pytest.mark.exhaustive)
        for t in FAST_MAPS
    ],
)
def test_kernel_matches_mpmath_numba(typed):
    _check_kernel(typed, "numba")


#: One smooth map per base family for the whole kernel (each mpmath reference kernel costs
#: minutes; the shifted erf covers c != 0); every smooth map's layer maps are checked above.
SMOOTH_KERNELS = ["0.5*erf(u/sqrt(2)) + 0.5", "exp(-u**2/(2*3))", "3*u*(1 + erf(u/sqrt(2)))/2"]


@pytest.mark.exhaustive
@pytest.mark.parametrize("backend", ["numpy", "numba", "dual"])
@pytest.mark.parametrize("typed", SMOOTH_KERNELS)
def test_smooth_kernel_matches_mpmath(typed, backend):
    rows = [0, 1, 2, 4] if backend != "dual" else [0, 1, 4]
    _check_kernel(typed, backend, rows, within=[0, 1, 2, 4])


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_step_nngp_matches_mpmath(backend):
    _check_kernel("2*heaviside(u)", backend, ntk=False)
