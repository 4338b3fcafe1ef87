"""The next determinant after ``a sin(b u + c)`` (Sin, Cos with a phase, Rbf), checked.

``ntksym.dual.families.mgf_det.phase_det`` writes ``D' = N11 N22 - S12'^2`` after
``sin(u + c)`` as a mixture of ``E[cos(u - v)]`` and sin's or cos's maps, so that nothing
cancels. Checked here: the mixture and its determinant identity exactly (SymPy, from the
derivation engine's own Gaussian-MGF map); the float64 form against the determinant of
the next covariance at 50 digits (mpmath, at the float64 inputs); and whole networks on
adversarial inputs against the mpmath referee, each with the same check run on the old
path (the determinant formed by subtraction) to show that it fails there.
"""

import mpmath as mp
import numpy as np
import pytest
import sympy as sp
from test_smooth_det import VARIANCES, adversarial_inputs, carried_det_errors, pairs

from ntksym import stax
from ntksym.activations import u
from ntksym.dual import derive as _d
from ntksym.dual import residual
from ntksym.dual.families import family_of, mgf, mgf_det
from ntksym.kernels import layer_maps

#: ``cos 2c`` of Rbf (6e-17: ``pi/4`` rounded) and of Cos(0.9, 1.2, 0.2), zero, and values
#: near the ends, where the mixture leans on sin's or cos's determinant.
KAPPAS = [0.999, 0.3, 6.123233995736766e-17, 0.0, -0.3, -0.921060994002885]


def sin_phase_map(kappa):
    """``E[sin(u + c) sin(v + c)]`` of a covariance ``[[a, s], [s, b]]``, ``kappa = cos 2c``."""
    k = mp.mpf(kappa)
    return lambda a, b, s: (mp.exp(-(a + b - 2 * s) / 2) - k * mp.exp(-(a + b + 2 * s) / 2)) / 2


def random_pairs(n, seed):
    """Variances 1e-6..1e6 unrelated or equal to within 1e-12..1; angles 1e-12..pi, pi - ..."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        v1 = 10 ** rng.uniform(-6, 6)
        if rng.random() < 0.5:
            v2 = v1 * (1 + rng.choice([-1, 1]) * 10 ** rng.uniform(-12, 0))
        else:
            v2 = 10 ** rng.uniform(-6, 6)
        if rng.random() < 0.7:
            angle = 10 ** rng.uniform(-12, np.log10(np.pi))
        else:
            angle = np.pi - 10 ** rng.uniform(-12, 0)
        out += pairs([(v1, float(v2))], [angle])
    return out


def test_phase_form_recognises_sin_and_cos():
    """``(a, b, cos 2c)`` of the stax forms (cos as sin with ``c + pi/2``); others: None."""
    for layer, (a, b, kappa) in [
        (stax.Sin(1.1, 0.8, 0.3), (1.1, 0.8, np.cos(0.6))),
        (stax.Cos(0.9, 1.2, 0.2), (0.9, 1.2, -np.cos(0.4))),
        (stax.Rbf(0.7), (np.sqrt(2), np.sqrt(1.4), np.cos(np.pi / 2))),
    ]:
        got = mgf.phase_form(layer.description.activation.expr)
        assert got is not None
        assert np.allclose([float(x) for x in got], [a, b, kappa], rtol=1e-15, atol=1e-17)
    for expr in ("sinh(u)", "sin(u)**2", "sin(u) + cos(u)", "exp(u)*sin(u)"):
        assert mgf.phase_form(sp.sympify(expr, locals={"u": u})) is None


def test_mixture_is_the_derived_dual_map():
    """The engine's ``E[sin(u + c) sin(v + c)]`` (symbolic ``c``) is
    ``(1 - |k|) X + |k| Y`` with ``X = E[cos(u - v)]/2`` and ``Y`` sin's map (``k > 0``) or
    cos's (``k < 0``), ``k = cos 2c``: exactly, as ``phase_det`` assumes."""
    c = sp.Symbol("c", real=True)
    s11, s12, s22 = _d.S11, _d.S12, _d.S22
    derived = _d.exp_quadratic_expectation(sp.sin(u + c), sp.sin(u + c))
    k = sp.cos(2 * c)
    x12 = sp.exp(-(s11 + s22 - 2 * s12) / 2) / 2
    sin12 = sp.exp(-(s11 + s22) / 2) * sp.sinh(s12)
    cos12 = sp.exp(-(s11 + s22) / 2) * sp.cosh(s12)
    for mixture in ((1 - k) * x12 + k * sin12, (1 + k) * x12 - k * cos12):
        assert sp.simplify((derived - mixture).rewrite(sp.exp)) == 0


def test_mixture_determinant_identity():
    """``det(a X + b Y) = a^2 det X + b^2 det Y + a b C`` and, for ``X = [[1, x], [x, 1]]/2``,
    ``C = (sqrt Y11 - sqrt Y22)^2 / 2 + x gY + M_Y (1 - x)``, ``gY = M_Y - Y12``: exact."""
    a, b, x, y11, y22, y12 = sp.symbols("a b x Y11 Y22 Y12", positive=True)
    X = sp.Matrix([[1, x], [x, 1]]) / 2
    Y = sp.Matrix([[y11, y12], [y12, y22]])
    m_y = sp.sqrt(y11) * sp.sqrt(y22)
    cross = (sp.sqrt(y11) - sp.sqrt(y22)) ** 2 / 2 + x * (m_y - y12) + m_y * (1 - x)
    lhs = (a * X + b * Y).det()
    rhs = a**2 * X.det() + b**2 * Y.det() + a * b * cross
    assert sp.expand(lhs - rhs) == 0


@pytest.mark.parametrize("b2", [0.0, 0.5])
@pytest.mark.parametrize("kappa", KAPPAS)
def test_phase_determinant_matches_mpmath(kappa, b2):
    """The adversarial grid (near-parallel 1e-8, 1e-12, twins, variances (1, 1 + 1e-9),
    (1e-4, 1e4), (0.3, 0.3000001), anti-parallel, a zero variance) and 60 random pairs:
    within 1e-13 of the 50-digit determinant for every phase."""
    expr = mgf_det.phase_det(sp.Float(kappa))
    cases = pairs() + random_pairs(60, seed=7)
    worst = max(carried_det_errors(expr, sin_phase_map(kappa), cases, 1.7, b2))
    assert worst[0] <= 1e-13, worst


def test_direct_subtraction_fails_where_the_phase_form_holds():
    """The check can fail: ``g1 g2 - E^2`` of the correctly rounded maps misses a
    near-parallel pair by more than 1e-6; the mixture form is within 1e-13."""
    kappa, v, s12 = 0.3, 1.0, float(np.cos(1e-7))
    F = sin_phase_map(kappa)
    with mp.workdps(50):
        g, e = float(F(v, v, v)), float(F(v, v, s12))
        det = float(v * v - mp.mpf(s12) ** 2)
        ref = float(F(v, v, v) ** 2 - F(v, v, s12) ** 2)
    assert abs(g * g - e * e - ref) / ref > 1e-6
    ((err, _),) = carried_det_errors(mgf_det.phase_det(sp.Float(kappa)), F, [(v, v, s12)], 1, 0)
    assert err <= 1e-13 and det > 0


@pytest.mark.parametrize(
    "layer",
    [stax.Rbf(0.7), pytest.param(stax.Sin(1.1, 0.5, 0.3), marks=pytest.mark.exhaustive)],
    ids=str,
)
def test_scaled_phase_determinant_matches_mpmath(layer):
    """``a sin(b u + c)`` as the stax layers type it: ``phase_det`` at ``b^2 Sigma`` with
    ``W2 -> a^2 W2`` against the 50-digit determinant of that activation's maps. (For ``b``
    not a power of 2 the rounded ``b^2 S`` limits pairs of nearly equal variances, as for
    every scaled family; here the variances are exact multiples.)"""
    act = layer.description.activation
    a, b, kappa = mgf.phase_form(act.expr)
    carried = mgf.expression_layer_map(act).carried
    F1 = sin_phase_map(kappa)
    bb, aa = mp.mpf(b) ** 2, mp.mpf(a) ** 2

    def F(x, y, s):
        return aa * F1(bb * x, bb * y, bb * s)

    cases = pairs([VARIANCES[0], VARIANCES[2], VARIANCES[4]])
    for b2 in (0.0, 0.3):
        worst = max(carried_det_errors(carried, F, cases, 1.3, b2))
        assert worst[0] <= 1e-13, worst


def relu_after(act):
    """``Dense, act, Dense, Relu, Dense``: the ReLU reads ``sqrt(D')`` after ``act``."""
    layers = [stax.Dense(8, 1.3, 0.2), act, stax.Dense(8, 1.1, 0.3), stax.Relu()]
    return stax.serial(*layers, stax.Dense(1, 0.9, 0.1))


def rbf_chain(depth):
    """The network of ``benchmarks/bench_arch_accuracy.py`` for ``Rbf(0.7)``."""
    return stax.serial(*[stax.Dense(8, 1.0, 0.3), stax.Rbf(0.7)] * depth, stax.Dense(1, 0.9, 0.1))


def worst_error(net, X, ref):
    ours = net.kernel_fn(X, backend="layers")
    return max(float(np.max(np.abs(a - r) / np.abs(r))) for a, r in zip(ours, ref, strict=True))


def subtraction_only(monkeypatch):
    """The old layer path: no activation of a typed expression carries the determinant, and
    the residual's integral (``dual.residual``, which would take over) is switched off."""
    old = layer_maps.stable_det

    def stable_det(act):
        return None if family_of(act).name == "mgf_expression" else old(act)

    monkeypatch.setattr(layer_maps, "stable_det", stable_det)
    monkeypatch.setattr(residual, "NEAR", 0.0)


@pytest.mark.parametrize(
    "act",
    [stax.Rbf(0.7), pytest.param(stax.Cos(0.9, 1.2, 0.2), marks=pytest.mark.exhaustive)],
    ids=str,
)
def test_relu_after_a_phase_keeps_full_precision(act, monkeypatch):
    """A ReLU after Rbf or a phased cos, adversarial inputs: within 1e-13 of the referee
    (40 digits); with the determinant formed by subtraction the same check fails (1e-9)."""
    net, X = relu_after(act), adversarial_inputs()
    (ref,) = stax.reference_kernels(net.description, X, dps=40, method="auto")
    assert worst_error(net, X, ref) <= 1e-13
    subtraction_only(monkeypatch)
    assert worst_error(net, X, ref) > 1e-10


def test_deep_rbf_keeps_full_precision(monkeypatch):
    """``(Dense, Rbf(0.7)) * 20``: each layer spreads a near-parallel pair by 1.4, so a
    distance formed by subtraction loses ``eps`` per layer, amplified ~800-fold (6.7e-13
    before); carried, within 1e-13. Inputs: ``x``, ``x (1 + 1e-9)``, ``x + 1e-8 d``, zero."""
    x, d = np.random.default_rng(5).standard_normal((2, 6))
    X = np.vstack([x, x * (1 + 1e-9), x + 1e-8 * d, np.zeros(6)])
    net = rbf_chain(20)
    (ref,) = stax.reference_kernels(net.description, X, dps=30, method="auto")
    assert worst_error(net, X, ref) <= 1e-13
    subtraction_only(monkeypatch)
    assert worst_error(net, X, ref) > 1e-13
