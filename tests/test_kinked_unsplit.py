"""The kink-aware rule on sigma itself (no split): accurate, or it says so.

Activations that cannot be split into ramps plus a smooth remainder (products such as
``max(u, 0)*tanh(u)`` or ``max(min(u, 1), -1)*tanh(u)``) run the 2-D kink-aware rule of
:mod:`ntksym.dual.kinked_rule` on sigma itself. Checked against :mod:`kinked_referee`
(pieces written by hand; near |rho| = 1 a 1-D mpmath reduction, elsewhere nested QUADPACK).
"""

from __future__ import annotations

import re
import warnings
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

pytest.importorskip("numba")
pytest.importorskip("scipy")

import kinked_referee as ref  # noqa: E402

from ntksym.activations import get_activation  # noqa: E402
from ntksym.dual import kinked, split  # noqa: E402

TWO_CORNER_PRODUCT = "max(min(u, 1), -1)*tanh(u)"
RHO_EXTREME = 1 - 1e-12


def _cov(s11: float, rho: float, s22: float) -> tuple[np.ndarray, ...]:
    """(s11, s12, s22, det) as one-element arrays, det exact for the float s12, then rounded."""
    s12 = rho * np.sqrt(s11 * s22)
    det = max(float(Fraction(s11) * Fraction(s22) - Fraction(s12) ** 2), 0.0)
    return tuple(np.array([x], dtype=float) for x in (s11, s12, s22, det))


def _unsplit(name: str, expr: str, args: tuple[np.ndarray, ...]) -> tuple[Any, Any, float]:
    """Both maps by the rule on sigma itself, and the estimate its warning states (0: none)."""
    original = kinked.split_of
    kinked.split_of = lambda a: None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            e, ed = kinked.kinked_maps(get_activation(expr), *args)
    finally:
        kinked.split_of = original
    stated = [re.search(r"reached only (\S+)", str(w.message)) for w in caught]
    return e[0], ed[0], max([0.0, *(float(m[1]) for m in stated if m)])


def _want(name: str, args: tuple[np.ndarray, ...], derivative: bool) -> tuple[float, float]:
    """The referee's value and the Cauchy-Schwarz scale sqrt(E[g(u)^2] E[g(v)^2])."""
    s11, s12, s22, det = (float(x[0]) for x in args)
    c = np.sqrt(det / s11)
    if c <= 0.02:
        want = ref.pair(name, s11, s12, s22, det, derivative=derivative)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (QUADPACK's roundoff notes at 2e-14)
            want = ref.pair_f64(name, s11, s12, s22, det, derivative=derivative)
    d = [ref.diagonal(name, s, derivative=derivative) for s in (s11, s22)]
    return want, float(np.sqrt(d[0] * d[1]))


def _verdict(got: float, want: float, scale: float, stated: float) -> str:
    """'accurate' (within 1e-12 of the scale), 'stated' (off, the warning's estimate
    covers it), or 'SILENT' (off by more than the rule says)."""
    err = abs(got - want)
    if err <= 1e-12 * scale:
        return "accurate"
    return "stated" if err <= stated * scale else "SILENT"


def test_the_product_has_no_split() -> None:
    assert split.split_of(get_activation(TWO_CORNER_PRODUCT)) is None


_OFF_CI = pytest.mark.exhaustive  # (CI's time budget: variance 1 runs there, all in the sweep)


@pytest.mark.parametrize("rho", [RHO_EXTREME, -RHO_EXTREME])
@pytest.mark.parametrize(
    "s", [pytest.param(1e-4, marks=_OFF_CI), 1.0, pytest.param(1e4, marks=_OFF_CI)]
)
def test_two_corner_product_near_rho_one(s: float, rho: float) -> None:
    """max(min(u, 1), -1) tanh(u), corners at +-1 and no split: the derivative map near
    rho = +-1 (the smoothed steps of the inner expectation c/|b| ~ 1e-6 wide) within 1e-12
    of the scale, and no warning (at variance 1e4 it once warned with 8e-8: see
    test_accurate_at_variance_1e4_does_not_warn)."""
    args = _cov(s, rho, s)
    _, ed, stated = _unsplit(TWO_CORNER_PRODUCT, TWO_CORNER_PRODUCT, args)
    want, scale = _want(TWO_CORNER_PRODUCT, args, True)
    assert _verdict(ed, want, scale, stated) == "accurate"
    assert stated == 0.0


def test_accurate_at_variance_1e4_does_not_warn() -> None:
    """Accurate, and it does not say otherwise: at variance 1e4 near rho = 1 both maps are
    within 1e-12 of the scale (measured 5.6e-16, 2.9e-16) and the estimate is below the
    target. It was 8.2e-8: the inner rules' estimates were the larger of the two maps',
    and the derivative map's, relative to E|sigma'(v) | u| ~ 1e-14 where |u| ~ 16 (tanh
    saturated: 1.6e-5 of nearly nothing), weighed the value map's inner expectations.
    At rho = 0.3 the derivative map's estimate, 1.2e-10 of the integral of the magnitude
    (E[sigma'(v) | u] cancels: sigma' is odd), is restated against the Cauchy-Schwarz
    scale: no warning (its accuracy there is checked by the exhaustive sweep)."""
    args = _cov(1e4, RHO_EXTREME, 1e4)
    e, ed, stated = _unsplit(TWO_CORNER_PRODUCT, TWO_CORNER_PRODUCT, args)
    assert stated == 0.0
    for got, derivative in ((e, False), (ed, True)):
        want, scale = _want(TWO_CORNER_PRODUCT, args, derivative)
        assert _verdict(got, want, scale, stated) == "accurate"
    assert _unsplit(TWO_CORNER_PRODUCT, TWO_CORNER_PRODUCT, _cov(1e4, 0.3, 1e4))[2] == 0.0


def test_a_corner_moved_by_1e_9_is_caught() -> None:
    """A planted error of the size of the old one: the rule given the corner at 1 + 1e-9
    (the referee keeps 1) is off by about 1e-10 of the scale, and the check says so."""
    args = _cov(2.0, -RHO_EXTREME, 0.5)
    moved = "max(min(u, 1.000000001), -1)*tanh(u)"
    _, ed, stated = _unsplit(TWO_CORNER_PRODUCT, moved, args)
    want, scale = _want(TWO_CORNER_PRODUCT, args, True)
    assert _verdict(ed, want, scale, stated) == "SILENT"
    assert abs(ed - want) < 1e-8 * scale  # (and is near: the check resolves ~1e-10)


def test_a_hidden_corner_is_not_silent(monkeypatch: pytest.MonkeyPatch) -> None:
    """A planted error the rule cannot resolve: the corner at 1 hidden from its split
    points. It is then off by about 2e-3 of the scale (derivative map), and its warning
    states an estimate that covers the error (3.1e-3 measured): wrong, but it says so."""
    original = kinked.kink_points
    monkeypatch.setattr(kinked, "kink_points", lambda a: tuple(k for k in original(a) if k != 1))
    args = _cov(2.0, -RHO_EXTREME, 0.5)
    e, ed, stated = _unsplit(TWO_CORNER_PRODUCT, TWO_CORNER_PRODUCT, args)
    want, scale = _want(TWO_CORNER_PRODUCT, args, True)
    assert abs(ed - want) > 1e-6 * scale  # (the planted error shows...)
    assert _verdict(ed, want, scale, stated) == "stated"  # (... and is stated)


SWEEP_ACTIVATIONS = sorted(ref.PIECES)
SWEEP_VARIANCES = [1e-4, 1.0, 1e4]
SWEEP_RHOS = [
    sign * r for r in (1 - 1e-12, 1 - 1e-6, 0.9, 0.3) for sign in (1.0, -1.0)
]  # (the series referee's points first)


def sweep(names: list[str], out: Any = print) -> dict[str, list[tuple[Any, ...]]]:
    """Both maps of the rule on sigma itself over the grid; per point (s, rho, map, error
    relative to the scale, stated estimate, verdict)."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    for rho in SWEEP_RHOS:
        for s in SWEEP_VARIANCES:
            for name in names:
                args = _cov(s, rho, s)
                got = _unsplit(name, name, args)
                for k, derivative in enumerate((False, True)):
                    want, scale = _want(name, args, derivative)
                    err = abs(got[k] - want) / scale
                    row = (s, rho, "ntk" if derivative else "nngp", err, got[2])
                    row += (_verdict(got[k], want, scale, got[2]),)
                    rows.setdefault(name, []).append(row)
                    out(
                        f"{name:34s} s={s:g} rho={rho:+.12f} {row[2]:4s} "
                        f"err/scale={err:.1e} stated={got[2]:.1e} {row[5]}"
                    )
    return rows


@pytest.mark.exhaustive  # (about 200 referee values: an hour of CPU)
def test_sweep_is_accurate_or_says_so() -> None:
    rows = sweep(SWEEP_ACTIVATIONS)
    for name, pts in rows.items():
        worst = max(pts, key=lambda r: r[3])
        print(f"{name}: worst {worst[3]:.1e} at s={worst[0]:g} rho={worst[1]} {worst[2]}")
    assert not [r for pts in rows.values() for r in pts if r[5] == "SILENT"]
