"""The smooth families' next determinant from the carried D, checked against mpmath.

A kinked layer after a smooth one needs ``D' = N11 N22 - S12'^2`` to full relative
precision (its map reads ``sqrt(D')``); ``LayerMap.carried`` of erf, GELU, exp, sin, cos and
the Gaussian bump (and their scaled forms) gives it. Each is compared here with the
determinant of the next covariance computed at 50 digits from the textbook closed forms
of the dual maps, at the float64 inputs themselves; then whole networks
``Dense, smooth, Dense, Relu, Dense`` on adversarial inputs against the mpmath referee.
"""

import functools

import mpmath as mp
import numpy as np
import pytest
import sympy as sp

from ntksym import reference, stax
from ntksym.activations import get_activation
from ntksym.dual import stable as st
from ntksym.dual.families import affine, erf, gelu, mgf
from ntksym.dual.family import numpy_function

DPS = 50


def _erf(a, b, s):
    return 2 / mp.pi * mp.asin(2 * s / mp.sqrt((1 + 2 * a) * (1 + 2 * b)))


def _gelu(a, b, s):
    """Tsuchida et al. (2021) with ``(a b - 1) r/c + 1/r = (a b r^2 + s^2)/(c r)`` (exact at 0)."""
    c = (1 + a) * (1 + b)
    r = mp.sqrt(c - s * s)
    return (
        s / 4
        + s * mp.asin(s / mp.sqrt(c)) / (2 * mp.pi)
        + (a * b * r * r + s * s) / (2 * mp.pi * c * r)
    )


def with_next_variances(lm):
    """``lm.carried`` with ``N11, N22`` (read where ``S12 <= 0``) as ``W2 g(S_ii) + B2``."""
    (s,) = lm.diag.free_symbols
    return lm.carried.xreplace(
        {n: st.W2 * lm.diag.subs(s, v) + st.B2 for n, v in ((st.N11, st.S11), (st.N22, st.S22))}
    )


@functools.lru_cache(maxsize=1)
def gelu_carried():
    return with_next_variances(gelu.gelu())


#: E[sigma(u) sigma(v)] in mpmath (Williams 1997; the Gaussian moment generating function;
#: Tsuchida et al. 2021 for GELU).
MAPS = {
    "erf": (erf.erf_det, _erf),
    "gelu": (gelu_carried, _gelu),
    "exp": (mgf.exp_det, lambda a, b, s: mp.exp((a + b) / 2 + s)),
    "sin": (mgf.sin_det, lambda a, b, s: mp.exp(-(a + b) / 2) * mp.sinh(s)),
    "cos": (mgf.cos_det, lambda a, b, s: mp.exp(-(a + b) / 2) * mp.cosh(s)),
    "gaussian": (mgf.gaussian_det, lambda a, b, s: 1 / mp.sqrt((1 + a) * (1 + b) - s * s)),
}

VARIANCES = [(1.0, 1.0), (1.0, 1 + 1e-9), (1e-4, 1e4), (0.3, 0.3000001), (2.5, 2.5), (1.0, 0.0)]
ANGLES = [1e-8, 1e-12, 0.0, 0.4, np.pi - 1e-8, np.pi]


def pairs(variances=VARIANCES, angles=ANGLES):
    """``(S11, S22, S12)`` with ``S12^2 <= S11 S22`` exactly (the covariance is valid)."""
    out = []
    for v1, v2 in variances:
        for angle in angles:
            s12 = float(np.sqrt(v1 * v2) * np.cos(angle))
            with mp.workdps(DPS):
                while mp.mpf(v1) * mp.mpf(v2) - mp.mpf(s12) ** 2 < 0:
                    s12 = float(np.nextafter(s12, 0.0))
            out.append((v1, v2, s12))
    return out


def reference_det(F, v1, v2, s12, w2, b2):
    """``det(W2 [[g1, E], [E, g2]] + B2)`` at 50 digits, ``g`` and ``E`` from ``F``."""
    with mp.workdps(DPS):
        a, b, s = mp.mpf(v1), mp.mpf(v2), mp.mpf(s12)
        g1, g2, e = F(a, a, a), F(b, b, b), F(a, b, s)
        return w2**2 * (g1 * g2 - e * e) + w2 * b2 * (g1 + g2 - 2 * e)


@functools.lru_cache(maxsize=16)
def lambdified(expr):
    """``expr`` as a NumPy function of ``(S11, S22, S12, D, W2, B2, U)``."""
    return numpy_function((st.S11, st.S22, st.S12, st.D, st.W2, st.B2, st.U), expr, cse=True)


def root_gap(v1, v2):
    """``sqrt(v1) - sqrt(v2)`` of the float64 variances, correctly rounded (as the layer
    maps' double-double variances give it)."""
    with mp.workdps(DPS):
        return float(mp.sqrt(mp.mpf(v1)) - mp.sqrt(mp.mpf(v2)))


def carried_det_errors(expr, F, cases, w2, b2):
    """Relative errors of ``expr`` (in the symbols of ntksym.dual.stable) at ``cases``."""
    fn = lambdified(expr)
    errors = []
    for v1, v2, s12 in cases:
        with mp.workdps(DPS):
            det = float(mp.mpf(v1) * mp.mpf(v2) - mp.mpf(s12) ** 2)
        ref = reference_det(F, v1, v2, s12, w2, b2)
        if abs(ref) > 1e300:  # exp at variance 1e4: +inf in float64 either way
            continue
        with np.errstate(all="ignore"):
            got = float(fn(v1, v2, s12, det, w2, b2, root_gap(v1, v2)))
        err = abs(got) if ref == 0 else abs(got - ref) / abs(ref)
        errors.append((float(err), (v1, v2, s12)))
    return errors


@pytest.mark.parametrize("b2", [0.0, 0.5])
@pytest.mark.parametrize("name", list(MAPS))
def test_carried_determinant_matches_mpmath(name, b2):
    """Near-parallel (1e-8, 1e-12), twins, variances (1, 1 + 1e-9) and (1e-4, 1e4),
    anti-parallel and a zero variance: each within 1e-13 of the 50-digit determinant."""
    factory, F = MAPS[name]
    errors = carried_det_errors(factory(), F, pairs(), 1.7, b2)
    worst = max(errors)
    assert worst[0] <= 1e-13, worst


def test_twins_give_a_singular_next_covariance():
    """One Gaussian in, one Gaussian out: the next determinant is exactly zero."""
    for factory, _F in MAPS.values():
        fn = lambdified(factory())
        for v in (1e-6, 0.7, 3.0):
            assert float(fn(v, v, v, 0.0, 1.3, 0.2, 0.0)) == 0.0


def test_direct_subtraction_fails_where_the_carried_form_holds():
    """The check can fail: ``N11 N22 - S12'^2`` in float64 misses near-parallel pairs."""
    _factory, F = MAPS["erf"]
    v, s12 = 1.0, float(np.cos(1e-7))
    with mp.workdps(DPS):  # the correctly rounded map values, then the subtraction
        g, e = float(F(v, v, v)), float(F(v, v, s12))
    direct = g * g - e * e
    ref = reference_det(F, v, v, s12, 1.0, 0.0)
    assert abs(direct - ref) / ref > 1e-6
    ((err, _),) = carried_det_errors(erf.erf_det(), F, [(v, v, s12)], 1.0, 0.0)
    assert err <= 1e-13


def test_gelu_reference_is_the_dual_kernel():
    """The mpmath closed form ``_gelu`` against ntksym.reference's quadrature of GELU
    (no closed form involved)."""
    act = get_activation("gelu")
    for v1, v2, s12 in [(0.3, 2.5, 0.6), (1e-4, 1.0, -0.009), (4.0, 4.0, 3.9)]:
        with mp.workdps(30):
            quad = reference.dual_quadrature(act, v1, s12, v2, dps=30)
            assert abs(_gelu(v1, v2, s12) - quad) <= 1e-15 * abs(quad)


def test_gelu_plain_det_fails_where_the_carried_form_holds():
    """GELU's ``det`` (the homogeneous kernels', accurate only relative to ``q``) is 30%
    off at variances 1 and 1 + 1e-9 near parallel; ``carried`` is within 1e-13."""
    lm = gelu.gelu()
    cases = pairs([(1.0, 1 + 1e-9)], [1e-8, 0.0])
    plain = carried_det_errors(lm.det.xreplace(
        {n: st.W2 * lm.diag.subs(next(iter(lm.diag.free_symbols)), v) + st.B2
         for n, v in ((st.N11, st.S11), (st.N22, st.S22))}), _gelu, cases, 1.7, 0.0)  # fmt: skip
    assert max(plain)[0] > 0.1
    assert max(carried_det_errors(gelu_carried(), _gelu, cases, 1.7, 0.0))[0] <= 1e-13


def test_gelu_psi_derivatives_share_a_sign():
    """``psi'`` and ``psi''`` as :func:`gelu._psi_steps` integrates them are the derivatives
    of ``psi``, each a polynomial of one sign over powers of ``1 + 2s`` and ``1 + s``."""
    x = sp.Symbol("x", positive=True)
    w = sp.sqrt(1 + 2 * x)
    psi = sp.atan2(w, x) - 2 * x / (w * (1 + x))
    first = -(3 + 5 * x) / ((1 + 2 * x) ** sp.Rational(3, 2) * (1 + x) ** 2)
    second = (10 + 31 * x + 25 * x**2) / ((1 + 2 * x) ** sp.Rational(5, 2) * (1 + x) ** 3)
    for n, form in ((1, first), (2, second)):
        assert sp.simplify(sp.diff(psi, x, n) - form) == 0
        numer = sp.Poly(sp.fraction(sp.together(form))[0], x)
        assert len({sp.sign(c) for c in numer.all_coeffs()}) == 1


def test_gelu_psi_steps_against_mpmath():
    """The quadrature steps of ``psi`` (float64) against its differences at 60 digits, for
    ``p`` up to 0.3 (where :func:`gelu.gelu_det` uses them) and variances 1e-8..1e12."""
    mid_s, k_s = sp.symbols("mid k")
    odd, even = (sp.lambdify((mid_s, k_s), e, "math") for e in gelu._psi_steps(mid_s, k_s))

    def psi(v):
        w = mp.sqrt(1 + 2 * v)
        return mp.atan2(w, v) - 2 * v / (w * (1 + v))

    rng = np.random.default_rng(11)
    worst = 0.0
    with mp.workdps(60):
        for mid, p, sign in zip(10 ** rng.uniform(-8, 12, 300), rng.uniform(0, 0.3, 300),
                                rng.choice([-1.0, 1.0], 300), strict=True):  # fmt: skip
            k = sign * min(p * (mid + 0.5), mid)
            a, b, c = psi(mp.mpf(mid) + k), psi(mp.mpf(mid) - k), psi(mp.mpf(mid))
            if k != 0:
                worst = max(worst, abs(odd(mid, k) / ((a - b) / 2) - 1))
                worst = max(worst, abs(even(mid, k) / (a + b - 2 * c) - 1))
    assert worst <= 2e-15, worst


@pytest.mark.parametrize("b2", [0.0, 0.5])
def test_gelu_carried_determinant_on_a_random_grid(b2):
    """Variances 1e-8..1e12, equal to within 1e-12..1 relative or unrelated, and nearly
    equal ones around the switch between the Taylor steps and the direct ``K1, V1``
    (``p`` up to 0.6); angles 1e-12..pi and pi - 1e-12..pi: within 1e-13 of mpmath."""
    rng = np.random.default_rng(2026)
    variances = [tuple(10 ** rng.uniform(-8, 12, 2)) for _ in range(12)]
    variances += [(v, v * (1 + 10 ** rng.uniform(-12, 0))) for v in 10 ** rng.uniform(-8, 12, 12)]
    for v, p in zip(10 ** rng.uniform(-8, 12, 16), rng.uniform(0.0, 0.6, 16), strict=True):
        variances.append((v, (v * (1 + p) + 2 * p) / (1 - p)))  # (v2 - v) / (1 + v + v2) = p
    angles = [
        0.0,
        *10 ** rng.uniform(-12, np.log10(np.pi), 5),
        *(np.pi - 10 ** rng.uniform(-12, 0, 2)),
    ]
    errors = carried_det_errors(gelu_carried(), _gelu, pairs(variances, angles), 1.7, b2)
    assert max(errors)[0] <= 1e-13, max(errors)


def test_scaled_forms_carry_the_determinant():
    """``a f(b u) + c``: the substituted determinant against mpmath's of the scaled map.

    (``b`` a power of 2 here: for other ``b`` the rounded ``b^2 S11 - b^2 S22`` is off by
    ``eps b^2 S``, which pairs of nearly equal variances feel, as they feel the rounding of
    the variances themselves: up to 6e-10 relative at variances 0.3 and 0.3000001.)
    """
    lm = affine.scaled_layer_map(erf.erf(), 1.2, 0.5, 0.1)

    def F(a, b, s):
        return mp.mpf(1.2) ** 2 * _erf(a / 4, b / 4, s / 4) + mp.mpf(0.1) ** 2

    errors = carried_det_errors(lm.carried, F, pairs(VARIANCES[:4], ANGLES[:3]), 1.0, 0.3)
    assert max(errors)[0] <= 1e-13


def test_scaled_gelu_carries_the_determinant():
    """``1.2 gelu(0.5 u)`` (GELU is not odd: no shift) over the whole grid, both biases."""
    lm = affine.scaled_layer_map(gelu.gelu(), 1.2, 0.5, 0)

    def F(a, b, s):
        return mp.mpf(1.2) ** 2 * _gelu(a / 4, b / 4, s / 4)

    for b2 in (0.0, 0.3):
        errors = carried_det_errors(with_next_variances(lm), F, pairs(), 1.0, b2)
        assert max(errors)[0] <= 1e-13


# --------------------------------------------------------------------------- networks
def adversarial_inputs():
    """Near-parallel (1e-8), anti-parallel, rescaled, twin, zero, tiny and huge inputs."""
    x, d, y, z = np.random.default_rng(5).standard_normal((4, 6))
    return np.vstack(
        [x, x + 1e-8 * d, -x + 1e-7 * d, 1e3 * x, x * (1 + 1e-9), np.zeros(6), 1e-6 * y, 1e6 * z]
    )


def smooth_then_relu(act, depth):
    block = [stax.Dense(8, 1.3, 0.2), act, stax.Dense(8, 1.1, 0.3), stax.Relu()]
    return stax.serial(*(block * depth), stax.Dense(1, 0.9, 0.1))


def assert_full_precision(net, X):
    ours = net.kernel_fn(X, backend="layers")
    (ref,) = stax.reference_kernels(net.description, X, dps=40, method="auto")
    for a, r in zip(ours, ref, strict=True):
        assert np.max(np.abs(a - r) / np.abs(r)) < 1e-13


def test_erf_then_relu_keeps_full_precision():
    """``Dense, Erf, Dense, Relu, Dense``: every entry within 1e-13 of mpmath (before:
    2.4e-9 on the near-parallel pair, the determinant being formed by subtraction)."""
    assert_full_precision(smooth_then_relu(stax.Erf(), 1), adversarial_inputs())


def test_gelu_then_relu_keeps_full_precision():
    """``Dense, Gelu, Dense, Relu, Dense``: every entry within 1e-13 of mpmath (before:
    2.2e-9 on the NTK, the determinant after GELU being formed by subtraction)."""
    assert_full_precision(smooth_then_relu(stax.Gelu(), 1), adversarial_inputs())


@pytest.mark.exhaustive
@pytest.mark.parametrize("depth", [1, 3, 10, 20])
@pytest.mark.parametrize(
    "act",
    [
        stax.Erf(),
        stax.Erf(1.2, 0.7, 0.1),
        stax.Sin(1.1, 0.8),
        stax.Gaussian(),
        stax.Cos(),
        stax.Gelu(),
    ],
    ids=str,
)
def test_smooth_then_relu_keeps_full_precision_deep(act, depth):
    assert_full_precision(smooth_then_relu(act, depth), adversarial_inputs())


@pytest.mark.slow
def test_rectified_then_relu_keeps_full_precision():
    """The rectified monomials' ``det`` (a product of gaps) is trusted by both paths: a ReLU
    after ``RectifiedMonomial(2)`` keeps full precision on the adversarial inputs."""
    net = smooth_then_relu(stax.RectifiedMonomial(2), 1)
    X = adversarial_inputs()
    assert_full_precision(net, X)
    fused = net.kernel_fn(X, backend="fused")
    layers = net.kernel_fn(X, backend="layers")
    for a, r in zip(fused, layers, strict=True):
        assert np.max(np.abs(a - r) / np.abs(r)) < 1e-13


def assert_fused_full_precision(net, X):
    fused = net.kernel_fn(X, backend="fused")
    (ref,) = stax.reference_kernels(net.description, X, dps=40, method="auto")
    for a, r in zip(fused, ref, strict=True):
        assert np.max(np.abs(a - r) / np.abs(r)) < 1e-13


@pytest.mark.slow
def test_fused_kernel_carries_the_determinant_through_sin():
    """The fused kernel prints the ``carried`` forms: a ReLU after a scaled sin (mgf family,
    through ``affine``) within 1e-13 of mpmath on the adversarial inputs (before: 2.3e-9 on
    the NTK, the determinant being formed by subtraction)."""
    assert_fused_full_precision(smooth_then_relu(stax.Sin(1.1, 0.8), 1), adversarial_inputs())


@pytest.mark.exhaustive
@pytest.mark.parametrize(
    "act", [stax.Erf(), stax.Erf(1.2, 0.7, 0.1), stax.Gaussian(), stax.Cos(), stax.Gelu()], ids=str
)
def test_fused_kernel_carries_the_determinant_through_smooth_layers(act):
    """The same for erf (before: 2.4e-9), scaled erf (2.5e-9), the Gaussian bump (3.8e-9),
    cos (2.7e-10) and GELU (2.2e-9); each compiles a module (erf about 30 s)."""
    assert_fused_full_precision(smooth_then_relu(act, 1), adversarial_inputs())
