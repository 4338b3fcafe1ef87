"""Overflow-safe forms of exponential activations (ntksym.activations.overflow) and the
generated quadrature kernels at variances where exp(|u|) overflows float64."""

from __future__ import annotations

import functools
import math

import mpmath
import numpy as np
import pytest
import sympy as sp

from ntksym import reference
from ntksym.activations import get_activation, u
from ntksym.activations.overflow import exp_safe
from ntksym.codegen import kernel_spec, load

EXPONENTIAL = ["sigmoid", "softplus", "silu", "log(2 + exp(u))", "exp(-2*u)/(1 + exp(-2*u))"]


def _float(expr: sp.Expr):
    return sp.lambdify(u, expr, modules="math")


@pytest.mark.parametrize("name", EXPONENTIAL)
@pytest.mark.parametrize("which", ["expr", "derivative"])
def test_safe_form_is_finite_and_right_everywhere(name, which):
    """At random points of |u| <= 50 and at |u| up to 3e4 the rewritten form agrees with
    the original evaluated in mpmath with the digits its cancellations need (where the
    float64 original overflows to NaN); at |u| = 1e300 it is finite."""
    act = get_activation(name)
    expr = getattr(act, which)
    safe = exp_safe(expr, u)
    assert safe is not expr, "expected a rewritten form"
    fast, exact = _float(safe), sp.lambdify(u, expr, modules="mpmath")
    rng = np.random.default_rng(3)
    for x in list(rng.uniform(-50, 50, 40)) + [-3e4, -745.5, 745.5, 3e4]:
        # terms up to exp(4|u|) cancel in some of these forms
        with mpmath.workdps(40 + int(4 * abs(x) / math.log(10))):
            want = float(exact(mpmath.mpf(x)))
        got = fast(float(x))
        assert math.isfinite(got), (x, got)
        assert abs(got - want) <= 4e-15 * abs(want) + 1e-300, (x, got, want)
    assert all(math.isfinite(fast(x)) for x in (-1e300, 1e300))


def test_original_forms_do_overflow():
    """The reason for the rewriting: the forms as written give NaN or inf past |u| = 709."""
    act = get_activation("sigmoid")
    with np.errstate(all="ignore"):
        d = sp.lambdify(u, act.derivative, modules="numpy")(np.array([-800.0]))
    assert np.isnan(d).all()
    with pytest.raises(OverflowError):
        _float(get_activation("softplus").expr)(800.0)


@pytest.mark.parametrize("text", ["tanh(u)", "exp(-u**2/2)", "u*exp(-u)", "exp(u)"])
def test_left_alone(text):
    """Nothing to do (no exponential of u), another function of u inside exp, or a function
    that itself grows like exp(|u|): the expression comes back unchanged."""
    expr = get_activation(text).expr
    assert exp_safe(expr, u) is expr


def test_softplus_form():
    """The rewriting is the textbook one: softplus = u + log1p(exp(-u)) for u >= 0, and
    the generated quadrature prints that form."""
    safe = exp_safe(get_activation("softplus").expr, u)
    assert isinstance(safe, sp.Piecewise)
    assert str(safe.args[0][0]) == "u + log1p(exp(-Abs(u)))"
    assert kernel_spec("softplus").act_form == safe


@functools.cache
def _reference_pair(name: str, s11: float, s12: float, s22: float) -> tuple[float, float]:
    e = reference.dual(name, s11, s12, s22, dps=20)
    ed = reference.dual(name, s11, s12, s22, dps=20, derivative=True)
    return float(e), float(ed)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("name", ["sigmoid", "softplus", "silu"])
def test_layer_map_at_large_variance(name, backend):
    """One layer at variances 1e4..2e4 (nodes up to |u| ~ 1300): finite and right to
    rounding (before, sigma' gave inf/inf = NaN there and the kernel raised)."""
    m = load(name, backend)
    s11, s22, rho = 1e4, 2e4, 0.3
    s12 = rho * math.sqrt(s11 * s22)
    det = s11 * s22 * (1 - rho) * (1 + rho)
    args = [s11, s22, s12, det, 0.0, 0.0, 0.0, 0.0, math.sqrt(s11), math.sqrt(s22), 0.0, 0.0]
    if backend == "numpy":
        args = [np.array([a]) for a in args]
    e, ed, _ = (float(np.ravel(v)[0]) for v in m._pair(*args))
    want, want_d = _reference_pair(name, s11, s12, s22)
    assert abs(e - want) <= 1e-14 * abs(want)
    assert abs(ed - want_d) <= 1e-14 * abs(want_d)


@pytest.mark.slow  # the mpmath reference takes ~30 s
@pytest.mark.parametrize("name", ["sigmoid", "silu"])
def test_gram_at_large_norm(name):
    """Gram matrices of inputs at norm ~300 (layer-1 variances ~1e5) vs the mpmath recursion."""
    rng = np.random.default_rng(4)
    X = 300.0 * rng.standard_normal((2, 4))
    K, T = load(name, "numba").nngp_ntk(X, None, 2, 0.1, 1.0)
    Kr, Tr = reference.kernel(name, X, depth=2, bias_std=0.1, dps=20)
    assert np.max(np.abs(K - Kr) / np.abs(Kr)) <= 1e-13
    assert np.max(np.abs(T - Tr) / np.abs(Tr)) <= 1e-13
