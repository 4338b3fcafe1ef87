"""Activations: registry, SymPy derivatives, numeric evaluation and the safe parser."""

from __future__ import annotations

import math
import sys

import mpmath
import numpy as np
import pytest
import sympy as sp
from conftest import TOL
from hypothesis import given, settings
from hypothesis import strategies as st

from ntksym.activations import REGISTRY, get_activation, parse_expression, registered_names, u
from ntksym.errors import ActivationError, UnsafeExpressionError

REQUIRED = {
    "identity", "relu", "leaky_relu", "abs", "step", "sign", "erf", "tanh", "sigmoid",
    "softplus", "gelu", "silu", "sin", "cos", "exp", "gaussian", "monomial",
}  # fmt: skip


def test_registry_has_required_names() -> None:
    assert REQUIRED <= set(registered_names())


@pytest.mark.parametrize("name", sorted(REQUIRED - {"step", "sign"}))
def test_derivative_matches_central_difference(name: str) -> None:
    """SymPy's derivative, evaluated in mpmath, against a 40-digit central difference."""
    act = get_activation(name)
    with mpmath.workdps(40):
        for x in ["-1.3", "-0.2", "0.7", "2.1"]:
            x = mpmath.mpf(x)
            h = mpmath.mpf("1e-12")
            fd = (act.mpmath(x + h) - act.mpmath(x - h)) / (2 * h)
            assert abs(fd - act.mpmath_derivative(x)) < mpmath.mpf("1e-20")


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_numpy_matches_mpmath(name: str) -> None:
    act = get_activation(name)
    xs = np.array([-3.0, -0.5, 0.0, 0.25, 1.5, 4.0])
    got = act.numpy(xs)
    want = np.array([float(act.mpmath(mpmath.mpf(x))) for x in xs])
    np.testing.assert_allclose(got, want, rtol=TOL.map, atol=1e-300)
    assert got.shape == xs.shape


def test_relu_derivative_and_kink_convention() -> None:
    relu = get_activation("relu")
    assert relu.derivative == sp.Heaviside(u)
    assert relu.kinks == (0.0,)
    np.testing.assert_array_equal(relu.numpy_derivative(np.array([-1.0, 0.0, 2.0])), [0, 0.5, 1])


def test_distributional_derivatives_are_flagged() -> None:
    for name in ("step", "sign"):
        act = get_activation(name)
        assert act.has_distributional_derivative
        with pytest.raises(ActivationError, match="Dirac"):
            act.numpy_derivative(np.zeros(2))
    assert not get_activation("relu").has_distributional_derivative


def test_families_take_parameters() -> None:
    leaky = get_activation("leaky_relu", slope=0.2)
    np.testing.assert_allclose(leaky.numpy(np.array([-1.0, 2.0])), [-0.2, 2.0])
    assert get_activation("monomial", k=3).expr == u**3
    with pytest.raises(ActivationError, match="k must be"):
        get_activation("monomial", k=-1)
    with pytest.raises(ActivationError, match="slope must be finite"):
        get_activation("leaky_relu", slope=float("nan"))
    with pytest.raises(ActivationError, match="bad parameters"):
        get_activation("relu", slope=0.1)


def test_unknown_name_is_parsed_then_refused_with_options() -> None:
    with pytest.raises(UnsafeExpressionError, match="unknown name 'swishy'"):
        get_activation("swishy")


def test_user_expressions() -> None:
    act = get_activation("max(0, u) + 0.1*u")
    np.testing.assert_allclose(act.numpy(np.array([-1.0, 1.0])), [-0.1, 1.1])
    assert parse_expression("tanh(2*u)") == sp.tanh(2 * u)
    assert parse_expression("relu(u) - relu(-u)") == sp.Max(0, u) - sp.Max(0, -u)
    assert parse_expression("u**2/2 + pi") == u**2 / 2 + sp.pi
    x = sp.Symbol("x")
    assert get_activation(sp.sin(x)).expr == sp.sin(u)


HOSTILE = [
    "__import__('os').system('echo pwned')",
    "u.__class__.__mro__",
    "().__class__.__bases__[0].__subclasses__()",
    "(lambda: 1)()",
    "[c for c in u]",
    "{1: 2}",
    "open('/etc/passwd').read()",
    "exec('x=1')",
    "eval('1')",
    "globals()",
    "import os",
    "u; import os",
    "getattr(u, 'x')",
    "9**9**9**9",
    "u**100000",
    "2**(10**100)",
    "10**400",
    "-" * 100 + "u",
    "sin(" * 60 + "u" + ")" * 60,
    "u if u > 0 else 0",
    "u > 0",
    "'u'",
    "b'u'",
    "1j*u",
    "True",
    "u[0]",
    "exp(u, x=1)",
    "exp(*[u])",
    "max(u)",
    "foo(u)",
    "x + 1",
    "u @ u",
    "u // 2",
    "u % 2",
    "f'{u}'",
    "1e999",
    "u/0",
    "",
    "   ",
    "\x00u",
    "u" * 600,
    "(yield u)",
    "await u",
    "u := 3",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_strings_are_refused_without_running(text: str, tmp_path, monkeypatch) -> None:
    import builtins

    calls: list[str] = []
    real_import = builtins.__import__

    def spy_import(name, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        calls.append(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "eval", lambda *a, **k: calls.append("eval"))
    monkeypatch.setattr(builtins, "exec", lambda *a, **k: calls.append("exec"))
    monkeypatch.setattr(builtins, "__import__", spy_import)
    with pytest.raises(UnsafeExpressionError) as info:
        parse_expression(text)
    monkeypatch.undo()
    assert "eval" not in calls and "exec" not in calls
    assert "os" not in calls
    assert str(info.value)  # names the problem


def test_redundant_parentheses_are_harmless() -> None:
    assert parse_expression("(" * 200 + "u" + ")" * 200) == u


def test_error_names_offending_part() -> None:
    with pytest.raises(UnsafeExpressionError, match="Attribute"):
        parse_expression("u.real")
    with pytest.raises(UnsafeExpressionError, match="unknown function 'system'"):
        parse_expression("system(u)")
    with pytest.raises(UnsafeExpressionError, match="too large"):
        parse_expression("u**1000")


def test_parser_never_calls_sympify(monkeypatch) -> None:
    def boom(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("sympify called on user text")

    monkeypatch.setattr(sp, "sympify", boom)
    monkeypatch.setattr(sp.parsing.sympy_parser, "parse_expr", boom)
    assert parse_expression("relu(u) + 0.5*tanh(u)") == sp.Max(0, u) + 0.5 * sp.tanh(u)


_leaf = st.sampled_from(["u", "1", "2.5", "pi"])
_expr = st.recursive(
    _leaf,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        st.tuples(st.sampled_from(["tanh", "sin", "relu", "erf", "abs"]), inner).map(
            lambda t: f"{t[0]}({t[1]})"
        ),
    ),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(_expr, st.floats(-3, 3))
def test_parsed_expression_evaluates_like_python(text: str, x: float) -> None:
    """Property: the parsed expression agrees with the same formula in plain Python math."""
    env = {
        "u": x,
        "pi": math.pi,
        "tanh": math.tanh,
        "sin": math.sin,
        "erf": math.erf,
        "abs": abs,
        "relu": lambda y: max(0.0, y),
        "__builtins__": {},
    }
    want = eval(text, env)  # noqa: S307 - test oracle on generated, trusted text
    got = float(get_activation(text).numpy(np.array(x)))
    assert math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-12)


def test_recursion_limit_untouched() -> None:
    before = sys.getrecursionlimit()
    with pytest.raises(UnsafeExpressionError):
        parse_expression("abs(" * 150 + "u" + ")" * 150)
    assert sys.getrecursionlimit() == before


def test_every_registry_entry_builds() -> None:
    for name, factory in REGISTRY.items():
        act = factory()
        assert act.expr.free_symbols <= {u}, name


def test_small_integer_powers_are_products_with_pows_values():
    """lambdify_numpy writes u**2..u**4 as products (NumPy's pow is ~100x slower): the
    values agree with pow to an ulp or two, and so do the edge cases (signed zeros,
    infinities, NaN, overflow)."""
    from ntksym.activations.expr import lambdify_numpy, u

    rng = np.random.default_rng(3)
    x = np.concatenate(
        [rng.standard_normal(1000) * 10.0, [0.0, -0.0, np.inf, -np.inf, np.nan, 1e200, -1e120]]
    )
    for n in (2, 3, 4):
        with np.errstate(over="ignore", invalid="ignore"):
            got, want = lambdify_numpy(u**n)(x), x**n
            assert np.array_equal(np.signbit(got), np.signbit(want))
            assert np.array_equal(np.isnan(got), np.isnan(want))
            close = np.isclose(got, want, rtol=4.5e-16, atol=0.0) | (got == want)
        assert close[~np.isnan(want)].all(), n
    # the tanh form of GELU, whose sigma has u**3: its values to the conditioning of 1 + tanh
    # (for u < 0 the sum cancels: an absolute error of an ulp of 1, below 1e-15)
    expr = 0.5 * u * (1 + sp.tanh(sp.sqrt(2 / sp.pi) * (u + sp.Float("0.044715") * u**3)))
    f = lambdify_numpy(expr)
    z = np.linspace(-4.0, 4.0, 81)
    want = [float(expr.subs(u, sp.Float(v, 30)).evalf(30)) for v in z]
    assert np.allclose(f(z), want, rtol=1e-14, atol=1e-15)
