"""The referee where users go: every kink found once, steep terms and |rho| -> 1 resolved.

Checks of :func:`ntksym.activations.expr.kinks_of` against breakpoints known by hand and a
property over random nested compositions (second differences), of the referee's graded
splitting against independent decompositions (closed forms plus one-dimensional mpmath
integrals), and of its refusal to return a number its own estimate does not support.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from ntksym import reference
from ntksym.activations import get_activation
from ntksym.activations.expr import kinks_of, lambdify_numpy, u
from ntksym.dual.kinks import is_kinked, kink_points
from ntksym.errors import QuadratureError
from ntksym.reference import ReferenceNotConverged, tanh_sinh
from ntksym.reference.features import smooth_features

KNOWN = [
    ("max(min(u, 1), -1)", (-1.0, 1.0)),  # hard tanh
    ("min(max(u, 0), 6)", (0.0, 6.0)),  # relu6
    ("max(u, 0.1*u)", (0.0,)),  # leaky relu
    ("max(abs(u) - 1, 0)", (-1.0, 1.0)),  # flat at 0: no kink there
    ("abs(abs(u) - 1)", (-1.0, 0.0, 1.0)),
    ("abs(u**2 - 2)", (-math.sqrt(2), math.sqrt(2))),
    ("max(tanh(u), 0.5)", (math.atanh(0.5),)),  # a non-polynomial switch
    ("max(u, 0)**3", (0.0,)),  # C^2, not C^3
    ("max(u, 0) + min(u, 0)", ()),  # = u
    ("step(u - 2)", (2.0,)),
    ("relu(u) + 0.1*tanh(u)", (0.0,)),
    ("gelu", ()),
]


@pytest.mark.parametrize(("text", "want"), KNOWN)
def test_kinks_of_known_breakpoints(text: str, want: tuple[float, ...]) -> None:
    act = get_activation(text)
    got = kinks_of(act.expr)
    assert len(got) == len(want), (text, got)
    assert np.allclose(got, want, rtol=1e-14, atol=1e-14), (text, got)
    assert kink_points(act) == got  # sigma' switches nowhere else


def test_kinks_of_piecewise_and_delta() -> None:
    pw = sp.Piecewise((u, u > 2), (2 * u - 2, True))
    assert kinks_of(pw) == (2.0,)
    assert kinks_of(sp.Piecewise((u, u > 2), (2 * u - 2 - (u - 2), True))) == ()  # same piece
    assert kinks_of(sp.DiracDelta(u - 1)) == (1.0,)


def test_kink_points_nested_in_a_sum_and_is_kinked() -> None:
    act = get_activation("max(min(u, 1), -1) + 0.1*tanh(u)")
    assert kink_points(act) == (-1.0, 1.0)
    assert is_kinked(act)
    assert not is_kinked(get_activation("tanh(u)"))
    assert not is_kinked(get_activation("step(u)"))  # a Dirac delta derivative


_LEAF = st.builds(
    lambda a, b: a * u + b,
    st.integers(-3, 3).map(sp.Integer),
    st.integers(-4, 4).map(sp.Integer),
)


def _extend(children: st.SearchStrategy[sp.Expr]) -> st.SearchStrategy[sp.Expr]:
    return st.one_of(
        st.builds(sp.Max, children, children),
        st.builds(sp.Min, children, children),
        st.builds(sp.Abs, children),
        st.builds(lambda a, b: a + b, children, children),
        st.builds(lambda c, a: c * a, st.sampled_from([sp.Rational(1, 2), -2, 3]), children),
    )


#: Random nested piecewise-linear compositions.
_NESTED = st.recursive(_LEAF, _extend, max_leaves=6)


def _second_difference(f: object, x: np.ndarray, h: float) -> np.ndarray:
    return np.abs(f(x - h) - 2 * f(x) + f(x + h))  # type: ignore[operator]


@settings(max_examples=40, deadline=None, derandomize=True)
@given(_NESTED)
def test_nested_compositions_are_linear_between_reported_kinks(expr: sp.Expr) -> None:
    """Between reported kinks sigma is linear; at each reported kink its slope changes."""
    kinks = np.array(kinks_of(expr))
    f = lambdify_numpy(expr)
    h = 1e-4
    xs = np.arange(-10.0, 10.0, 0.0137) + 0.00031
    far = xs if not kinks.size else xs[np.min(np.abs(xs[:, None] - kinks), axis=1) > 2 * h]
    assert np.all(_second_difference(f, far, h) <= 1e-8), (expr, kinks)
    for i, k in enumerate(kinks):
        gaps = np.abs(np.delete(kinks, i) - k)
        step = min(1e-3, gaps.min() / 4) if gaps.size else 1e-3
        # slopes are rationals with small denominators: a corner changes them by >= 1/64
        assert _second_difference(f, np.array([k]), step)[0] > step / 128, (expr, k)


def test_smooth_features_of_steep_terms() -> None:
    feats = smooth_features(get_activation("relu(u) + 0.1*tanh(4*u - 2)"), False)
    assert [(float(c), float(w)) for c, w in feats] == [(0.5, 0.25)]
    (c, w), *_ = smooth_features(get_activation("erf(u)"), True)  # erf' = exp(-u^2)
    assert (float(c), float(w)) == (0.0, 1 / math.sqrt(2))


def test_one_dimensional_expectation_with_a_narrow_step_at_variance_1e4() -> None:
    """E[relu(u) + 0.1 tanh(u - 3)] at variance 1e4: the tanh is 0.01 standard deviations wide."""
    act = get_activation("relu(u) + 0.1*tanh(u - 3)")
    f = act.mpmath
    sd = mpmath.mpf(100)
    with mpmath.workdps(35):
        got, err = tanh_sinh.gauss_expect_1d(
            f, sd, 0, [mpmath.mpf(0)], mpmath.mpf(10) ** -33, features=smooth_features(act, False)
        )
        # independent: the relu part in closed form, the tanh part by one split mpmath integral
        tanh_part = mpmath.quad(
            lambda x: mpmath.tanh(x - 3) * mpmath.npdf(x, 0, sd),
            [-2000, -300, -30, -3, 0, 3, 6, 9, 30, 300, 2000],
        )
        # (the parsed 0.1 is the double nearest to 0.1)
        want = sd / mpmath.sqrt(2 * mpmath.pi) + mpmath.mpf(0.1) * tanh_part
    assert abs(got - want) <= 1e-25 * abs(want)
    assert err <= 1e-25


def test_under_resolved_reference_raises_with_its_estimate(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule capped at a low degree cannot reach its target: an error, never a number."""
    monkeypatch.setattr(tanh_sinh, "QUAD_MAXDEGREE", 1)  # (run as 2: one degree has no estimate)
    monkeypatch.setattr(tanh_sinh, "MAX_TRAPEZOID_LEVEL", 1)
    with pytest.raises(ReferenceNotConverged) as info:
        reference.dual_quadrature("relu(u) + 0.1*tanh(u)", 1.0, 0.5, 1.0, dps=15)
    message = str(info.value)
    assert "0.1*tanh(u) + Max(0, u)" in message
    assert "(1.0, 0.5, 1.0)" in message
    assert "error estimate" in message and "above the target" in message
    assert isinstance(info.value, QuadratureError)
