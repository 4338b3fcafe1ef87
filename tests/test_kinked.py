"""Kinked activations without a closed form: the kink-aware rule (ntksym.dual.kinked).

Checked against independent values: closed forms of piecewise-linear activations (which the
rule does not use), the mpmath reference (a few points; the grid is exhaustive), and a
decomposition of a kinked sum whose pieces have closed forms or 1-D mpmath integrals.
"""

from __future__ import annotations

import warnings

import mpmath
import numpy as np
import pytest

pytest.importorskip("numba")

from ntksym import dual, reference  # noqa: E402
from ntksym.activations import get_activation  # noqa: E402
from ntksym.dual import kinked  # noqa: E402
from ntksym.dual.kinks import is_kinked, kink_points  # noqa: E402

RHO_EXTREME = 1 - 1e-12
#: (s11, rho, s22): variances 1e-4..1e4, |rho| up to 1 - 1e-12, exactly +-1.
COVARIANCES = [
    (1.0, 0.5, 1.0),
    (1e-4, -0.3, 1e-4),
    (1e4, RHO_EXTREME, 1e4),
    (2.0, -RHO_EXTREME, 0.5),
    (1e4, -RHO_EXTREME, 1e-4),
    (1e-4, 0.3, 1e4),
    (1.0, 1.0, 1.0),
    (1.0, -1.0, 1.0),
    (0.0, 0.0, 2.0),
]


def _cov(s11: float, rho: float, s22: float) -> tuple[np.ndarray, ...]:
    s12 = rho * np.sqrt(s11 * s22)
    det = s11 * s22 * (1 - rho) * (1 + rho)  # (1 - rho is exact for these rho)
    return tuple(np.array([x], dtype=float) for x in (s11, s12, s22, det))


def test_kink_points_found_symbolically() -> None:
    assert kink_points(get_activation("relu(u) + 0.1*tanh(u)")) == (0.0,)
    # a nested max/min: both corners, which Activation.kinks alone misses
    assert kink_points(get_activation("max(min(u, 1), -1) + 0.1*tanh(u)")) == (-1.0, 1.0)
    assert kink_points(get_activation("tanh(u)")) == ()
    assert is_kinked(get_activation("max(u, 0)*tanh(u)"))
    assert not is_kinked(get_activation("step(u)"))  # a Dirac delta derivative


@pytest.mark.exhaustive  # (each activation compiles for 20-40 s on a loaded machine)
@pytest.mark.parametrize("name", ["relu", "abs(u)", "0.7*max(u, 0) + 0.2*min(u, 0)"])
@pytest.mark.parametrize("cov", COVARIANCES)
def test_piecewise_linear_matches_closed_form(name: str, cov: tuple[float, float, float]) -> None:
    act = get_activation(name)
    args = _cov(*cov)
    with warnings.catch_warnings():
        # (near rho = -1 the derivative map is 1e-7 of its scale, and the rule's estimate,
        # relative to the map itself, may exceed the target: the value is checked below)
        warnings.simplefilter("error" if abs(cov[1]) < 0.9 else "ignore")
        e, ed = kinked.kinked_maps(act, *args)
    want, want_d = dual.evaluate(act, *args[:3], det=args[3])
    scale = np.sqrt(
        dual.evaluate(act, cov[0], cov[0], cov[0])[0]
        * dual.evaluate(act, cov[2], cov[2], cov[2])[0]
    )
    assert abs(e[0] - want[0]) <= 2e-15 * max(scale, 1e-300) + 1e-300
    scale_d = np.sqrt(
        dual.evaluate(act, cov[0], cov[0], cov[0])[1]
        * dual.evaluate(act, cov[2], cov[2], cov[2])[1]
    )
    assert abs(ed[0] - want_d[0]) <= 2e-15 * scale_d


def test_nngp_only_does_not_evaluate_the_derivative() -> None:
    act = get_activation("relu(u) + 0.1*tanh(u)")
    args = _cov(1.0, 0.5, 1.0)
    e, ed = kinked.kinked_maps(act, *args, ntk=False)
    assert ed is None
    both, _ = kinked.kinked_maps(act, *args)
    assert e[0] == both[0]
    # the dual path's quadrature: the derivative map is never asked for
    k, kd = dual.trapezoid("tanh(u)*sin(u) + 1", *args[:3], det=args[3], ntk=False)
    assert kd is None and np.isfinite(k).all()


def test_nngp_only_kernel_never_calls_the_derivative(monkeypatch: pytest.MonkeyPatch) -> None:
    import ntksym

    calls: list[bool] = []
    original = dual.trapezoid

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(bool(kwargs.get("ntk", True)))
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(dual, "trapezoid", spy)
    X = np.random.default_rng(0).standard_normal((3, 2))
    k = ntksym.kernel("relu(u) + 0.1*tanh(u)", depth=2, backend="dual", degree=None)
    k(X, get="nngp")
    assert calls and not any(calls)
    k(X, get="ntk")
    assert any(calls)


def _sum_decomposed(s11: float, s12: float, s22: float, det: float) -> float:
    """E[s'(u) s'(v)] of s = relu + 0.1 tanh, split into H x H (closed form) and 1-D integrals.

    With q = sech^2 = tanh': E[H H] + 0.1 (E[H(u) q(v)] + E[q(u) H(v)]) + 0.01 E[q q], where
    E[q(u) H(v)] = E[q(a z1) Phi(b z1 / c)] and the others nest E[q(m + c z2)] in z1; scipy's
    adaptive Gauss-Kronrod rules with the smoothed kink at z1 = 0 as a break point.
    """
    quad = pytest.importorskip("scipy.integrate").quad
    ndtr = pytest.importorskip("scipy.special").ndtr
    a = np.sqrt(s11)
    b = s12 / a
    c = np.sqrt(det / s11)

    def q(x: float) -> float:
        return 1.0 / np.cosh(x) ** 2

    def phi(z: float) -> float:
        return float(np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi))

    def eq(m: float) -> float:  # E[q(m + c z)]
        return quad(lambda z: q(m + c * z) * phi(z), -12, 12, epsabs=0, epsrel=1e-13, limit=200)[0]

    opts = {"epsabs": 0.0, "epsrel": 1e-13, "limit": 200}
    hh = (np.pi - np.arctan2(np.sqrt(det), s12)) / (2 * np.pi)
    hq = quad(lambda z: phi(z) * eq(b * z), 0, 12, **opts)[0]
    qh = sum(
        quad(lambda z: phi(z) * q(a * z) * ndtr(b * z / c), lo, hi, **opts)[0]
        for lo, hi in ((-12, -1e-6), (-1e-6, 0), (0, 1e-6), (1e-6, 12))
    )
    qq = quad(lambda z: phi(z) * q(a * z) * eq(b * z), -12, 12, **opts)[0]
    return float(hh + 0.1 * (hq + qh) + 0.01 * qq)


@pytest.mark.parametrize("rho", [-RHO_EXTREME, 0.4])
def test_kinked_sum_derivative_map_against_decomposition(rho: float) -> None:
    """Near rho = -1 the kink term H x H is 2e-7 of the map: missing it shows at 3e-6."""
    act = get_activation("relu(u) + 0.1*tanh(u)")
    args = _cov(2.0, rho, 0.5)
    _, ed = kinked.kinked_maps(act, *args)
    want = _sum_decomposed(*(float(x[0]) for x in args))
    assert abs(ed[0] - want) <= 1e-13 * abs(want)


@pytest.mark.exhaustive  # (the mpmath reference takes 20-90 s per point)
@pytest.mark.parametrize(
    ("name", "cov"),
    [("relu(u) + 0.1*tanh(u)", (1e-4, -0.3, 1e-4)), ("max(u, 0)*tanh(u)", (1.0, 0.5, 1.0))],
)
def test_against_reference_points(name: str, cov: tuple[float, float, float]) -> None:
    act = get_activation(name)
    args = _cov(*cov)
    e, ed = kinked.kinked_maps(act, *args)
    s = [float(x[0]) for x in args[:3]]
    for got, derivative in ((e[0], False), (ed[0], True)):
        want = float(reference.dual_quadrature(act, *s, dps=17, derivative=derivative))
        assert abs(got - want) <= 1e-12 * abs(want)


@pytest.mark.exhaustive
@pytest.mark.parametrize(
    "name",
    ["relu(u) + 0.1*tanh(u)", "max(u, 0)*tanh(u)", "abs(u) + sin(u)", "max(u, 0) + softplus(u)"],
)
@pytest.mark.parametrize("cov", COVARIANCES[:6])
def test_against_reference_grid(name: str, cov: tuple[float, float, float]) -> None:
    act = get_activation(name)
    args = _cov(*cov)
    e, ed = kinked.kinked_maps(act, *args)
    s = [float(x[0]) for x in args[:3]]
    for got, derivative in ((e[0], False), (ed[0], True)):
        try:
            want, err = reference.dual_quadrature(
                act, *s, dps=20, derivative=derivative, error=True
            )
        except reference.QuadratureError:
            pytest.skip("the mpmath reference does not converge here")
        size = float(
            mpmath.sqrt(
                reference.dual_quadrature(act, s[0], s[0], s[0], dps=17, derivative=derivative)
                * reference.dual_quadrature(act, s[2], s[2], s[2], dps=17, derivative=derivative)
            )
        )
        assert abs(got - float(want)) <= 1e-12 * size + float(err)


def test_unconverged_rule_warns_with_its_estimate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Estimates above the target: the warning names the largest and how many there are."""
    monkeypatch.setattr(kinked, "TARGET", -1.0)  # (every estimate exceeds it)
    act = get_activation("relu(u) + 0.1*tanh(u)")
    with pytest.warns(RuntimeWarning, match=r"reached only .* relative .* at 1 of 1 covariances"):
        kinked.kinked_maps(act, *_cov(1.0, 0.5, 1.0))
